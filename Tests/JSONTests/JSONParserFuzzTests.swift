// Seeded fuzzing of the JSON parser: 20,000 mutations of valid documents must each either parse or
// throw (a trap fails the whole run), whatever parses must round-trip through serialized(), and
// where Foundation's JSONSerialization accepts the same bytes the two parsers must agree on the value.

import Foundation
import Kernels
import Testing
@testable import JSON

@Suite struct JSONParserFuzzTests {
    static let seeds: [String] = [
        #"{"model":"acme-support","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi \"there\" \u00e9\ud83d\ude00"}],"temperature":0.7,"top_p":1,"max_tokens":16,"stop":["\n\n","END"],"logit_bias":{"42":-100,"7":2.5},"stream":true,"stream_options":{"include_usage":true},"seed":-1,"user":null}"#,
        #"[0,-0,1.5,-2.25e-7,1E300,9223372036854775807,-9223372036854775808,18446744073709551616,true,false,null,"",[],{}]"#,
        #"{"a":{"b":{"c":[[[["deep",1e-5,{"x":[true]}]]]]}},"e":"\t\\\/\b\f\n\r"}"#,
        "[\"héllo ✓ 日本 😀\", \"\\u4e2d\\u6587\", \"\\uD834\\uDD1E\", 123456789012345678901234567890, 0.1e1]",
        #"{"prompt":[[1,2,3]],"echo":true,"logprobs":5,"adapters":[{"name":"x","scale":0.5}]}"#,
        "  {\n  \"k\" : [ 1 , 2 ,\n 3 ] ,\r\n \"v\" : { } }  ",
        #""just a string with \"escapes\" and \/ slashes""#,
        "-12.5e+3",
    ]

    /// Bytes that tend to matter to a JSON parser.
    static let interesting: [UInt8] = Array("{}[]\",:\\/0123456789-+.eEtrufalsn \t\n\r'u".utf8)
        + [0x00, 0x01, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF]

    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        let edits = 1 + Int(rng.next() % 3)
        for _ in 0..<edits {
            let pos = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count))
            let byte = rng.next() % 2 == 0 ? interesting[Int(rng.next() % UInt64(interesting.count))] : UInt8(truncatingIfNeeded: rng.next())
            switch rng.next() % 7 {
            case 0 where !b.isEmpty: b[pos] = byte
            case 1: b.insert(byte, at: pos)
            case 2 where !b.isEmpty: b.remove(at: pos)
            case 3 where !b.isEmpty:  // duplicate a short range
                let end = min(b.count, pos + 1 + Int(rng.next() % 12))
                b.insert(contentsOf: b[pos..<end], at: pos)
            case 4 where !b.isEmpty: b.removeSubrange(pos..<min(b.count, pos + 1 + Int(rng.next() % 8)))
            case 5 where b.count > 1:
                let other = Int(rng.next() % UInt64(b.count))
                b.swapAt(pos, other)
            case 6: b = Array(b[0..<pos])  // truncate
            default: b.insert(byte, at: pos)
            }
        }
        return b
    }

    @Test func mutationsNeverTrapAndAgreeWithFoundation() throws {
        var rng = SplitMix64(seed: 0x4A53_4F4E)
        let seeds = Self.seeds.map { Array($0.utf8) }
        for seed in seeds { _ = try JSONValue.parse(seed) }  // the seeds themselves are valid
        var accepted = 0, rejected = 0, compared = 0, foundationOnly = 0
        var oursOnly: [String] = []
        for n in 0..<20_000 {
            let input = Self.mutate(seeds[n % seeds.count], &rng)
            let ours: JSONValue?
            do {
                ours = try JSONValue.parse(input)
                accepted += 1
            } catch {
                ours = nil
                rejected += 1
                #expect(error.offset >= 0 && error.offset <= input.count, "\(error)")
            }
            if let ours {
                let again = try JSONValue.parse(ours.serialized())
                #expect(again == ours, "round trip of \(String(decoding: input, as: UTF8.self).debugDescription)")
            }
            let theirs = try? JSONSerialization.jsonObject(with: Data(input), options: [.fragmentsAllowed])
            switch (ours, theirs) {
            case (let ours?, let theirs?):
                compared += 1
                #expect(Self.matches(ours, theirs),
                        "disagree on \(String(decoding: input, as: UTF8.self).debugDescription): \(ours.serialized()) vs \(theirs)")
            case (nil, _?): foundationOnly += 1
            case (_?, nil): oursOnly.append(String(decoding: input, as: UTF8.self))
            case (nil, nil): break
            }
        }
        // Both outcomes must be common, or the mutations (or the parser) are not doing their job.
        #expect(accepted > 1_000 && rejected > 10_000, "accepted \(accepted), rejected \(rejected)")
        #expect(compared > 1_000)
        // Anything we accept is plain RFC 8259 JSON, which Foundation accepts too.
        #expect(oursOnly.isEmpty, "accepted by lorad only: \(oursOnly.prefix(5).map(\.debugDescription))")
        _ = foundationOnly  // Foundation is laxer (duplicate keys, lone surrogates, BOM); not a failure.
    }

    /// Whether a JSONSerialization result holds the same value.
    static func matches(_ ours: JSONValue, _ theirs: Any) -> Bool {
        switch ours {
        case .null:
            return theirs is NSNull
        case .bool(let b):
            guard let n = theirs as? NSNumber, isBoolean(n) else { return false }
            return n.boolValue == b
        case .int(let i):
            guard let n = theirs as? NSNumber, !isBoolean(n) else { return false }
            return isInteger(n) ? n.int64Value == Int64(i) : n.doubleValue == Double(i)
        case .double(let d):
            guard let n = theirs as? NSNumber, !isBoolean(n) else { return false }
            // Foundation keeps integers too large for 64 bits as NSDecimalNumber, whose conversion to
            // Double is not correctly rounded: allow a couple of ulps there only.
            if n is NSDecimalNumber { return abs(n.doubleValue - d) <= 4 * d.ulp }
            return n.doubleValue == d
        case .string(let s):
            return (theirs as? String) == s
        case .array(let xs):
            guard let ys = theirs as? [Any], ys.count == xs.count else { return false }
            return zip(xs, ys).allSatisfy { matches($0, $1) }
        case .object(let members):
            guard let dict = theirs as? [String: Any], dict.count == members.count else { return false }
            return members.allSatisfy { k, v in dict[k].map { matches(v, $0) } ?? false }
        }
    }

    static func isBoolean(_ n: NSNumber) -> Bool {
        String(cString: n.objCType) == "c"
    }

    static func isInteger(_ n: NSNumber) -> Bool {
        ["i", "s", "l", "q", "I", "S", "L", "Q"].contains(String(cString: n.objCType))
    }
}

// GBNF grammars from llama.cpp's grammars/ directory behave in lorad as in llama.cpp: for each
// grammar and string in the fixture (scripts/goldens/gbnf_cases.py, from llama-cpp-python's
// vendored llama.cpp), the string's tokens are walked through GrammarMatcher over SmolLM2's real
// vocabulary, and at every position llama.cpp recorded, lorad's mask is llama.cpp's set of allowed
// tokens (over the same ids: the tokens of GGUF type NORMAL or BYTE), less the tokens llama.cpp lets
// through that can never become valid UTF-8 ("invalid_utf8"); end of generation is allowed exactly
// when llama.cpp allows it; and the first token refused is the one llama.cpp refuses.
//
// Two documented differences, where lorad allows tokens llama.cpp refuses and lorad is the exact one
// (each allowed token is a valid prefix: GrammarMatcherTests checks every mask against brute force):
// - a token whose bytes end inside a UTF-8 character: llama.cpp checks a cut character against a
//   class by its possible code points and, for a negated class, refuses it when any excluded
//   character could follow; lorad allows it when some completion is in the class (" \xE2" before
//   "\u2026" in a list item). So where llama.cpp refuses such a token, lorad may refuse the next one.
// - a token that begins with a NUL byte: llama.cpp refuses every one (it compares C strings),
//   even where the grammar allows U+0000.
import Foundation
import Grammar
import JSON
import Testing
import Tokenizer

/// The grammars the generator asks for (it lists those the pinned llama.cpp lacks as dropped).
private let gbnfGrammarNames = ["json", "json_arr", "arithmetic", "list", "chess", "japanese", "c", "english"]

struct GBNFGoldenTests {
    @Test func fixtureCoversTheVocabularyLoradConstrains() throws {
        let fixture = try GBNFFixture.shared.get()
        let trie = try RealVocabulary.trie()
        #expect(trie.vocabularySize == fixture.vocabulary)
        let included = (0..<trie.vocabularySize).filter { trie.isIncluded($0) }
        // llama.cpp's universe is the NORMAL and BYTE tokens by GGUF type; lorad's trie leaves out the
        // control and user-defined ones. The same ids, or the sets below are not comparable.
        #expect(included.count == fixture.universe)
        #expect(Set(0..<trie.vocabularySize).subtracting(included) == Set(fixture.excludedIDs))
        #expect(Set(fixture.grammars.map(\.name)).isSubset(of: gbnfGrammarNames))
        #expect(fixture.grammars.count >= 6, "the fixture lost grammars: \(fixture.dropped)")
    }

    @Test(arguments: gbnfGrammarNames)
    func masksMatchLlamaCpp(_ name: String) throws {
        let fixture = try GBNFFixture.shared.get()
        guard let golden = fixture.grammars.first(where: { $0.name == name }) else {
            // A grammar the pinned llama.cpp lacks or refuses is listed as dropped by the generator.
            #expect(fixture.dropped.contains { $0.hasPrefix(name + " ") }, "\(name) is neither in the fixture nor dropped")
            return
        }
        let trie = try RealVocabulary.trie()
        let grammar = try GBNF.parse(golden.text)
        let matcher = try GrammarMatcher(grammar: grammar, trie: trie)
        for (caseIndex, c) in golden.cases.enumerated() {
            let label = "\(name) case \(caseIndex) \(String(reflecting: c.text))"
            var state = matcher.start
            var rejectedAt: Int? = nil
            for i in 0...c.tokens.count {
                let mask = matcher.mask(state: state)
                if let k = c.positions.firstIndex(of: i) {
                    let step = c.steps[k]
                    compare(mask, step, trie: trie, where: "\(label) before token \(i) of \(c.tokens.count)")
                    // The generator makes sure no recorded position is inside a character with end of
                    // generation allowed (llama.cpp can allow it there; lorad should not).
                    #expect(matcher.accepts(state) == step.eog, "\(label): after \(i) tokens llama.cpp \(step.eog ? "allows" : "refuses") end of generation")
                }
                guard i < c.tokens.count else { break }
                let token = c.tokens[i]
                let next = matcher.advance(state, token: token)
                #expect(next.isDead == !mask.contains(token), "\(label): advance and mask disagree on token \(token) at \(i)")
                if next.isDead {
                    rejectedAt = i
                    break
                }
                if c.rejectedAt == i && Self.documentedDifference(trie.bytes(of: token)) {
                    // llama.cpp refuses a cut character lorad can still complete; the next token decides.
                    #expect(c.tokens.count > i + 1 && matcher.advance(next, token: c.tokens[i + 1]).isDead,
                            "\(label): llama.cpp refuses the cut character at \(i) and lorad not even the token after it")
                    rejectedAt = i
                    break
                }
                state = next
            }
            #expect(rejectedAt == c.rejectedAt, "\(label): lorad refuses at \(rejectedAt.map(String.init) ?? "none"), llama.cpp at \(c.rejectedAt.map(String.init) ?? "none")")
            if rejectedAt == nil && c.rejectedAt == nil {
                #expect(matcher.accepts(state) == c.eogAllowedAtEnd, "\(label): accepts the whole string: llama.cpp \(c.eogAllowedAtEnd)")
            }
        }
    }

    /// A token on which lorad may allow what llama.cpp refuses (see the header): its bytes begin with
    /// NUL or end inside a UTF-8 character.
    static func documentedDifference(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard let first = bytes.first else { return false }
        if first == 0 { return true }
        // Walk back over continuation bytes to the last lead byte; cut if fewer follow than it announces.
        var k = bytes.endIndex - 1, continuation = 0
        while k > bytes.startIndex && bytes[k] & 0xC0 == 0x80 { k -= 1; continuation += 1 }
        let lead = bytes[k]
        let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return length > 1 && continuation + 1 < length
    }

    /// lorad's mask against one recorded llama.cpp set; on a difference, the first differing tokens.
    func compare(_ mask: TokenMask, _ step: GBNFFixture.Step, trie: TokenTrie, where place: String) {
        let allowed = Set(mask.allowedIDs)
        let expected = step.allowed.subtracting(step.invalidUTF8)
        if allowed == expected { return }
        // Escaped, since the differences are often pieces cut inside a character.
        func show(_ ids: Set<Int>) -> String {
            ids.sorted().prefix(8).map { "\($0) \"\(Tokenizer.escapedForDisplay(Array(trie.bytes(of: $0))))\"" }.joined(separator: ", ")
        }
        let missing = expected.subtracting(allowed)
        let extra = allowed.subtracting(expected).filter { !Self.documentedDifference(trie.bytes(of: $0)) }
        if missing.isEmpty && extra.isEmpty { return }
        Issue.record("""
            \(place): lorad allows \(allowed.count) tokens, llama.cpp \(expected.count); \
            llama.cpp allows but lorad does not (\(missing.count)): \(show(missing)); \
            lorad allows but llama.cpp does not (\(extra.count)): \(show(extra))
            """)
    }
}

/// FNV-1a 64 over the ids as little-endian UInt32s, as scripts/goldens/gbnf_cases.py computes it.
func fnv1a64(_ ids: [Int]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for id in ids {
        var v = UInt32(id)
        for _ in 0..<4 {
            h = (h ^ UInt64(v & 0xFF)) &* 0x0000_0100_0000_01B3
            v >>= 8
        }
    }
    return h
}

/// Fixtures/gbnf_llama_cpp.json, loaded once, every set decoded in full and checked against its
/// recorded size and checksum.
struct GBNFFixture {
    struct Step {
        /// The tokens llama.cpp allows, within the universe.
        let allowed: Set<Int>
        /// Allowed by llama.cpp, but they can never become valid UTF-8 here.
        let invalidUTF8: Set<Int>
        let eog: Bool
    }
    struct Case {
        let text: String
        let tokens: [Int]
        let positions: [Int]
        let steps: [Step]
        let rejectedAt: Int?
        let eogAllowedAtEnd: Bool
    }
    struct GrammarGolden {
        let name: String
        let text: String
        let cases: [Case]
    }

    let universe: Int
    let vocabulary: Int
    let excludedIDs: [Int]
    let dropped: [String]
    let grammars: [GrammarGolden]

    static let shared: Result<GBNFFixture, any Error> = Result { try load() }

    static func load() throws -> GBNFFixture {
        guard let url = Bundle.module.url(forResource: "gbnf_llama_cpp", withExtension: "json", subdirectory: "Fixtures") else {
            throw TestSetupError(description: "Fixtures/gbnf_llama_cpp.json is missing from the test bundle")
        }
        guard case .object(let top) = try JSONValue.parse(Array(try Data(contentsOf: url))) else {
            throw TestSetupError(description: "gbnf_llama_cpp.json: not an object")
        }
        let vocabulary = try int(top, "vocabulary", in: "the fixture")
        let excluded = try ints(top, "excluded_ids", in: "the fixture")
        let universe = Set(0..<vocabulary).subtracting(excluded)
        let bitmaps = try array(top, "bitmaps", in: "the fixture").enumerated().map { index, v -> Set<Int> in
            guard case .string(let text) = v, let data = Data(base64Encoded: text), data.count * 8 >= vocabulary else {
                throw TestSetupError(description: "gbnf_llama_cpp.json: bitmap \(index) is not base64 of \(vocabulary) bits")
            }
            let bytes = [UInt8](data)
            return Set((0..<vocabulary).filter { bytes[$0 >> 3] & (1 << ($0 & 7)) != 0 })
        }
        let grammars = try array(top, "grammars", in: "the fixture").map { g -> GrammarGolden in
            let kvs = try object(g, in: "a grammar")
            let name = try string(kvs, "name", in: "a grammar")
            let cases = try array(kvs, "cases", in: name).map { c -> Case in
                let row = try object(c, in: name)
                let text = try string(row, "text", in: name)
                let steps = try array(row, "steps", in: text).map { s -> Step in
                    let step = try object(s, in: text)
                    let allowed: Set<Int>
                    if let ids = try optionalInts(step, "ids", in: text) {
                        allowed = Set(ids)
                    } else if let disallowed = try optionalInts(step, "disallowed", in: text) {
                        allowed = universe.subtracting(disallowed)
                    } else {
                        let index = try int(step, "bitmap", in: text)
                        guard bitmaps.indices.contains(index) else { throw missing("bitmap", text) }
                        allowed = bitmaps[index]
                    }
                    let hex = try string(step, "fnv1a64", in: text)
                    let count = try int(step, "count", in: text)
                    guard allowed.count == count, UInt64(hex, radix: 16) == fnv1a64(allowed.sorted()) else {
                        throw TestSetupError(description: "gbnf_llama_cpp.json: a set in \(name) \(String(reflecting: text)) does not match its count or checksum")
                    }
                    return Step(allowed: allowed, invalidUTF8: Set(try optionalInts(step, "invalid_utf8", in: text) ?? []),
                                eog: try bool(step, "eog", in: text))
                }
                var rejectedAt: Int? = nil
                if case .int(let r)? = field(row, "rejected_at") { rejectedAt = r }
                let positions = try ints(row, "positions", in: text)
                guard positions.count == steps.count else {
                    throw TestSetupError(description: "gbnf_llama_cpp.json: \(text) has \(positions.count) positions for \(steps.count) steps")
                }
                return Case(text: text, tokens: try ints(row, "tokens", in: text), positions: positions, steps: steps,
                            rejectedAt: rejectedAt, eogAllowedAtEnd: try bool(row, "eog_allowed_at_end", in: text))
            }
            return GrammarGolden(name: name, text: try string(kvs, "text", in: name), cases: cases)
        }
        let dropped = try array(top, "dropped", in: "the fixture").compactMap { v -> String? in
            if case .string(let s) = v { return s }
            return nil
        }
        return GBNFFixture(universe: try int(top, "universe", in: "the fixture"), vocabulary: vocabulary,
                           excludedIDs: excluded, dropped: dropped, grammars: grammars)
    }

    private static func field(_ kvs: [(String, JSONValue)], _ key: String) -> JSONValue? { kvs.first { $0.0 == key }?.1 }

    private static func missing(_ key: String, _ place: String) -> TestSetupError {
        TestSetupError(description: "gbnf_llama_cpp.json: \(place) has no valid '\(key)'")
    }

    private static func object(_ v: JSONValue, in place: String) throws -> [(String, JSONValue)] {
        guard case .object(let kvs) = v else { throw TestSetupError(description: "gbnf_llama_cpp.json: \(place) is not an object") }
        return kvs
    }

    private static func array(_ kvs: [(String, JSONValue)], _ key: String, in place: String) throws -> [JSONValue] {
        guard case .array(let xs)? = field(kvs, key) else { throw missing(key, place) }
        return xs
    }

    private static func string(_ kvs: [(String, JSONValue)], _ key: String, in place: String) throws -> String {
        guard case .string(let s)? = field(kvs, key) else { throw missing(key, place) }
        return s
    }

    private static func int(_ kvs: [(String, JSONValue)], _ key: String, in place: String) throws -> Int {
        guard case .int(let i)? = field(kvs, key) else { throw missing(key, place) }
        return i
    }

    private static func bool(_ kvs: [(String, JSONValue)], _ key: String, in place: String) throws -> Bool {
        guard case .bool(let b)? = field(kvs, key) else { throw missing(key, place) }
        return b
    }

    private static func ints(_ kvs: [(String, JSONValue)], _ key: String, in place: String) throws -> [Int] {
        try array(kvs, key, in: place).map { v in
            guard case .int(let i) = v else { throw missing(key, place) }
            return i
        }
    }

    private static func optionalInts(_ kvs: [(String, JSONValue)], _ key: String, in place: String) throws -> [Int]? {
        field(kvs, key) == nil ? nil : try ints(kvs, key, in: place)
    }
}

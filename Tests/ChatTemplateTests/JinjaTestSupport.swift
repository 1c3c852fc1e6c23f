// Shared by the Jinja and chat-template tests: the two golden fixtures written by
// scripts/goldens/jinja_cases.py and scripts/goldens/chat_templates.py, read with a small JSON
// reader that keeps what the tests need and Foundation's decoders lose: object key order (Python
// dicts are ordered and templates iterate them) and the difference between 1 and 1.0 (Python
// prints them differently).

import Foundation
import JSON
import ModelFormats
import Testing
@testable import ChatTemplate

struct JinjaFixtureError: Error, CustomStringConvertible {
    let description: String
}

/// A strict RFC 8259 reader producing ModelFormats.JSONValue.
struct OrderedJSONReader {
    private let bytes: [UInt8]
    private var i = 0

    static func parse(_ data: Data) throws -> JSONValue {
        var reader = OrderedJSONReader(bytes: Array(data))
        reader.skipSpace()
        let value = try reader.value()
        reader.skipSpace()
        guard reader.i == reader.bytes.count else { throw reader.error("trailing data") }
        return value
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private func error(_ what: String) -> JinjaFixtureError {
        JinjaFixtureError(description: "fixture JSON: \(what) at byte \(i)")
    }

    private mutating func skipSpace() {
        while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 }
    }

    private mutating func expect(_ literal: String) throws {
        for b in literal.utf8 {
            guard i < bytes.count, bytes[i] == b else { throw error("expected \(literal)") }
            i += 1
        }
    }

    private mutating func value() throws -> JSONValue {
        guard i < bytes.count else { throw error("unexpected end") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var members: [(String, JSONValue)] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
                i += 1
                return .object(members)
            }
            while true {
                skipSpace()
                let key = try string()
                skipSpace()
                try expect(":")
                skipSpace()
                members.append((key, try value()))
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                try expect("}")
                return .object(members)
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [JSONValue] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            while true {
                skipSpace()
                items.append(try value())
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                try expect("]")
                return .array(items)
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            try expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expect("null")
            return .null
        default:
            return try number()
        }
    }

    private mutating func number() throws -> JSONValue {
        let start = i
        var isFloat = false
        while i < bytes.count, "+-0123456789.eE".utf8.contains(bytes[i]) {
            if "eE.".utf8.contains(bytes[i]) { isFloat = true }
            i += 1
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        if !isFloat, let n = Int(text) { return .int(n) }
        guard let d = Double(text) else { throw error("bad number \(text)") }
        return .double(d)
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16) else {
            throw error("bad \\u escape")
        }
        i += 4
        return v
    }

    private mutating func string() throws -> String {
        try expect("\"")
        var out = [UInt8]()
        while true {
            guard i < bytes.count else { throw error("unterminated string") }
            let b = bytes[i]
            i += 1
            if b == UInt8(ascii: "\"") { break }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                continue
            }
            guard i < bytes.count else { throw error("unterminated escape") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u"):
                var v = try hex4()
                if (0xD800..<0xDC00).contains(v) {
                    try expect("\\u")
                    let low = try hex4()
                    v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(v) else { throw error("lone surrogate") }
                out += Array(String(Character(scalar)).utf8)
            default: out.append(e)  // \" \\ \/
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension JSONValue {
    subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members.first(where: { $0.0 == key })?.1 }
        return nil
    }

    var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var arrayValue: [JSONValue]? {
        if case .array(let xs) = self { return xs }
        return nil
    }

    var objectMembers: [(String, JSONValue)]? {
        if case .object(let members) = self { return members }
        return nil
    }

    var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    var intValue: Int? {
        if case .int(let i) = self { return i }
        return nil
    }
}

func loadJinjaFixture(_ name: String) throws -> JSONValue {
    guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
        throw JinjaFixtureError(description: "Fixtures/\(name).json is missing from the test bundle")
    }
    return try OrderedJSONReader.parse(try Data(contentsOf: url))
}

/// Where the real SmolLM2 model is, or an error telling how to set LORAD_TEST_MODEL.
func realModelPath() throws -> String {
    guard let path = ProcessInfo.processInfo.environment["LORAD_TEST_MODEL"], !path.isEmpty else {
        throw JinjaFixtureError(description: "LORAD_TEST_MODEL is not set: set it to the SmolLM2-135M-Instruct Q4_1 "
            + "GGUF (e.g. LORAD_TEST_MODEL=$PWD/models/SmolLM2-135M-Instruct.Q4_1.gguf; `make model` fetches it)")
    }
    guard FileManager.default.fileExists(atPath: path) else {
        throw JinjaFixtureError(description: "LORAD_TEST_MODEL=\(path) does not exist (`make model` fetches it)")
    }
    return path
}

/// Runs `body` and returns the ChatTemplateError it throws, or records a failure.
func chatTemplateError(_ comment: Comment, sourceLocation: SourceLocation = #_sourceLocation,
                       _ body: () throws -> Void) -> ChatTemplateError? {
    do {
        try body()
        Issue.record("\(comment): expected an error, but it rendered", sourceLocation: sourceLocation)
        return nil
    } catch let e as ChatTemplateError {
        return e
    } catch {
        Issue.record("\(comment): expected a ChatTemplateError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

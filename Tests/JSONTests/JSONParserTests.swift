// The strict JSON parser on hand-picked documents: values and their types, unicode escapes and
// surrogate pairs, number classification, round trips through serialized(), and every kind of
// error with the byte offset it reports.

import Testing
@testable import JSON

/// The error `text` gives, or nil (recorded as a failure) when it parses.
func jsonError(_ bytes: [UInt8], maxDepth: Int = 64, sourceLocation: SourceLocation = #_sourceLocation) -> JSONParseError? {
    do {
        let v = try JSONValue.parse(bytes, maxDepth: maxDepth)
        Issue.record("expected an error, parsed \(v.serialized())", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

func jsonError(_ text: String, maxDepth: Int = 64, sourceLocation: SourceLocation = #_sourceLocation) -> JSONParseError? {
    jsonError(Array(text.utf8), maxDepth: maxDepth, sourceLocation: sourceLocation)
}

@Suite struct JSONParserTests {
    @Test func scalarsAndContainers() throws {
        #expect(try JSONValue.parse("null") == .null)
        #expect(try JSONValue.parse(" true ") == .bool(true))
        #expect(try JSONValue.parse("\t\r\nfalse\n") == .bool(false))
        #expect(try JSONValue.parse("\"\"") == .string(""))
        #expect(try JSONValue.parse("[]") == .array([]))
        #expect(try JSONValue.parse("[ ]") == .array([]))
        #expect(try JSONValue.parse("{ }") == .object([]))
        let v = try JSONValue.parse(#" {"b": [1, 2.5, "x", null, true, {"c": {}}], "a": -3 } "#)
        #expect(v == .object([
            ("b", .array([.int(1), .double(2.5), .string("x"), .null, .bool(true), .object([("c", .object([]))])])),
            ("a", .int(-3)),
        ]))
        // Keys keep their order.
        #expect(v.objectMembers?.map(\.0) == ["b", "a"])
        #expect(v["a"] == .int(-3))
        #expect(v["b"]?.arrayValue?.count == 6)
        #expect(v["zz"] == nil)
        #expect(JSONValue.int(1)["a"] == nil)
    }

    @Test func numbersBecomeIntOrDouble() throws {
        let cases: [(String, JSONValue)] = [
            ("0", .int(0)), ("-0", .int(0)), ("7", .int(7)), ("-12", .int(-12)),
            ("9223372036854775807", .int(Int.max)),
            ("-9223372036854775808", .int(Int.min)),
            ("9223372036854775808", .double(9223372036854775808.0)),
            ("-9223372036854775809", .double(-9223372036854775809.0)),
            ("123456789012345678901234567890", .double(1.2345678901234568e29)),
            ("1.0", .double(1)), ("1e3", .double(1000)), ("1E+3", .double(1000)), ("0e0", .double(0)),
            ("-1.25e-3", .double(-0.00125)), ("0.1", .double(0.1)), ("2.5E-1", .double(0.25)),
            ("1.7976931348623157e308", .double(.greatestFiniteMagnitude)),
            ("4.9e-324", .double(.leastNonzeroMagnitude)),
            ("1e-400", .double(0)),  // underflow rounds to zero, as strtod does
        ]
        for (text, expected) in cases {
            #expect(try JSONValue.parse(text) == expected, "\(text)")
        }
        // The sign of negative zero survives as a double.
        let negZero = try JSONValue.parse("-0.0")
        #expect(negZero.doubleValue?.sign == .minus)
        #expect(JSONValue.int(3).doubleValue == 3)
        #expect(JSONValue.double(3).intValue == nil)
    }

    @Test func stringsEscapesAndUnicode() throws {
        let cases: [(String, String)] = [
            (#""abc""#, "abc"),
            (#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{C}\n\r\t"),
            (#""\u0041\u00e9\u00E9\u4e2d""#, "Aéé中"),
            (#""\u0000""#, "\u{0}"),
            (#""\ud83d\ude00""#, "😀"),
            (#""\uD834\uDD1E clef""#, "𝄞 clef"),
            (#""\uDBFF\uDFFF""#, "\u{10FFFF}"),
            (#""x\uFFFFy""#, "x\u{FFFF}y"),
            ("\"héllo ✓ 日本 😀\"", "héllo ✓ 日本 😀"),
            ("\"mixed é\\n😀\\u00e9\"", "mixed é\n😀é"),
            ("\"\u{7F}\u{2028}\"", "\u{7F}\u{2028}"),  // DEL and U+2028 need no escape
        ]
        for (text, expected) in cases {
            #expect(try JSONValue.parse(text) == .string(expected), "\(text)")
        }
        // Keys go through the same decoder.
        #expect(try JSONValue.parse(#"{"k\u00e9y": 1}"#)["kéy"] == .int(1))
    }

    @Test func inputKinds() throws {
        let text = #"{"a":[1,"b"]}"#
        let expected = JSONValue.object([("a", .array([.int(1), .string("b")]))])
        let bytes = Array(text.utf8)
        #expect(try JSONValue.parse(bytes) == expected)
        #expect(try JSONValue.parse(text) == expected)
        #expect(try JSONValue.parse(bytes[0...]) == expected)
        // A collection without contiguous storage goes through a copy.
        #expect(try JSONValue.parse(bytes.reversed().reversed()) == expected)
        let fromRaw = bytes.withUnsafeBytes { raw in Result { () throws(JSONParseError) in try JSONValue.parse(raw) } }
        #expect(try fromRaw.get() == expected)
        // A slice reports offsets relative to its own start.
        let padded = Array("xx[1,]".utf8)
        #expect(jsonError(Array(padded[2...]))?.offset == 3)
    }

    @Test func roundTripsThroughSerialized() throws {
        let documents = [
            #"{"model":"acme-support@v2","messages":[{"role":"user","content":"Hi \"there\"\n\u0001"}],"temperature":0.7,"max_tokens":16,"stop":["\n\n"],"logit_bias":{"42":-100},"stream":true,"x":null}"#,
            #"[0,-1,1.5,-2.25e-7,1e300,9223372036854775807,-9223372036854775808,true,false,null,"",[],{}]"#,
            #"["\ud83d\ude00\u2028\u0000\u001f\u007f\\\/"]"#,
            #"{"a":{"b":{"c":[[[["deep"]]]]}}}"#,
        ]
        for doc in documents {
            let v = try JSONValue.parse(doc)
            let again = try JSONValue.parse(v.serialized())
            #expect(again == v, "\(doc)")
            #expect(again.serialized() == v.serialized())
        }
        // And values built in code come back.
        let built = JSONValue.object([
            ("s", .string("tab\tquote\"nul\u{0}emoji😀bell\u{7}")), ("d", .double(0.1)), ("neg", .double(-3.5e-12)),
            ("big", .double(1.5e20)), ("i", .int(-42)), ("arr", .array([.null, .bool(true), .object([])])),
        ])
        #expect(try JSONValue.parse(built.serialized()) == built)
    }

    @Test func depthLimit() throws {
        func nested(_ n: Int) -> String { String(repeating: "[", count: n) + String(repeating: "]", count: n) }
        #expect(try JSONValue.parse(nested(64)) != .null)
        let e = try #require(jsonError(nested(65)))
        #expect(e.offset == 64)
        #expect(e.message.contains("at most 64 nested"))
        #expect(try JSONValue.parse(nested(3), maxDepth: 3) != .null)
        #expect(jsonError(nested(4), maxDepth: 3)?.offset == 3)
        #expect(jsonError(#"{"a":{"b":{"c":1}}}"#, maxDepth: 2)?.offset == 10)
        // Empty containers count as a level too.
        #expect(jsonError("[[[]]]", maxDepth: 2)?.offset == 2)
        // The parser keeps its own stack, so very deep input is an error, not a stack overflow,
        // even with the limit lifted.
        let deep = Array(String(repeating: "[", count: 200_000).utf8)
        #expect(jsonError(deep, maxDepth: .max)?.message.contains("found end of input") == true)
    }

    /// Each kind of error, the offset it reports, and a piece of its message.
    @Test(arguments: [
        ("", 0, "expected a JSON value, found end of input"),
        ("   ", 3, "expected a JSON value, found end of input"),
        ("[1,]", 3, "trailing commas"),
        (#"{"a":1,}"#, 7, "trailing commas"),
        ("[1 2]", 3, "expected ',' or ']' after an array element, found '2'"),
        (#"{"a":1 "b":2}"#, 7, "expected ',' or '}' after an object member"),
        (#"{"a" 1}"#, 5, "expected ':' after an object key"),
        ("{1:2}", 1, "expected an object key (a string) or '}'"),
        ("{'a':2}", 1, "double quotes"),
        ("['a']", 1, "double quotes"),
        ("[1]]", 3, "expected end of input after the JSON value, found ']'"),
        ("1 2", 2, "expected end of input"),
        ("// c\n1", 0, "expected a JSON value, found '/'"),
        ("[1] /* c */", 4, "expected end of input"),
        ("NaN", 0, "NaN and Infinity"),
        ("[-Infinity]", 2, "expected a digit after '-', found 'I'"),
        ("[Infinity]", 1, "NaN and Infinity"),
        ("+1", 0, "starts with '-' or a digit"),
        (".5", 0, "starts with '-' or a digit"),
        ("01", 1, "leading zeros"),
        ("-00", 2, "leading zeros"),
        ("1.", 2, "expected a digit after the decimal point, found end of input"),
        ("1.e3", 2, "expected a digit after the decimal point"),
        ("1e", 2, "expected a digit in the exponent"),
        ("1e+", 3, "expected a digit in the exponent"),
        ("-", 1, "expected a digit after '-', found end of input"),
        ("1e400", 0, "within the range of a double, found 1e400"),
        ("[-1.5e99999]", 1, "within the range of a double"),
        ("tru", 3, "expected 'true', found end of input"),
        ("[nul1]", 4, "expected 'null', found '1'"),
        ("True", 0, "expected a JSON value, found 'T'"),
        ("\"abc", 4, "expected '\"' to close the string that starts at byte 0, found end of input"),
        ("[\"a\\\"]", 6, "to close the string that starts at byte 1"),
        ("\"a\tb\"", 2, "control character 0x09"),
        ("\"a\nb\"", 2, "control character 0x0A"),
        ("\"\\x\"", 2, "after a backslash, found 'x'"),
        ("\"\\u12G4\"", 5, "expected 4 hex digits after \\u, found 'G'"),
        ("\"\\u12\"", 5, "expected 4 hex digits"),
        ("\"\\uDC00\"", 1, "expected a high surrogate"),
        ("\"\\uD800\"", 7, "expected a \\u low surrogate after the high surrogate \\uD800, found '\"'"),
        ("\"\\uD800x\"", 7, "lone surrogates"),
        ("\"\\uD800\\n\"", 7, "lone surrogates"),
        ("\"\\uD800\\u0041\"", 7, "expected a low surrogate (\\uDC00-\\uDFFF)"),
        (#"{"a":1,"b":2,"a":3}"#, 13, #"duplicate key "a""#),
        (#"{"a":{"x":1},"b":{"x":1,"x":2}}"#, 24, #"duplicate key "x""#),
        (#"{"\u00e9":1,"é":2}"#, 12, "duplicate key"),
        ("[1,,2]", 3, "expected a JSON value, found ','"),
        ("[,1]", 1, "expected a JSON value, found ','"),
        ("{,}", 1, "expected an object key"),
        ("]", 0, "expected a JSON value, found ']'"),
        ("[1,\u{0C}2]", 3, "found byte 0x0C"),
    ])
    func errors(text: String, offset: Int, message: String) throws {
        let e = try #require(jsonError(text))
        #expect(e.offset == offset, "\(text.debugDescription): \(e)")
        #expect(e.message.contains(message), "\(text.debugDescription): \(e)")
        #expect(e.description == "\(e.message) at byte \(e.offset)")
    }

    /// Byte-level errors: invalid UTF-8 and a byte order mark.
    @Test(arguments: [
        ([0x22, 0xFF, 0x22] as [UInt8], 1, "invalid byte 0xFF"),
        ([0x22, 0x61, 0x80, 0x22], 2, "continuation byte without a lead byte"),
        ([0x22, 0xC0, 0xAF, 0x22], 1, "invalid byte 0xC0"),          // overlong '/'
        ([0x22, 0xC1, 0xBF, 0x22], 1, "invalid byte 0xC1"),          // overlong
        ([0x22, 0xE0, 0x80, 0xAF, 0x22], 2, "invalid byte 0x80 in the sequence that starts with 0xE0 at byte 1"),  // overlong
        ([0x22, 0xF0, 0x80, 0x80, 0xAF, 0x22], 2, "invalid byte 0x80"),  // overlong
        ([0x22, 0xED, 0xA0, 0x80, 0x22], 2, "invalid byte 0xA0"),    // encoded surrogate U+D800
        ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 2, "invalid byte 0x90"),  // above U+10FFFF
        ([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], 1, "invalid byte 0xF5"),
        ([0x22, 0xE6, 0x97, 0x22], 3, "invalid byte 0x22"),          // cut short by the quote
        ([0x22, 0xE6, 0x97], 3, "cut short by the end of input"),
        ([0x22, 0x5C, 0x6E, 0xFE, 0x22], 3, "invalid byte 0xFE"),    // after an escape (slow path)
        ([0xEF, 0xBB, 0xBF, 0x7B, 0x7D], 0, "byte order mark"),
        ([0x5B, 0xC3, 0xA9, 0x5D], 1, "expected a JSON value, found byte 0xC3"),
        ([0x5B, 0x00, 0x5D], 1, "found byte 0x00"),
    ] as [([UInt8], Int, String)])
    func byteErrors(bytes: [UInt8], offset: Int, message: String) throws {
        let e = try #require(jsonError(bytes))
        #expect(e.offset == offset, "\(bytes): \(e)")
        #expect(e.message.contains(message), "\(bytes): \(e)")
    }

    @Test func validMultiByteUTF8AtTheEdges() throws {
        // The smallest and largest scalar of each sequence length.
        let scalars: [UInt32] = [0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF]
        for s in scalars {
            let text = "\"" + String(Character(Unicode.Scalar(s)!)) + "\""
            #expect(try JSONValue.parse(Array(text.utf8)) == .string(String(Character(Unicode.Scalar(s)!))), "U+\(String(s, radix: 16))")
        }
    }

    @Test func errorValues() {
        let e = JSONParseError(offset: 17, message: "expected ',' or '}' after an object member, found 'x'")
        #expect(e.description == "expected ',' or '}' after an object member, found 'x' at byte 17")
        #expect(jsonError(#"{"a":1,"b":[true x"#) == JSONParseError(
            offset: 17, message: "expected ',' or ']' after an array element, found 'x'"))
        #expect(jsonError(#"{"a":1,"b":[true] x"#) == JSONParseError(
            offset: 18, message: "expected ',' or '}' after an object member, found 'x'"))
    }
}

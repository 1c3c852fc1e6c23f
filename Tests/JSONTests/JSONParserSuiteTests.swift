// JSONTestSuite-style cases (Nicolas Seriot's y_/n_/i_ corpus, rewritten inline from its file names
// and contents): y_ must parse, n_ must be rejected, and the implementation-defined i_ cases are
// pinned to the choice lorad makes (see JSONParser.swift's header).

import Testing
@testable import JSON

/// Builds bytes from text in which `\xNN` stands for one raw byte (so invalid UTF-8 can be written).
func rawBytes(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    let u = Array(text.utf8)
    var i = 0
    while i < u.count {
        if u[i] == UInt8(ascii: "\\"), i + 3 < u.count, u[i + 1] == UInt8(ascii: "x"),
           let b = UInt8(String(decoding: u[i + 2...i + 3], as: UTF8.self), radix: 16) {
            out.append(b)
            i += 4
        } else {
            out.append(u[i])
            i += 1
        }
    }
    return out
}

@Suite struct JSONParserSuiteTests {
    static let accepted: [String] = [
        // y_array_*
        "[[]   ]", #"[""]"#, "[]", #"["a"]"#, "[false]", #"[null, 1, "1", {}]"#, "[null]", "[1\n]", " [1]",
        "[1,null,null,null,2]", "[2] ",
        // y_number_*
        "[123e65]", "[0e+1]", "[0e1]", "[ 4]",
        "[-0.000000000000000000000000000000000000000000000000000000000000000000000000000001]\n", "[20e1]", "[-0]",
        "[-123]", "[-1]", "[1E22]", "[1E-2]", "[1E+2]", "[123e45]", "[123.456e78]", "[1e-2]", "[1e+2]", "[123]",
        "[123.456789]", "123", "[-0.0]",
        // y_object_*
        #"{"asd":"sdf", "dfg":"fgh"}"#, #"{"asd":"sdf"}"#, "{}", #"{"":0}"#, #"{"foo\u0000bar": 42}"#,
        #"{ "min": -1.0e+28, "max": 1.0e+28 }"#, #"{"x":[{"id": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}], "id": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        #"{"a":[]}"#, #"{"title":"\u041f\u043e\u043b\u0442\u043e\u0440\u0430 \u0417\u0435\u043c\u043b\u0435\u043a\u043e\u043f\u0430" }"#,
        "{\n\"a\": \"b\"\n}",
        // y_string_*
        #"["\u0060\u012a\u12AB"]"#, #"["\uD801\udc37"]"#, #"["\ud83d\ude39\ud83d\udc8d"]"#, #"["\"\\\/\b\f\n\r\t"]"#,
        #"["\\u0000"]"#, #"["\""]"#, #"["a/*b*/c/*d//e"]"#, #"["\\a"]"#, #"["\\n"]"#, #"["\u0012"]"#, #"["\uFFFF"]"#,
        #"["asd"]"#, #"[ "asd"]"#, #"["\uDBFF\uDFFF"]"#, #"["new\u00A0line"]"#, "[\"\u{10FFFF}\"]", "[\"\u{FFFF}\"]",
        #"["\u0000"]"#, #"["\u002c"]"#, "[\"π\"]", "[\"\u{1BFFF}\"]", #"["asd "]"#, #"" ""#,
        #"["\uD834\uDd1e"]"#, #"["\u0821"]"#, #"["\u0123"]"#, "[\"\u{2028}\"]", "[\"\u{2029}\"]",
        #"["\u0061\u30af\u30EA\u30b9"]"#, #"["new\u000Aline"]"#, "[\"\u{7F}\"]", #"["\uA66D"]"#, #"["\u005C"]"#,
        "[\"⍂㈴⍂\"]", #"["\uDBFF\uDFFE"]"#, #"["\uFDD0"]"#, "[\"€𝄞\"]", "[\"a\u{7F}a\"]",
        // y_structure_*
        "false", "42", "-0.1", "null", #""asd""#, "true", #""""#, "[\"a\"]\n", "[true]", " [] ",
        // i_ cases lorad accepts
        "[123e-10000000]", "[-123123123123123123123123123123]", "[100000000000000000000]",
        "[-237462374673276894279832749832423479823246327846]",
    ]

    static let rejected: [String] = [
        // n_array_*
        "[1 true]", #"[a\xe5]"#, #"["": 1]"#, #"[""],"#, "[,1]", "[1,,2]", #"["x",,]"#, #"["x"]]"#, #"["",]"#,
        #"["x""#, "[x", "[3[4]]", #"[\xff]"#, "[1:2]", "[,]", "[-]", #"[   , ""]"#, "[\"a\",\n4\n,1,", "[1,]",
        "[1,,]", "[\"\u{0B}a\"\\f]", "[*]", #"[""#, "[1,", "[1,\n1\n,1", "[{}", "[fals]", "[nul]", "[tru]",
        // n_number_*
        "[++1234]", "[+1]", "[+Inf]", "[-01]", "[-1.0.]", "[-2.]", "[-NaN]", "[.-1]", "[.2e-3]", "[0.1.2]",
        "[0.3e+]", "[0.3e]", "[0.e1]", "[0E+]", "[0E]", "[0e+]", "[0e]", "[1.0e+]", "[1.0e-]", "[1.0e]",
        "[1 000.0]", "[1eE2]", "[2.e+3]", "[2.e-3]", "[2.e3]", "[9.e+]", "[Inf]", "[NaN]", "[\u{FF11}]", "[-foo]",
        "[- 1]", "[-012]", "[-.123]", "[-1x]", "[1ea]", "[1.]", "[.123]", "[012]", "[0x1]", "[0x42]",
        "[Infinity]", "[-Infinity]", "[1e+-2]", "[0.1e--2]", "[1.2a-3]", "[1.8011670033376514H-308]", "[1+2]",
        "[0_1]", "[1_000]", "[\\u0661]", #"[1\xe5]"#, "[1e\u{FF11}]", "[0.\u{FF11}]",
        // n_object_*
        #"{"x", null}"#, #"{"x"::"b"}"#, "{🇨🇭}", #"{[: "x"}"#, #"{"a" b}"#, "{key: 'value'}", #"{"a":"a" 123}"#,
        #"{"a" "b"}"#, #"{:"b"}"#, "{1:1}", "{9999E9999:1}", "{null:null,null:null}", #"{"id":0,,,,,}"#,
        "{'a':0}", #"{"id":0,}"#, #"{"a":"b"}/**/"#, #"{"a":"b"}/**//"#, #"{"a":"b"}//"#, #"{"a":"b"}/"#,
        #"{"a":"b",,"c":"d"}"#, #"{a: "b"}"#, #"{"a":"a"#, #"{ "foo" : "bar", "a" }"#, #"{"a":"b"}#"#,
        #"{"a":/*comment*/"b"}"#, #"{"a": true} "x""#, #"{"a""#, #"{"a":"#, #"{"a":"b""#, #"{"a":"b","#,
        "{\"\u{FEFF}\":0,}", #"{"\u00e9":0,"\u00e9":1}"#,
        // n_string_*
        #"["\uD800\"]"#, #"["\uD800\u"]"#, #"["\uD800\u1"]"#, #"["\uD800\u1x"]"#, "[é]", "[\"\u{0}\"]",
        #"["\\\"]"#, #"["\x00"]"#, #"["\a"]"#, #"["\uqqqq"]"#, #"["\u00A"]"#, #"[\u0020"asd"]"#, #"[\n]"#, #"""#,
        "['single quote']", "abc", #"["\"#, #""\uD834\uDd""#, "[\"a\u{0}a\"]", "[\"\t\"]", "[\"new\nline\"]",
        #""\UA66D""#, #"""""#, "[\"\\u00e9\"", #"["\x"]"#, #"["\'"]"#, #"["\ud83d\ude"]"#,
        #"["\u{41}"]"#, #"["\🌀"]"#, "[\"\\\u{1F300}\"]",
        // n_structure_*
        "", " ", "<.>", "[<null>]", "[1]x", "[1]]", #"["asd]"#, "a\u{E5}", "[True]", "1]", #"{"x": true,"#,
        "[][]", "]", "{}}", #"{"":"#, #"["a" 1]"#, "[{", "{[", "*", #"{"a":"b"}x"#, "[\u{2060}]", "[\u{C}]",
        "[\u{0B}]", "nul", "tru", "fals", "2 @", "[\u{0}]", "[1]\u{0}", "\u{0}", "\u{FEFF}{}", "\u{FEFF}",
        "[\u{A0}1]", "[1\u{3000}]", "{\"a\":1}}", "[[]", "[]]", "{\"a\":1", "[\"a\",", "[\"a\"", "1 1", "null null",
        "truefalse", "[true false]", "'a'", "[1,2 3]", "{\"a\":1 \"b\":2}", "{\"a\"=1}", "{\"a\";1}", "[1;2]",
        "<!-- -->", "[1]#", "# comment\n[1]", "(1)", "[\"a\"\u{0}]", "{\"a\":[}", "{\"a\":{]", "[{]}",
        // i_ cases lorad rejects: lone surrogates, invalid UTF-8, overflowing numbers, BOM
        #"["\uDADA"]"#, #"["\uD888\u1234"]"#, #"["\uDd1ea"]"#, #"["\uD800\uD800\n"]"#, #"["\ud800"]"#,
        #"["\ud800abc"]"#, #"["\uDFAA"]"#, #"["\uD800\uD800"]"#,
        #"["\xe9"]"#, #"["\xed\xa0\x80"]"#, #"["\xc0\xaf"]"#, #"["\xf4\xbf\xbf\xbf"]"#, #"["\xe6\x97"]"#,
        #"["\x81"]"#, #"["\xf8\x80\x80\x80\x80"]"#, #"["\xfc\x80\x80\x80\x80\x80"]"#, #"["\xe0\xff"]"#,
        #"["\xed\xbf\xbf"]"#, #"["\xc2"]"#, #"["\xff\xfe"]"#, #"\xff\xfe[]"#, #"\xfe\xff[]"#,
        "[1.5e+9999]", "[-1e+9999]", "[0.4e006699999999999999999999999999999999999999999999999999999999999999999006]", "[1e1000]", "[-123123e100000]", "[123123e100000]",
        #"\xef\xbb\xbf{}"#, #"\xef\xbb\xbf"#,
    ]

    @Test func acceptedCases() {
        for text in Self.accepted {
            do {
                let v = try JSONValue.parse(Array(text.utf8))
                // Whatever parses must also survive a round trip.
                #expect(try JSONValue.parse(v.serialized()) == v, "\(text.debugDescription)")
            } catch {
                Issue.record("\(text.debugDescription) should parse: \(error)")
            }
        }
    }

    @Test func rejectedCases() {
        for text in Self.rejected {
            let bytes = rawBytes(text)
            if let e = jsonError(bytes) {
                #expect(e.offset >= 0 && e.offset <= bytes.count, "\(text.debugDescription): \(e)")
                #expect(!e.message.isEmpty)
            } else {
                Issue.record("\(text.debugDescription) should be rejected")
            }
        }
    }

    /// Duplicate keys are legal JSON but ambiguous; lorad rejects them (i_/y_object_duplicated_key).
    @Test func duplicateKeysAreRejected() throws {
        #expect(jsonError(#"{"a":"b","a":"c"}"#)?.message.contains(#"duplicate key "a""#) == true)
        #expect(jsonError(#"{"a":"b","a":"b"}"#) != nil)
        // Keys are compared after unescaping.
        #expect(jsonError(#"{"a":1,"\u0061":2}"#)?.offset == 7)
        // Large objects switch to a hash set; the check still works.
        let many = (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        #expect(try JSONValue.parse("{" + many + "}").objectMembers?.count == 40)
        #expect(jsonError("{" + many + ",\"k3\":0}")?.message.contains(#""k3""#) == true)
        // The same key in different objects is fine.
        #expect(try JSONValue.parse(#"[{"a":1},{"a":2},{"b":{"a":3}}]"#) != .null)
    }

    /// i_structure_500_nested_arrays: within the limit when the caller raises it.
    @Test func deepNestingWithinARaisedLimit() throws {
        let text = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(jsonError(text) != nil)
        var v = try JSONValue.parse(text, maxDepth: 500)
        var depth = 1
        while case .array(let xs) = v, let first = xs.first {
            v = first
            depth += 1
        }
        #expect(depth == 500)
    }
}

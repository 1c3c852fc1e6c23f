// The one JSON string escaper (JSONValue.writeString / quoted): RFC 8259's required escapes with
// Python json's spelling (\b \f \n \r \t by name, other controls as lowercase \u00xx), and with
// escapingNonASCII what Python's ensure_ascii=True writes (expected strings from CPython 3.11's
// json.dumps). Also the duplicate-key detail the parser attaches to its error.

import Testing
@testable import JSON

@Suite struct JSONStringTests {
    @Test func requiredEscapesOnly() {
        #expect(JSONValue.quoted("plain") == #""plain""#)
        #expect(JSONValue.quoted("a\"b\\c/d") == #""a\"b\\c/d""#)
        #expect(JSONValue.quoted("\n\r\t\u{08}\u{0C}") == #""\n\r\t\b\f""#)
        #expect(JSONValue.quoted("\u{0}\u{1F}") == #""\u0000\u001f""#)
        // DEL, U+2028 and non-ASCII text are written as they are.
        #expect(JSONValue.quoted("\u{7F}\u{2028}é😀") == "\"\u{7F}\u{2028}é😀\"")
        // serialized() writes strings and keys through the same function.
        #expect(JSONValue.object([("k\"", .string("v\n"))]).serialized() == #"{"k\"":"v\n"}"#)
    }

    /// json.dumps(s, ensure_ascii=True) for the same strings.
    @Test func escapingNonASCIILikePythonsEnsureASCII() {
        #expect(JSONValue.quoted("a\"\n", escapingNonASCII: true) == #""a\"\n""#)
        #expect(JSONValue.quoted("\u{7F}é\u{2028}", escapingNonASCII: true) == #""\u007f\u00e9\u2028""#)
        #expect(JSONValue.quoted("😀", escapingNonASCII: true) == #""\ud83d\ude00""#)
        #expect(JSONValue.quoted(" ~", escapingNonASCII: true) == #"" ~""#)
    }

    @Test func quotedTextParsesBack() throws {
        for s in ["", "a\"\\\u{0}\u{1F}\u{7F}", "é😀\u{2028}", "\r\n\t\u{08}\u{0C}/"] {
            for ascii in [false, true] {
                #expect(try JSONValue.parse(JSONValue.quoted(s, escapingNonASCII: ascii)) == .string(s))
            }
        }
    }

    /// A format with a message of its own for a repeated key (safetensors) can tell it apart, and
    /// tell the top-level object from a nested one.
    @Test func duplicateKeyDetail() {
        #expect(jsonError(#"{"a":1,"a":2}"#)?.duplicateKey == JSONParseError.DuplicateKey(key: "a", depth: 1))
        #expect(jsonError(#"{"x":[{"b":1,"\u0062":2}]}"#)?.duplicateKey == JSONParseError.DuplicateKey(key: "b", depth: 3))
        #expect(jsonError(#"{"a":1,}"#)?.duplicateKey == nil)
    }
}

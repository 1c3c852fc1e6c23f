// Escaping of pieces for `lorad tokenize --pieces`: one line per piece, reversible, invalid bytes as \xHH.
import Testing
@testable import Tokenizer

@Suite("piece display")
struct PieceDisplayTests {
    @Test("control characters, backslashes and invalid UTF-8 are escaped; text is not")
    func escaping() {
        let cases: [([UInt8], String)] = [
            (Array("Hello".utf8), "Hello"),
            (Array(" \n\t\r\\".utf8), " \\n\\t\\r\\\\"),
            ([0x00, 0x1B, 0x7F], "\\x00\\x1B\\x7F"),
            (Array("é你👍".utf8), "é你👍"),
            ([0xF0, 0x9F], "\\xF0\\x9F"),                 // half an emoji
            ([0x41, 0xE2, 0x82, 0xAC, 0x82], "A€\\x82"),  // a stray continuation byte
            ([0xED, 0xA0, 0x80], "\\xED\\xA0\\x80"),        // a surrogate is not valid UTF-8
            ([0xC0, 0xAF], "\\xC0\\xAF"),                  // overlong
        ]
        for (bytes, expected) in cases {
            #expect(Tokenizer.escapedForDisplay(bytes) == expected, "\(bytes)")
        }
    }

    @Test("real pieces: a space-prefixed word, newline, control token, partial emoji")
    func realPieces() throws {
        let t = try RealModel.tokenizer()
        #expect(t.displayPiece(905) == " world")
        #expect(t.displayPiece(198) == "\\n")
        #expect(t.displayPiece(1) == "<|im_start|>")
        #expect(t.displayPiece(187) == "\\xF0")
    }
}

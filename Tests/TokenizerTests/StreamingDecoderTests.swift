// The streaming detokenizer: characters split across tokens are held back until complete, and what it
// emits, concatenated, equals decoding all ids at once (including invalid UTF-8, as U+FFFD).
import Kernels
import Testing
@testable import Tokenizer

@Suite("streaming decoder")
struct StreamingDecoderTests {
    static let multiByteTexts = [
        "👍🏽 ok", "👨‍👩‍👧‍👦 family", "🏳️‍🌈", "你好，世界！", "日本語のテキストです。", "한국어 텍스트",
        "Café déjà vu", "مرحبا بالعالم", "I ❤️ NY 🗽", "🇫🇷🇯🇵", "😀😀😀 end", "\u{10fffd}\u{f0000}",
    ]

    @Test("multi-byte characters split across tokens: nothing partial is emitted")
    func splitCharacters() throws {
        let t = try RealModel.tokenizer()
        var sawSplit = false
        for text in Self.multiByteTexts {
            let ids = t.encode(text)
            var decoder = t.streamingDecoder()
            var out = ""
            for id in ids {
                let before = decoder.pendingByteCount
                let piece = t.piece(id)
                let emitted = decoder.push(id)
                // A token that is not whole UTF-8 on its own proves the text tests the hold-back.
                if String(validating: piece, as: UTF8.self) == nil { sawSplit = true }
                #expect(!emitted.unicodeScalars.contains("\u{FFFD}"), "\(text): partial character emitted")
                if decoder.pendingByteCount > 0 { #expect(emitted.utf8.count < before + piece.count) }
                out += emitted
            }
            #expect(decoder.pendingByteCount == 0, "\(text)")
            out += decoder.flush()
            #expect(Array(out.utf8) == Array(text.utf8), "\(text)")
            #expect(Array(out.utf8) == Array(t.decode(ids).utf8), "\(text)")
        }
        #expect(sawSplit)
    }

    @Test("a three-byte character arriving one byte token at a time")
    func byteByByte() throws {
        let t = try tinyTokenizer()  // ids 0-255 are the bytes
        var decoder = t.streamingDecoder()
        #expect(decoder.push(0xE2) == "")
        #expect(decoder.push(0x82) == "")
        #expect(decoder.pendingByteCount == 2)
        #expect(decoder.push(0xAC) == "€")
        #expect(decoder.push(0x41) == "A")
        // An unfinished character at the end of the stream becomes U+FFFD on flush.
        #expect(decoder.push(0xF0) == "" && decoder.push(0x9F) == "")
        #expect(decoder.flush() == "\u{FFFD}")
        #expect(decoder.flush() == "")
    }

    @Test("concatenated output equals whole decoding for random ids, invalid bytes included")
    func randomSequences() throws {
        let t = try RealModel.tokenizer()
        var rng = SplitMix64(seed: 3)
        // Bias towards single-byte tokens (ids 17-251 are the 235 bytes that have one, many of them partial UTF-8).
        for _ in 0..<500 {
            let ids = (0..<(1 + Int(rng.next() % 12))).map { _ -> Int32 in
                rng.next() % 2 == 0 ? Int32(17 + rng.next() % 235) : Int32(rng.next() % 49152)
            }
            for renderSpecial in [false, true] {
                var decoder = t.streamingDecoder(renderSpecial: renderSpecial)
                var out = ids.map { decoder.push($0) }.joined()
                out += decoder.flush()
                #expect(Array(out.utf8) == Array(t.decode(ids, renderSpecial: renderSpecial).utf8), "\(ids)")
            }
        }
    }

    @Test("control tokens render as empty unless asked")
    func controlTokens() throws {
        let t = try RealModel.tokenizer()
        let ids = t.encode("<|im_start|>user\nHi<|im_end|>")
        var plain = t.streamingDecoder()
        #expect(ids.map { plain.push($0) }.joined() == "user\nHi")
        var rendered = t.streamingDecoder(renderSpecial: true)
        #expect(ids.map { rendered.push($0) }.joined() == "<|im_start|>user\nHi<|im_end|>")
        #expect(t.decode(ids) == "user\nHi")
    }

    @Test("incomplete-suffix detection follows the well-formed UTF-8 table")
    func incompleteSuffix() {
        let cases: [([UInt8], Int)] = [
            ([], 0), ([0x41], 0), ([0xC2], 1), ([0xC0], 0), ([0xC1], 0), ([0xE2, 0x82], 2), ([0xE2, 0x82, 0xAC], 0),
            ([0xE0, 0xA0], 2), ([0xE0, 0x80], 0), ([0xED, 0x9F], 2), ([0xED, 0xA0], 0), ([0xF0, 0x9F, 0x98], 3),
            ([0xF0, 0x8F], 0), ([0xF4, 0x8F], 2), ([0xF4, 0x90], 0), ([0xF5], 0), ([0xFF], 0), ([0x80], 0),
            ([0x80, 0x80, 0x80], 0), ([0x41, 0xF0], 1), ([0xF0, 0x9F, 0x98, 0x80], 0),
        ]
        for (bytes, expected) in cases {
            #expect(StreamingDecoder.incompleteSuffixLength(bytes) == expected, "\(bytes)")
        }
    }
}

// The SmolLM2 tokenizer against llama.cpp (llama-cpp-python, vocab only), through the fixture written by
// scripts/goldens/tokenizer.py. Every comparison is exact: token ids and bytes have no tolerance.
import Foundation
import Testing
@testable import Tokenizer

@Suite("llama.cpp goldens (SmolLM2)")
struct GoldenTokenizerTests {
    @Test("the fixture covers the required kinds of text")
    func fixtureCoverage() throws {
        let fixture = try GoldenFixture.load()
        #expect(fixture.cases.count >= 60)
        #expect(fixture.cases.contains { $0.text.isEmpty })
        // Strings where special parsing changes the ids, and strings llama.cpp does not round-trip.
        #expect(fixture.cases.filter { $0.ids != $0.ids_no_special }.count >= 5)
        #expect(fixture.cases.filter { !$0.roundtrip_no_special }.count >= 5)
        #expect(fixture.long.ids.count >= 4000)
    }

    @Test("ids equal llama.cpp's, special parsing on and off")
    func ids() throws {
        let tokenizer = try RealModel.tokenizer()
        for c in try GoldenFixture.load().cases {
            #expect(tokenizer.encode(c.text, parseSpecial: true) == c.ids, "\(c.name) (special on): \(c.text.debugDescription)")
            #expect(tokenizer.encode(c.text, parseSpecial: false) == c.ids_no_special,
                    "\(c.name) (special off): \(c.text.debugDescription)")
        }
    }

    @Test("decoding gives llama.cpp's bytes, control tokens rendered or not")
    func decodedBytes() throws {
        let tokenizer = try RealModel.tokenizer()
        for c in try GoldenFixture.load().cases {
            #expect(tokenizer.decodeBytes(c.ids, renderSpecial: true) == bytes(hex: c.decoded_render_hex), "\(c.name)")
            #expect(tokenizer.decodeBytes(c.ids, renderSpecial: false) == bytes(hex: c.decoded_plain_hex), "\(c.name)")
            #expect(tokenizer.decodeBytes(c.ids_no_special, renderSpecial: false) == bytes(hex: c.decoded_no_special_hex),
                    "\(c.name)")
        }
    }

    @Test("decode(encode(s)) == s wherever llama.cpp round-trips")
    func roundTrip() throws {
        let tokenizer = try RealModel.tokenizer()
        var checked = 0
        for c in try GoldenFixture.load().cases {
            // Compare UTF-8 bytes: String == would accept canonically equivalent text (é vs e + U+0301).
            if c.roundtrip {
                #expect(Array(tokenizer.decode(tokenizer.encode(c.text), renderSpecial: true).utf8) == Array(c.text.utf8),
                        "\(c.name)")
                checked += 1
            }
            if c.roundtrip_no_special {
                #expect(Array(tokenizer.decode(tokenizer.encode(c.text, parseSpecial: false)).utf8) == Array(c.text.utf8),
                        "\(c.name)")
            }
        }
        #expect(checked >= 150)
    }

    @Test("the ~4000-token prompt (timing printed, not asserted)")
    func longPrompt() throws {
        let tokenizer = try RealModel.tokenizer()
        let fixture = try GoldenFixture.load()
        let clock = ContinuousClock()
        var ids: [Int32] = []
        var best = Duration.seconds(1000)
        for _ in 0..<5 {
            let elapsed = clock.measure { ids = tokenizer.encode(fixture.long.text) }
            best = min(best, elapsed)
        }
        #expect(ids == fixture.long.ids)
        #expect(Array(tokenizer.decode(ids).utf8) == Array(fixture.long.text.utf8))
        let ms = Double(best.components.attoseconds) / 1e15 + Double(best.components.seconds) * 1e3
        print("tokenizer: encoded \(fixture.long.text.utf8.count) bytes into \(ids.count) tokens in "
              + String(format: "%.2f", ms) + " ms (best of 5; debug builds are several times slower)")
    }

    @Test("vocabulary size, BOS/EOS, end-of-generation set and control tokens equal llama.cpp's")
    func specialTokens() throws {
        let tokenizer = try RealModel.tokenizer()
        let fixture = try GoldenFixture.load()
        #expect(tokenizer.vocabularySize == fixture.vocab_size)
        #expect(tokenizer.bos == fixture.bos)
        #expect(tokenizer.eos == fixture.eos)
        #expect(tokenizer.eogTokens == Set(fixture.eog))
        #expect(tokenizer.eogTokens == [0, 2, 4])  // FORMATS.md §6.3, from llama.cpp's load log
        let control = (0..<Int32(tokenizer.vocabularySize)).filter(tokenizer.isControl)
        #expect(control == fixture.control)
        // SmolLM2 adds neither BOS nor EOS by default; asking for them adds the model's ids.
        #expect(tokenizer.encode("Hi") == [26843])
        #expect(tokenizer.encode("Hi", addBOS: true, addEOS: true) == [fixture.bos, 26843, fixture.eos])
    }

    @Test("every token's piece equals llama.cpp's (hashed), control tokens rendered or not")
    func allPieces() throws {
        let tokenizer = try RealModel.tokenizer()
        let fixture = try GoldenFixture.load()
        let ids = 0..<Int32(tokenizer.vocabularySize)
        #expect(fnv1a64(lengthPrefixed: ids.map { tokenizer.piece($0, renderSpecial: true) }) == fixture.pieces_render_fnv1a64)
        #expect(fnv1a64(lengthPrefixed: ids.map { tokenizer.piece($0, renderSpecial: false) }) == fixture.pieces_plain_fnv1a64)
    }

    @Test("FORMATS.md §6.2 examples and the bytes SmolLM2 has no token for")
    func documentedExamples() throws {
        let tokenizer = try RealModel.tokenizer()
        #expect(tokenizer.encode("Hello world! 123") == [19556, 905, 17, 216, 33, 34, 35])
        #expect(tokenizer.encode("  multiple   spaces") == [216, 2701, 256, 5600])
        #expect(tokenizer.encode("Café déjà vu.") == [51, 1939, 2756, 32564, 90, 16739, 386, 101, 30])
        // Bytes whose single character is no token are dropped; FORMATS.md lists 241-255, but 243 and 244
        // have tokens (188, 189), so the 21 are these:
        let missing: [UInt8] = [4, 6, 19, 20, 22, 29, 192, 193, 241, 242] + Array(245...255)
        for byte in UInt8(0)...255 {
            let token = tokenizer.vocabulary.idForText[Array(ByteEncoding.stringForByte[Int(byte)].utf8)]
            #expect((token == nil) == missing.contains(byte), "byte \(byte)")
        }
        #expect(tokenizer.encode("\u{04}").isEmpty)
    }
}

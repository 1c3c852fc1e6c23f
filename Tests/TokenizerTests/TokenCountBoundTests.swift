// The token-count lower bound (TokenCountBound.swift) against real encodes: it must never exceed the
// count (the daemon refuses on it), and on a long word it must stay within a stated factor of it (or it
// would let huge prompts through to the tokenizer).

import Kernels
import Testing
@testable import Tokenizer

@Suite("token-count lower bound")
struct TokenCountBoundTests {
    /// Characters of every kind the tokenizer treats differently: letters, digits, whitespace,
    /// punctuation, contractions, special-token text, bytes without a token, multi-byte characters.
    static let alphabet: [String] = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789").map(String.init)
        + [" ", " ", " ", "  ", "\n", "\t", "\r\n", "'s", "'ll", "!", ".", ",", "<", "|", ">", "-", "=", "_", "#"]
        + ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_", "<repo_name>", "<jupyter_code>"]
        + ["\u{04}", "\u{06}", "\u{13}", "\u{1D}", "\u{7F}", "\u{00}", "\u{50000}", "\u{90000}"]
        + ["é", "ß", "ñ", "\u{0301}", "日", "本", "한", "ع", "👍", "🏽", "\u{200D}", "\u{A0}", "\u{3000}", "\u{10FFFD}"]

    static func random(_ rng: inout SplitMix64, pieces: Int) -> String {
        (0..<pieces).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
    }

    @Test("never above the real count: random strings, both modes")
    func randomStrings() throws {
        let t = try RealModel.tokenizer()
        var rng = SplitMix64(seed: 13)
        for n in 0..<3000 {
            let text = Self.random(&rng, pieces: Int(rng.next() % UInt64(1 + n % 300)))
            for special in [true, false] {
                let count = t.encode(text, parseSpecial: special, addBOS: false, addEOS: false).count
                #expect(t.minimumTokenCount(text, parseSpecial: special) <= count, "\(text.debugDescription) special \(special)")
            }
        }
    }

    @Test("never above the real count: long and pathological texts")
    func pathological() throws {
        let t = try RealModel.tokenizer()
        var rng = SplitMix64(seed: 14)
        func randomText(_ alphabet: String, _ n: Int) -> String {
            let a = Array(alphabet)
            return String((0..<n).map { _ in a[Int(rng.next() % UInt64(a.count))] })
        }
        let texts: [(String, String)] = [
            ("word", randomText("abcdefghijklmnopqrstuvwxyz", 100_000)),
            ("a-run", String(repeating: "a", count: 100_000)),
            ("spaces", String(repeating: " ", count: 100_000)),
            ("newlines", String(repeating: "\n", count: 50_000)),
            ("digits", randomText("0123456789", 100_000)),
            ("punctuation", randomText("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", 100_000)),
            ("dashes", String(repeating: "-", count: 100_000)),
            ("specials", String(repeating: "<|im_start|><|endoftext|>", count: 5_000)),
            ("dropped-bytes", String(repeating: "\u{04}\u{06}\u{13}", count: 10_000)),
            ("emoji", String(repeating: "👍🏽", count: 20_000)),
            ("cjk", randomText("日本語漢字한국어", 30_000)),
            ("mixed", Self.random(&rng, pieces: 50_000)),
            ("empty", ""),
        ]
        for (name, text) in texts {
            for special in [true, false] {
                let count = t.encode(text, parseSpecial: special, addBOS: false, addEOS: false).count
                #expect(t.minimumTokenCount(text, parseSpecial: special) <= count, "\(name) special \(special)")
            }
        }
    }

    @Test("within a stated factor of the real count on a long single word")
    func tightOnLongWord() throws {
        let t = try RealModel.tokenizer()
        var rng = SplitMix64(seed: 15)
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let word = String((0..<(64 << 10)).map { _ in letters[Int(rng.next() % 26)] })
        let count = t.encode(word).count
        let bound = t.minimumTokenCount(word, parseSpecial: true)
        // A random lowercase word averages about 1.7 bytes per token, and the longest SmolLM2 tokens that
        // hold a lowercase letter are about 20 bytes long, so count / bound is about 12. The limit 16
        // leaves room for another draw of letters and still fails if the weights fall back to the single
        // longest token (81 bytes, a factor of about 48).
        let factor = Double(count) / Double(bound)
        print("token-count bound: \(bound) vs \(count) tokens for a 64 KiB word (factor "
              + "\((factor * 100).rounded() / 100)); maxTokenBytes \(t.maxTokenBytes(parseSpecial: true)) "
              + "(special) / \(t.maxTokenBytes(parseSpecial: false)) (plain)")
        #expect(bound > 0)
        #expect(factor <= 16)
    }

    @Test("bytes without a token do not count; the longest token sets the divisor")
    func tinyVocabulary() throws {
        // Bytes 0x04 and 0x06 have no token; "abcd" is the longest token (4 bytes); "<|x|>" a control token.
        let t = try tinyTokenizer(extra: ["ab", "abc", "abcd"], merges: ["a b", "ab c", "abc d"],
                                  controls: ["<|x|>"], dropBytes: [0x04, 0x06])
        #expect(t.maxTokenBytes(parseSpecial: false) == 5)  // BPE could spell "<|x|>" too
        #expect(t.maxTokenBytes(parseSpecial: true) == 5)
        #expect(t.minimumTokenCount("\u{04}\u{06}\u{04}", parseSpecial: true) == 0)
        #expect(t.encode("\u{04}\u{06}\u{04}").isEmpty)
        // 12 bytes of "abcd" encode to 3 tokens; the bound is ceil(12 / 5) = 3: exact here.
        #expect(t.encode("abcdabcdabcd").count == 3)
        #expect(t.minimumTokenCount("abcdabcdabcd", parseSpecial: true) == 3)
        #expect(t.minimumTokenCount("abcd\u{04}abcd\u{06}abcd", parseSpecial: true) == 3)
        // Per byte: "a" is in tokens of at most 4 bytes, "<" in one of 5, so 10 bytes of "<|x|>" weigh 2.
        #expect(t.encode("<|x|><|x|>").count == 2)
        #expect(t.minimumTokenCount("<|x|><|x|>", parseSpecial: true) == 2)
        #expect(t.minimumTokenCount("aaaaaaaa", parseSpecial: true) == 2)
    }
}

// `lorad bench --only tokenizer`: encode throughput of the tokenizer, in MB/s (10^6 bytes of UTF-8
// input per second, special tokens parsed), on ordinary prose and on the pathological inputs a
// hostile client can send (one huge word, long runs), at sizes from 64 KiB to 8 MiB. Cost must grow
// linearly with size, so each kind also reports `_linearity_ratio`: MB/s at the largest size over
// MB/s at the smallest (1 is linear; a quadratic piece shows as a ratio far below 1).
//
// The texts are built from a seeded generator, so every run and every machine encodes the same bytes:
// - prose: English-like sentences of common words, punctuation, numbers and newlines;
// - word: one word of random lowercase letters (one pre-tokenizer piece, so BPE runs on all of it);
// - char: one letter repeated ("aaaa…": one piece whose merges all have the same rank);
// - spaces: one run of spaces (one whitespace piece);
// - digits: random digits (every digit is a piece of its own);
// - punct: random ASCII punctuation, '<' and '|' included (one piece, and the special-token splitter
//   finds a candidate start at many positions);
// - mixed: random runs of every class (letters, digits, spaces, newlines, punctuation, accented and
//   CJK letters, emoji, special-token text such as "<|im_start|>").

import Dispatch
import Kernels
import Llama
import Tokenizer

public struct TokenizerBenchmark {
    public static let kinds = ["prose", "word", "char", "spaces", "digits", "punct", "mixed"]
    public static let sizes = [64 << 10, 256 << 10, 1 << 20, 2 << 20, 8 << 20]

    public let tokenizer: Tokenizer
    public var repetitions: Int

    public init(tokenizer: Tokenizer, repetitions: Int = 1) {
        self.tokenizer = tokenizer
        self.repetitions = max(1, repetitions)
    }

    /// (metric name, value) for every kind and size, then each kind's linearity ratio. Names:
    /// `tokenizer_<kind>_<size>` (MB/s; size as 64K, 1M, ...) and `tokenizer_<kind>_linearity_ratio`.
    public func run(progress: (String) -> Void = { _ in }) -> [(String, Double)] {
        var out: [(String, Double)] = []
        for kind in Self.kinds {
            var rates: [Double] = []
            for size in Self.sizes {
                let rate = throughput(Self.text(kind: kind, bytes: size))
                rates.append(rate)
                let key = "tokenizer_\(kind)_\(Self.sizeName(size))"
                out.append((key, rate))
                progress(key)
            }
            out.append(("tokenizer_\(kind)_linearity_ratio", rates.last! / rates.first!))
        }
        return out
    }

    /// MB/s of one encode of `text`: the median over `repetitions` runs.
    public func throughput(_ text: String) -> Double {
        var rates: [Double] = []
        for _ in 0..<repetitions {
            let t0 = DispatchTime.now()
            let ids = tokenizer.encode(text, parseSpecial: true)
            let s = seconds(since: t0)
            precondition(!ids.isEmpty || text.isEmpty)  // keeps the encode from being optimized away
            rates.append(Double(text.utf8.count) / s / 1e6)
        }
        return middle(rates)
    }

    static func sizeName(_ bytes: Int) -> String {
        bytes >= 1 << 20 ? "\(bytes >> 20)M" : "\(bytes >> 10)K"
    }

    /// `bytes` bytes of UTF-8 (cut at a character boundary at or below that size) of the given kind.
    public static func text(kind: String, bytes: Int) -> String {
        var rng = SplitMix64(seed: 0x70C0 &+ UInt64(kind.utf8.reduce(0) { $0 &* 31 &+ Int($1) } & 0xFFFF))
        var out: [UInt8] = []
        out.reserveCapacity(bytes + 64)
        func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }
        let letters = Array("abcdefghijklmnopqrstuvwxyz".utf8)
        let punctuation = Array("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".utf8)
        switch kind {
        case "prose":
            let words = ["the", "of", "and", "to", "in", "is", "that", "it", "was", "for", "on", "are", "with",
                         "as", "they", "be", "at", "one", "have", "this", "from", "by", "hot", "word", "but",
                         "what", "some", "can", "out", "other", "were", "all", "there", "when", "use", "your",
                         "how", "said", "each", "which", "their", "time", "will", "way", "about", "many",
                         "then", "them", "would", "write", "like", "these", "her", "long", "make", "thing",
                         "see", "him", "two", "has", "look", "more", "day", "could", "come", "did", "number",
                         "sound", "most", "people", "over", "know", "water", "than", "call", "first", "who",
                         "tokenizer", "model", "adapter", "request", "server", "don't", "it's", "we'll"]
            while out.count < bytes {
                let n = 6 + Int(rng.next() % 14)
                for w in 0..<n {
                    var word = Array(pick(words).utf8)
                    if w == 0 { word[0] = word[0] &- 32 }  // capitalized
                    out += word
                    if rng.next() % 9 == 0 { out += Array(", ".utf8) } else if w + 1 < n { out.append(0x20) }
                    if rng.next() % 40 == 0 { out += Array(" \(rng.next() % 2000)".utf8) }
                }
                out += Array(pick([". ", "? ", "! ", ".\n", ".\n\n"]).utf8)
            }
        case "word":
            while out.count < bytes { out.append(pick(letters)) }
        case "char":
            out = [UInt8](repeating: UInt8(ascii: "a"), count: bytes)
        case "spaces":
            out = [UInt8](repeating: 0x20, count: bytes)
        case "digits":
            while out.count < bytes { out.append(UInt8(ascii: "0") + UInt8(rng.next() % 10)) }
        case "punct":
            while out.count < bytes { out.append(pick(punctuation)) }
        case "mixed":
            let runs: [[UInt8]] = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_", " ", "  ", "\n", "\t",
                                   "é", "ß", "日本語", "👍🏽", "'s", "'ll", "\u{00a0}", "\u{3000}"].map { Array($0.utf8) }
            while out.count < bytes {
                switch rng.next() % 5 {
                case 0: for _ in 0..<(1 + rng.next() % 12) { out.append(pick(letters)) }
                case 1: for _ in 0..<(1 + rng.next() % 6) { out.append(UInt8(ascii: "0") + UInt8(rng.next() % 10)) }
                case 2: for _ in 0..<(1 + rng.next() % 4) { out.append(pick(punctuation)) }
                default: out += pick(runs)
                }
            }
        default:
            preconditionFailure("unknown tokenizer benchmark text kind \(kind)")
        }
        // Cut to `bytes` at a character boundary (never inside a multi-byte sequence).
        var end = min(bytes, out.count)
        while end > 0 && end < out.count && out[end] & 0xC0 == 0x80 { end -= 1 }
        return String(decoding: out[..<end], as: UTF8.self)
    }
}

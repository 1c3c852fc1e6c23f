// A lower bound on how many tokens a text encodes to, computed without tokenizing: the daemon refuses a
// prompt that cannot fit the context before paying for BPE on it, so a hostile prompt far too long
// for the context costs one table lookup per byte.
//
// Why it holds: every byte of the text ends up in exactly one token or is dropped (Tokenizer.swift).
// What a token covers:
// - a token cut out by the special-token splitter covers its text's UTF-8 bytes;
// - a token from BPE covers the bytes its byte-level spelling stands for (one per character). This
//   holds for any id BPE can give, control tokens included (BPE may spell one from plain text, as
//   llama.cpp's does); a token whose text is not such a spelling never comes out of BPE.
// Let L(b) be the length of the longest token (in this mode) that covers byte value b. Give each byte
// of the text the weight 1/L(b), or 0 if b may be dropped (its single character is no token; SmolLM2
// has 21 such bytes). A token of length k covers k bytes each with L(b) >= k, so its bytes weigh at
// most 1 in total, and the count of tokens is at least the sum of the weights over the text.
// A single "longest token" L for all bytes would be the same bound with every L(b) raised to the
// maximum; per byte it is tighter: SmolLM2's longest token is 81 spaces-or-dashes long, while the
// letters' longest is much shorter. BOS and EOS are not counted (they only add).
// Weights are fixed-point, rounded down, so rounding only lowers the bound. The cost is one table
// lookup and one add per byte.

struct TokenCountBound: Sendable {
    /// Fixed-point weights 2^24 / L(b) (0 for bytes that may be dropped), when special tokens are
    /// parsed and when they are not.
    let weightsParsingSpecial: [UInt64]
    let weightsPlain: [UInt64]
    /// The longest token over all bytes, in each mode.
    let maxBytesParsingSpecial: Int
    let maxBytesPlain: Int
    static let scale: UInt64 = 1 << 24

    init(vocabulary: Vocabulary) {
        var special = [Int](repeating: 0, count: 256), plain = special
        func note(_ bytes: [UInt8], _ table: inout [Int]) {
            for b in bytes { table[Int(b)] = max(table[Int(b)], bytes.count) }
        }
        for (text, attributes) in zip(vocabulary.tokens, vocabulary.attributes) {
            let utf8 = Array(text.utf8)
            if attributes.contains(.userDefined) {
                note(utf8, &special)
                note(utf8, &plain)
            } else if !attributes.isDisjoint(with: [.control, .unknown]) {
                note(utf8, &special)
            }
            let spelled = text.unicodeScalars.map { ByteEncoding.byte(for: $0) }
            if !spelled.contains(nil) {
                let bytes = spelled.map { $0! }
                note(bytes, &special)
                note(bytes, &plain)
            }
        }
        let droppable = ByteEncoding.stringForByte.map { vocabulary.idForText[Array($0.utf8)] == nil }
        func weights(_ longest: [Int]) -> [UInt64] {
            // A byte that cannot be dropped has its single-character token, so longest >= 1.
            (0..<256).map { droppable[$0] || longest[$0] == 0 ? 0 : Self.scale / UInt64(longest[$0]) }
        }
        weightsParsingSpecial = weights(special)
        weightsPlain = weights(plain)
        maxBytesParsingSpecial = max(special.max() ?? 1, 1)
        maxBytesPlain = max(plain.max() ?? 1, 1)
    }

    func maxTokenBytes(parseSpecial: Bool) -> Int { parseSpecial ? maxBytesParsingSpecial : maxBytesPlain }

    /// The summed fixed-point weights of `bytes`.
    func weight(_ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> UInt64 {
        (parseSpecial ? weightsParsingSpecial : weightsPlain).withUnsafeBufferPointer { w in
            var sum: UInt64 = 0
            for b in bytes { sum &+= w[Int(b)] }
            return sum
        }
    }

    /// The bound from a summed weight: a token count is a whole number at least the weight.
    func minimumTokens(weight: UInt64) -> Int {
        Int((weight + Self.scale - 1) / Self.scale)
    }
}

extension Tokenizer {
    /// A lower bound on `encode(text, parseSpecial:).count` without BOS/EOS (see TokenCountBound.swift),
    /// in O(n) with one table lookup per byte and no allocation for native strings.
    public func minimumTokenCount(_ text: String, parseSpecial: Bool) -> Int {
        var text = text
        let weight = text.withUTF8 { countBound.weight($0, parseSpecial: parseSpecial) }
        return countBound.minimumTokens(weight: weight)
    }

    /// The most bytes of text one token can stand for in this mode.
    public func maxTokenBytes(parseSpecial: Bool) -> Int { countBound.maxTokenBytes(parseSpecial: parseSpecial) }
}

// A set of token ids as a bitset over the vocabulary: bit `id & 63` of word `id >> 6`, the layout a
// sampler can apply to logits without a lookup per id.

public struct TokenMask: Equatable, Sendable {
    public internal(set) var words: [UInt64]
    /// The vocabulary size; bits at and past it are always zero.
    public let count: Int

    public init(count: Int) {
        self.count = count
        words = [UInt64](repeating: 0, count: (count + 63) / 64)
    }

    init(count: Int, words: [UInt64]) {
        precondition(words.count == (count + 63) / 64, "a mask of \(count) ids has \((count + 63) / 64) words")
        self.count = count
        self.words = words
    }

    public func contains(_ id: Int) -> Bool {
        id >= 0 && id < count && words[id >> 6] & (1 << UInt64(id & 63)) != 0
    }

    public mutating func insert(_ id: Int) {
        precondition(id >= 0 && id < count, "token id \(id) outside a vocabulary of \(count)")
        words[id >> 6] |= 1 << UInt64(id & 63)
    }

    /// How many ids are in the set.
    public var allowedCount: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    public var isEmpty: Bool { words.allSatisfy { $0 == 0 } }

    /// The ids in the set, ascending.
    public var allowedIDs: [Int] {
        var ids: [Int] = []
        for (w, word) in words.enumerated() {
            var bits = word
            while bits != 0 {
                ids.append(w << 6 | bits.trailingZeroBitCount)
                bits &= bits - 1
            }
        }
        return ids
    }
}

// Byte-level BPE on one piece (FORMATS.md §6.2 steps 3-5; llama.cpp llama-vocab.cpp
// `llm_tokenizer_bpe_session::tokenize`):
// - start from one symbol per byte (its byte-to-unicode character);
// - repeatedly merge the adjacent pair with the lowest merge rank, the leftmost on equal rank, until no
//   adjacent pair has a rank (a priority queue with stale entries skipped, as llama.cpp does);
// - each final symbol that is a token gives its id; one that is not gives the ids of its bytes' single
//   characters, and a byte whose character is no token is dropped (SmolLM2 has 21 such bytes).
// Symbols are numbered rather than compared as strings: a token's symbol id is its token id, and a
// string that appears in a merge but is no token gets an id past the vocabulary. The merge table maps
// the pair (left id, right id) to (rank, merged id). Equal strings always get the same id, so "the pair
// is unchanged" (llama.cpp compares the texts) is "both ids are unchanged".
// `encodeReference` is the plain quadratic loop the fast one must agree with (tests compare them).

struct BPE: Sendable {
    /// (left symbol << 32 | right symbol) -> (rank << 32 | merged symbol).
    private let merges: [UInt64: UInt64]
    /// The symbol of each byte's single character.
    private let byteSymbol: [Int32]
    /// The token of each byte's single character, or -1 (such bytes are dropped).
    let byteToken: [Int32]
    private let vocabularySize: Int32

    init(vocabulary: Vocabulary, merges mergeTexts: [String]) {
        let n = Int32(vocabulary.count)
        var extraSymbols: [[UInt8]: Int32] = [:]
        func symbol(_ text: [UInt8]) -> Int32 {
            if let id = vocabulary.idForText[text] { return id }
            if let id = extraSymbols[text] { return id }
            let id = n + Int32(extraSymbols.count)
            extraSymbols[text] = id
            return id
        }
        byteSymbol = ByteEncoding.stringForByte.map { symbol(Array($0.utf8)) }
        byteToken = ByteEncoding.stringForByte.map { vocabulary.idForText[Array($0.utf8)] ?? -1 }

        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(mergeTexts.count)
        for (rank, text) in mergeTexts.enumerated() {
            // llama.cpp splits at the first space after the first byte; a merge without one, or with an
            // empty side, can never match two symbols, so it is left out.
            let bytes = Array(text.utf8)
            guard bytes.count >= 3, let cut = bytes[1...].firstIndex(of: 0x20), cut + 1 < bytes.count else { continue }
            let left = Array(bytes[..<cut]), right = Array(bytes[(cut + 1)...])
            let key = UInt64(UInt32(symbol(left))) << 32 | UInt64(UInt32(symbol(right)))
            let value = UInt64(rank) << 32 | UInt64(UInt32(symbol(left + right)))
            // The first occurrence of a pair keeps its rank (llama.cpp uses map.emplace).
            if table[key] == nil { table[key] = value }
        }
        merges = table
        vocabularySize = n
    }

    @inline(__always)
    private func lookup(_ left: Int32, _ right: Int32) -> (rank: Int32, merged: Int32)? {
        guard let v = merges[UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))] else { return nil }
        return (Int32(truncatingIfNeeded: v >> 32), Int32(truncatingIfNeeded: v))
    }

    /// Appends the ids of the piece `bytes[range]` to `output`.
    func encode(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into output: inout [Int32],
                scratch s: inout BPEScratch) {
        if range.count == 1 {
            emit(symbol: byteSymbol[Int(bytes[range.lowerBound])], bytes, range, into: &output)
            return
        }
        s.reset(count: range.count)
        for (i, offset) in range.enumerated() {
            s.symbol[i] = byteSymbol[Int(bytes[offset])]
            s.start[i] = offset
            s.length[i] = 1
            s.prev[i] = Int32(i - 1)
            s.next[i] = i + 1 < range.count ? Int32(i + 1) : -1
        }
        for i in 1..<range.count { push(left: Int32(i - 1), right: Int32(i), &s) }

        while let pair = s.queue.pop() {
            let l = Int(pair.left), r = Int(pair.right)
            // Stale: one side was merged away, or changed since this pair was queued.
            guard s.length[l] > 0, s.length[r] > 0, s.symbol[l] == pair.leftSymbol, s.symbol[r] == pair.rightSymbol
            else { continue }
            s.symbol[l] = pair.merged
            s.length[l] += s.length[r]
            s.length[r] = 0
            s.next[l] = s.next[r]
            if s.next[r] >= 0 { s.prev[Int(s.next[r])] = Int32(l) }
            if s.prev[l] >= 0 { push(left: s.prev[l], right: Int32(l), &s) }
            if s.next[l] >= 0 { push(left: Int32(l), right: s.next[l], &s) }
        }

        var i: Int32 = 0
        while i >= 0 {
            let k = Int(i)
            let start = s.start[k]
            emit(symbol: s.symbol[k], bytes, start..<(start + Int(s.length[k])), into: &output)
            i = s.next[k]
        }
    }

    @inline(__always)
    private func push(left: Int32, right: Int32, _ s: inout BPEScratch) {
        let ls = s.symbol[Int(left)], rs = s.symbol[Int(right)]
        guard let m = lookup(ls, rs) else { return }
        s.queue.push(MergeCandidate(rank: m.rank, left: left, right: right, leftSymbol: ls, rightSymbol: rs,
                                    merged: m.merged))
    }

    /// A final symbol's id, or its bytes' ids when it is no token (bytes without a token are dropped).
    @inline(__always)
    private func emit(symbol: Int32, _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                      into output: inout [Int32]) {
        if symbol < vocabularySize {
            output.append(symbol)
            return
        }
        for offset in range {
            let token = byteToken[Int(bytes[offset])]
            if token >= 0 { output.append(token) }
        }
    }

    /// The plain reference: scan all adjacent pairs, merge the lowest rank (leftmost on ties), repeat.
    func encodeReference(_ bytes: [UInt8]) -> [Int32] {
        var symbols = bytes.map { byteSymbol[Int($0)] }
        var ranges = bytes.indices.map { $0..<($0 + 1) }
        while true {
            var best: (index: Int, rank: Int32, merged: Int32)?
            for i in 0..<max(symbols.count - 1, 0) {
                if let m = lookup(symbols[i], symbols[i + 1]), best == nil || m.rank < best!.rank {
                    best = (i, m.rank, m.merged)
                }
            }
            guard let b = best else { break }
            symbols[b.index] = b.merged
            ranges[b.index] = ranges[b.index].lowerBound..<ranges[b.index + 1].upperBound
            symbols.remove(at: b.index + 1)
            ranges.remove(at: b.index + 1)
        }
        var output: [Int32] = []
        bytes.withUnsafeBufferPointer { buffer in
            for (symbol, range) in zip(symbols, ranges) { emit(symbol: symbol, buffer, range, into: &output) }
        }
        return output
    }
}

struct MergeCandidate {
    var rank: Int32
    var left: Int32
    var right: Int32
    var leftSymbol: Int32
    var rightSymbol: Int32
    var merged: Int32

    /// Lower rank first, then the leftmost pair (llama.cpp `llm_bigram_bpe::comparator`).
    @inline(__always)
    func comesBefore(_ other: MergeCandidate) -> Bool {
        rank != other.rank ? rank < other.rank : left < other.left
    }
}

/// A binary min-heap of merge candidates.
struct MergeQueue {
    private(set) var items: [MergeCandidate] = []

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(_ item: MergeCandidate) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].comesBefore(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> MergeCandidate? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var first = parent
                if left < items.count && items[left].comesBefore(items[first]) { first = left }
                if right < items.count && items[right].comesBefore(items[first]) { first = right }
                if first == parent { break }
                items.swapAt(parent, first)
                parent = first
            }
        }
        return top
    }
}

/// Reusable buffers for `BPE.encode` (one per encode call, reused across its pieces).
struct BPEScratch {
    var symbol: [Int32] = []
    var start: [Int] = []
    var length: [Int32] = []
    var prev: [Int32] = []
    var next: [Int32] = []
    var queue = MergeQueue()

    mutating func reset(count: Int) {
        if symbol.count < count {
            let grow = count - symbol.count
            symbol += repeatElement(0, count: grow)
            start += repeatElement(0, count: grow)
            length += repeatElement(0, count: grow)
            prev += repeatElement(0, count: grow)
            next += repeatElement(0, count: grow)
        }
        queue.removeAll()
    }
}

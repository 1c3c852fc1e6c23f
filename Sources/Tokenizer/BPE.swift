// Byte-level BPE on one piece (FORMATS.md §6.2 steps 3-5; llama.cpp llama-vocab.cpp
// `llm_tokenizer_bpe_session::tokenize`):
// - start from one symbol per byte (its byte-to-unicode character);
// - repeatedly merge the adjacent pair with the lowest merge rank, the leftmost on equal rank, until no
//   adjacent pair has a rank (candidates queued, stale ones skipped, as llama.cpp does; see `encode`
//   for how staleness is told with one integer per candidate, and MergeQueues.swift for the queues);
// - each final symbol that is a token gives its id; one that is not gives the ids of its bytes' single
//   characters, and a byte whose character is no token is dropped (SmolLM2 has 21 such bytes).
// Symbols are numbered rather than compared as strings: a token's symbol id is its token id, and a
// string that appears in a merge but is no token gets an id past the vocabulary. The merge table maps
// the pair (left id, right id) to (rank, merged id). Equal strings always get the same id, so "the pair
// is unchanged" (llama.cpp compares the texts) is "both ids are unchanged".
// `encodeReference` is the plain quadratic loop the fast one must agree with (tests compare them).

struct BPE: Sendable {
    /// (left symbol << 32 | right symbol) -> (rank << 32 | merged symbol).
    private let merges: MergeTable
    /// The symbol of each byte's single character.
    private let byteSymbol: [Int32]
    /// The token of each byte's single character, or -1 (such bytes are dropped).
    let byteToken: [Int32]
    private let vocabularySize: Int32
    /// Ranks run from 0 to rankCount - 1 (a merge's line in the table).
    private let rankCount: Int

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
        merges = MergeTable(table)
        vocabularySize = n
        rankCount = mergeTexts.count
    }

    @inline(__always)
    private func lookup(_ left: Int32, _ right: Int32) -> (rank: Int32, merged: Int32)? {
        guard let v = merges.find(UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))) else { return nil }
        return (Int32(truncatingIfNeeded: v >> 32), Int32(truncatingIfNeeded: v))
    }

    /// Pieces at least this long queue their candidates in rank buckets instead of one heap.
    static let bucketThreshold = 1024

    /// Appends the ids of the piece `bytes[range]` to `output`.
    ///
    /// Symbol i starts at byte i of the piece and ends where the next live symbol starts; `next`/`prev`
    /// link the live ones. The pair starting at a live symbol i has its rank and merged symbol in
    /// `pairRank[i]`/`pairMerged[i]` (rank -1: no merge). Candidates are (rank, i), taken lowest rank
    /// first, leftmost on equal rank. A candidate is stale unless `pairRank[i]` still equals its rank:
    /// a rank names one pair of symbols, and the pair at i never returns to an earlier value (its left
    /// symbol, then its right one, only grow), so an equal rank means the very pair that was queued.
    /// A short piece queues (rank << 32 | i) keys in one heap; a long one (a megabyte-long word queues
    /// millions of candidates, and a heap that size misses the cache on every level) queues positions
    /// in one bucket per rank (MergeQueues.swift). Both take the same candidates in the same order.
    func encode(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into output: inout [Int32],
                scratch s: BPEScratch) {
        let n = range.count
        if n == 1 {
            emit(symbol: byteSymbol[Int(bytes[range.lowerBound])], bytes, range, into: &output)
            return
        }
        s.reserve(n)
        let symbol = s.symbol, prev = s.prev, next = s.next, pairRank = s.pairRank, pairMerged = s.pairMerged
        let base = range.lowerBound
        byteSymbol.withUnsafeBufferPointer { byteSymbol in
            for i in 0..<n {
                symbol[i] = byteSymbol[Int(bytes[base + i])]
                prev[i] = Int32(i - 1)
                next[i] = Int32(i + 1)
            }
        }
        next[n - 1] = -1
        pairRank[n - 1] = -1
        for i in 0..<(n - 1) {
            if let m = lookup(symbol[i], symbol[i + 1]) {
                pairRank[i] = m.rank
                pairMerged[i] = m.merged
            } else {
                pairRank[i] = -1
            }
        }

        /// Merges the valid candidate at l with its right neighbour and reports the new pairs that
        /// start at l's left neighbour and at l (index, rank) for queueing.
        @inline(__always) func merge(_ l: Int, _ queue: (Int, Int32) -> Void) {
            let r = Int(next[l])
            symbol[l] = pairMerged[l]
            pairRank[r] = -1  // r is merged away
            let after = next[r]
            next[l] = after
            if after >= 0 { prev[Int(after)] = Int32(l) }
            var i = Int(prev[l])
            for _ in 0..<2 {
                if i >= 0 {
                    let j = Int(next[i])
                    if j >= 0, let m = lookup(symbol[i], symbol[j]) {
                        pairRank[i] = m.rank
                        pairMerged[i] = m.merged
                        queue(i, m.rank)
                    } else {
                        pairRank[i] = -1
                    }
                }
                i = l
            }
        }

        if n < Self.bucketThreshold {
            var queue = MergeQueue()
            swap(&queue, &s.queue)  // a unique local: no copy on write
            queue.removeAll()
            for i in 0..<(n - 1) where pairRank[i] >= 0 {
                queue.appendUnordered(UInt64(UInt32(pairRank[i])) << 32 | UInt64(i))
            }
            queue.heapify()
            while let key = queue.pop() {
                let l = Int(key & 0xFFFF_FFFF)
                guard pairRank[l] == Int32(truncatingIfNeeded: key >> 32) else { continue }
                merge(l) { i, rank in queue.push(UInt64(UInt32(rank)) << 32 | UInt64(i)) }
            }
            swap(&queue, &s.queue)
        } else {
            var buckets = s.takeBuckets(rankCount: rankCount)  // a unique local, given back below
            defer { s.rankBuckets = buckets }
            for i in 0..<(n - 1) where pairRank[i] >= 0 { buckets.push(Int32(i), rank: Int(pairRank[i])) }
            while let rank = buckets.lowestRank() {
                // Take this rank's candidates left to right until a merge queues a lower rank.
                while let l = buckets.popLeftmost(rank: rank) {
                    guard pairRank[Int(l)] == Int32(rank) else { continue }
                    var lower = false
                    merge(Int(l)) { i, r in
                        buckets.push(Int32(i), rank: Int(r))
                        if Int(r) < rank { lower = true }
                    }
                    if lower { break }
                }
            }
        }

        var i = 0
        while i >= 0 {
            let j = Int(next[i])
            emit(symbol: symbol[i], bytes, (base + i)..<(j >= 0 ? base + j : range.upperBound), into: &output)
            i = j
        }
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

/// Reusable buffers for `BPE.encode`, one per encode call and reused across its pieces. A class with
/// raw buffers, so the merge loop pays no copy-on-write or exclusivity checks.
final class BPEScratch {
    private(set) var capacity = 0
    private(set) var symbol = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
    private(set) var prev = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
    private(set) var next = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
    private(set) var pairRank = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
    private(set) var pairMerged = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
    var queue = MergeQueue()
    /// The rank buckets for long pieces, made on first use and kept for the call's other pieces.
    var rankBuckets: RankBuckets?

    func takeBuckets(rankCount: Int) -> RankBuckets {
        defer { rankBuckets = nil }
        if let b = rankBuckets, b.rankCount == rankCount { return b }
        return RankBuckets(rankCount: rankCount)
    }

    /// Makes room for a piece of `count` bytes.
    func reserve(_ count: Int) {
        guard count > capacity else { return }
        let grown = max(count, 2 * capacity, 64)
        for p in [symbol, prev, next, pairRank, pairMerged] { p.deallocate() }
        symbol = .allocate(capacity: grown)
        prev = .allocate(capacity: grown)
        next = .allocate(capacity: grown)
        pairRank = .allocate(capacity: grown)
        pairMerged = .allocate(capacity: grown)
        capacity = grown
    }

    deinit {
        for p in [symbol, prev, next, pairRank, pairMerged] { p.deallocate() }
    }
}

/// The merge table: (left << 32 | right) -> (rank << 32 | merged), open addressing with linear probing
/// and a multiplicative hash, each key beside its value so a probe reads one cache line. Swift's
/// Dictionary hashes with SipHash, which cost more than the rest of a short piece's BPE.
struct MergeTable: Sendable {
    private let slots: [UInt64]  // key, value, key, value, ...
    private let shift: UInt64
    private static let empty = UInt64.max  // (-1, -1): symbols are never negative

    init(_ entries: [UInt64: UInt64]) {
        var bits: UInt64 = 4
        while (1 << bits) < 2 * max(entries.count, 1) { bits += 1 }  // load factor at most 1/2
        let size = 1 << Int(bits)
        var slots = [UInt64](repeating: Self.empty, count: 2 * size)
        shift = 64 - bits
        for (key, value) in entries {
            var slot = Self.slot(key, shift)
            while slots[2 * slot] != Self.empty { slot = (slot + 1) & (size - 1) }
            slots[2 * slot] = key
            slots[2 * slot + 1] = value
        }
        self.slots = slots
    }

    @inline(__always)
    private static func slot(_ key: UInt64, _ shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    @inline(__always)
    func find(_ key: UInt64) -> UInt64? {
        slots.withUnsafeBufferPointer { s in
            let mask = s.count / 2 - 1
            var slot = Self.slot(key, shift)
            while true {
                let found = s[2 * slot]
                if found == key { return s[2 * slot + 1] }
                if found == Self.empty { return nil }
                slot = (slot + 1) & mask
            }
        }
    }
}

// The two queues BPE.encode takes merge candidates from, lowest rank first and leftmost on equal rank:
// a 4-ary heap of (rank << 32 | position) keys for ordinary pieces, and one bucket of positions per
// rank for long pieces. Why two: a heap of a few entries is the cheapest thing there is, but a heap
// of millions (a megabyte-long word) misses the cache at every level of every push and pop, while a
// bucket is taken in one left-to-right sweep over contiguous memory.

/// A 4-ary min-heap of UInt64 keys in one buffer that is kept across pieces. Four children side by
/// side share a cache line and the tree is half as deep as a binary one, which matters once a huge
/// piece's queue no longer fits in cache.
struct MergeQueue {
    private var items: [UInt64] = []

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    /// Adds without ordering; `heapify` must follow before `pop`.
    mutating func appendUnordered(_ key: UInt64) { items.append(key) }

    /// Orders the items as a heap in O(count) (Floyd's bottom-up construction).
    mutating func heapify() {
        let count = items.count
        guard count > 1 else { return }
        items.withUnsafeMutableBufferPointer { h in
            for start in stride(from: (count - 2) / 4, through: 0, by: -1) { Self.siftDown(h, start, count) }
        }
    }

    mutating func push(_ key: UInt64) {
        items.append(key)
        items.withUnsafeMutableBufferPointer { h in
            var child = h.count - 1
            while child > 0 {
                let parent = (child - 1) / 4
                guard key < h[parent] else { break }
                h[child] = h[parent]
                child = parent
            }
            h[child] = key
        }
    }

    mutating func pop() -> UInt64? {
        guard let last = items.popLast() else { return nil }
        let count = items.count
        if count == 0 { return last }
        return items.withUnsafeMutableBufferPointer { h in
            let top = h[0]
            h[0] = last
            Self.siftDown(h, 0, count)
            return top
        }
    }

    @inline(__always)
    private static func siftDown(_ h: UnsafeMutableBufferPointer<UInt64>, _ start: Int, _ count: Int) {
        let key = h[start]
        var parent = start
        while true {
            let first = 4 * parent + 1
            guard first < count else { break }
            var child = first
            var smallest = h[first]
            for c in (first + 1)..<min(first + 4, count) where h[c] < smallest {
                child = c
                smallest = h[c]
            }
            guard smallest < key else { break }
            h[parent] = smallest
            parent = child
        }
        h[parent] = key
    }
}

/// One bucket of candidate positions per rank, and a two-level bitset of the ranks that have some.
///
/// Taking candidates: the lowest rank with any (`lowestRank`), then its positions in increasing
/// order (`popLeftmost`) until the caller sees a merge queue a lower rank. A merge never queues its
/// own rank (the new pairs hold the merged symbol, which is longer than either side of this rank's
/// pair), so a bucket being swept only grows from other ranks' merges, between sweeps. Pushes in
/// increasing order (the common case: the initial pairs, and merges during one sweep) keep a bucket
/// sorted; otherwise its unsorted tail is sorted when its next sweep starts. So the order is the
/// heap's (rank, then position) exactly.
struct RankBuckets {
    let rankCount: Int
    private var entries: [[Int32]]
    /// Per bucket: the first entry not yet taken, and the end of the sorted part from there on.
    private var cursor: [Int32]
    private var sortedEnd: [Int32]
    /// Bit r: bucket r may have entries not yet taken. summary bit w: words[w] != 0.
    private var words: [UInt64]
    private var summary: [UInt64]

    init(rankCount: Int) {
        self.rankCount = rankCount
        entries = Array(repeating: [], count: rankCount)
        cursor = Array(repeating: 0, count: rankCount)
        sortedEnd = Array(repeating: 0, count: rankCount)
        words = Array(repeating: 0, count: (rankCount + 63) / 64)
        summary = Array(repeating: 0, count: (words.count + 63) / 64)
    }

    mutating func push(_ position: Int32, rank r: Int) {
        let count = entries[r].count
        if Int(sortedEnd[r]) == count && (count == Int(cursor[r]) || entries[r][count - 1] <= position) {
            sortedEnd[r] += 1
        }
        entries[r].append(position)
        let w = r >> 6
        words[w] |= 1 << UInt64(r & 63)
        summary[w >> 6] |= 1 << UInt64(w & 63)
    }

    /// The lowest rank whose bucket may have entries (it may turn out empty: `popLeftmost` then says nil).
    func lowestRank() -> Int? {
        for (s, bits) in summary.enumerated() where bits != 0 {
            let w = s << 6 + bits.trailingZeroBitCount
            return w << 6 + words[w].trailingZeroBitCount
        }
        return nil
    }

    /// The lowest position in bucket `r` not taken yet, or nil when it has none (the bucket is then
    /// emptied and its bit cleared).
    mutating func popLeftmost(rank r: Int) -> Int32? {
        let c = Int(cursor[r]), count = entries[r].count
        guard c < count else {
            entries[r].removeAll(keepingCapacity: true)
            cursor[r] = 0
            sortedEnd[r] = 0
            let w = r >> 6
            words[w] &= ~(1 << UInt64(r & 63))
            if words[w] == 0 { summary[w >> 6] &= ~(1 << UInt64(w & 63)) }
            return nil
        }
        if Int(sortedEnd[r]) < count {
            entries[r][c..<count].sort()
            sortedEnd[r] = Int32(count)
        }
        cursor[r] = Int32(c + 1)
        return entries[r][c]
    }
}

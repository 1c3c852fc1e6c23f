// ComputePool: parallelFor gives the same results as a serial loop, survives many quick calls in a
// row, works with one thread, hands out thread ids that are never used by two bodies at once, and
// degrades to a serial loop (instead of deadlocking) when called from inside one of its own bodies;
// a background caller yields the pool to other callers for 50 ms after their last call.

import Foundation
import Kernels
import Synchronization
import Testing

@Suite struct ComputePoolTests {
    @Test(arguments: [1, 2, 3, 4])
    func matchesSerialLoop(threads: Int) {
        let pool = ComputePool(threads: threads)
        #expect(pool.threadCount == threads)
        for count in [0, 1, 2, 3, 7, 64, 1000] {
            var out = [Int](repeating: -1, count: count)
            out.withUnsafeMutableBufferPointer { buf in
                let p = UnsafeSendable(buf.baseAddress!)
                pool.parallelFor(count) { i in p.value[i] = i &* i &+ 3 }
            }
            #expect(out == (0..<count).map { $0 &* $0 &+ 3 }, "threads=\(threads) count=\(count)")
        }
    }

    @Test func manyQuickCallsInARow() {
        let pool = ComputePool(threads: 2)
        let total = Atomic<Int>(0)
        for call in 0..<20_000 {
            pool.parallelFor(1 + call % 5) { i in total.wrappingAdd(i + 1, ordering: .relaxed) }
        }
        // Σ over calls of Σ_{i<k} (i+1) = k(k+1)/2 with k = 1 + call % 5.
        let expected = (0..<20_000).reduce(0) { s, call in let k = 1 + call % 5; return s + k * (k + 1) / 2 }
        #expect(total.load(ordering: .relaxed) == expected)
    }

    @Test func callsAfterIdleStillWork() async throws {
        // Long enough for the workers to stop spinning and park.
        let pool = ComputePool(threads: 2)
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(30))
            let hits = Atomic<Int>(0)
            pool.parallelFor(100) { _ in hits.wrappingAdd(1, ordering: .relaxed) }
            #expect(hits.load(ordering: .relaxed) == 100)
        }
    }

    @Test func threadIdsAreExclusive() {
        let pool = ComputePool(threads: 3)
        let inUse = Mutex<[Bool]>([false, false, false])
        let violations = Atomic<Int>(0), outOfRange = Atomic<Int>(0)
        for _ in 0..<200 {
            pool.parallelFor(50) { (_: Int, thread: Int) in
                guard thread >= 0 && thread < 3 else { outOfRange.wrappingAdd(1, ordering: .relaxed); return }
                let clash = inUse.withLock { flags in
                    defer { flags[thread] = true }
                    return flags[thread]
                }
                if clash { violations.wrappingAdd(1, ordering: .relaxed) }
                var x = 0
                for k in 0..<200 { x = x &+ k }  // a little work so bodies overlap
                if x < 0 { violations.wrappingAdd(1, ordering: .relaxed) }
                inUse.withLock { $0[thread] = false }
            }
        }
        #expect(violations.load(ordering: .relaxed) == 0)
        #expect(outOfRange.load(ordering: .relaxed) == 0)
    }

    @Test func nestedCallRunsSerially() {
        let pool = ComputePool(threads: 2)
        let total = Atomic<Int>(0)
        pool.parallelFor(4) { _ in
            pool.parallelFor(10) { j in total.wrappingAdd(j, ordering: .relaxed) }
        }
        #expect(total.load(ordering: .relaxed) == 4 * 45)
    }

    /// The background caller (the daemon's trainer) runs its calls serially on its own thread while
    /// another thread has used the pool within the last 50 ms, and on the whole pool once it has not.
    @Test func theBackgroundCallerYieldsToOthers() {
        let pool = ComputePool(threads: 2)
        /// The thread ids that ran `count` items of ~0.5 ms each (long enough for the worker to join).
        func ids(_ count: Int) -> Set<Int> {
            let seen = Mutex<Set<Int>>([])
            pool.parallelFor(count) { _, thread in
                let start = ContinuousClock.now
                while ContinuousClock.now - start < .microseconds(500) {}
                seen.withLock { _ = $0.insert(thread) }
            }
            return seen.withLock { $0 }
        }
        pool.runInBackground {
            // No other caller yet: the whole pool.
            #expect(ids(200).contains(1))
            // Another thread calls now: the next call runs serially, as thread 0 on this one.
            let other = Thread { pool.parallelFor(8) { _ in } }
            other.start()
            while !other.isFinished { Thread.sleep(forTimeInterval: 0.001) }
            #expect(ids(8) == [0])
            // 50 ms later the pool is the background caller's again.
            Thread.sleep(forTimeInterval: 0.12)
            #expect(ids(200).contains(1))
        }
    }

    @Test func poolIsReleased() {
        // deinit must stop and join the workers (a hang here means it did not).
        for _ in 0..<20 {
            let pool = ComputePool(threads: 2)
            let n = Atomic<Int>(0)
            pool.parallelFor(8) { _ in n.wrappingAdd(1, ordering: .relaxed) }
            #expect(n.load(ordering: .relaxed) == 8)
        }
    }
}

extension ComputePoolTests {
    @Test func openBLASIsSingleThreaded() {
        _ = ComputePool(threads: 1)
        #expect(ComputePool.openBLASThreads == 1)
    }
}

// ComputePool: parallelFor gives the same results as a serial loop, survives many quick calls in a
// row, works with one thread, hands out thread ids that are never used by two bodies at once, and
// degrades to a serial loop (instead of deadlocking) when called from inside one of its own bodies;
// a background caller shares the cores with other callers (its share of the time, one core) until
// they have been idle for 50 ms.

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

    /// Busy-waits ~0.5 ms per item (long enough for the worker to join) and returns the thread ids
    /// that ran them.
    static func ids(_ pool: ComputePool, _ count: Int) -> Set<Int> {
        let seen = Mutex<Set<Int>>([])
        pool.parallelFor(count) { _, thread in
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .microseconds(500) {}
            seen.withLock { _ = $0.insert(thread) }
        }
        return seen.withLock { $0 }
    }

    /// A background caller (the trainer) runs on the whole pool while no other thread has used it
    /// within 50 ms; once one has, the two split the cores: the background caller's calls run
    /// serially on its own thread, and the other caller's run without the worker it would displace
    /// (on 2 threads, serially on their caller).
    @Test func theBackgroundCallerSharesTheCores() {
        let pool = ComputePool(threads: 2)
        pool.runInBackground(share: 0.5) {
            // No other caller yet: the whole pool.
            #expect(Self.ids(pool, 200).contains(1))
            // Another thread calls: the background caller's next call runs serially, as thread 0.
            var other = Thread { pool.parallelFor(8) { _ in } }
            other.start()
            while !other.isFinished { Thread.sleep(forTimeInterval: 0.001) }
            #expect(Self.ids(pool, 8) == [0])
            // The background caller now holds a core, so the other caller gets no worker.
            let seen = Mutex<Set<Int>>([])
            other = Thread { seen.withLock { $0 = Self.ids(pool, 200) } }
            other.start()
            while !other.isFinished { Thread.sleep(forTimeInterval: 0.001) }
            #expect(seen.withLock { $0 } == [0])
            // 50 ms after the other caller's last call the pool is the background caller's again.
            Thread.sleep(forTimeInterval: 0.12)
            #expect(Self.ids(pool, 200).contains(1))
        }
        // After the background caller has gone, other callers have the whole pool.
        #expect(Self.ids(pool, 200).contains(1))
    }

    /// Share 0: while another caller is busy, the background caller's call waits until that caller
    /// has been idle for 50 ms, then takes the whole pool.
    @Test func shareZeroWaitsUntilOthersIdle() {
        let pool = ComputePool(threads: 2)
        pool.runInBackground(share: 0) {
            let other = Thread { pool.parallelFor(8) { _ in } }
            other.start()
            while !other.isFinished { Thread.sleep(forTimeInterval: 0.001) }
            let start = ContinuousClock.now
            #expect(Self.ids(pool, 200).contains(1))
            // The 200 items take ≥ 50 ms on 2 threads, so this bounds the wait only from below:
            // ≥ 45 ms of waiting (the other call ended a little before `start`) plus that work.
            #expect(ContinuousClock.now - start >= .milliseconds(45 + 45))
        }
    }

    /// Share 0.25 of 2 threads: while another thread calls the pool without pause, the background
    /// caller holds its core about half of the time.
    @Test func aPartShareHoldsACoreForThatFractionOfTheTime() {
        let pool = ComputePool(threads: 2)
        let stop = Atomic<Bool>(false)
        let other = Thread {
            while !stop.load(ordering: .relaxed) { pool.parallelFor(4) { _ in } }
        }
        other.start()
        Thread.sleep(forTimeInterval: 0.01)
        var held: Duration = .zero
        let window = ContinuousClock.now
        pool.runInBackground(share: 0.25) {
            while ContinuousClock.now - window < .milliseconds(600) {
                // Only the body's time: a call out of credit sleeps before it runs its body.
                pool.parallelFor(1) { _ in
                    let s = ContinuousClock.now
                    while ContinuousClock.now - s < .microseconds(200) {}
                    held += ContinuousClock.now - s
                }
            }
        }
        let total = ContinuousClock.now - window
        stop.store(true, ordering: .relaxed)
        while !other.isFinished { Thread.sleep(forTimeInterval: 0.001) }
        // Wall time, as the pool counts it: 0.5 in theory, 0.48-0.49 observed on an idle machine
        // (late wake-ups from the sleeps); 0.35...0.65 leaves room for a loaded one and still fails
        // for a pool that ignores the share (1) or never yields the core back (0).
        let fraction = held / total
        #expect(fraction > 0.35 && fraction < 0.65, "held \(fraction) of the time")
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

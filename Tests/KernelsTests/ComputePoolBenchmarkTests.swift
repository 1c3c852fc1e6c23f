// Overhead of one ComputePool.parallelFor call (2 threads, trivial bodies), printed, never asserted
// on (it depends on the machine's load): a decode step makes ~211 such calls, so 5 µs each would be
// ~1 ms per token. DispatchQueue.concurrentPerform is printed beside it for comparison.

import Dispatch
import Foundation
import Kernels
import Synchronization
import Testing

@Suite struct ComputePoolBenchmarkTests {
    @Test func callOverhead() {
        let pool = ComputePool(threads: 2)
        let sink = Atomic<Int>(0)
        let calls = 20_000
        for _ in 0..<1000 { pool.parallelFor(2) { i in sink.wrappingAdd(i, ordering: .relaxed) } }
        var start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<calls { pool.parallelFor(2) { i in sink.wrappingAdd(i, ordering: .relaxed) } }
        let poolNs = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(calls)
        start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<calls {
            DispatchQueue.concurrentPerform(iterations: 2) { i in sink.wrappingAdd(i, ordering: .relaxed) }
        }
        let dispatchNs = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(calls)
        print(String(format: "parallelFor(2) overhead: ComputePool %.2f µs/call, concurrentPerform %.2f µs/call",
                     poolNs / 1000, dispatchNs / 1000))
        #expect(sink.load(ordering: .relaxed) == 2 * calls + 1000)
    }
}

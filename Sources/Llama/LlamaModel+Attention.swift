// Causal attention over each sequence's own KV cache, as pool jobs running Kernels' `attention` (a C
// AVX2 kernel with a portable twin).
//
// Job shape: with enough query rows (a decode batch, a prefill) one job per row and KV head, so each
// cached key is read once for the whole head group. With few rows (one decode stream) that gives too
// few jobs to balance the workers (3 groups on 2 threads: one thread does twice the work), so then one
// job per row and query head (9 jobs for SmolLM2); the heads of a group running side by side then share
// the key rows through the last-level cache anyway.

import Foundation
import Kernels

extension LlamaModel {
    /// Causal attention of every item's new queries over its own cached positions up to their own.
    func attention(q: [Float], batch: [BatchItem], offsets: [Int], starts: [Int], layer: Int,
                   into out: inout [Float]) {
        let c = config
        let hd = c.headDim, kvDim = c.kvDim, group = c.headCount / c.kvHeadCount
        let scale = 1 / sqrtf(Float(hd))
        // llama.cpp (f16 KV cache) rounds Q to f16 for its dot with the keys and the attention weights to
        // f16 for their product with V; the kernel rounds at those points.
        let f16 = numerics == .llamaCpp
        // One job per (row, head slot); each job knows its item through `rowItem`.
        var rowItem: [Int] = []
        for (i, item) in batch.enumerated() { rowItem += Array(repeating: i, count: item.tokens.count) }
        let rowItems = rowItem
        let grouped = rowItems.count * c.kvHeadCount >= 4 * threads
        let headsPerJob = grouped ? group : 1
        let slots = c.headCount / headsPerJob
        let keys = batch.map { UnsafeSendable($0.cache.keys(layer: layer)) }
        let values = batch.map { UnsafeSendable($0.cache.values(layer: layer)) }
        q.withUnsafeBufferPointer { qb in
            out.withUnsafeMutableBufferPointer { ob in
                let qp = UnsafeSendable(qb.baseAddress!), op = UnsafeSendable(ob.baseAddress!)
                let jobs = rowItems.count * slots
                let body: @Sendable (Int) -> Void = { (job: Int) in
                    let row = job / slots, head = (job % slots) * headsPerJob
                    let item = rowItems[row]
                    let n = starts[item] + row - offsets[item] + 1
                    let kvOffset = (head / group) * hd
                    let scratchCount = attentionScratchCount(heads: headsPerJob, count: n, headDim: hd)
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: scratchCount) { sb in
                        Kernels.attention(q: qp.value + row * c.qDim + head * hd, heads: headsPerJob,
                                          keys: keys[item].value + kvOffset, values: values[item].value + kvOffset,
                                          kvStride: kvDim, count: n, headDim: hd, scale: scale, roundToF16: f16,
                                          scratch: sb.baseAddress!, out: op.value + row * c.qDim + head * hd)
                    }
                }
                pool.parallelFor(jobs, body)  // serial on the caller for one job or a one-thread pool
            }
        }
    }
}

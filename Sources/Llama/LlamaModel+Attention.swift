// Causal attention over each sequence's own KV cache (one job per query row and head on the pool).

import Foundation
import Kernels

extension LlamaModel {
    /// Causal attention of every item's new queries over its own cached positions up to their own.
    func attention(q: [Float], batch: [BatchItem], offsets: [Int], starts: [Int], layer: Int,
                           into out: inout [Float]) {
        let c = config
        let hd = c.headDim, kvDim = c.kvDim, group = c.headCount / c.kvHeadCount
        let scale = 1 / sqrtf(Float(hd))
        let f16 = numerics == .llamaCpp
        // One job per (row, head); each job knows its item through `rowItem`.
        var rowItem: [Int] = []
        for (i, item) in batch.enumerated() { rowItem += Array(repeating: i, count: item.tokens.count) }
        let keys = batch.map { UnsafeSendable($0.cache.keys(layer: layer)) }
        let values = batch.map { UnsafeSendable($0.cache.values(layer: layer)) }
        let rowItems = rowItem
        q.withUnsafeBufferPointer { qb in
            out.withUnsafeMutableBufferPointer { ob in
                let qp = UnsafeSendable(qb.baseAddress!), op = UnsafeSendable(ob.baseAddress!)
                let jobs = rowItems.count * c.headCount
                let body: @Sendable (Int) -> Void = { (job: Int) in
                    let row = job / c.headCount, head = job % c.headCount
                    let item = rowItems[row]
                    let t = row - offsets[item]
                    let kvHead = head / group
                    let n = starts[item] + t + 1
                    let kp = keys[item].value, vp = values[item].value
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: n + hd) { sb in
                        let s = sb.baseAddress!
                        // ggml converts Q to f16 for its dot with the f16 key cache.
                        let qv = s + n
                        let qsrc = qp.value + row * c.qDim + head * hd
                        for i in 0..<hd { qv[i] = f16 ? roundedToF16(qsrc[i]) : qsrc[i] }
                        var maxScore = -Float.infinity
                        for j in 0..<n {
                            let d = dotF32(qv, kp + j * kvDim + kvHead * hd, count: hd) * scale
                            s[j] = d
                            maxScore = max(maxScore, d)
                        }
                        var sum: Float = 0
                        for j in 0..<n {
                            let e = expf(s[j] - maxScore)
                            s[j] = e
                            sum += e
                        }
                        let o = op.value + row * c.qDim + head * hd
                        for i in 0..<hd { o[i] = 0 }
                        let inv = 1 / sum
                        for j in 0..<n {
                            // ggml converts the attention weights to f16 for their product with V.
                            let p = f16 ? roundedToF16(s[j] * inv) : s[j] * inv
                            let vv = vp + j * kvDim + kvHead * hd
                            for i in 0..<hd { o[i] += p * vv[i] }
                        }
                    }
                }
                if threads > 1 && jobs > 1 {
                    pool.parallelFor(jobs, body)
                } else {
                    for job in 0..<jobs { body(job) }
                }
            }
        }
    }
}

// The order rows are trained in: each epoch a seeded shuffle (SplitMix64, Fisher–Yates, seeded by
// the run's seed and the epoch number), cut into batches of `batchSize` rows. A function of (seed,
// epoch) alone, so a run resumed at epoch e, step k trains the same rows an uninterrupted one would.

import Kernels

public enum TrainingBatches {
    /// Row indices of epoch `epoch` (0-based) in batches of `batchSize`; the last batch may be short.
    public static func epoch(_ epoch: Int, rows: Int, batchSize: Int, seed: UInt64) -> [[Int]] {
        precondition(batchSize > 0 && epoch >= 0)
        var order = Array(0..<rows)
        var rng = SplitMix64(seed: seed ^ (UInt64(epoch) &* 0xD1B5_4A32_D192_ED03))
        for i in stride(from: rows - 1, to: 0, by: -1) {
            order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        return stride(from: 0, to: rows, by: batchSize).map { Array(order[$0..<min($0 + batchSize, rows)]) }
    }
}

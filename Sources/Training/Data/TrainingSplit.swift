// The held-out split (DESIGN.md §6b: 10–20% when no eval file is given): a seeded shuffle of the
// examples' indices (SplitMix64, Fisher–Yates) picks the evaluation examples; both halves keep file
// order. The same examples, fraction and seed always give the same split.

import Kernels

public struct TrainingSplit: Sendable, Equatable {
    public var train: [TrainingExample]
    public var eval: [TrainingExample]

    /// Holds out round(fraction·n) examples (at least 1 when fraction > 0, and never all: the last
    /// example trains). `fraction` must be in [0, 1).
    public init(_ examples: [TrainingExample], evalFraction fraction: Double, seed: UInt64) throws(TrainingError) {
        guard fraction >= 0, fraction < 1 else {
            throw .badSetting(name: "eval_fraction", value: "\(fraction)", expected: "a fraction in [0, 1), e.g. 0.1")
        }
        let n = examples.count
        var count = Int((fraction * Double(n)).rounded())
        if fraction > 0 { count = max(count, 1) }
        count = min(count, n - 1)
        guard count > 0 else {
            train = examples
            eval = []
            return
        }
        var order = Array(0..<n)
        var rng = SplitMix64(seed: seed)
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
        var held = [Bool](repeating: false, count: n)
        for i in order.prefix(count) { held[i] = true }
        train = examples.indices.filter { !held[$0] }.map { examples[$0] }
        eval = examples.indices.filter { held[$0] }.map { examples[$0] }
    }
}

// TIES and DARE combinations of LoRA deltas, as PEFT computes them in its "*_svd" combination types
// (peft utils/merge_utils.py and tuners/lora/model.py `_svd_generalized_task_arithmetic_weighted_adapter`,
// read in peft 0.21.2). With D_i = s_i·B_i·A_i (out × in) and weights w_i:
//   prune:  TIES keeps the int(density·out·in) largest |D_i| entries (magnitude); DARE keeps each entry
//           with probability `density` and divides the kept ones by `density` (random, rescaled);
//   elect:  (TIES, DARE-TIES) the majority sign per entry is the sign of Σ_i D_i ("total") or of
//           Σ_i sign(D_i) ("frequency"), taken on the pruned, unweighted deltas (>= 0 counts as +);
//   merge:  with election, Σ_i w_i·D_i over the deltas whose entry has the majority sign, divided by
//           how many have it (at least 1); without, the plain Σ_i w_i·D_i;
// then the merged matrix is truncated to `rank` by SVD (B = U·S, A = Vh). Unlike cat/linear/svd this
// needs the dense out × in deltas and a dense SVD (one-sided Jacobi, O(out·in·min(out,in)) per sweep):
// an offline operation, seconds per SmolLM2-sized matrix in a release build.

import Kernels

enum TaskArithmetic {
    enum Pruning {
        case magnitude
        case random(seed: UInt64)
    }

    static func combine(parts: [(LoRAModule, Float)], density: Float, rank: Int, maxRank: Int, pruning: Pruning,
                        electSign: LoRAAdapter.MajoritySign?, module: String) throws -> LoRAModule {
        guard density.isFinite, density >= 0 else {
            throw LoRAError.incompatible("density is \(density); expected a fraction in [0, 1]")
        }
        guard rank >= 1, rank <= maxRank else { throw LoRAError.rankOutOfRange(module: module, rank: rank, maxRank: maxRank) }
        let inF = parts[0].0.inFeatures, outF = parts[0].0.outFeatures
        let n = inF * outF
        var deltas = parts.map { $0.0.delta() }
        if density < 1 {  // PEFT: density >= 1 prunes nothing
            switch pruning {
            case .magnitude:
                let k = Int(Double(density) * Double(n))
                for i in deltas.indices {
                    let order = (0..<n).sorted { abs(deltas[i][$0]) > abs(deltas[i][$1]) }
                    var kept = [Float](repeating: 0, count: n)
                    for j in order.prefix(k) { kept[j] = deltas[i][j] }
                    deltas[i] = kept
                }
            case .random(let seed):
                var rng = SplitMix64(seed: seed)
                for i in deltas.indices {
                    for j in 0..<n {
                        deltas[i][j] = rng.nextUnit() < Double(density) ? deltas[i][j] / density : 0
                    }
                }
            }
        }
        var merged = [Float](repeating: 0, count: n)
        if let electSign {
            for j in 0..<n {
                var magnitude: Float = 0
                for d in deltas { magnitude += electSign == .total ? d[j] : sign(d[j]) }
                let majority: Float = magnitude >= 0 ? 1 : -1
                var sum: Float = 0, count: Float = 0
                for (i, d) in deltas.enumerated() where sign(d[j]) == majority {
                    sum += parts[i].1 * d[j]
                    count += 1
                }
                merged[j] = sum / max(count, 1)
            }
        } else {
            for (i, d) in deltas.enumerated() { for j in 0..<n { merged[j] += parts[i].1 * d[j] } }
        }
        let t = SmallLinalg.truncatedDense(merged, out: outF, inFeatures: inF, keep: rank)
        return LoRAModule(rank: rank, inFeatures: inF, outFeatures: outF, a: t.a, b: t.b, scale: 1)
    }

    private static func sign(_ x: Float) -> Float { x > 0 ? 1 : x < 0 ? -1 : 0 }
}

extension SmallLinalg {
    /// The best rank-`k` factorization (B out × k, A k × in) of a dense out × in f32 matrix.
    static func truncatedDense(_ d: [Float], out: Int, inFeatures: Int, keep k: Int) -> (b: [Float], a: [Float]) {
        var m = Matrix(rows: out, cols: inFeatures, v: d.map(Double.init))
        let transposed = inFeatures > out
        if transposed { m = m.transposed }
        // m = U·S·Vᵀ with fewer columns than rows.
        let (u, s, v) = svd(m)
        let kk = min(k, s.count)
        var b = [Float](repeating: 0, count: out * k), a = [Float](repeating: 0, count: k * inFeatures)
        for j in 0..<kk {
            // Not transposed: B = U·S, A = Vᵀ. Transposed (mᵀ = U·S·Vᵀ): B = V·S, A = Uᵀ.
            for r in 0..<out { b[r * k + j] = Float((transposed ? v[r, j] : u[r, j]) * s[j]) }
            for c in 0..<inFeatures { a[j * inFeatures + c] = Float(transposed ? u[c, j] : v[c, j]) }
        }
        return (b, a)
    }
}

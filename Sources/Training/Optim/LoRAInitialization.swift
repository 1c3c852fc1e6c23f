// A new adapter's starting weights, as PEFT makes them (tuners/lora/layer.py):
//
// `.lora` (init_lora_weights=True, `reset_lora_parameters`): A (shape [r, in], a Linear's weight) from
// torch.nn.init.kaiming_uniform_ with a = √5, B (shape [out, r]) zero, so the adapter starts as the
// identity on the base. kaiming_uniform_ with a = √5 on fan_in = in: gain = √(2 / (1 + a²)) = √(1/3),
// bound = gain·√3/√fan_in = 1/√in, values uniform in [−bound, bound). The numbers come from
// SplitMix64 seeded by the caller (deterministic per seed; torch's generator is not reproduced, only
// the distribution).
//
// `.pissa` (init_lora_weights="pissa", `pissa_init`; Meng et al., "PiSSA", 2024): with the base
// weight's SVD W = U·S·Vᵀ (the dequantized stored weight, in double; only the top r triplets are
// computed, Kernels' topSingularTriplets) and the adapter's scale s,
// A0 = diag(√(S_r/s))·V_rᵀ and B0 = U_r·diag(√(S_r/s)), so s·B0·A0 is W's best rank-r approximation;
// PEFT then replaces the base by the residual W − s·B0·A0 and trains A, B from (A0, B0). No
// randomness: the seed plays no part. Singular vectors carry a sign each, so (A0, B0) agree with
// PEFT's only up to those signs; the product B0·A0 is unique when S_r > S_{r+1}.
//
// DoRA (use_dora=True, `dora_init`): the magnitude vector starts at the row norms ‖W + s·B·A‖ with the
// starting A, B: ‖W‖ for both inits (for PiSSA the residual plus s·B0·A0 is W again).

import Kernels

public enum LoRAInitialization {
    /// How a new adapter's A and B start.
    public enum Method: String, Sendable, CaseIterable {
        /// PEFT's default: A Kaiming-uniform, B zero.
        case lora
        /// PiSSA: A, B from the top-r singular triplets of W; trained against the residual.
        case pissa
    }

    /// kaiming_uniform_(a = √5)'s bound for a weight with `fanIn` inputs: 1/√fanIn.
    public static func kaimingUniformBound(fanIn: Int) -> Float { Float(1 / Double(fanIn).squareRoot()) }

    /// A's values, row-major [rank, inFeatures].
    public static func loraA(rank: Int, inFeatures: Int, rng: inout SplitMix64) -> [Float] {
        precondition(rank > 0 && inFeatures > 0)
        let bound = Double(kaimingUniformBound(fanIn: inFeatures))
        return (0..<(rank * inFeatures)).map { _ in Float((2 * rng.nextUnit() - 1) * bound) }
    }

    /// B's values, row-major [outFeatures, rank]: zero.
    public static func loraB(outFeatures: Int, rank: Int) -> [Float] {
        [Float](repeating: 0, count: outFeatures * rank)
    }

    /// PiSSA's (A0 [rank, in], B0 [out, rank]) for the row-major out × in weight `w` and the adapter's
    /// folded scale. Rows of B0 follow the rows of `w` (a row permutation of W permutes U's rows alike).
    public static func pissa(weight w: [Double], outFeatures: Int, inFeatures: Int, rank: Int,
                             scale: Float) throws(SVDError) -> (a: [Float], b: [Float]) {
        precondition(rank > 0 && rank <= min(outFeatures, inFeatures) && scale > 0)
        let svd = try topSingularTriplets(w, rows: outFeatures, cols: inFeatures, count: rank)
        var a = [Float](repeating: 0, count: rank * inFeatures)
        var b = [Float](repeating: 0, count: outFeatures * rank)
        for i in 0..<rank {
            let root = (svd.values[i] / Double(scale)).squareRoot()
            for c in 0..<inFeatures { a[i * inFeatures + c] = Float(root * svd.rightTransposed[i * inFeatures + c]) }
            for o in 0..<outFeatures { b[o * rank + i] = Float(svd.left[o * rank + i] * root) }
        }
        return (a, b)
    }

    /// DoRA's starting magnitude: the Euclidean norm of each row of W (accumulated in double).
    public static func rowNorms(_ w: WeightMatrix) -> [Float] {
        var row = [Float](repeating: 0, count: w.cols)
        return (0..<w.rows).map { r in
            row.withUnsafeMutableBufferPointer { w.decodeRow(r, into: $0.baseAddress!) }
            return Float(row.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
        }
    }

    /// W's stored rows decoded (dequantized) into a row-major out × in matrix in double.
    public static func dequantized(_ w: WeightMatrix) -> [Double] {
        var out = [Double](repeating: 0, count: w.rows * w.cols)
        var row = [Float](repeating: 0, count: w.cols)
        for r in 0..<w.rows {
            row.withUnsafeMutableBufferPointer { w.decodeRow(r, into: $0.baseAddress!) }
            for c in 0..<w.cols { out[r * w.cols + c] = Double(row[c]) }
        }
        return out
    }
}

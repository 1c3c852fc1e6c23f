// Gradient clipping by global norm and gradient accumulation over micro-batches.
//
// Clipping follows torch.nn.utils.clip_grad_norm_ (norm_type 2): the global norm is the 2-norm of
// the per-tensor 2-norms; every gradient is multiplied by min(1, max_norm / (norm + 1e-6)), computed
// in f32 as torch does on f32 tensors (the norm itself is summed in double here, which is at least as
// accurate as torch's f32 reduction). A non-finite norm is returned for the caller to skip the step
// (torch would multiply by NaN).

public enum GradientClipping {
    /// The 2-norm of all gradients together.
    public static func globalNorm(_ gradients: [[Float]]) -> Double {
        var total = 0.0
        for tensor in gradients {
            var sum = 0.0
            for x in tensor { sum += Double(x) * Double(x) }
            total += sum
        }
        return total.squareRoot()
    }

    /// Scales `gradients` so their global norm is at most `maxNorm`; returns the norm before clipping.
    /// Non-finite norm: nothing is changed.
    @discardableResult
    public static func clip(_ gradients: inout [[Float]], maxNorm: Double) -> Double {
        let norm = globalNorm(gradients)
        guard norm.isFinite else { return norm }
        let coefficient = min(Float(maxNorm) / (Float(norm) + 1e-6), 1)
        guard coefficient < 1 else { return norm }
        for i in gradients.indices {
            gradients[i].withUnsafeMutableBufferPointer { g in for k in 0..<g.count { g[k] *= coefficient } }
        }
        return norm
    }
}

/// Sums gradients over the micro-batches of one optimiser step. The training loss is a mean over
/// trained tokens; when each micro-batch's gradient is a sum over its tokens, `take(dividingBy:
/// tokens)` gives the gradient of the step's token mean however the tokens fell into micro-batches,
/// and when each is already a mean, `takeMean()` averages them (torch's loss / accumulation_steps).
public struct GradientAccumulator: Sendable {
    public let tensorSizes: [Int]
    public private(set) var sums: [[Float]]
    public private(set) var microBatches = 0
    /// Trained tokens added with the gradients (`add(_:tokens:)`).
    public private(set) var tokens = 0

    public init(tensorSizes: [Int]) {
        self.tensorSizes = tensorSizes
        sums = tensorSizes.map { [Float](repeating: 0, count: $0) }
    }

    public mutating func add(_ gradients: [[Float]], tokens: Int = 0) {
        precondition(gradients.count == sums.count)
        for i in sums.indices {
            precondition(gradients[i].count == sums[i].count)
            sums[i].withUnsafeMutableBufferPointer { s in
                gradients[i].withUnsafeBufferPointer { g in for k in 0..<s.count { s[k] += g[k] } }
            }
        }
        microBatches += 1
        self.tokens += tokens
    }

    /// The sums divided by `divisor`; the accumulator starts over.
    public mutating func take(dividingBy divisor: Float) -> [[Float]] {
        var out = sums
        for i in out.indices { out[i].withUnsafeMutableBufferPointer { o in for k in 0..<o.count { o[k] /= divisor } } }
        reset()
        return out
    }

    /// The mean over micro-batches.
    public mutating func takeMean() -> [[Float]] { take(dividingBy: Float(max(1, microBatches))) }

    /// The sums divided by the trained tokens added.
    public mutating func takeTokenMean() -> [[Float]] { take(dividingBy: Float(max(1, tokens))) }

    public mutating func reset() {
        for i in sums.indices { sums[i].withUnsafeMutableBufferPointer { s in for k in 0..<s.count { s[k] = 0 } } }
        microBatches = 0
        tokens = 0
    }
}

// Which product runs for a weight matrix: the one place that weighs the numerics (f32 or 8-bit
// activations), the f32 strategy (fused kernels or dequantized tiles + sgemm, by token count) and the
// repacked copy (the 8-row interleaved layout, made at load). `matmul`, `matmulQ8` and the forward
// pass (LlamaModel's `mm`, through `LlamaModel.Numerics.products`) all ask a `ProductPlan`, so the
// choice cannot drift between them. Every kernel has a plain reference: `multiplyReference`
// (`matmulReference` for f32 activations, `matmulQ8Reference` for 8-bit ones).

/// The kernel one product runs on.
public enum ProductKernel: Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// f32 activations; fused dequantize-and-dot C kernels on the stored rows (MatMul.swift).
    case fused
    /// f32 activations; tiles of weight rows dequantized to f32 (from the repacked copy when the
    /// matrix has one), then `cblas_sgemm` (MatMul.swift).
    case sgemm
    /// Activations quantized to Q8_0/Q8_1; integer block dots on the stored rows (MatMulQ8.swift,
    /// kernels_q8.c), summed in ggml's order.
    case q8
    /// Activations quantized to Q8_0/Q8_1; integer dots on the 8-row repacked copy (MatMulQ8.swift,
    /// kernels_q4x8.c).
    case q8Repacked

    public var description: String {
        switch self {
        case .fused: "fused"
        case .sgemm: "sgemm"
        case .q8: "q8"
        case .q8Repacked: "q8 repacked"
        }
    }
}

/// How a model's products run: the activations' rounding, whether weights get repacked copies at
/// load, and the f32 strategy.
public struct ProductPlan: Sendable, Equatable {
    public enum Activations: Sendable, Equatable {
        /// Activations stay f32: exact-weight f32 arithmetic.
        case f32
        /// Activations are quantized to Q8_0/Q8_1 as llama.cpp does, for the weight types that have
        /// a Q8 path (`hasQ8Path`: Q4_0, Q4_1, Q8_0); other types still run with f32 activations.
        case q8
    }

    public var activations: Activations
    /// Whether `prepare` gives matrices whose type has a repacked layout (Q4_1, Q8_0) an 8-row
    /// interleaved copy (RepackedWeights).
    public var repacksWeights: Bool
    /// The f32 products' strategy; `.automatic` picks by token count (MatMulTuning) unless
    /// LORAD_MATMUL_STRATEGY forces one.
    public var strategy: MatMulStrategy

    public init(activations: Activations = .f32, repacksWeights: Bool = false, strategy: MatMulStrategy = .automatic) {
        self.activations = activations
        self.repacksWeights = repacksWeights
        self.strategy = strategy
    }

    /// f32 activations, stored weights, automatic strategy.
    public static let f32 = ProductPlan()

    /// Whether a product on weights of `type` quantizes its activations under this plan.
    public func quantizesActivations(_ type: TensorType) -> Bool {
        activations == .q8 && hasQ8Path(type)
    }

    /// Whether `prepare` gives a matrix of `type` a repacked copy.
    public func repacks(_ type: TensorType) -> Bool {
        repacksWeights && RepackedWeights.supports(type)
    }

    /// `w` as this plan runs it: with a repacked copy when `repacks(w.type)` (and it has rows), else unchanged.
    public func prepare(_ w: WeightMatrix) -> WeightMatrix {
        repacks(w.type) ? w.withRepackedCopy() : w
    }

    /// The kernel that computes W · X for `tokens` activation rows. The repacked copy is used
    /// whenever the matrix carries one: by the Q8 kernels directly, by sgemm for its decoded tiles.
    public func kernel(for w: WeightMatrix, tokens: Int) -> ProductKernel {
        if quantizesActivations(w.type) { return w.repacked != nil ? .q8Repacked : .q8 }
        var chosen = strategy == .automatic ? MatMulTuning.override ?? .automatic : strategy
        if chosen == .automatic {
            chosen = tokens >= MatMulTuning.sgemmMinTokens ? .sgemm : .fused
        }
        return chosen == .sgemm ? .sgemm : .fused
    }

    /// Y[t][r] = W[r] · X[t] for t in 0..<tokens through `kernel(for:tokens:)`; X is `tokens × cols`,
    /// Y is `tokens × rows` (row stride `yStride`, default `rows`).
    ///
    /// Parallelism: `pool` if given; otherwise `threads > 1` uses the shared pool of that many threads
    /// (`ComputePool.shared(threads:)`) and `threads == 1` runs on the caller. `w.type` must be
    /// computable. `alongside` runs in the same pool call as the tiles (see `SideWork`).
    public func multiply(_ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int, _ y: UnsafeMutablePointer<Float>,
                         yStride: Int? = nil, threads: Int = 1, pool: ComputePool? = nil, kernels: KernelPath = .best,
                         alongside side: SideWork? = nil) {
        precondition(w.type.isComputable, "multiply: \(w.type) is not computable; the caller should have checked")
        guard tokens > 0, w.rows > 0 else {
            side?.run(on: nil)  // the side work still runs
            return
        }
        let ys = yStride ?? w.rows
        let pool = pool ?? (threads > 1 ? ComputePool.shared(threads: threads) : nil)
        let path = kernels.usable
        switch kernel(for: w, tokens: tokens) {
        case .fused: matmulFused(w, x, tokens: tokens, y, ys: ys, pool: pool, path: path, side: side)
        case .sgemm: matmulSgemm(w, x, tokens: tokens, y, ys: ys, pool: pool, path: path, side: side)
        case .q8: matmulQ8Stored(w, x, tokens: tokens, y, ys: ys, pool: pool, path: path, side: side)
        case .q8Repacked: matmulQ8Repacked(w.repacked!, x, tokens: tokens, y, ys: ys, pool: pool, path: path, side: side)
        }
    }

    /// The plain reference for `multiply` under this plan (single-threaded, slow; for tests):
    /// `matmulQ8Reference` where the activations are quantized, else `matmulReference`.
    public func multiplyReference(_ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int,
                                  _ y: UnsafeMutablePointer<Float>, yStride: Int? = nil) {
        if quantizesActivations(w.type) {
            matmulQ8Reference(w, x, tokens: tokens, y, yStride: yStride)
        } else {
            matmulReference(w, x, tokens: tokens, y, yStride: yStride)
        }
    }
}

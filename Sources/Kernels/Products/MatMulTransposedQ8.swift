// The transposed product dX = dY·W in 8 bits, for the backward pass under q8 numerics.
//
// matmulTransposed (MatMulTransposed.swift) decodes W to f32 tiles and runs sgemm; that f32 work is
// most of a training step. Here W's transpose is stored once as Q8_0 (`TransposedQ8Weights`: row i of
// the copy is column i of W, its 32-value blocks running along W's output dimension), so
// dX[t][i] = Σ_r dY[t][r]·Wᵀ[i][r] is exactly the shape of the inference product Y = W·X: dY's rows
// are quantized per 32-value block as activations are (lorad_*_quantize_q8, Q8_0 codes) and the
// block pairs are integer dots in the existing 8-row repacked Q8_0 kernels (matmulQ8Repacked), no new
// kernel. The copy is made from W's decoded values (a Q4_1 weight re-quantized to Q8_0 along the other
// axis: one more rounding, ~0.4% of a block's largest magnitude at most), so the result differs from
// the f32 path by that and by dY's 8-bit rounding; TrainingPass's q8 backward is measured against the
// f32 backward in the tests. `matmulTransposedQ8Reference` is the plain double-precision product of the
// same quantized operands that the kernel is tested against.
//
// Memory: 34 bytes per 32 weights (1.0625 bytes per weight) for every matrix given, in the repacked
// layout only (the row-major Q8_0 bytes are a temporary of the constructor).

internal import CKernels

/// Wᵀ of a weight matrix, quantized to Q8_0 along W's output dimension, in the 8-row repacked layout.
public final class TransposedQ8Weights: @unchecked Sendable {
    // @unchecked: immutable after init (RepackedWeights owns the bytes).
    /// W's shape: Wᵀ has `cols` rows of `rows` values.
    public let rows: Int
    public let cols: Int
    let packed: RepackedWeights

    /// Whether `w` can have one: a computable type and an output dimension of whole 32-value blocks.
    public static func supports(_ w: WeightMatrix) -> Bool { w.type.isComputable && w.rows % 32 == 0 && w.rows > 0 }

    /// Decodes `w` a strip of rows at a time, transposes and quantizes it to Q8_0 (ggml's reference
    /// rounding, quantizeBlockQ8_0), then repacks. Rows of Wᵀ are independent, so they are shared out
    /// over `pool` (strips of 32 W rows = one Q8_0 block per Wᵀ row at a time).
    public init(_ w: WeightMatrix, pool: ComputePool? = nil) {
        precondition(Self.supports(w), "TransposedQ8Weights: \(w.type) \(w.rows)×\(w.cols) needs a computable type and rows % 32 == 0")
        rows = w.rows
        cols = w.cols
        let nb = w.rows / 32, rowBytes = nb * 34
        let q8 = UnsafeMutableRawPointer.allocate(byteCount: w.cols * rowBytes, alignment: 64)
        defer { q8.deallocate() }
        let threads = pool?.threadCount ?? 1
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: threads * 32 * w.cols)
        defer { scratch.deallocate() }
        let body: (Int, Int) -> Void = { b, thread in
            let strip = scratch + thread * 32 * w.cols   // 32 decoded rows of W
            for j in 0..<32 { w.decodeRow(b * 32 + j, into: strip + j * w.cols) }
            var block = [Float](repeating: 0, count: 32)
            block.withUnsafeMutableBufferPointer { blk in
                for i in 0..<w.cols {
                    for j in 0..<32 { blk[j] = strip[j * w.cols + i] }
                    quantizeBlockQ8_0(blk.baseAddress!, q8 + i * rowBytes + b * 34)
                }
            }
        }
        if let pool { pool.parallelFor(nb, body) } else { for b in 0..<nb { body(b, 0) } }
        packed = RepackedWeights(WeightMatrix(type: .q8_0, rows: w.cols, cols: w.rows, data: UnsafeRawPointer(q8)))
    }

    /// Bytes held.
    public var byteCount: Int { packed.byteCount }

    /// Decodes rows i0..<i1 of Wᵀ (each `rows` values) into `dst`: the quantized operand, for tests.
    public func decodeTransposed(rows i0: Int, _ i1: Int, into dst: UnsafeMutablePointer<Float>) {
        packed.dequantize(rows: i0, i1, into: dst)
    }
}

/// dX = dY·W (`accumulate`: dX += dY·W) from W's transposed Q8_0 copy: dY (tokens × rows, row stride
/// `dyStride`) scaled per row by a power of two (`gradientRowScale`) and quantized to Q8_0, integer
/// block dots, f32 sums, scaled back. Deterministic: each output is
/// one row kernel's sum whatever the pool size.
public func matmulTransposedQ8(_ t: TransposedQ8Weights, _ dy: UnsafePointer<Float>, tokens: Int, dyStride: Int? = nil,
                               _ dx: UnsafeMutablePointer<Float>, accumulate: Bool = false, pool: ComputePool? = nil,
                               kernels: KernelPath = .best) {
    guard tokens > 0 else { return }
    let ys = dyStride ?? t.rows
    // Each row is gathered (the quantizer reads whole rows of `t.rows` values) and scaled by a power
    // of two, `gradientRowScale`, and the products are scaled back (both exact).
    let scaled = UnsafeMutablePointer<Float>.allocate(capacity: tokens * t.rows)
    defer { scaled.deallocate() }
    var scales = [Float](repeating: 1, count: tokens)
    for r in 0..<tokens {
        let s = gradientRowScale(dy + r * ys, count: t.rows)
        scales[r] = s
        for j in 0..<t.rows { scaled[r * t.rows + j] = dy[r * ys + j] * s }
    }
    let n = tokens * t.cols
    let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
    defer { out.deallocate() }
    matmulQ8Repacked(t.packed, scaled, tokens: tokens, out, ys: t.cols, pool: pool, path: kernels.usable, side: nil)
    for r in 0..<tokens {
        let inverse = 1 / scales[r]
        for i in 0..<t.cols {
            let v = out[r * t.cols + i] * inverse
            dx[r * t.cols + i] = accumulate ? dx[r * t.cols + i] + v : v
        }
    }
}

/// The power of two that brings a dY row's largest magnitude into [1, 2) (1 for an all-zero or
/// non-finite row). Why: a Q8_0 block stores its scale d = amax/127 as f16, whose smallest normal is
/// 2⁻¹⁴ ≈ 6e-5, and a loss gradient's entries are often far smaller (the LM head's dY is a softmax
/// over 49,152 entries divided by the target count), so unscaled blocks flush to zero or keep a
/// couple of bits. Scaled, only blocks under ~2⁻¹⁴·127 ≈ 0.8% of their row's largest entry lose
/// precision in d, and their share of each dot product is as small.
private func gradientRowScale(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var amax: Float = 0
    for j in 0..<count { amax = max(amax, abs(x[j])) }
    guard amax > 0, amax.isFinite else { return 1 }
    // amax = m·2^e with m in [1, 2): scale by 2^−e, clamped to keep the scale and its inverse finite.
    return Float(sign: .plus, exponent: -max(-126, min(126, amax.exponent)), significand: 1)
}

/// The plain reference for `matmulTransposedQ8`: dY's rows scaled by `gradientRowScale` and quantized by
/// the Swift activation quantizer (`quantizeActivations`, the C quantizer's twin), every output Σ_blocks d_w·d_a·Σ q_w·q_a in double
/// precision over the decoded copy. Slow; for tests only.
public func matmulTransposedQ8Reference(_ t: TransposedQ8Weights, _ dy: UnsafePointer<Float>, tokens: Int,
                                        _ dx: UnsafeMutablePointer<Float>) {
    let nb = t.rows / 32
    let qa = UnsafeMutablePointer<Q8Block>.allocate(capacity: max(1, tokens * nb))
    defer { qa.deallocate() }
    var scales = [Float](repeating: 1, count: tokens)
    var row = [Float](repeating: 0, count: t.rows)
    for r in 0..<tokens {
        scales[r] = gradientRowScale(dy + r * t.rows, count: t.rows)
        for j in 0..<t.rows { row[j] = dy[r * t.rows + j] * scales[r] }
        row.withUnsafeBufferPointer { quantizeActivations($0.baseAddress!, count: t.rows, into: qa + r * nb) }
    }
    var wt = [Float](repeating: 0, count: t.rows)
    for i in 0..<t.cols {
        wt.withUnsafeMutableBufferPointer { t.decodeTransposed(rows: i, i + 1, into: $0.baseAddress!) }
        for r in 0..<tokens {
            var sum = 0.0
            for b in 0..<nb {
                let a = qa[r * nb + b]
                for j in 0..<32 { sum += Double(wt[b * 32 + j]) * Double(a.d) * Double(a.q[j]) }
            }
            dx[r * t.cols + i] = Float(sum / Double(scales[r]))
        }
    }
}

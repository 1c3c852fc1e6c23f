// Decode attention for the query heads that share one KV head: softmax(scale · q·Kᵀ) · V over a sequence's
// cached positions. The C kernels (kernels_attention.c, AVX2 with a portable twin) do the work, because
// Swift cannot compile this loop with AVX2/FMA for one function only; `attentionReference` is the plain
// double-precision version the tests compare them with.

internal import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Floats of scratch `attention` needs for `heads` heads over `count` positions of `headDim`.
public func attentionScratchCount(heads: Int, count: Int, headDim: Int) -> Int {
    Int(lorad_attention_scratch_floats(Int64(heads), Int64(count), Int64(headDim)))
}

/// Causal attention of `heads` query heads that share one KV head, over positions 0..<count:
/// for h in 0..<heads, `out[h·headDim ..< (h+1)·headDim]` = Σ_j p_hj · v_j with
/// p_hj = softmax_j(scale · q_h · k_j), q_h = `q + h·headDim`, k_j = `keys + j·kvStride`,
/// v_j = `values + j·kvStride` (headDim floats each; kvStride lets K and V be one head of wider rows).
///
/// `roundToF16`: q and the weights p are rounded to f16 (to nearest even) where llama.cpp rounds them
/// with an f16 KV cache. `scratch` holds `attentionScratchCount(heads:count:headDim:)` floats. Results
/// differ from a serial f32 loop only by summation order and a ≤ 2 ulp exp (AVX2). `count` < 1 gives
/// zeros. Thread-safe for disjoint `out` and `scratch`.
public func attention(q: UnsafePointer<Float>, heads: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                      kvStride: Int, count: Int, headDim: Int, scale: Float, roundToF16: Bool = false,
                      scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
                      path: KernelPath = .best) {
    let round: Int32 = roundToF16 ? 1 : 0
    switch path.usable {
    case .avx2:
        lorad_avx2_attention(q, Int64(heads), keys, values, Int64(kvStride), Int64(count), Int64(headDim), scale,
                             round, scratch, out)
    case .portable:
        lorad_portable_attention(q, Int64(heads), keys, values, Int64(kvStride), Int64(count), Int64(headDim), scale,
                                 round, scratch, out)
    }
}

/// The same attention in plain Swift with double-precision dots, softmax and sums (the tests' reference).
/// With `roundToF16`, q and the weights are rounded to f16 at the same points as the kernels.
public func attentionReference(q: UnsafePointer<Float>, heads: Int, keys: UnsafePointer<Float>,
                               values: UnsafePointer<Float>, kvStride: Int, count: Int, headDim: Int, scale: Float,
                               roundToF16: Bool = false, out: UnsafeMutablePointer<Float>) {
    func f16(_ x: Float) -> Float { roundToF16 ? f16ToF32(f32ToF16(x)) : x }
    for h in 0..<heads {
        let qh = (0..<headDim).map { Double(f16(q[h * headDim + $0])) }
        let o = out + h * headDim
        guard count > 0 else {
            for i in 0..<headDim { o[i] = 0 }
            continue
        }
        var s = [Double](repeating: 0, count: count)
        for j in 0..<count {
            var d = 0.0
            for i in 0..<headDim { d += qh[i] * Double(keys[j * kvStride + i]) }
            s[j] = d * Double(scale)
        }
        let m = s.max()!
        for j in 0..<count { s[j] = exp(s[j] - m) }
        let sum = s.reduce(0, +)
        let p = s.map { roundToF16 ? Double(f16(Float($0 / sum))) : $0 / sum }
        for i in 0..<headDim {
            var acc = 0.0
            for j in 0..<count { acc += p[j] * Double(values[j * kvStride + i]) }
            o[i] = Float(acc)
        }
    }
}

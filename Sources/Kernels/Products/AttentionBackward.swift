// The backward pass of causal grouped-query attention over one sequence, for the trainer: given the
// gradient of the attention output, the gradients of q, k and v, with the softmax weights recomputed
// row by row (the forward pass keeps none). The C kernels (kernels_attention.c, AVX2 with a portable
// twin) do the work; `attentionBackwardReference` is the plain double-precision version the tests
// compare them with.

internal import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Floats of scratch `attentionBackward` needs for `count` rows.
public func attentionBackwardScratchCount(count: Int, headDim: Int) -> Int {
    Int(lorad_attention_backward_scratch_floats(Int64(count), Int64(headDim)))
}

/// For the `heads` query heads that share one KV head, over rows 0..<count where row i attends to rows
/// 0...i (p_hij = softmax_j(scale · q_hi·k_j), o_hi = Σ_j p_hij·v_j): writes dq_hi = scale·Σ_j ds_hij·k_j,
/// dk_j = scale·Σ_{h,i} ds_hij·q_hi and dv_j = Σ_{h,i} p_hij·do_hi, where ds_hij = p_hij·(dp_hij − Σ_j' p_hij'·dp_hij')
/// and dp_hij = do_hi·v_j. Row i of head h of `q`, `dOut` and `dq` is at i·qStride + h·headDim; row j of
/// `keys`, `values`, `dk` and `dv` at j·kvStride (headDim floats each). All three outputs are
/// overwritten. Deterministic (sums in a fixed order); `scratch` holds
/// `attentionBackwardScratchCount(count:headDim:)` floats. Thread-safe for disjoint outputs and scratch.
public func attentionBackward(q: UnsafePointer<Float>, dOut: UnsafePointer<Float>, qStride: Int, heads: Int,
                              keys: UnsafePointer<Float>, values: UnsafePointer<Float>, kvStride: Int, count: Int,
                              headDim: Int, scale: Float, scratch: UnsafeMutablePointer<Float>,
                              dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                              path: KernelPath = .best) {
    switch path.usable {
    case .avx2:
        lorad_avx2_attention_backward(q, dOut, Int64(qStride), Int64(heads), keys, values, Int64(kvStride), Int64(count),
                                      Int64(headDim), scale, scratch, dq, dk, dv)
    case .portable:
        lorad_portable_attention_backward(q, dOut, Int64(qStride), Int64(heads), keys, values, Int64(kvStride), Int64(count),
                                          Int64(headDim), scale, scratch, dq, dk, dv)
    }
}

/// The same gradients in plain Swift, every dot, softmax and sum in double (the tests' reference).
public func attentionBackwardReference(q: UnsafePointer<Float>, dOut: UnsafePointer<Float>, qStride: Int, heads: Int,
                                       keys: UnsafePointer<Float>, values: UnsafePointer<Float>, kvStride: Int, count n: Int,
                                       headDim hd: Int, scale: Float,
                                       dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>) {
    var dK = [Double](repeating: 0, count: n * hd), dV = dK
    for h in 0..<heads {
        for i in 0..<n {
            let qi = q + i * qStride + h * hd, doi = dOut + i * qStride + h * hd
            var s = [Double](repeating: 0, count: i + 1), dp = s
            for j in 0...i {
                var a = 0.0, b = 0.0
                for c in 0..<hd {
                    a += Double(qi[c]) * Double(keys[j * kvStride + c])
                    b += Double(doi[c]) * Double(values[j * kvStride + c])
                }
                s[j] = a * Double(scale)
                dp[j] = b
            }
            let m = s.max()!
            let e = s.map { exp($0 - m) }
            let sum = e.reduce(0, +)
            let p = e.map { $0 / sum }
            let dot = zip(p, dp).reduce(0) { $0 + $1.0 * $1.1 }
            var dqi = [Double](repeating: 0, count: hd)
            for j in 0...i {
                let ds = p[j] * (dp[j] - dot) * Double(scale)
                for c in 0..<hd {
                    dqi[c] += ds * Double(keys[j * kvStride + c])
                    dK[j * hd + c] += ds * Double(qi[c])
                    dV[j * hd + c] += p[j] * Double(doi[c])
                }
            }
            for c in 0..<hd { dq[i * qStride + h * hd + c] = Float(dqi[c]) }
        }
    }
    for j in 0..<n {
        for c in 0..<hd {
            dk[j * kvStride + c] = Float(dK[j * hd + c])
            dv[j * kvStride + c] = Float(dV[j * hd + c])
        }
    }
}

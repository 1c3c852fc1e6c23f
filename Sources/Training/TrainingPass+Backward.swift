// The backward pass of TrainingPass, block by block from the last: SwiGLU MLP, its RMSNorm and
// residual, the output projection, causal attention with GQA, RoPE (its transpose, with the table the
// forward used), the Q/K/V projections, the attention RMSNorm and residual. The base is frozen, so each
// projection passes dX = dY·W back (Kernels' matmulTransposed on the stored weights) and only the LoRA
// modules collect gradients.
//
// Attention: the forward pass keeps no softmax weights (T² per head); Kernels' attentionBackward
// recomputes them row by row for each segment and KV head group (a C kernel: scores, causal softmax,
// then dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)), dQ = scale·dS·K, dK = scale·dSᵀ·Q,
// nothing above the diagonal). Attention never crosses a segment's rows, so a packed row's examples
// stay apart, as in the forward pass (one batch item each).

import Foundation
import Kernels
import Llama
import LoRA

extension TrainingPass {
    func backward(_ saved: Saved, _ layout: BatchLayout, _ dOut: [Float], _ p: LoRAParameters,
                  _ adapter: LoRAAdapter, _ grads: inout LoRAGradients) {
        let c = model.config
        let T = layout.tokenCount, E = c.embeddingLength, F = c.feedForwardLength
        // Positions restart at 0 in every segment, so one table for the longest covers them all.
        let rope = RopeTable(config: c, start: 0, count: layout.longest)
        func unrotate(_ x: inout [Float], heads: Int) {
            for s in layout.spans { rope.applyTransposed(&x, from: s.lowerBound, heads: heads, headDim: c.headDim, tokens: s.count) }
        }
        var dX = dOut
        for l in (0..<c.layerCount).reversed() {
            let s = saved.layers[l]
            let w = model.weights.layers[l]
            // MLP: x_out = ffn_inp + Wdown·(silu(g) ⊙ u), g = Wgate·h2, u = Wup·h2, h2 = rmsnorm(ffn_inp).
            var act = s.gate
            model.swiGLU(&act, s.up)
            var dAct = [Float](repeating: 0, count: T * F)
            linearBackward(w.wDown, x: act, dy: dX, tokens: T, into: &dAct, layer: l, target: .down, p, adapter, &grads) { s.ffnOut }
            var ffnNorm = [Float](repeating: 0, count: T * E)
            rmsNorm(s.ffnInput, w.ffnNorm, into: &ffnNorm, tokens: T, eps: c.rmsEpsilon)
            var dGate = [Float](repeating: 0, count: T * F), dUp = dGate
            for i in 0..<(T * F) {
                let g = s.gate[i]
                let sig = 1 / (1 + expf(-g))
                dUp[i] = dAct[i] * g * sig
                dGate[i] = dAct[i] * s.up[i] * sig * (1 + g * (1 - sig))
            }
            var dH = [Float](repeating: 0, count: T * E)
            linearBackward(w.wGate, x: ffnNorm, dy: dGate, tokens: T, into: &dH, layer: l, target: .gate, p, adapter, &grads) { s.gate }
            linearBackward(w.wUp, x: ffnNorm, dy: dUp, tokens: T, into: &dH, layer: l, target: .up, p, adapter, &grads) { s.up }
            rmsNormBackward(s.ffnInput, w.ffnNorm, dH, into: &dX, tokens: T, eps: c.rmsEpsilon)

            // Attention: ffn_inp = x + Wo·attention(rope(Wq·h1), rope(Wk·h1), Wv·h1), h1 = rmsnorm(x).
            var dAttn = [Float](repeating: 0, count: T * c.qDim)
            linearBackward(w.wo, x: s.attn, dy: dX, tokens: T, into: &dAttn, layer: l, target: .o, p, adapter, &grads) { s.attnOut }
            var (dq, dk, dv) = attentionBackward(q: s.q, k: s.k, v: s.v, dOut: dAttn, spans: layout.spans)
            unrotate(&dq, heads: c.headCount)
            unrotate(&dk, heads: c.kvHeadCount)
            dH = [Float](repeating: 0, count: T * E)
            var attnNorm = [Float](repeating: 0, count: T * E)
            rmsNorm(s.input, w.attnNorm, into: &attnNorm, tokens: T, eps: c.rmsEpsilon)
            // q and k were saved after RoPE; a DoRA module's output is before it (the rotation's transpose
            // is its inverse).
            linearBackward(w.wq, x: attnNorm, dy: dq, tokens: T, into: &dH, layer: l, target: .q, p, adapter, &grads) {
                var q = s.q
                unrotate(&q, heads: c.headCount)
                return q
            }
            linearBackward(w.wk, x: attnNorm, dy: dk, tokens: T, into: &dH, layer: l, target: .k, p, adapter, &grads) {
                var k = s.k
                unrotate(&k, heads: c.kvHeadCount)
                return k
            }
            linearBackward(w.wv, x: attnNorm, dy: dv, tokens: T, into: &dH, layer: l, target: .v, p, adapter, &grads) { s.v }
            rmsNormBackward(s.input, w.attnNorm, dH, into: &dX, tokens: T, eps: c.rmsEpsilon)
            saved.layers[l] = SavedLayer()  // done with this block's activations
        }
    }

    /// For y = W·x (+ s·B·(A·x) when the adapter has this module): dx += dY·W (+ s·dY·B·A), and the
    /// module's dA, dB added into `grads`. x is tokens × in, dy tokens × out, dx tokens × in. For a DoRA
    /// module (y = d ⊙ (W·x + s·B·A·x)), `output` gives y (tokens × out), read only then.
    func linearBackward(_ w: WeightMatrix, x: [Float], dy dyIn: [Float], tokens T: Int, into dx: inout [Float],
                        layer: Int, target: LoRATarget, _ p: LoRAParameters, _ adapter: LoRAAdapter,
                        _ grads: inout LoRAGradients, output: () -> [Float]) {
        let index = p.index(layer: layer, target: target)
        var dy = dyIn
        if let i = index, let mag = p.modules[i].magnitude,
           let d = adapter.module(layer: layer, target: target)?.doraScale {
            let y = output()
            let nOut = p.modules[i].outFeatures
            var dm = [Double](repeating: 0, count: nOut)
            for t in 0..<T {
                for o in 0..<nOut {
                    dm[o] += Double(dy[t * nOut + o]) * Double(y[t * nOut + o])
                    dy[t * nOut + o] *= d[o]
                }
            }
            for o in 0..<nOut where mag[o] != 0 { grads.magnitude[i]![o] += Float(dm[o] / Double(mag[o])) }
        }
        dy.withUnsafeBufferPointer { dyb in
            dx.withUnsafeMutableBufferPointer { dxb in
                baseBackward(w, transposed?.layers[layer][target], dyb.baseAddress!, tokens: T, dxb.baseAddress!, accumulate: true)
            }
        }
        guard let i = index else { return }
        let m = p.modules[i]
        let r = m.rank, nIn = m.inFeatures, nOut = m.outFeatures
        var u = [Float](repeating: 0, count: T * r), du = u
        x.withUnsafeBufferPointer { X in
            dy.withUnsafeBufferPointer { dY in
                m.a.withUnsafeBufferPointer { A in
                    m.b.withUnsafeBufferPointer { B in
                        u.withUnsafeMutableBufferPointer { U in
                            du.withUnsafeMutableBufferPointer { dU in
                                // U (T × r) = X · Aᵀ
                                sgemm(transB: true, m: T, n: r, k: nIn, X.baseAddress!, lda: nIn, A.baseAddress!, ldb: nIn,
                                      U.baseAddress!, ldc: r)
                                // dB (out × r) += s · dYᵀ · U
                                grads.b[i].withUnsafeMutableBufferPointer { gB in
                                    sgemm(transA: true, m: nOut, n: r, k: T, alpha: m.scale, dY.baseAddress!, lda: nOut,
                                          U.baseAddress!, ldb: r, beta: 1, gB.baseAddress!, ldc: r)
                                }
                                // dU (T × r) = s · dY · B
                                sgemm(m: T, n: r, k: nOut, alpha: m.scale, dY.baseAddress!, lda: nOut, B.baseAddress!, ldb: r,
                                      dU.baseAddress!, ldc: r)
                                // dA (r × in) += dUᵀ · X
                                grads.a[i].withUnsafeMutableBufferPointer { gA in
                                    sgemm(transA: true, m: r, n: nIn, k: T, dU.baseAddress!, lda: r, X.baseAddress!, ldb: nIn,
                                          beta: 1, gA.baseAddress!, ldc: nIn)
                                }
                                // dX (T × in) += dU · A
                                dx.withUnsafeMutableBufferPointer { dX in
                                    sgemm(m: T, n: nIn, k: r, dU.baseAddress!, lda: r, A.baseAddress!, ldb: nIn, beta: 1,
                                          dX.baseAddress!, ldc: nIn)
                                }
                                // PiSSA's frozen term −s·B0·A0 (LoRAParameters.swift) has no gradient of its own but
                                // its share of dX: dX −= (s · dY · B0) · A0, reusing dU.
                                if let f = m.frozen {
                                    f.b.withUnsafeBufferPointer { B0 in
                                        sgemm(m: T, n: r, k: nOut, alpha: m.scale, dY.baseAddress!, lda: nOut, B0.baseAddress!, ldb: r,
                                              dU.baseAddress!, ldc: r)
                                    }
                                    f.a.withUnsafeBufferPointer { A0 in
                                        dx.withUnsafeMutableBufferPointer { dX in
                                            sgemm(m: T, n: nIn, k: r, alpha: -1, dU.baseAddress!, lda: r, A0.baseAddress!, ldb: nIn,
                                                  beta: 1, dX.baseAddress!, ldc: nIn)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Gradients of causal GQA attention with respect to q (after RoPE, tokens × qDim), k (after RoPE)
    /// and v (tokens × kvDim), given the gradient of its output (tokens × qDim); attention runs inside
    /// each of `spans` (a segment's rows). One job per segment and KV head: it owns that head's columns
    /// of the segment's rows of dK and dV and its query heads' columns of dQ.
    func attentionBackward(q: [Float], k: [Float], v: [Float], dOut: [Float], spans: [Range<Int>])
        -> (dq: [Float], dk: [Float], dv: [Float]) {
        let c = model.config
        let T = spans.last?.upperBound ?? 0
        let hd = c.headDim, Q = c.qDim, KV = c.kvDim, group = c.headCount / c.kvHeadCount
        let scale = 1 / sqrtf(Float(hd))
        var dq = [Float](repeating: 0, count: T * Q)
        var dk = [Float](repeating: 0, count: T * KV), dv = dk
        let longest = spans.map(\.count).max() ?? 0
        let threads = model.pool.threadCount
        let scratchCount = attentionBackwardScratchCount(count: longest, headDim: hd)
        var scratch = [Float](repeating: 0, count: threads * scratchCount)
        q.withUnsafeBufferPointer { qb in
        k.withUnsafeBufferPointer { kb in
        v.withUnsafeBufferPointer { vb in
        dOut.withUnsafeBufferPointer { ob in
        dq.withUnsafeMutableBufferPointer { dqb in
        dk.withUnsafeMutableBufferPointer { dkb in
        dv.withUnsafeMutableBufferPointer { dvb in
        scratch.withUnsafeMutableBufferPointer { sb in
            model.pool.parallelFor(spans.count * c.kvHeadCount) { job, thread in
                let span = spans[job / c.kvHeadCount], g = job % c.kvHeadCount
                let r0 = span.lowerBound
                Kernels.attentionBackward(q: qb.baseAddress! + r0 * Q + g * group * hd, dOut: ob.baseAddress! + r0 * Q + g * group * hd,
                                          qStride: Q, heads: group,
                                          keys: kb.baseAddress! + r0 * KV + g * hd, values: vb.baseAddress! + r0 * KV + g * hd,
                                          kvStride: KV, count: span.count, headDim: hd, scale: scale,
                                          scratch: sb.baseAddress! + thread * scratchCount,
                                          dq: dqb.baseAddress! + r0 * Q + g * group * hd,
                                          dk: dkb.baseAddress! + r0 * KV + g * hd, dv: dvb.baseAddress! + r0 * KV + g * hd)
            }
        }
        }
        }
        }
        }
        }
        }
        }
        return (dq, dk, dv)
    }
}

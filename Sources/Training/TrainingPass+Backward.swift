// The backward pass of TrainingPass, block by block from the last: SwiGLU MLP, its RMSNorm and
// residual, the output projection, causal attention with GQA, RoPE (its transpose, with the table the
// forward used), the Q/K/V projections, the attention RMSNorm and residual. The base is frozen, so each
// projection passes dX = dY·W back (Kernels' matmulTransposed on the stored weights) and only the LoRA
// modules collect gradients.
//
// Attention: the forward pass keeps no softmax weights (T² per head); they are recomputed here per
// KV head group with sgemm, S = scale·Q·Kᵀ, causal softmax, then the standard identities
// dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)), dQ = scale·dS·K, dK = scale·dSᵀ·Q.

import Foundation
import Kernels
import Llama
import LoRA

extension TrainingPass {
    func backward(_ saved: Saved, _ seq: TrainingSequence, _ dOut: [Float], _ p: LoRAParameters,
                  _ adapter: LoRAAdapter, _ grads: inout LoRAGradients) {
        let c = model.config
        let T = seq.tokens.count, E = c.embeddingLength, F = c.feedForwardLength
        let rope = RopeTable(config: c, start: 0, count: T)
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
            var (dq, dk, dv) = attentionBackward(q: s.q, k: s.k, v: s.v, dOut: dAttn, tokens: T)
            rope.applyTransposed(&dq, from: 0, heads: c.headCount, headDim: c.headDim, tokens: T)
            rope.applyTransposed(&dk, from: 0, heads: c.kvHeadCount, headDim: c.headDim, tokens: T)
            dH = [Float](repeating: 0, count: T * E)
            var attnNorm = [Float](repeating: 0, count: T * E)
            rmsNorm(s.input, w.attnNorm, into: &attnNorm, tokens: T, eps: c.rmsEpsilon)
            // q and k were saved after RoPE; a DoRA module's output is before it (the rotation's transpose
            // is its inverse).
            linearBackward(w.wq, x: attnNorm, dy: dq, tokens: T, into: &dH, layer: l, target: .q, p, adapter, &grads) {
                var q = s.q
                rope.applyTransposed(&q, from: 0, heads: c.headCount, headDim: c.headDim, tokens: T)
                return q
            }
            linearBackward(w.wk, x: attnNorm, dy: dk, tokens: T, into: &dH, layer: l, target: .k, p, adapter, &grads) {
                var k = s.k
                rope.applyTransposed(&k, from: 0, heads: c.kvHeadCount, headDim: c.headDim, tokens: T)
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
                matmulTransposed(w, dyb.baseAddress!, tokens: T, dxb.baseAddress!, accumulate: true, pool: model.pool)
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
    /// and v (tokens × kvDim), given the gradient of its output (tokens × qDim). One job per KV head:
    /// it owns that head's columns of dK and dV and its query heads' columns of dQ.
    func attentionBackward(q: [Float], k: [Float], v: [Float], dOut: [Float], tokens T: Int)
        -> (dq: [Float], dk: [Float], dv: [Float]) {
        let c = model.config
        let hd = c.headDim, Q = c.qDim, KV = c.kvDim, group = c.headCount / c.kvHeadCount
        let scale = 1 / sqrtf(Float(hd))
        var dq = [Float](repeating: 0, count: T * Q)
        var dk = [Float](repeating: 0, count: T * KV), dv = dk
        let threads = model.pool.threadCount
        var scratch = [Float](repeating: 0, count: threads * 2 * T * T)
        q.withUnsafeBufferPointer { qb in
        k.withUnsafeBufferPointer { kb in
        v.withUnsafeBufferPointer { vb in
        dOut.withUnsafeBufferPointer { ob in
        dq.withUnsafeMutableBufferPointer { dqb in
        dk.withUnsafeMutableBufferPointer { dkb in
        dv.withUnsafeMutableBufferPointer { dvb in
        scratch.withUnsafeMutableBufferPointer { sb in
            model.pool.parallelFor(c.kvHeadCount) { g, thread in
                let P = sb.baseAddress! + thread * 2 * T * T, dP = P + T * T
                let kg = kb.baseAddress! + g * hd, vg = vb.baseAddress! + g * hd
                let dkg = dkb.baseAddress! + g * hd, dvg = dvb.baseAddress! + g * hd
                for h in (g * group)..<((g + 1) * group) {
                    let qh = qb.baseAddress! + h * hd, doh = ob.baseAddress! + h * hd, dqh = dqb.baseAddress! + h * hd
                    // S = scale · Q_h · K_gᵀ, then the causal softmax in place.
                    sgemm(transB: true, m: T, n: T, k: hd, alpha: scale, qh, lda: Q, kg, ldb: KV, P, ldc: T)
                    for i in 0..<T {
                        let row = P + i * T
                        var mx = -Float.infinity
                        for j in 0...i { mx = max(mx, row[j]) }
                        var sum: Float = 0
                        for j in 0...i {
                            row[j] = expf(row[j] - mx)
                            sum += row[j]
                        }
                        let inv = 1 / sum
                        for j in 0...i { row[j] *= inv }
                        for j in (i + 1)..<T { row[j] = 0 }
                    }
                    // dV_g += Pᵀ · dO_h;  dP = dO_h · V_gᵀ
                    sgemm(transA: true, m: T, n: hd, k: T, P, lda: T, doh, ldb: Q, beta: 1, dvg, ldc: KV)
                    sgemm(transB: true, m: T, n: T, k: hd, doh, lda: Q, vg, ldb: KV, dP, ldc: T)
                    // dS = P ⊙ (dP − rowsum(P ⊙ dP)), into dP (zero above the diagonal, as P is).
                    for i in 0..<T {
                        let pr = P + i * T, dr = dP + i * T
                        var dot: Float = 0
                        for j in 0...i { dot += pr[j] * dr[j] }
                        for j in 0..<T { dr[j] = pr[j] * (dr[j] - dot) }
                    }
                    // dQ_h = scale · dS · K_g;  dK_g += scale · dSᵀ · Q_h
                    sgemm(m: T, n: hd, k: T, alpha: scale, dP, lda: T, kg, ldb: KV, dqh, ldc: Q)
                    sgemm(transA: true, m: T, n: hd, k: T, alpha: scale, dP, lda: T, qh, ldb: Q, beta: 1, dkg, ldc: KV)
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
        return (dq, dk, dv)
    }
}

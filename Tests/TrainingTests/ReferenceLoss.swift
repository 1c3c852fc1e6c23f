// The plain reference of the training loss: the Llama forward pass and the masked cross-entropy written
// out as straightforward loops in Double, with LoRA modules as Double arrays, so a test can take central
// differences of it with no f32 rounding in the way. Weights are decoded once from the GGUF (exact for
// the F32 test models). RoPE angles are pos·base^(−2i/n_rot) computed directly (the model multiplies
// repeatedly in f32; the difference is ~1e-7 relative, far below the tolerances that use this).

import Foundation
import Kernels
import Llama
import LoRA
import Testing
import Training

struct ReferenceModule {
    let layer: Int
    let target: LoRATarget
    let rank: Int
    let inFeatures: Int
    let outFeatures: Int
    let scale: Double
    var a: [Double]  // rank × in
    var b: [Double]  // out × rank, GGUF row order

    init(_ m: LoRAParameters.Module) {
        layer = m.layer
        target = m.target
        rank = m.rank
        inFeatures = m.inFeatures
        outFeatures = m.outFeatures
        scale = Double(m.scale)
        a = m.a.map(Double.init)
        b = m.b.map(Double.init)
    }
}

struct ReferenceLlama {
    let c: LlamaConfig
    let embedding: [[Double]]                          // vocab × E
    let layers: [(attnNorm: [Double], ffnNorm: [Double], w: [LoRATarget: [[Double]]])]
    let outputNorm: [Double]
    let output: [[Double]]                             // vocab × E

    init(model: LlamaModel) {
        c = model.config
        func rows(_ w: WeightMatrix) -> [[Double]] {
            (0..<w.rows).map { r in
                var row = [Float](repeating: 0, count: w.cols)
                row.withUnsafeMutableBufferPointer { w.decodeRow(r, into: $0.baseAddress!) }
                return row.map(Double.init)
            }
        }
        let ws = model.weights
        embedding = rows(ws.tokenEmbedding)
        output = rows(ws.output)
        outputNorm = ws.outputNorm.map(Double.init)
        layers = ws.layers.map { l in
            (l.attnNorm.map(Double.init), l.ffnNorm.map(Double.init),
             [.q: rows(l.wq), .k: rows(l.wk), .v: rows(l.wv), .o: rows(l.wo),
              .gate: rows(l.wGate), .up: rows(l.wUp), .down: rows(l.wDown)])
        }
    }

    /// The batch's mean cross-entropy over its masked targets.
    func loss(_ batch: [TrainingSequence], _ modules: [ReferenceModule]) -> Double {
        var sum = 0.0, count = 0
        for seq in batch {
            let x = finalHidden(seq.tokens, modules)
            for t in 1..<seq.tokens.count where seq.lossMask[t] {
                let n = rmsNorm(x[t - 1], outputNorm)
                let logits = output.map { dot($0, n) }
                let m = logits.max()!
                let lse = m + log(logits.reduce(0) { $0 + exp($1 - m) })
                sum += lse - logits[Int(seq.tokens[t])]
                count += 1
            }
        }
        return sum / Double(count)
    }

    func dot(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for i in a.indices { s += a[i] * b[i] }
        return s
    }

    func rmsNorm(_ x: [Double], _ w: [Double]) -> [Double] {
        let r = 1 / (x.reduce(0) { $0 + $1 * $1 } / Double(x.count) + Double(c.rmsEpsilon)).squareRoot()
        return x.indices.map { x[$0] * r * w[$0] }
    }

    /// W·x + s·B·(A·x) for every token.
    func project(_ xs: [[Double]], layer: Int, _ target: LoRATarget, _ modules: [ReferenceModule]) -> [[Double]] {
        let w = layers[layer].w[target]!
        let m = modules.first { $0.layer == layer && $0.target == target }
        return xs.map { x in
            var y = w.map { dot($0, x) }
            if let m {
                let u = (0..<m.rank).map { r in (0..<m.inFeatures).reduce(0.0) { $0 + m.a[r * m.inFeatures + $1] * x[$1] } }
                for o in 0..<m.outFeatures {
                    var s = 0.0
                    for r in 0..<m.rank { s += m.b[o * m.rank + r] * u[r] }
                    y[o] += m.scale * s
                }
            }
            return y
        }
    }

    /// Rotates pairs (2i, 2i+1) of each head by pos·base^(−2i/n_rot), as the GGUF's permuted rows expect.
    func rope(_ v: inout [Double], pos: Int, heads: Int) {
        let hd = c.headDim, rd = c.ropeDimensions
        for h in 0..<heads {
            for i in 0..<(rd / 2) {
                let angle = Double(pos) * pow(Double(c.ropeFreqBase), -2 * Double(i) / Double(rd)) * Double(c.ropeFreqScale)
                let a = v[h * hd + 2 * i], b = v[h * hd + 2 * i + 1]
                v[h * hd + 2 * i] = a * cos(angle) - b * sin(angle)
                v[h * hd + 2 * i + 1] = a * sin(angle) + b * cos(angle)
            }
        }
    }

    /// The last block's output per token.
    func finalHidden(_ tokens: [Int32], _ modules: [ReferenceModule]) -> [[Double]] {
        let T = tokens.count, hd = c.headDim, group = c.headCount / c.kvHeadCount
        var x = tokens.map { embedding[Int($0)] }
        for (l, layer) in layers.enumerated() {
            let h = x.map { rmsNorm($0, layer.attnNorm) }
            var q = project(h, layer: l, .q, modules), k = project(h, layer: l, .k, modules)
            let v = project(h, layer: l, .v, modules)
            for t in 0..<T {
                rope(&q[t], pos: t, heads: c.headCount)
                rope(&k[t], pos: t, heads: c.kvHeadCount)
            }
            var attn = [[Double]](repeating: [Double](repeating: 0, count: c.qDim), count: T)
            for t in 0..<T {
                for head in 0..<c.headCount {
                    let g = head / group
                    let qh = Array(q[t][(head * hd)..<((head + 1) * hd)])
                    let root = Double(hd).squareRoot()
                    var s = [Double](repeating: 0, count: t + 1)
                    for j in 0...t {
                        let kj = Array(k[j][(g * hd)..<((g + 1) * hd)])
                        s[j] = dot(qh, kj) / root
                    }
                    let m = s.max()!
                    let e = s.map { exp($0 - m) }
                    let z = e.reduce(0, +)
                    for j in 0...t {
                        for i in 0..<hd { attn[t][head * hd + i] += e[j] / z * v[j][g * hd + i] }
                    }
                }
            }
            let o = project(attn, layer: l, .o, modules)
            for t in 0..<T { for i in 0..<c.embeddingLength { x[t][i] += o[t][i] } }
            let h2 = x.map { rmsNorm($0, layer.ffnNorm) }
            let g = project(h2, layer: l, .gate, modules), u = project(h2, layer: l, .up, modules)
            var act = g
            for t in 0..<T {
                for i in g[t].indices { act[t][i] = g[t][i] / (1 + exp(-g[t][i])) * u[t][i] }
            }
            let d = project(act, layer: l, .down, modules)
            for t in 0..<T { for i in 0..<c.embeddingLength { x[t][i] += d[t][i] } }
        }
        return x
    }
}

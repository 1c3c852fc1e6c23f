// The Llama forward pass (llama.cpp's src/models/llama.cpp graph, written out):
//   x = embed(tokens)
//   per layer: h = rmsnorm(x)·attn_norm; q,k,v = h·Wq,Wk,Wv; rope(q,k); attention over the cache;
//              x += attn·Wo; h = rmsnorm(x)·ffn_norm; x += (silu(h·Wgate) ⊙ h·Wup)·Wdown
//   logits = rmsnorm(x)·output_norm · Wout
//
// The model (config + weights) is immutable and shared; each sequence brings its own KVCache. One
// call runs a batch of sequences, each with its own new tokens (a prompt chunk, or one token when
// decoding) and its own adapters, whose low-rank terms are added to the projections they touch
// (LlamaModel+Adapters.swift); `forward(_:cache:)` is the one-sequence form. Numerics follow ggml
// where it is cheap to (FORMATS.md §2.5): RMSNorm sums in double, the RoPE angle by repeated float
// multiplication. Activations stay f32 by default; `Numerics.llamaCpp` rounds them as llama.cpp does
// (Q8_1/Q8_0 activations, f16 Q/K/V and attention weights) and `Numerics.q8` quantizes only the
// products' activations, for speed.

import Dispatch
import Foundation
import Kernels
import LoRA
import ModelFormats

/// Receives named intermediate tensors during a forward pass, to locate a mismatch with a
/// reference layer by layer. `layer` is -1 outside the blocks; `values` is tokens × width.
public typealias ForwardObserver = (_ name: String, _ layer: Int, _ values: UnsafeBufferPointer<Float>) -> Void

public final class LlamaModel: Sendable {
    public let config: LlamaConfig
    public let weights: LlamaWeights
    /// Worker threads for the matrix products.
    public let threads: Int
    /// The fixed worker threads every parallel part of the forward pass runs on.
    public let pool: ComputePool
    public let numerics: Numerics
    /// How every matrix product runs: `numerics.products`, the one decision (Kernels' ProductPlan).
    public let products: ProductPlan

    /// How activations are rounded.
    public enum Numerics: String, Sendable, CaseIterable {
        /// Activations kept in f32 everywhere (the default): matches an exact float64 forward pass
        /// to ~1e-5 in log-probability (LlamaGoldenTests).
        case f32
        /// As llama.cpp's CPU backend: activations quantized to Q8_0/Q8_1 for the matmuls whose
        /// weights have such a path, Q, K, V and attention weights rounded to f16. SmolLM2-135M
        /// amplifies this rounding (it changes its greedy answers), so it is opt-in.
        case llamaCpp = "llama.cpp"
        /// For speed: every product whose weights have a Q8 path (Q4_0, Q4_1, Q8_0) quantizes its
        /// activations to Q8_0/Q8_1 as llama.cpp does, so the kernels multiply 8-bit integers, from
        /// 8-row repacked copies of Q4_1 and Q8_0 weights (RepackedWeights); the KV cache and
        /// attention stay f32. Close to llama.cpp's own accuracy, not to f32's. Each row's products
        /// depend only on that row, not on how many rows share the call.
        case q8

        /// How the matrix products run under these numerics (Kernels' ProductPlan decides each
        /// product's kernel from it). llama.cpp numerics keep the stored layout, whose kernels sum in
        /// ggml's order; q8 runs from 8-row repacked Q4_1/Q8_0 copies (kernels_q4x8.c).
        public var products: ProductPlan {
            switch self {
            case .f32: return .f32
            case .llamaCpp: return ProductPlan(activations: .q8)
            case .q8: return ProductPlan(activations: .q8, repacksWeights: true)
            }
        }
    }

    public init(gguf: GGUFFile, threads: Int? = nil, numerics: Numerics = .f32) throws {
        config = try LlamaConfig(gguf: gguf)
        products = numerics.products
        weights = try LlamaWeights(gguf: gguf, config: config, products: products)
        self.threads = max(1, threads ?? ComputePool.coreCount)
        self.pool = ComputePool.shared(threads: self.threads)
        self.numerics = numerics
    }

    public convenience init(path: String, threads: Int? = nil, numerics: Numerics = .f32) throws {
        try self.init(gguf: GGUFFile(path: path), threads: threads, numerics: numerics)
    }

    /// A fresh per-sequence cache; `contextLimit` defaults to 4096 or the model's trained context,
    /// whichever is smaller.
    public func makeCache(contextLimit: Int? = nil, budget: KVBudget? = nil) -> KVCache {
        KVCache(config: config, contextLimit: contextLimit ?? min(4096, config.trainedContextLength),
                roundToF16: numerics == .llamaCpp, budget: budget)
    }

    public enum Logits: Sendable { case last, all, none }

    /// Runs `tokens` at the next positions of `cache` and returns logits (vocabulary-sized rows) for
    /// the last token, every token, or none.
    public func forward(_ tokens: [Int32], cache: KVCache, logits: Logits = .last, adapters: [AdapterUse] = [],
                        observer: ForwardObserver? = nil) throws -> [Float] {
        try forward(batch: [BatchItem(tokens: tokens, cache: cache, logits: logits, adapters: adapters)],
                    observer: observer)[0]
    }

    /// One forward pass over several sequences at once: each item's new tokens run at the next
    /// positions of its own cache, with its own adapters. The base matrix products run once over
    /// the rows of every item; attention reads each item's own cache; each adapter's low-rank product
    /// runs only over the rows of the items that use it. Returns each item's logits.
    public func forward(batch: [BatchItem], observer: ForwardObserver? = nil) throws -> [[Float]] {
        let c = config
        let E = c.embeddingLength
        // Validate everything before touching any cache, so a bad item changes nothing.
        var seen = Set<ObjectIdentifier>()
        for item in batch {
            guard seen.insert(ObjectIdentifier(item.cache)).inserted else { throw LlamaError.cacheSharedInBatch }
            for t in item.tokens where t < 0 || Int(t) >= c.vocabularySize {
                throw LlamaError.badToken(t, vocabularySize: c.vocabularySize)
            }
            try validate(adapters: item.adapters)
            if let m = item.merged {
                guard item.adapters.isEmpty else {
                    throw LlamaError.badAdapterUse(m.adapter.name, "a sequence on merged weights cannot stack unmerged adapters")
                }
                try validate(adapters: [AdapterUse(m.adapter, scale: m.scale)])
            }
        }
        for item in batch { try item.cache.checkRoom(item.tokens.count) }
        for item in batch { try item.cache.reserve(item.tokens.count) }

        // Row layout: item i owns rows offsets[i] ..< offsets[i] + tokens.count.
        var offsets: [Int] = []
        var N = 0
        for item in batch {
            offsets.append(N)
            N += item.tokens.count
        }
        guard N > 0 else { return batch.map { _ in [] } }
        let starts = batch.map { $0.cache.count }
        let ropes = batch.indices.map { RopeTable(config: c, start: starts[$0], count: batch[$0].tokens.count) }
        let plan = AdapterPlan(batch, offsets: offsets, widest: max(E, c.qDim, c.kvDim, c.feedForwardLength))
        let merged = mergedGroups(batch, offsets: offsets)

        var x = [Float](repeating: 0, count: N * E)
        x.withUnsafeMutableBufferPointer { xb in
            for (i, item) in batch.enumerated() {
                for (j, t) in item.tokens.enumerated() {
                    weights.tokenEmbedding.decodeRow(Int(t), into: xb.baseAddress! + (offsets[i] + j) * E)
                }
            }
        }
        observe(observer, "embd", -1, x)

        var h = [Float](repeating: 0, count: N * E)
        var q = [Float](repeating: 0, count: N * c.qDim)
        var k = [Float](repeating: 0, count: N * c.kvDim)
        var v = [Float](repeating: 0, count: N * c.kvDim)
        var attn = [Float](repeating: 0, count: N * c.qDim)
        var o = [Float](repeating: 0, count: N * E)
        var gate = [Float](repeating: 0, count: N * c.feedForwardLength)
        var up = [Float](repeating: 0, count: N * c.feedForwardLength)

        for (l, w) in weights.layers.enumerated() {
            rmsNorm(x, w.attnNorm, into: &h, tokens: N, eps: c.rmsEpsilon)
            observe(observer, "attn_norm", l, h)
            linear(w.wq, h, N, &q, layer: l, target: .q, plan, merged)
            linear(w.wk, h, N, &k, layer: l, target: .k, plan, merged)
            linear(w.wv, h, N, &v, layer: l, target: .v, plan, merged)
            for (i, item) in batch.enumerated() {
                let T = item.tokens.count
                ropes[i].apply(&q, from: offsets[i], heads: c.headCount, headDim: c.headDim, tokens: T)
                ropes[i].apply(&k, from: offsets[i], heads: c.kvHeadCount, headDim: c.headDim, tokens: T)
            }
            observe(observer, "q", l, q)
            observe(observer, "k", l, k)
            observe(observer, "v", l, v)
            k.withUnsafeBufferPointer { kb in
                v.withUnsafeBufferPointer { vb in
                    for (i, item) in batch.enumerated() {
                        item.cache.store(layer: l, keys: kb.baseAddress! + offsets[i] * c.kvDim,
                                         values: vb.baseAddress! + offsets[i] * c.kvDim, positions: item.tokens.count)
                    }
                }
            }
            attention(q: q, batch: batch, offsets: offsets, starts: starts, layer: l, into: &attn)
            observe(observer, "kqv_out", l, attn)
            linear(w.wo, attn, N, &o, layer: l, target: .o, plan, merged)
            observe(observer, "attn_out", l, o)
            for i in 0..<(N * E) { x[i] += o[i] }
            observe(observer, "ffn_inp", l, x)

            rmsNorm(x, w.ffnNorm, into: &h, tokens: N, eps: c.rmsEpsilon)
            observe(observer, "ffn_norm", l, h)
            linear(w.wGate, h, N, &gate, layer: l, target: .gate, plan, merged)
            linear(w.wUp, h, N, &up, layer: l, target: .up, plan, merged)
            observe(observer, "ffn_gate", l, gate)
            observe(observer, "ffn_up", l, up)
            swiGLU(&gate, up)
            linear(w.wDown, gate, N, &o, layer: l, target: .down, plan, merged)
            observe(observer, "ffn_out", l, o)
            for i in 0..<(N * E) { x[i] += o[i] }
            observe(observer, "l_out", l, x)
        }
        for item in batch { item.cache.commit(item.tokens.count) }

        // Logits only for the rows asked for, in one product over every item's rows.
        var rows: [Int] = []
        var counts: [Int] = []
        for (i, item) in batch.enumerated() {
            let T = item.tokens.count
            let r: Range<Int>
            switch item.logits {
            case .none: r = 0..<0
            case .last: r = T == 0 ? 0..<0 : (T - 1)..<T
            case .all: r = 0..<T
            }
            rows += r.map { offsets[i] + $0 }
            counts.append(r.count)
        }
        guard !rows.isEmpty else { return batch.map { _ in [] } }
        var selected = [Float](repeating: 0, count: rows.count * E)
        for (j, r) in rows.enumerated() {
            for e in 0..<E { selected[j * E + e] = x[r * E + e] }
        }
        var normed = [Float](repeating: 0, count: rows.count * E)
        rmsNorm(selected, weights.outputNorm, into: &normed, tokens: rows.count, eps: c.rmsEpsilon)
        observe(observer, "result_norm", -1, normed)
        let V = c.vocabularySize
        var out = [Float](repeating: 0, count: rows.count * V)
        mm(weights.output, normed, rows.count, &out)
        observe(observer, "result_output", -1, out)
        var result: [[Float]] = []
        var at = 0
        for n in counts {
            result.append(Array(out[(at * V)..<((at + n) * V)]))
            at += n
        }
        return result
    }

    // MARK: Pieces

    /// y = W·x for `tokens` rows on the model's product plan and pool (every base product of the forward
    /// pass, and the trainer's LM head).
    package func mm(_ w: WeightMatrix, _ x: [Float], _ tokens: Int, _ y: inout [Float], alongside side: SideWork? = nil) {
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                products.multiply(w, xb.baseAddress!, tokens: tokens, yb.baseAddress!, threads: threads, pool: pool,
                                  alongside: side)
            }
        }
    }

    /// gate = silu(gate) ⊙ up. One expf per element: a 16-row batch has 24,576 of them per layer,
    /// enough to be worth splitting over the pool (the worker would otherwise wait).
    package func swiGLU(_ gate: inout [Float], _ up: [Float]) {
        let n = gate.count
        gate.withUnsafeMutableBufferPointer { gb in
            up.withUnsafeBufferPointer { ub in
                let g = UnsafeSendable(gb.baseAddress!), u = UnsafeSendable(ub.baseAddress!)
                let chunk = 4096
                let chunks = (n + chunk - 1) / chunk
                let body: (Int) -> Void = { c in
                    for i in (c * chunk)..<min(n, c * chunk + chunk) {
                        let v = g.value[i]
                        g.value[i] = v / (1 + expf(-v)) * u.value[i]
                    }
                }
                pool.parallelFor(chunks, body)  // serial on the caller for one chunk or a one-thread pool
            }
        }
    }

    private func observe(_ observer: ForwardObserver?, _ name: String, _ layer: Int, _ values: [Float]) {
        guard let observer else { return }
        values.withUnsafeBufferPointer { observer(name, layer, $0) }
    }
}

/// y = x / sqrt(mean(x²) + eps) ⊙ w, per token; the sum of squares in double as ggml does.
package func rmsNorm(_ x: [Float], _ w: [Float], into y: inout [Float], tokens: Int, eps: Float) {
    let n = w.count
    for t in 0..<tokens {
        var sum = 0.0
        for i in 0..<n {
            let v = Double(x[t * n + i])
            sum += v * v
        }
        let scale = 1 / sqrtf(Float(sum / Double(n)) + eps)
        for i in 0..<n { y[t * n + i] = x[t * n + i] * scale * w[i] }
    }
}

/// cos/sin of the RoPE angles for a run of positions, computed as ggml's rope_cache_init does:
/// theta starts at the position and is multiplied by base^(-2/n_rot) for each pair.
package struct RopeTable {
    package let ropeDims: Int
    package let cos: [Float]
    package let sin: [Float]

    package init(config c: LlamaConfig, start: Int, count: Int) {
        ropeDims = c.ropeDimensions
        let half = ropeDims / 2
        let thetaScale = powf(c.ropeFreqBase, -2 / Float(ropeDims))
        var cs = [Float](repeating: 0, count: count * half), sn = cs
        for t in 0..<count {
            var theta = Float(start + t)
            for i in 0..<half {
                let angle = theta * c.ropeFreqScale
                cs[t * half + i] = cosf(angle)
                sn[t * half + i] = sinf(angle)
                theta *= thetaScale
            }
        }
        cos = cs
        sin = sn
    }

    /// Rotates adjacent pairs (x[2i], x[2i+1]) of the first `ropeDims` values of every head of rows
    /// `from ..< from + tokens`: the NORM style, which is right for Llama GGUFs because the converter
    /// permuted Q/K rows.
    package func apply(_ x: inout [Float], from: Int, heads: Int, headDim: Int, tokens: Int) {
        rotate(&x, from: from, heads: heads, headDim: headDim, tokens: tokens, direction: 1)
    }

    /// The transpose of `apply` (a rotation by minus the same angles): carries a gradient with respect
    /// to the rotated values back to the values before rotation (the trainer's backward pass).
    package func applyTransposed(_ x: inout [Float], from: Int, heads: Int, headDim: Int, tokens: Int) {
        rotate(&x, from: from, heads: heads, headDim: headDim, tokens: tokens, direction: -1)
    }

    /// Rotation by `direction` (1 or -1) times each pair's angle; multiplying the sine by ±1 is exact,
    /// so `apply` computes what it always has.
    private func rotate(_ x: inout [Float], from: Int, heads: Int, headDim: Int, tokens: Int, direction: Float) {
        let half = ropeDims / 2
        for t in 0..<tokens {
            for h in 0..<heads {
                let base = ((from + t) * heads + h) * headDim
                for i in 0..<half {
                    let c = cos[t * half + i], s = direction * sin[t * half + i]
                    let a = x[base + 2 * i], b = x[base + 2 * i + 1]
                    x[base + 2 * i] = a * c - b * s
                    x[base + 2 * i + 1] = a * s + b * c
                }
            }
        }
    }
}

// One training step's math for a LoRA adapter on the frozen base: the forward pass with saved
// activations, the cross-entropy loss, and the backward pass to every module's A and B.
//
// The forward pass is the inference forward itself (LlamaModel.forward(batch:), f32 activations by
// default; every example segment of every row one batch item with a fresh cache, so positions restart
// at 0 and attention stays inside each example, while the projections run over all tokens at once),
// run with an observer that keeps the named intermediates the backward pass needs (embd, q/k after RoPE,
// v, kqv_out, ffn_inp, ffn_gate, ffn_up, l_out; the norms' outputs are recomputed, with the same
// rmsNorm, when needed): one implementation of every layer, so what is trained is exactly what is served. The LM head and the loss run here, over chunks
// of target rows (`logitRows`), so a long sequence's full logits are never all in memory. The
// backward pass (TrainingPass+Backward.swift) reverses each block with the base frozen: dX = dY·W on
// the stored weights (Kernels' matmulTransposed), and for a module with u = A·x, y += s·B·u:
// dB = s·dYᵀ·U, dU = s·dY·B, dA = dUᵀ·X, dX += dU·A. A DoRA module's output is d ⊙ (W·x + s·B·A·x) with
// d = m/‖W + s·B·A‖ per row, the norm treated as a constant as DoRA (§4.3) and PEFT do: dY becomes
// d ⊙ dY for everything below it, and dm = Σ_t dY ⊙ y / m.
//
// Loss: the mean over every masked target of the batch of −log softmax(logits)[target], where position t
// predicts token t + 1 and token t + 1 counts when lossMask[t + 1] is set (transformers' causal-LM loss
// with labels −100 where the mask is off).
//
// Numerics: the loss is that of the model's numerics (f32, the default, is what the tests check); under
// q8 or llama.cpp numerics the backward pass treats the activations' rounding as the identity (a
// straight-through gradient). The backward's base products are f32 (decoded tiles, sgemm) unless the
// pass is made with `backwardProducts: .q8` (for q8 numerics): then each dX = dY·W is an 8-bit
// product on W's transposed Q8_0 copy, built once here (Kernels' MatMulTransposedQ8.swift), and the
// gradients differ from the f32 backward's by that rounding (measured in Q8BackwardTests).
// Memory: the activations of the whole batch at once, 4·(3E + 2·qDim +
// 2·kvDim + 2·n_ff) bytes per token and layer (SmolLM2-135M: 0.76 MB per token over its 30 layers),
// plus two rows of weights per pool thread for the attention backward kernel.

import Foundation
import Kernels
import Llama
import LoRA

/// One training row: its token ids, which of them the loss scores, and the examples packed in it.
public struct TrainingSequence: Sendable {
    public var tokens: [Int32]
    /// lossMask[t]: token t is a target, predicted at position t − 1 (a segment's first token never
    /// counts). Same length as `tokens`.
    public var lossMask: [Bool]
    /// Each example's token range, in order, covering `tokens`: attention stays inside a segment and
    /// positions restart at 0 in each, so a packed row computes what its examples compute alone. One
    /// segment (the whole row) when not packed.
    public var segments: [Range<Int>]

    public init(tokens: [Int32], lossMask: [Bool], segments: [Range<Int>]? = nil) {
        self.tokens = tokens
        self.lossMask = lossMask
        self.segments = segments ?? [0..<tokens.count]
    }

    /// How many tokens the loss scores.
    public var targetCount: Int {
        var n = 0
        for s in segments where s.count > 1 {
            for t in (s.lowerBound + 1)..<s.upperBound where t < lossMask.count && lossMask[t] { n += 1 }
        }
        return n
    }
}

/// What one forward + backward pass returns.
public struct LossAndGradients: Sendable {
    /// Mean cross-entropy over the batch's targets (nats).
    public let loss: Double
    /// How many targets the mean is over.
    public let targetCount: Int
    /// d loss / d parameters, in the parameters' layout.
    public let gradients: LoRAGradients
}

public struct TrainingPass: Sendable {
    /// How the backward pass's base products dX = dY·W run.
    public enum BackwardProducts: String, Sendable, CaseIterable {
        /// Decoded f32 weight tiles and sgemm (Kernels' matmulTransposed): the reference and default.
        case f32
        /// 8-bit: every base matrix's transpose quantized to Q8_0 once, here, and dY quantized per
        /// row as activations are (Kernels' matmulTransposedQ8); meant for q8 numerics, whose forward
        /// already runs 8-bit. Costs 1.0625 bytes per base weight (SmolLM2-135M: 142,884,864 bytes,
        /// 136 MiB, with the tied LM head's), built when the pass is made.
        case q8
    }

    public let model: LlamaModel
    /// Target rows whose logits are computed at once (rows × vocabulary floats, twice, in memory).
    public var logitRows: Int
    /// Tokens the forward-only loss runs in one batched pass (its activations are not kept, so this
    /// only bounds the forward's own buffers).
    public var lossTokens: Int
    public let backwardProducts: BackwardProducts
    /// The transposed Q8_0 copies for `.q8` (nil for `.f32`).
    let transposed: TransposedBase?

    public init(model: LlamaModel, logitRows: Int = 64, lossTokens: Int = 1024, backwardProducts: BackwardProducts = .f32) {
        self.model = model
        self.logitRows = max(1, logitRows)
        self.lossTokens = max(1, lossTokens)
        self.backwardProducts = backwardProducts
        transposed = backwardProducts == .q8 ? TransposedBase(model) : nil
    }

    /// Bytes held by the q8 backward's transposed copies (0 under `.f32`).
    public var transposedBytes: Int { transposed?.byteCount ?? 0 }

    /// dX (+)= dY·W for a base matrix: from its transposed Q8_0 copy when there is one, else f32.
    func baseBackward(_ w: WeightMatrix, _ t: TransposedQ8Weights?, _ dy: UnsafePointer<Float>, tokens: Int,
                      _ dx: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if let t {
            matmulTransposedQ8(t, dy, tokens: tokens, dx, accumulate: accumulate, pool: model.pool)
        } else {
            matmulTransposed(w, dy, tokens: tokens, dx, accumulate: accumulate, pool: model.pool)
        }
    }

    /// The mean loss of `batch` with `parameters` (forward only). Rows run together, up to
    /// `lossTokens` tokens per forward pass.
    public func loss(_ parameters: LoRAParameters, batch: [TrainingSequence]) throws -> Double {
        let total = try validate(parameters, batch)
        let adapter = try parameters.adapter(name: "training", model: model, contentDigest: "training")
        var sum = 0.0
        var group: [TrainingSequence] = [], tokens = 0
        func flush() throws {
            guard !group.isEmpty else { return }
            let layout = BatchLayout(group)
            let saved = try forward(layout, adapter: adapter, keepActivations: false)
            var unused: [Float] = []
            sum += head(saved.final, layout, gradientScale: nil, into: &unused)
            group = []
            tokens = 0
        }
        for seq in batch where seq.targetCount > 0 {
            if tokens + seq.tokens.count > lossTokens { try flush() }
            group.append(seq)
            tokens += seq.tokens.count
        }
        try flush()
        return sum / Double(total)
    }

    /// The mean loss of `batch` and its gradients with respect to every module's A and B. The rows run
    /// as one batched forward and backward pass (every projection over all rows' tokens at once,
    /// attention within each segment), so the activations of the whole batch are held at once.
    public func lossAndGradients(_ parameters: LoRAParameters, batch: [TrainingSequence]) throws -> LossAndGradients {
        let total = try validate(parameters, batch)
        let adapter = try parameters.adapter(name: "training", model: model, contentDigest: "training")
        var grads = LoRAGradients(zerosLike: parameters)
        let layout = BatchLayout(batch.filter { $0.targetCount > 0 })
        let saved = try forward(layout, adapter: adapter, keepActivations: true)
        var dX = [Float](repeating: 0, count: layout.tokenCount * model.config.embeddingLength)
        let sum = head(saved.final, layout, gradientScale: 1 / Float(total), into: &dX)
        backward(saved, layout, dX, parameters, adapter, &grads)
        return LossAndGradients(loss: sum / Double(total), targetCount: total, gradients: grads)
    }

    // MARK: Checks

    /// The batch's total target count, after checking that everything fits the model.
    private func validate(_ parameters: LoRAParameters, _ batch: [TrainingSequence]) throws -> Int {
        let c = model.config
        guard parameters.layerCount == c.layerCount else {
            throw TrainingError.badSetting(name: "adapter", value: "\(parameters.layerCount) layers",
                                           expected: "the base model's \(c.layerCount) layers (hint: wrong base model?)")
        }
        for m in parameters.modules {
            let w = model.weights.layers[m.layer].matrix(m.target)
            guard m.inFeatures == w.cols, m.outFeatures == w.rows, m.rank > 0 else {
                throw TrainingError.badSetting(name: "adapter module", value: "blk.\(m.layer).\(m.target.rawValue) \(m.outFeatures)×\(m.rank)×\(m.inFeatures)",
                                               expected: "rank ≥ 1 and \(w.rows) outputs × \(w.cols) inputs")
            }
        }
        var total = 0
        for (i, seq) in batch.enumerated() {
            guard seq.lossMask.count == seq.tokens.count else {
                throw TrainingError.badSetting(name: "sequence \(i) loss mask", value: "\(seq.lossMask.count) entries",
                                               expected: "one per token (\(seq.tokens.count))")
            }
            var next = 0
            for s in seq.segments {
                guard s.lowerBound == next, !s.isEmpty else {
                    throw TrainingError.badSetting(name: "sequence \(i) segments", value: "\(seq.segments)",
                                                   expected: "non-empty ranges that follow each other from 0")
                }
                next = s.upperBound
            }
            guard next == seq.tokens.count else {
                throw TrainingError.badSetting(name: "sequence \(i) segments", value: "\(seq.segments)",
                                               expected: "ranges covering its \(seq.tokens.count) tokens")
            }
            for t in seq.tokens where t < 0 || Int(t) >= c.vocabularySize {
                throw TrainingError.badSetting(name: "sequence \(i) token", value: "\(t)", expected: "0..<\(c.vocabularySize)")
            }
            total += seq.targetCount
        }
        guard total > 0 else {
            throw TrainingError.badSetting(name: "batch", value: "no masked targets", expected: "at least one scored token after the first")
        }
        return total
    }

    // MARK: Forward

    /// A batch's rows laid end to end: every segment of every row is one item of the batched forward
    /// (its own cache, positions from 0), at rows `spans[i]` of the N-token activations.
    struct BatchLayout {
        /// Each segment's tokens.
        var segments: [[Int32]] = []
        /// Each segment's rows in the batch's activations.
        var spans: [Range<Int>] = []
        /// The scored rows: row r's logits predict `token`.
        var targets: [(row: Int, token: Int32)] = []
        var tokenCount = 0

        init(_ batch: [TrainingSequence]) {
            for seq in batch {
                for s in seq.segments {
                    segments.append(Array(seq.tokens[s]))
                    spans.append((tokenCount + s.lowerBound)..<(tokenCount + s.upperBound))
                    for t in s.dropLast() where seq.lossMask[t + 1] {
                        targets.append((tokenCount + t, seq.tokens[t + 1]))
                    }
                }
                tokenCount += seq.tokens.count
            }
        }

        /// The longest segment.
        var longest: Int { spans.map(\.count).max() ?? 0 }
    }

    /// One layer's saved activations, each tokens × width.
    struct SavedLayer {
        var input: [Float] = []     // the block's input (embd or the previous l_out), E
        var q: [Float] = []         // qDim, after RoPE
        var k: [Float] = []         // kvDim, after RoPE
        var v: [Float] = []         // kvDim
        var attn: [Float] = []      // qDim, attention output (input of Wo)
        var ffnInput: [Float] = []  // E, residual after attention
        var gate: [Float] = []      // n_ff, before SiLU
        var up: [Float] = []        // n_ff
        var attnOut: [Float] = []   // E, Wo's output (kept only for DoRA)
        var ffnOut: [Float] = []    // E, Wdown's output (kept only for DoRA)
    }

    final class Saved {
        var layers: [SavedLayer]
        /// The last block's output (before the final norm), tokens × E.
        var final: [Float] = []
        /// Whether to keep every layer's activations (for a backward pass), or only `final`.
        let keepActivations: Bool
        /// Whether to keep the o and down projections' outputs (a DoRA module's magnitude gradient needs them).
        let keepOutputs: Bool
        init(layers: Int, keepActivations: Bool, keepOutputs: Bool) {
            self.layers = Array(repeating: SavedLayer(), count: layers)
            self.keepActivations = keepActivations
            self.keepOutputs = keepOutputs && keepActivations
        }

        func record(_ name: String, _ l: Int, _ v: UnsafeBufferPointer<Float>) {
            guard keepActivations else {
                if name == "l_out" && l + 1 == layers.count { final = Array(v) }
                return
            }
            switch name {
            case "embd": layers[0].input = Array(v)
            case "q": layers[l].q = Array(v)
            case "k": layers[l].k = Array(v)
            case "v": layers[l].v = Array(v)
            case "kqv_out": layers[l].attn = Array(v)
            case "ffn_inp": layers[l].ffnInput = Array(v)
            case "ffn_gate": layers[l].gate = Array(v)
            case "ffn_up": layers[l].up = Array(v)
            case "attn_out" where keepOutputs: layers[l].attnOut = Array(v)
            case "ffn_out" where keepOutputs: layers[l].ffnOut = Array(v)
            case "l_out":
                if l + 1 < layers.count { layers[l + 1].input = Array(v) } else { final = Array(v) }
            default: break
            }
        }
    }

    /// The inference forward over every segment of the batch at once (one item each, a fresh cache,
    /// no logits), keeping the activations the backward pass needs (or only the last block's output).
    func forward(_ layout: BatchLayout, adapter: LoRAAdapter, keepActivations: Bool) throws -> Saved {
        let saved = Saved(layers: model.config.layerCount, keepActivations: keepActivations, keepOutputs: adapter.isDoRA)
        let items = layout.segments.map {
            BatchItem(tokens: $0, cache: model.makeCache(contextLimit: $0.count), logits: .none, adapters: [AdapterUse(adapter)])
        }
        _ = try model.forward(batch: items) { name, layer, values in
            saved.record(name, layer, values)
        }
        return saved
    }

    /// The summed loss of the batch's targets from the last block's output; with a `gradientScale`,
    /// also adds d(gradientScale · summed loss)/d(last block output) into `dX` (tokens × E; untouched
    /// otherwise). Target rows run `logitRows` at a time.
    func head(_ final: [Float], _ layout: BatchLayout, gradientScale: Float?, into dX: inout [Float]) -> Double {
        let c = model.config, E = c.embeddingLength, V = c.vocabularySize
        let targets = layout.targets
        var sum = 0.0
        var start = 0
        while start < targets.count {
            let chunk = targets[start..<min(targets.count, start + logitRows)]
            start += chunk.count
            let n = chunk.count
            var selected = [Float](repeating: 0, count: n * E)
            for (j, t) in chunk.enumerated() {
                for e in 0..<E { selected[j * E + e] = final[t.row * E + e] }
            }
            var normed = [Float](repeating: 0, count: n * E)
            rmsNorm(selected, model.weights.outputNorm, into: &normed, tokens: n, eps: c.rmsEpsilon)
            var logits = [Float](repeating: 0, count: n * V)
            model.mm(model.weights.output, normed, n, &logits)
            for (j, t) in chunk.enumerated() {
                let target = Int(t.token)
                let lse = logSumExp(logits, from: j * V, count: V)
                sum += lse - Double(logits[j * V + target])
                if let g = gradientScale {
                    for i in 0..<V { logits[j * V + i] = Float(exp(Double(logits[j * V + i]) - lse)) * g }
                    logits[j * V + target] -= g
                }
            }
            guard gradientScale != nil else { continue }
            var dNormed = [Float](repeating: 0, count: n * E)
            logits.withUnsafeBufferPointer { lb in
                dNormed.withUnsafeMutableBufferPointer { db in
                    baseBackward(model.weights.output, transposed?.output, lb.baseAddress!, tokens: n, db.baseAddress!, accumulate: false)
                }
            }
            var dSelected = [Float](repeating: 0, count: n * E)
            rmsNormBackward(selected, model.weights.outputNorm, dNormed, into: &dSelected, tokens: n, eps: c.rmsEpsilon)
            for (j, t) in chunk.enumerated() {
                for e in 0..<E { dX[t.row * E + e] += dSelected[j * E + e] }
            }
        }
        return sum
    }
}

/// log Σ exp(x[from ..< from + count]) in double, around the maximum.
func logSumExp(_ x: [Float], from: Int, count: Int) -> Double {
    var m = -Double.infinity
    for i in from..<(from + count) { m = max(m, Double(x[i])) }
    var s = 0.0
    for i in from..<(from + count) { s += exp(Double(x[i]) - m) }
    return m + log(s)
}

/// The transpose of Llama's rmsNorm (y = x·r·w, r = 1/√(mean(x²) + eps)) for each token:
/// dx_i += r·w_i·dy_i − x_i·r³·(Σ_j w_j·dy_j·x_j)/n. The sums in double, as the forward's.
func rmsNormBackward(_ x: [Float], _ w: [Float], _ dy: [Float], into dx: inout [Float], tokens: Int, eps: Float) {
    let n = w.count
    for t in 0..<tokens {
        var sq = 0.0, dot = 0.0
        for i in 0..<n {
            let v = Double(x[t * n + i])
            sq += v * v
            dot += Double(w[i]) * Double(dy[t * n + i]) * v
        }
        let r = 1 / sqrt(Double(Float(sq / Double(n)) + eps))
        let k = r * r * r * dot / Double(n)
        for i in 0..<n {
            dx[t * n + i] += Float(r * Double(w[i]) * Double(dy[t * n + i]) - Double(x[t * n + i]) * k)
        }
    }
}

/// Every base matrix's transposed Q8_0 copy (Kernels' TransposedQ8Weights), built once for a q8
/// backward: the seven projections of every layer and the LM head. A matrix the kernels cannot take
/// (output dimension not whole 32-value blocks) has none and stays on the f32 path.
final class TransposedBase: Sendable {
    let layers: [[LoRATarget: TransposedQ8Weights]]
    let output: TransposedQ8Weights?

    init(_ model: LlamaModel) {
        func copy(_ w: WeightMatrix) -> TransposedQ8Weights? {
            TransposedQ8Weights.supports(w) ? TransposedQ8Weights(w, pool: model.pool) : nil
        }
        layers = model.weights.layers.map { l in
            var m: [LoRATarget: TransposedQ8Weights] = [:]
            for t in LoRATarget.allCases { m[t] = copy(l.matrix(t)) }
            return m
        }
        output = copy(model.weights.output)
    }

    var byteCount: Int {
        layers.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.byteCount } } + (output?.byteCount ?? 0)
    }
}

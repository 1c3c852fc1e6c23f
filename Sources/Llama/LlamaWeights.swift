// Llama weights bound by GGUF tensor name, every shape checked at load (a wrong file fails here,
// not in the middle of a forward pass). Matrices stay in the mapped file in their stored types;
// only the small norm vectors are decoded to f32. Immutable and shared by every thread.

import Kernels
import ModelFormats

public struct LayerWeights: Sendable {
    public let attnNorm: [Float]      // [n_embd]
    public let wq: WeightMatrix       // rows n_head·hd, cols n_embd (rows permuted for NORM RoPE)
    public let wk: WeightMatrix       // rows n_head_kv·hd, cols n_embd (permuted likewise)
    public let wv: WeightMatrix       // rows n_head_kv·hd, cols n_embd
    public let wo: WeightMatrix       // rows n_embd, cols n_head·hd
    public let ffnNorm: [Float]       // [n_embd]
    public let wGate: WeightMatrix    // rows n_ff, cols n_embd
    public let wUp: WeightMatrix      // rows n_ff, cols n_embd
    public let wDown: WeightMatrix    // rows n_embd, cols n_ff
}

public final class LlamaWeights: Sendable {
    public let tokenEmbedding: WeightMatrix   // rows n_vocab, cols n_embd
    public let layers: [LayerWeights]
    public let outputNorm: [Float]            // [n_embd]
    /// The LM head: `output.weight`, or the token embedding when the model ties them.
    public let output: WeightMatrix           // rows n_vocab, cols n_embd
    public let tiedOutput: Bool
    /// Keeps the mapping alive for the matrices above.
    public let file: GGUFFile

    /// `products`: every layer matrix and the LM head that the plan repacks (`ProductPlan.repacks`:
    /// Q4_1 and Q8_0 under q8 numerics) gets its 8-row repacked copy (RepackedWeights) for the Q8
    /// kernels and the sgemm path, and the stored copy's pages leave the resident set (they are read
    /// again only by `decodeRow`: embedding lookups, merging an adapter), so memory stays about the
    /// file size.
    public init(gguf: GGUFFile, config c: LlamaConfig, products: ProductPlan = .f32) throws {
        file = gguf
        func matrix(_ name: String, cols: Int, rows: Int, repack: Bool = true) throws -> WeightMatrix {
            guard let t = gguf.tensor(named: name) else { throw LlamaError.missingTensor(name) }
            guard t.shape == [cols, rows] else { throw LlamaError.wrongShape(tensor: name, expected: [cols, rows], found: t.shape) }
            guard t.type.isComputable else { throw LlamaError.unsupportedTensorType(tensor: name, type: t.type.name) }
            let w = WeightMatrix(type: t.type, rows: rows, cols: cols, data: gguf.data(of: t).baseAddress!)
            guard repack && products.repacks(t.type) else { return w }
            let packed = products.prepare(w)
            gguf.region.releaseResidentPages(gguf.data(of: t))
            return packed
        }
        func vector(_ name: String, _ n: Int) throws -> [Float] {
            guard let t = gguf.tensor(named: name) else { throw LlamaError.missingTensor(name) }
            guard t.shape == [n] else { throw LlamaError.wrongShape(tensor: name, expected: [n], found: t.shape) }
            guard t.type.isComputable else { throw LlamaError.unsupportedTensorType(tensor: name, type: t.type.name) }
            var out = [Float](repeating: 0, count: n)
            out.withUnsafeMutableBufferPointer { dequantize(t.type, gguf.data(of: t).baseAddress!, count: n, into: $0.baseAddress!) }
            return out
        }
        let e = c.embeddingLength
        tokenEmbedding = try matrix("token_embd.weight", cols: e, rows: c.vocabularySize, repack: false)
        layers = try (0..<c.layerCount).map { i in
            let p = "blk.\(i)."
            return LayerWeights(
                attnNorm: try vector(p + "attn_norm.weight", e),
                wq: try matrix(p + "attn_q.weight", cols: e, rows: c.qDim),
                wk: try matrix(p + "attn_k.weight", cols: e, rows: c.kvDim),
                wv: try matrix(p + "attn_v.weight", cols: e, rows: c.kvDim),
                wo: try matrix(p + "attn_output.weight", cols: c.qDim, rows: e),
                ffnNorm: try vector(p + "ffn_norm.weight", e),
                wGate: try matrix(p + "ffn_gate.weight", cols: e, rows: c.feedForwardLength),
                wUp: try matrix(p + "ffn_up.weight", cols: e, rows: c.feedForwardLength),
                wDown: try matrix(p + "ffn_down.weight", cols: c.feedForwardLength, rows: e))
        }
        outputNorm = try vector("output_norm.weight", e)
        if gguf.tensor(named: "output.weight") != nil {
            output = try matrix("output.weight", cols: e, rows: c.vocabularySize)
            tiedOutput = false
        } else {
            // Only the LM head is repacked; lookups read the embedding's stored rows.
            output = try matrix("token_embd.weight", cols: e, rows: c.vocabularySize)
            tiedOutput = true
        }
    }
}

// What the LoRA loaders need to know about the base model: the architecture, the head counts (for
// the Q/K row permutation, FORMATS.md §3.4), the shape of each adaptable matrix, and dequantized
// rows of the base weights in GGUF row order (DoRA's row norms need the merged weight, §5.4; merge
// needs them too). `init(gguf:)` builds it straight from a Llama GGUF file; the forward pass may
// provide its own instead.

import Kernels
import ModelFormats

public struct BaseModelInfo: Sendable {
    public let architecture: String
    public let layerCount: Int
    public let headCount: Int
    public let headCountKV: Int
    public let embeddingLength: Int
    public let feedForwardLength: Int
    public let headDim: Int
    /// Row `row` (GGUF order) of the base weight for (layer, target), dequantized to f32; `inFeatures` values.
    public let baseRow: @Sendable (_ layer: Int, _ target: LoRATarget, _ row: Int) -> [Float]
    /// Stored type of each base matrix (for re-quantized merges); F32 when unknown.
    public let baseType: @Sendable (_ layer: Int, _ target: LoRATarget) -> TensorType
    /// What the base calls itself (GGUF general.*), to check an adapter's declared base against.
    public var identity = BaseModelIdentity()

    public init(architecture: String = "llama", layerCount: Int, headCount: Int, headCountKV: Int,
                embeddingLength: Int, feedForwardLength: Int, headDim: Int? = nil,
                baseType: @escaping @Sendable (Int, LoRATarget) -> TensorType = { _, _ in .f32 },
                baseRow: @escaping @Sendable (Int, LoRATarget, Int) -> [Float]) {
        self.architecture = architecture
        self.layerCount = layerCount
        self.headCount = headCount
        self.headCountKV = headCountKV
        self.embeddingLength = embeddingLength
        self.feedForwardLength = feedForwardLength
        self.headDim = headDim ?? (headCount > 0 ? embeddingLength / headCount : 0)
        self.baseRow = baseRow
        self.baseType = baseType
    }

    /// (in, out) of the base matrix adapted by `target` (the same in every Llama layer).
    public func shape(_ target: LoRATarget) -> (inFeatures: Int, outFeatures: Int) {
        let e = embeddingLength, q = headCount * headDim, kv = headCountKV * headDim, f = feedForwardLength
        switch target {
        case .q: return (e, q)
        case .k, .v: return (e, kv)
        case .o: return (q, e)
        case .gate, .up: return (e, f)
        case .down: return (f, e)
        }
    }

    /// Heads whose rows the GGUF conversion permuted for `target`, or nil when it is not permuted.
    public func permutationHeads(_ target: LoRATarget) -> Int? {
        switch target {
        case .q: return headCount
        case .k: return headCountKV
        default: return nil
        }
    }

    /// The whole base matrix for (layer, target), out × in row-major in GGUF row order.
    public func baseMatrix(layer: Int, target: LoRATarget) -> [Float] {
        let (n, m) = shape(target)
        var out = [Float]()
        out.reserveCapacity(n * m)
        for r in 0..<m { out.append(contentsOf: baseRow(layer, target, r)) }
        return out
    }

    /// Reads the llama.* hyperparameters of a base GGUF and serves rows from its mapped tensors.
    /// Throws when a key or tensor is missing or a tensor has the wrong shape or an undecodable type.
    public init(gguf: GGUFFile) throws {
        func int(_ key: String) throws -> Int {
            guard let v = try gguf.int(key) else { throw LoRAError.unreadable(path: gguf.path ?? "base model", reason: "missing metadata key \(key)") }
            return v
        }
        let arch = try gguf.string("general.architecture") ?? ""
        let p = arch + "."
        let layers = try int(p + "block_count")
        let heads = try int(p + "attention.head_count")
        let kvHeads = try gguf.int(p + "attention.head_count_kv") ?? heads
        let embd = try int(p + "embedding_length")
        let ff = try int(p + "feed_forward_length")
        let hd = try gguf.int(p + "attention.key_length") ?? (heads > 0 ? embd / heads : 0)
        var tensors: [String: GGUFTensorInfo] = [:]
        let probe = BaseModelInfo(architecture: arch, layerCount: layers, headCount: heads, headCountKV: kvHeads,
                                  embeddingLength: embd, feedForwardLength: ff, headDim: hd, baseRow: { _, _, _ in [] })
        for l in 0..<layers {
            for t in LoRATarget.allCases {
                let name = t.ggufTensor(layer: l)
                guard let info = gguf.tensor(named: name) else {
                    throw LoRAError.unreadable(path: gguf.path ?? "base model", reason: "missing tensor \(name)")
                }
                let (n, m) = probe.shape(t)
                guard info.shape == [n, m] else { throw LoRAError.shapeMismatch(tensor: name, expected: [n, m], found: info.shape) }
                guard info.type.isComputable else {
                    throw LoRAError.unsupportedDType(tensor: name, dtype: info.type.name)
                }
                tensors[name] = info
            }
        }
        let table = tensors
        self.init(architecture: arch, layerCount: layers, headCount: heads, headCountKV: kvHeads,
                  embeddingLength: embd, feedForwardLength: ff, headDim: hd,
                  baseType: { l, t in table[t.ggufTensor(layer: l)]!.type },
                  baseRow: { l, t, r in
                      let info = table[t.ggufTensor(layer: l)]!
                      let n = info.shape[0]
                      let rowBytes = info.type.byteCount(elements: n)!
                      let base = gguf.data(of: info).baseAddress! + r * rowBytes
                      return [Float](unsafeUninitializedCapacity: n) { out, initialized in
                          dequantize(info.type, base, count: n, into: out.baseAddress!)
                          initialized = n
                      }
                  })
        identity = BaseModelIdentity(gguf: gguf)
    }
}

/// The Q/K row permutation of convert_hf_to_gguf (FORMATS.md §3.4): within each head of `hd` rows,
/// GGUF row 2i is HF row i and GGUF row 2i+1 is HF row i + hd/2.
public enum QKPermutation {
    /// The HF row that GGUF row `row` holds, for `heads` heads over `rows` rows.
    public static func hfRow(forGGUFRow row: Int, rows: Int, heads: Int) -> Int {
        let hd = rows / heads
        let h = row / hd, j = row % hd
        return h * hd + (j % 2) * (hd / 2) + j / 2
    }

    /// Rows of a row-major `rows × cols` matrix in HF order, returned in GGUF order.
    public static func toGGUF(_ m: [Float], rows: Int, cols: Int, heads: Int) -> [Float] {
        var out = [Float](repeating: 0, count: m.count)
        for g in 0..<rows {
            let h = hfRow(forGGUFRow: g, rows: rows, heads: heads)
            for c in 0..<cols { out[g * cols + c] = m[h * cols + c] }
        }
        return out
    }

    /// The inverse of `toGGUF`.
    public static func toHF(_ m: [Float], rows: Int, cols: Int, heads: Int) -> [Float] {
        var out = [Float](repeating: 0, count: m.count)
        for g in 0..<rows {
            let h = hfRow(forGGUFRow: g, rows: rows, heads: heads)
            for c in 0..<cols { out[h * cols + c] = m[g * cols + c] }
        }
        return out
    }
}

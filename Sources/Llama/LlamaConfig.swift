// Llama hyperparameters from GGUF `llama.*` keys, with llama.cpp's defaults (llama-model.cpp
// load_hparams, FORMATS.md §3.2).

import ModelFormats

public enum LlamaError: Error, CustomStringConvertible, Sendable, Equatable {
    case wrongArchitecture(String)
    case badHyperparameter(key: String, value: String, expected: String)
    case missingTensor(String)
    case wrongShape(tensor: String, expected: [Int], found: [Int])
    case unsupportedTensorType(tensor: String, type: String)
    case contextFull(needed: Int, limit: Int)
    case badToken(Int32, vocabularySize: Int)
    case cacheSharedInBatch
    case kvBudgetExhausted(needed: Int, available: Int)
    case badAdapterUse(String, String)

    public var description: String {
        switch self {
        case .wrongArchitecture(let a):
            return "general.architecture is '\(a)'; lorad runs 'llama' models (SmolLM2, Llama 2/3, TinyLlama, ...)"
        case .badHyperparameter(let key, let value, let expected):
            return "\(key) is \(value); expected \(expected)"
        case .missingTensor(let name):
            return "tensor '\(name)' is missing (hint: not a complete Llama model file?)"
        case .wrongShape(let name, let expected, let found):
            return "tensor '\(name)' has shape \(found), expected \(expected) (hint: a corrupted or mismatched file?)"
        case .unsupportedTensorType(let name, let type):
            return "tensor '\(name)' is stored as \(type), which lorad cannot compute with yet "
                + "(supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)"
        case .contextFull(let needed, let limit):
            return "the sequence needs \(needed) positions but the context holds \(limit)"
        case .badToken(let t, let n):
            return "token id \(t) is outside the vocabulary (0..<\(n))"
        case .kvBudgetExhausted(let needed, let available):
            return "the KV cache budget is exhausted: \(needed) more bytes needed, \(available) available (hint: fewer concurrent sequences, a shorter context, or a larger budget)"
        case .cacheSharedInBatch:
            return "two items of one batch share a KV cache; each sequence needs its own"
        case .badAdapterUse(let name, let why):
            return "adapter '\(name)' cannot be used here: \(why)"
        }
    }
}

public struct LlamaConfig: Sendable, Equatable {
    public var vocabularySize: Int
    public var embeddingLength: Int      // n_embd
    public var layerCount: Int           // n_layer
    public var headCount: Int            // n_head
    public var kvHeadCount: Int          // n_head_kv
    public var feedForwardLength: Int    // n_ff
    public var headDim: Int              // n_embd_head_k
    public var ropeDimensions: Int       // n_rot
    public var ropeFreqBase: Float
    /// Multiplies positions (linear RoPE scaling): 1 / rope.scaling.factor.
    public var ropeFreqScale: Float
    public var rmsEpsilon: Float
    /// The context the model was trained with.
    public var trainedContextLength: Int

    public var kvDim: Int { kvHeadCount * headDim }
    public var qDim: Int { headCount * headDim }

    public init(vocabularySize: Int, embeddingLength: Int, layerCount: Int, headCount: Int, kvHeadCount: Int,
                feedForwardLength: Int, headDim: Int? = nil, ropeDimensions: Int? = nil,
                ropeFreqBase: Float = 10000, ropeFreqScale: Float = 1, rmsEpsilon: Float = 1e-5,
                trainedContextLength: Int = 4096) {
        self.vocabularySize = vocabularySize
        self.embeddingLength = embeddingLength
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.feedForwardLength = feedForwardLength
        self.headDim = headDim ?? embeddingLength / max(headCount, 1)
        self.ropeDimensions = ropeDimensions ?? self.headDim
        self.ropeFreqBase = ropeFreqBase
        self.ropeFreqScale = ropeFreqScale
        self.rmsEpsilon = rmsEpsilon
        self.trainedContextLength = trainedContextLength
    }

    /// Reads and checks the hyperparameters of a Llama GGUF.
    public init(gguf: GGUFFile) throws {
        let arch = try gguf.string("general.architecture") ?? "(missing)"
        guard arch == "llama" else { throw LlamaError.wrongArchitecture(arch) }
        func required(_ key: String) throws -> Int {
            guard let v = try gguf.int("llama." + key) else { throw GGUFError.missingKey("llama." + key) }
            guard v > 0 else { throw LlamaError.badHyperparameter(key: "llama." + key, value: "\(v)", expected: "a positive integer") }
            return v
        }
        let nEmbd = try required("embedding_length")
        let nHead = try required("attention.head_count")
        let nHeadKV = try gguf.int("llama.attention.head_count_kv") ?? nHead
        let vocab = try gguf.int("llama.vocab_size") ?? gguf.array("tokenizer.ggml.tokens")?.count
            ?? gguf.tensor(named: "token_embd.weight")?.shape.last ?? 0
        let headDim = try gguf.int("llama.attention.key_length") ?? nEmbd / nHead
        var freqScale: Float = 1
        if let type = try gguf.string("llama.rope.scaling.type"), type != "none" {
            guard type == "linear" else {
                throw LlamaError.badHyperparameter(key: "llama.rope.scaling.type", value: type,
                                                   expected: "none or linear (yarn and longrope are not supported yet)")
            }
            if let factor = try gguf.float("llama.rope.scaling.factor"), factor > 0 { freqScale = 1 / factor }
        } else if let factor = try gguf.float("llama.rope.scaling.factor"), factor > 0, factor != 1 {
            freqScale = 1 / factor
        }
        self.init(vocabularySize: vocab, embeddingLength: nEmbd, layerCount: try required("block_count"),
                  headCount: nHead, kvHeadCount: nHeadKV, feedForwardLength: try required("feed_forward_length"),
                  headDim: headDim, ropeDimensions: try gguf.int("llama.rope.dimension_count") ?? headDim,
                  ropeFreqBase: try gguf.float("llama.rope.freq_base") ?? 10000, ropeFreqScale: freqScale,
                  rmsEpsilon: try gguf.float("llama.attention.layer_norm_rms_epsilon") ?? 1e-5,
                  trainedContextLength: try gguf.int("llama.context_length") ?? 4096)
        try validate()
    }

    func validate() throws {
        func bad(_ key: String, _ value: Int, _ expected: String) -> LlamaError {
            .badHyperparameter(key: key, value: "\(value)", expected: expected)
        }
        guard vocabularySize > 0 else { throw bad("llama.vocab_size", vocabularySize, "a positive vocabulary size") }
        guard kvHeadCount > 0, headCount % kvHeadCount == 0 else {
            throw bad("llama.attention.head_count_kv", kvHeadCount, "a divisor of head_count \(headCount)")
        }
        guard headDim > 0, headDim % 2 == 0 else { throw bad("llama.attention.key_length", headDim, "a positive even head size") }
        guard ropeDimensions > 0, ropeDimensions <= headDim, ropeDimensions % 2 == 0 else {
            throw bad("llama.rope.dimension_count", ropeDimensions, "an even number up to the head size \(headDim)")
        }
        guard rmsEpsilon > 0, rmsEpsilon.isFinite else {
            throw LlamaError.badHyperparameter(key: "llama.attention.layer_norm_rms_epsilon", value: "\(rmsEpsilon)",
                                               expected: "a small positive number")
        }
        guard ropeFreqBase > 0, ropeFreqBase.isFinite else {
            throw LlamaError.badHyperparameter(key: "llama.rope.freq_base", value: "\(ropeFreqBase)", expected: "a positive number")
        }
    }
}

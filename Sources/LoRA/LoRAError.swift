// Everything that can be wrong with a LoRA adapter, for loading, validation against the base model,
// merging, combining and exporting. Each message says what was expected, what was found and, where
// the cause is guessable, a hint. A bad adapter never traps.

public enum LoRAError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file could not be opened or read, or is malformed at the container level (safetensors, GGUF, JSON).
    case unreadable(path: String, reason: String)
    /// The path is neither a PEFT directory nor a .gguf file, or the directory lacks a required file.
    case notAnAdapter(path: String, reason: String)
    /// An adapter_config.json field has the wrong type or value.
    case badConfig(field: String, expected: String, found: String)
    case unsupportedPEFTType(String)
    /// An option lorad cannot apply correctly (modules_to_save, biases, embedding LoRA, variants).
    case unsupportedOption(option: String, detail: String)
    case architectureMismatch(expected: String, found: String)
    /// A tensor that does not belong to any adaptable module of the base.
    case unknownModule(tensor: String)
    case layerOutOfRange(tensor: String, layer: Int, layerCount: Int)
    /// A tensor's shape does not fit the base; shapes in the adapter file's own convention.
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])
    case missingHalf(module: String, missing: String)
    case rankMismatch(module: String, aRank: Int, bRank: Int)
    /// adapter_config.json (r / rank_pattern) says one rank, the tensors another.
    case configRankMismatch(module: String, config: Int, tensors: Int)
    case rankOutOfRange(module: String, rank: Int, maxRank: Int)
    /// target_modules (after exclusions and layer restrictions) match no adaptable module of the base.
    case noMatchingModules(targetModules: String)
    /// The file has weights for a module that adapter_config.json does not target.
    case untargetedModule(module: String)
    /// adapter_config.json targets a module that has no weights in the file.
    case missingModule(module: String)
    case nonFinite(tensor: String, index: Int, value: Float)
    case unsupportedDType(tensor: String, dtype: String)
    /// A tensor name that is none of lora_A / lora_B / lora_magnitude_vector (or GGUF .lora_a / .lora_b).
    case unexpectedTensor(name: String, hint: String)
    /// Merge/combine/export preconditions.
    case incompatible(String)
    case cannotExport(format: String, reason: String)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "cannot read adapter file \(path): \(reason)"
        case .notAnAdapter(let path, let reason):
            return "\(path) is not a LoRA adapter: \(reason) (expected a PEFT directory with adapter_config.json and adapter_model.safetensors, or a llama.cpp LoRA .gguf file)"
        case .badConfig(let field, let expected, let found):
            return "adapter_config.json: '\(field)' is \(found), expected \(expected)"
        case .unsupportedPEFTType(let t):
            return "adapter_config.json: peft_type is '\(t)', expected 'LORA' (lorad serves LoRA and DoRA adapters only)"
        case .unsupportedOption(let option, let detail):
            return "unsupported adapter option \(option): \(detail)"
        case .architectureMismatch(let expected, let found):
            return "adapter is for architecture '\(found)', expected '\(expected)' (hint: maybe wrong base model?)"
        case .unknownModule(let tensor):
            return "adapter tensor '\(tensor)' matches no adaptable module of the base model (expected the q/k/v/o/gate/up/down projections of a Llama decoder layer; hint: maybe wrong base model?)"
        case .layerOutOfRange(let tensor, let layer, let count):
            return "adapter tensor '\(tensor)' is for layer \(layer), but the base model has layers 0..<\(count) (hint: maybe wrong base model?)"
        case .shapeMismatch(let tensor, let expected, let found):
            return "adapter tensor '\(tensor)' has shape \(found), expected \(expected) (hint: maybe wrong base model?)"
        case .missingHalf(let module, let missing):
            return "adapter module '\(module)' has no \(missing); LoRA needs both halves of each A/B pair (hint: a truncated or partly copied adapter?)"
        case .rankMismatch(let module, let a, let b):
            return "adapter module '\(module)': lora_A has rank \(a) but lora_B has rank \(b); they must be equal (hint: lora_A stored transposed?)"
        case .configRankMismatch(let module, let config, let tensors):
            return "adapter module '\(module)': adapter_config.json gives rank \(config) (r / rank_pattern) but the tensors have rank \(tensors)"
        case .rankOutOfRange(let module, let rank, let maxRank):
            return "adapter module '\(module)' has rank \(rank); expected 1...\(maxRank) (raise the configured maximum rank if this is intended)"
        case .noMatchingModules(let t):
            return "adapter target_modules \(t) match no adaptable module of the base model, so the adapter would change nothing (hint: maybe wrong base model?)"
        case .untargetedModule(let m):
            return "adapter file has weights for '\(m)', which adapter_config.json does not target (target_modules, exclude_modules, layers_to_transform)"
        case .missingModule(let m):
            return "adapter_config.json targets '\(m)' but the adapter file has no weights for it (hint: a truncated adapter, or a config from another adapter?)"
        case .nonFinite(let tensor, let index, let value):
            return "adapter tensor '\(tensor)' holds \(value) at element \(index); all weights must be finite (hint: training diverged?)"
        case .unsupportedDType(let tensor, let dtype):
            return "adapter tensor '\(tensor)' is stored as \(dtype); expected F32, F16 or BF16"
        case .unexpectedTensor(let name, let hint):
            return "unexpected adapter tensor '\(name)': \(hint)"
        case .incompatible(let reason):
            return "adapters cannot be combined: \(reason)"
        case .cannotExport(let format, let reason):
            return "cannot export as \(format): \(reason)"
        case .io(let path, let reason):
            return "cannot write \(path): \(reason)"
        }
    }
}

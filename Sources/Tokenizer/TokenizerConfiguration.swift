// The tokenizer's inputs as stored in GGUF metadata (FORMATS.md §6.1; key names from llama.cpp
// llama-arch.cpp), read but not yet interpreted. Tests build small ones by hand with the plain
// initializer; `init(metadata:)` reads them from a model file. Vocabulary.swift decides what they mean.
import ModelFormats

/// The special-token roles a GGUF file can name by id.
public enum SpecialToken: String, CaseIterable, Sendable {
    case bos, eos, eot, eom, unknown, separator, padding, mask
    case fimPrefix, fimSuffix, fimMiddle, fimPad, fimRepo, fimSeparator

    /// The metadata key that holds this role's id (llama.cpp's spelling, "seperator" included).
    public var metadataKey: String {
        switch self {
        case .bos: return "tokenizer.ggml.bos_token_id"
        case .eos: return "tokenizer.ggml.eos_token_id"
        case .eot: return "tokenizer.ggml.eot_token_id"
        case .eom: return "tokenizer.ggml.eom_token_id"
        case .unknown: return "tokenizer.ggml.unknown_token_id"
        case .separator: return "tokenizer.ggml.seperator_token_id"
        case .padding: return "tokenizer.ggml.padding_token_id"
        case .mask: return "tokenizer.ggml.mask_token_id"
        case .fimPrefix: return "tokenizer.ggml.fim_pre_token_id"
        case .fimSuffix: return "tokenizer.ggml.fim_suf_token_id"
        case .fimMiddle: return "tokenizer.ggml.fim_mid_token_id"
        case .fimPad: return "tokenizer.ggml.fim_pad_token_id"
        case .fimRepo: return "tokenizer.ggml.fim_rep_token_id"
        case .fimSeparator: return "tokenizer.ggml.fim_sep_token_id"
        }
    }

    /// Older key names llama.cpp still reads when the current one is absent.
    var deprecatedMetadataKey: String? {
        switch self {
        case .fimPrefix: return "tokenizer.ggml.prefix_token_id"
        case .fimSuffix: return "tokenizer.ggml.suffix_token_id"
        case .fimMiddle: return "tokenizer.ggml.middle_token_id"
        default: return nil
        }
    }
}

/// The GGUF token types (`tokenizer.ggml.token_type`, llama.h `llama_token_type`).
public enum TokenType: Int32, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

public struct TokenizerConfiguration: Sendable {
    /// `tokenizer.ggml.model`: lorad implements "gpt2" (byte-level BPE).
    public var model: String
    /// `tokenizer.ggml.pre`: lorad implements "smollm"; nil when absent.
    public var preTokenizer: String?
    /// `tokenizer.ggml.tokens`, in the byte-to-unicode spelling (space is "Ġ").
    public var tokens: [String]
    /// `tokenizer.ggml.token_type`, raw values (see TokenType); nil when absent (all normal).
    public var tokenTypes: [Int32]?
    /// `tokenizer.ggml.merges`, "left right"; the index is the rank.
    public var merges: [String]
    /// Ids named by metadata, as stored (Vocabulary ignores ones outside the vocabulary, as llama.cpp does).
    public var specialTokenIDs: [SpecialToken: Int]
    /// `tokenizer.ggml.add_bos_token` / `add_eos_token`; nil when absent (then false for BPE).
    public var addBOS: Bool?
    public var addEOS: Bool?

    public init(tokens: [String], tokenTypes: [TokenType]? = nil, merges: [String],
                specialTokenIDs: [SpecialToken: Int] = [:], addBOS: Bool? = nil, addEOS: Bool? = nil,
                model: String = "gpt2", preTokenizer: String? = "smollm") {
        self.model = model
        self.preTokenizer = preTokenizer
        self.tokens = tokens
        self.tokenTypes = tokenTypes?.map(\.rawValue)
        self.merges = merges
        self.specialTokenIDs = specialTokenIDs
        self.addBOS = addBOS
        self.addEOS = addEOS
    }

    /// Reads the tokenizer keys of a GGUF file's metadata. Checks types only; whether the tokenizer is
    /// one lorad implements is decided when the Tokenizer is built, so that error names the value.
    public init(metadata: [String: GGUFValue]) throws {
        func string(_ key: String) throws -> String? {
            guard let value = metadata[key] else { return nil }
            guard let s = value.string else {
                throw TokenizerError.wrongValueType(key: key, expected: "a string", found: "\(value.type)")
            }
            return s
        }
        func strings(_ key: String) throws -> [String]? {
            guard let value = metadata[key] else { return nil }
            guard let array = value.array, let s = array.strings ?? (array.count == 0 ? [] : nil) else {
                throw TokenizerError.wrongValueType(key: key, expected: "an array of strings", found: Self.typeName(value))
            }
            return s
        }
        func bool(_ key: String) throws -> Bool? {
            guard let value = metadata[key] else { return nil }
            guard let b = value.bool else {
                throw TokenizerError.wrongValueType(key: key, expected: "a bool", found: "\(value.type)")
            }
            return b
        }

        guard let model = try string("tokenizer.ggml.model") else {
            throw TokenizerError.missingKey("tokenizer.ggml.model")
        }
        self.model = model
        self.preTokenizer = try string("tokenizer.ggml.pre")
        guard let tokens = try strings("tokenizer.ggml.tokens") else {
            throw TokenizerError.missingKey("tokenizer.ggml.tokens")
        }
        self.tokens = tokens
        if let value = metadata["tokenizer.ggml.token_type"] {
            guard let types = value.array?.ints else {
                throw TokenizerError.wrongValueType(key: "tokenizer.ggml.token_type",
                                                    expected: "an array of integers", found: Self.typeName(value))
            }
            // Values outside Int32 cannot be a known type; they read as "undefined", as llama.cpp's do.
            self.tokenTypes = types.map { Int32(exactly: $0) ?? 0 }
        } else {
            self.tokenTypes = nil
        }
        // Merges are required only for BPE; a model lorad rejects anyway may lack them.
        self.merges = try strings("tokenizer.ggml.merges") ?? []
        var ids: [SpecialToken: Int] = [:]
        // llama.cpp reads the deprecated keys after the current ones, so they win when both are present.
        for role in SpecialToken.allCases {
            for key in [role.metadataKey, role.deprecatedMetadataKey].compactMap({ $0 }) {
                guard let value = metadata[key] else { continue }
                guard let id = value.int else {
                    throw TokenizerError.wrongValueType(key: key, expected: "an integer token id", found: "\(value.type)")
                }
                ids[role] = id
            }
        }
        self.specialTokenIDs = ids
        self.addBOS = try bool("tokenizer.ggml.add_bos_token")
        self.addEOS = try bool("tokenizer.ggml.add_eos_token")
    }

    private static func typeName(_ value: GGUFValue) -> String {
        if let array = value.array { return "an array of \(array.elementType)" }
        return "\(value.type)"
    }
}

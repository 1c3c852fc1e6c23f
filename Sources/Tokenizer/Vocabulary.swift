// What the tokenizer metadata means: token attributes, which ids play which special role, when BOS
// and EOS are added, the end-of-generation set, and the tokens matched as whole units in text.
// Follows llama.cpp llama-vocab.cpp `llama_vocab::impl::load` (FORMATS.md §6.1, §6.3):
// - special ids start from the BPE defaults (bos = eos = 11), and a metadata id replaces a default only
//   when it is inside the vocabulary;
// - eot, eom and the fim roles that metadata leaves unset are found by token text, and the token found
//   is forced to be a control token. llama.cpp walks a hash map, so when several texts of one role exist
//   which one wins is unspecified there; here the lowest id wins (it cannot matter for SmolLM2);
// - every token whose text is one of llama.cpp's end markers is forced to control and is end of
//   generation, and so are eos, eot, eom, fim-pad, fim-repo and fim-sep. For SmolLM2 this gives
//   {0 <|endoftext|>, 2 <|im_end|>, 4 <reponame>} (4 is fim-repo, found by its text);
// - control, user-defined and unknown tokens are cut out of text before BPE, longest text first
//   (ties by id; llama.cpp's sort is unstable there, which only matters for two same-length tokens that
//   overlap in the text).
// Not carried over: llama.cpp's fixes for other model families (gpt-oss "<|channel|>" et al. forced to
// user-defined, o200k/solar "<|end|>" and gemma4/plamo "</s>" dropped from the end-of-generation set,
// phi-3 rstrip and jina/modern-bert lstrip attributes): none can apply to an smollm pre-tokenizer model.

/// Token attributes, with llama.h's `llama_token_attr` bit values.
public struct TokenAttributes: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let unknown = TokenAttributes(rawValue: 1 << 0)
    public static let unused = TokenAttributes(rawValue: 1 << 1)
    public static let normal = TokenAttributes(rawValue: 1 << 2)
    public static let control = TokenAttributes(rawValue: 1 << 3)
    public static let userDefined = TokenAttributes(rawValue: 1 << 4)
    public static let byte = TokenAttributes(rawValue: 1 << 5)

    /// Attributes of a GGUF token type; an unknown type value is "undefined" (no attribute), as in llama.cpp.
    init(tokenType: Int32) {
        switch TokenType(rawValue: tokenType) {
        case .normal: self = .normal
        case .unknown: self = .unknown
        case .control: self = .control
        case .userDefined: self = .userDefined
        case .unused: self = .unused
        case .byte: self = .byte
        case .undefined, nil: self = []
        }
    }
}

public struct Vocabulary: Sendable {
    /// Token texts, in the byte-to-unicode spelling (empty texts replaced by "[EMPTY_<id>]" as llama.cpp does).
    public let tokens: [String]
    public let attributes: [TokenAttributes]
    /// The role ids in effect (metadata, defaults and text detection combined).
    public let specialIDs: [SpecialToken: Int32]
    public let endOfGeneration: Set<Int32>
    /// Whether encoding adds BOS / EOS by default (`tokenizer.ggml.add_bos_token` / `add_eos_token`).
    public let addBOS: Bool
    public let addEOS: Bool

    public var count: Int { tokens.count }

    /// Token text (UTF-8 bytes, so canonically equivalent texts stay distinct) to id.
    let idForText: [[UInt8]: Int32]
    /// Ids cut out of text before BPE, longest text first.
    let specialTokensLongestFirst: [Int32]

    /// Texts llama.cpp treats as end of turn (its `special_eot_id` auto-detection list).
    static let endOfTurnTexts: Set<String> = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
        "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
    ]
    /// Texts found for the other roles when metadata does not name them.
    static let detectedRoleTexts: [(SpecialToken, Set<String>)] = [
        (.eot, endOfTurnTexts),
        (.eom, ["<|eom_id|>"]),
        (.fimPrefix, ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
                      "<|code_prefix|>", "<|prefix|>"]),
        (.fimSuffix, ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
                      "<|code_suffix|>", "<|suffix|>"]),
        (.fimMiddle, ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
                      "<|code_middle|>", "<|middle|>"]),
        (.fimPad, ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]),
        (.fimRepo, ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]),
        (.fimSeparator, ["<|file_sep|>"]),
    ]
    /// Texts llama.cpp always treats as end of generation (its `special_eog_ids` text list).
    static let endOfGenerationTexts: Set<String> = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
        "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
        "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
        "<｜end▁of▁sentence｜>", "[e~[",
    ]

    init(_ configuration: TokenizerConfiguration) throws {
        let n = configuration.tokens.count
        guard n > 0 else { throw TokenizerError.emptyVocabulary }
        guard n < Int(Int32.max) else { throw TokenizerError.wrongValueType(
            key: "tokenizer.ggml.tokens", expected: "fewer than 2^31 tokens", found: "\(n) tokens") }
        if let types = configuration.tokenTypes, types.count < n {
            throw TokenizerError.tooFewTokenTypes(tokens: n, types: types.count)
        }

        var tokens = configuration.tokens
        var attributes = [TokenAttributes](repeating: .normal, count: n)
        var idForText: [[UInt8]: Int32] = [:]
        idForText.reserveCapacity(n)
        for id in 0..<n {
            if tokens[id].isEmpty { tokens[id] = "[EMPTY_\(id)]" }
            if let types = configuration.tokenTypes { attributes[id] = TokenAttributes(tokenType: types[id]) }
            if let first = idForText.updateValue(Int32(id), forKey: Array(tokens[id].utf8)) {
                throw TokenizerError.duplicateToken(text: tokens[id], first: Int(first), second: id)
            }
        }

        // Role ids: BPE defaults, then metadata ids that fall inside the vocabulary.
        var roles: [SpecialToken: Int32] = [:]
        if 11 < n {
            roles[.bos] = 11
            roles[.eos] = 11
        }
        for (role, id) in configuration.specialTokenIDs where id >= 0 && id < n {
            roles[role] = Int32(id)
        }

        // Roles still unset are found by text; the token found becomes a control token.
        for (role, texts) in Self.detectedRoleTexts where roles[role] == nil {
            if let id = texts.compactMap({ idForText[Array($0.utf8)] }).min() {
                roles[role] = id
                attributes[Int(id)].insert(.control)
            }
        }

        var endOfGeneration = Set<Int32>()
        for role in [SpecialToken.fimPad, .fimRepo, .fimSeparator, .eos, .eot, .eom] {
            if let id = roles[role] { endOfGeneration.insert(id) }
        }
        for text in Self.endOfGenerationTexts {
            if let id = idForText[Array(text.utf8)] {
                endOfGeneration.insert(id)
                attributes[Int(id)].insert(.control)
            }
        }

        let cut: TokenAttributes = [.control, .userDefined, .unknown]
        var specials: [(id: Int32, length: Int)] = []
        for id in 0..<n where !attributes[id].isDisjoint(with: cut) {
            specials.append((Int32(id), tokens[id].utf8.count))
        }
        specials.sort { a, b in a.length != b.length ? a.length > b.length : a.id < b.id }

        self.tokens = tokens
        self.attributes = attributes
        self.specialIDs = roles
        self.endOfGeneration = endOfGeneration
        self.addBOS = configuration.addBOS ?? false
        self.addEOS = configuration.addEOS ?? false
        self.idForText = idForText
        self.specialTokensLongestFirst = specials.map { $0.id }
    }
}

// Everything that can stop a tokenizer from being built, each case with a message that says what was
// expected, what was found and what to try. Encoding and decoding never fail: any String encodes, and
// ids outside the vocabulary decode to nothing (see Tokenizer.decode).

public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `tokenizer.ggml.model` names a tokenizer lorad does not implement (lorad has byte-level BPE, "gpt2").
    case unsupportedModel(String)
    /// `tokenizer.ggml.pre` names a pre-tokenizer lorad does not implement; nil when the key is absent.
    case unsupportedPreTokenizer(String?)
    case missingKey(String)
    case wrongValueType(key: String, expected: String, found: String)
    /// `tokenizer.ggml.token_type` has fewer entries than there are tokens.
    case tooFewTokenTypes(tokens: Int, types: Int)
    case emptyVocabulary
    /// Two tokens with the same text: ids would depend on which one wins (llama.cpp aborts here too).
    case duplicateToken(text: String, first: Int, second: Int)

    public var description: String {
        switch self {
        case .unsupportedModel(let model):
            return "unsupported tokenizer: tokenizer.ggml.model is '\(model)'; lorad implements only 'gpt2' "
                + "(byte-level BPE) (hint: this is not a SmolLM2-style model)"
        case .unsupportedPreTokenizer(let pre?):
            return "unsupported tokenizer: tokenizer.ggml.pre is '\(pre)'; lorad implements only 'smollm' "
                + "(hint: another pre-tokenizer splits text differently and would give wrong ids)"
        case .unsupportedPreTokenizer(nil):
            return "unsupported tokenizer: tokenizer.ggml.pre is missing; lorad implements only 'smollm' "
                + "(hint: re-convert the model with a current convert_hf_to_gguf.py)"
        case .missingKey(let key):
            return "required tokenizer metadata key '\(key)' is missing"
        case .wrongValueType(let key, let expected, let found):
            return "tokenizer metadata key '\(key)' holds \(found), expected \(expected)"
        case .tooFewTokenTypes(let tokens, let types):
            return "tokenizer.ggml.token_type has \(types) entries for \(tokens) tokens; expected one per token"
        case .emptyVocabulary:
            return "tokenizer.ggml.tokens is empty; expected at least one token"
        case .duplicateToken(let text, let first, let second):
            return "tokens \(first) and \(second) have the same text '\(text)'; every token text must be unique"
        }
    }
}

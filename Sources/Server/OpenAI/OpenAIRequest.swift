// The typed form of OpenAI-compatible request bodies (/v1/chat/completions, /v1/completions and
// vLLM's /tokenize and /detokenize), as OpenAIDecode produces them. Plain values: the router
// resolves `model` and `adapters` against the registry and hands prompt and sampling to the engine.

import JSON
import Llama
import ChatTemplate
import Sampling

/// What to generate from.
public enum OpenAIPrompt: Sendable, Equatable {
    /// Completions: text to tokenize (special tokens are added as the tokenizer's config says).
    case text(String)
    /// Completions: token ids, used as given.
    case tokens([Int32])
    /// Chat: messages to render with the model's chat template (system/user/assistant only).
    case chat([ChatMessage])
}

/// One adapter to apply, from the `adapters` extension field (`[{"name": ..., "scale": ...}]`).
public struct AdapterRequest: Sendable, Equatable {
    /// As written: `acme-support` or `acme-support@v2`; the registry resolves it.
    public var name: String
    /// Multiplies the adapter's own alpha/r scale; 1 when not given.
    public var scale: Float

    public init(name: String, scale: Float = 1) {
        self.name = name
        self.scale = scale
    }
}

/// A constraint on the output as requested (`guided_regex`/`regex`, `guided_choice` made into a
/// pattern, or a JSON Schema from `response_format`/`guided_json`); preparation compiles it into
/// `sampling.constraint`.
public struct ConstraintRequest: Sendable, Equatable {
    public var source: ConstraintSource
    /// The field it came from, for errors.
    public var param: String

    public init(_ source: ConstraintSource, param: String) {
        self.source = source
        self.param = param
    }
}

/// A decoded /v1/chat/completions or /v1/completions request.
public struct GenerationRequest: Sendable, Equatable {
    public enum Endpoint: String, Sendable, Equatable, CaseIterable {
        case chat
        case completion

        /// The URL path this endpoint is served at.
        public var path: String { self == .chat ? "/v1/chat/completions" : "/v1/completions" }
    }

    public var endpoint: Endpoint
    /// The base model's name or an adapter's name (`acme-support`, `acme-support@v2`).
    public var model: String
    public var prompt: OpenAIPrompt
    /// OpenAI's defaults where the request is silent (temperature 1, top_p 1, no top_k, no min_p,
    /// no penalties), the extension fields (`top_k`, `min_p`, `repetition_penalty`,
    /// `repeat_last_n`) when given. `maxTokens` nil: until end of generation or a full context.
    /// `topLogprobs` is set exactly when `logprobs` is.
    public var sampling: SamplingParameters
    public var stream: Bool
    /// `stream_options.include_usage`: send a last chunk with usage (and `"usage": null` before).
    public var includeUsage: Bool
    /// Report log-probabilities of the generated tokens (chat: `logprobs: true`; completions:
    /// `logprobs: n`).
    public var logprobs: Bool
    /// How many alternatives per position (chat: `top_logprobs`; completions: the `logprobs` number).
    public var topLogprobs: Int
    /// Completions only: return the prompt before the completion (with its logprobs when asked).
    public var echo: Bool
    /// Extension: adapters applied on top of (or, for the base model, instead of) `model`'s own.
    public var adapters: [AdapterRequest]
    public var user: String?
    /// Always 1: other values are rejected.
    public var n: Int
    /// Completions extension `parse_special`: special-token text in `prompt` ("<|im_start|>") becomes
    /// control tokens. Off by default, so text from an end user cannot forge a turn; chat messages'
    /// contents are always plain text.
    public var parseSpecial = false
    /// Extensions `guided_regex`/`regex`/`guided_choice`: the pattern the output must match.
    public var constraint: ConstraintRequest? = nil

    public init(endpoint: Endpoint, model: String, prompt: OpenAIPrompt, sampling: SamplingParameters = OpenAIDecode.defaultSampling,
                stream: Bool = false, includeUsage: Bool = false, logprobs: Bool = false, topLogprobs: Int = 0,
                echo: Bool = false, adapters: [AdapterRequest] = [], user: String? = nil, n: Int = 1) {
        self.endpoint = endpoint
        self.model = model
        self.prompt = prompt
        self.sampling = sampling
        self.stream = stream
        self.includeUsage = includeUsage
        self.logprobs = logprobs
        self.topLogprobs = topLogprobs
        self.echo = echo
        self.adapters = adapters
        self.user = user
        self.n = n
    }
}

/// A decoded vLLM-style /tokenize request: either `prompt` or `messages`.
public struct TokenizeRequest: Sendable, Equatable {
    /// `.text` from `prompt`, `.chat` from `messages`.
    public enum Input: Sendable, Equatable {
        case text(String)
        case chat([ChatMessage])
    }

    public var model: String?
    public var input: Input
    /// Add the tokenizer's special tokens (BOS): vLLM's default is true for `prompt` and false for
    /// `messages`, whose chat template already writes them.
    public var addSpecialTokens: Bool
    /// Messages only: end with the opening of an assistant turn (vLLM's default: true).
    public var addGenerationPrompt: Bool
    /// Also return each token's text (`token_strs`).
    public var returnTokenStrings: Bool
    /// `prompt` only: special-token text becomes control tokens (as completions' `parse_special`).
    public var parseSpecial = false

    public init(model: String?, input: Input, addSpecialTokens: Bool, addGenerationPrompt: Bool = true,
                returnTokenStrings: Bool = false) {
        self.model = model
        self.input = input
        self.addSpecialTokens = addSpecialTokens
        self.addGenerationPrompt = addGenerationPrompt
        self.returnTokenStrings = returnTokenStrings
    }
}

/// A decoded vLLM-style /detokenize request.
public struct DetokenizeRequest: Sendable, Equatable {
    public var model: String?
    public var tokens: [Int32]

    public init(model: String?, tokens: [Int32]) {
        self.model = model
        self.tokens = tokens
    }
}

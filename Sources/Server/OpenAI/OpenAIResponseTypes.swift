// The values the OpenAI encoders take: per-token log-probabilities (chat form and completions'
// legacy form), token usage, and /v1/models entries. The router fills them from engine events.

/// One generated token with its log-probability and the most likely alternatives at its position,
/// all from the model's raw distribution (chat's `logprobs.content[]`).
public struct TokenLogprobInfo: Sendable, Equatable {
    public var token: String
    /// The token's UTF-8 bytes (a token may hold part of a character; `token` then shows it
    /// lossily, the bytes exactly).
    public var bytes: [UInt8]
    public var logprob: Float
    /// Most likely first.
    public var top: [(token: String, bytes: [UInt8], logprob: Float)]

    public init(token: String, bytes: [UInt8], logprob: Float, top: [(token: String, bytes: [UInt8], logprob: Float)] = []) {
        self.token = token
        self.bytes = bytes
        self.logprob = logprob
        self.top = top
    }

    public static func == (a: TokenLogprobInfo, b: TokenLogprobInfo) -> Bool {
        a.token == b.token && a.bytes == b.bytes && a.logprob == b.logprob && a.top.count == b.top.count
            && zip(a.top, b.top).allSatisfy { $0.token == $1.token && $0.bytes == $1.bytes && $0.logprob == $1.logprob }
    }
}

/// Completions' legacy logprobs (`tokens`, `token_logprobs`, `top_logprobs`, `text_offset`), for
/// the tokens of one response or one stream chunk, in text order.
public struct CompletionLogprobs: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var token: String
        /// nil for the first prompt token of an echo: nothing predicts it. Its `top_logprobs` entry
        /// is then null too.
        public var logprob: Float?
        /// Most likely first. Written as a `{token: logprob}` object that, as OpenAI documents, also
        /// holds the chosen token (so up to `logprobs + 1` members).
        public var top: [(token: String, logprob: Float)]

        public init(token: String, logprob: Float?, top: [(token: String, logprob: Float)] = []) {
            self.token = token
            self.logprob = logprob
            self.top = top
        }

        public static func == (a: Entry, b: Entry) -> Bool {
            a.token == b.token && a.logprob == b.logprob && a.top.count == b.top.count
                && zip(a.top, b.top).allSatisfy { $0.token == $1.token && $0.logprob == $1.logprob }
        }
    }

    public var entries: [Entry]
    /// Where the first token starts, in Unicode scalars (Python `len`) from the start of the
    /// returned text, as vLLM counts: 0 for a whole response; in a stream, the length of the text
    /// sent in earlier chunks (echoed prompt included).
    public var textOffsetStart: Int

    public init(entries: [Entry], textOffsetStart: Int = 0) {
        self.entries = entries
        self.textOffsetStart = textOffsetStart
    }

    /// Generated tokens in chat form.
    public init(tokens: [TokenLogprobInfo], textOffsetStart: Int = 0) {
        self.init(entries: tokens.map { t in
            Entry(token: t.token, logprob: t.logprob, top: t.top.map { ($0.token, $0.logprob) })
        }, textOffsetStart: textOffsetStart)
    }

    /// `text_offset`: each token's start.
    public var textOffsets: [Int] {
        var offset = textOffsetStart
        return entries.map { e in
            defer { offset += e.token.unicodeScalars.count }
            return offset
        }
    }
}

/// Token counts of one request.
public struct Usage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens whose KV came from the prefix cache (`prompt_tokens_details.cached_tokens`).
    public var cachedPromptTokens: Int

    public var totalTokens: Int { promptTokens + completionTokens }

    public init(promptTokens: Int, completionTokens: Int, cachedPromptTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedPromptTokens = cachedPromptTokens
    }
}

/// One entry of GET /v1/models, in vLLM's shape: the base model has `parent` nil; an adapter has
/// the base's id as `parent`.
public struct ModelEntry: Sendable, Equatable {
    public var id: String
    /// Unix seconds.
    public var created: Int
    public var ownedBy: String
    public var parent: String?
    /// vLLM: the base's path for the base model, the adapter's path for an adapter.
    public var root: String?
    /// Context length in tokens, when known.
    public var maxModelLength: Int?

    public init(id: String, created: Int, ownedBy: String = "lorad", parent: String? = nil, root: String? = nil,
                maxModelLength: Int? = nil) {
        self.id = id
        self.created = created
        self.ownedBy = ownedBy
        self.parent = parent
        self.root = root
        self.maxModelLength = maxModelLength
    }
}

// What goes into the engine (a request: prompt tokens, adapters, sampling) and what comes out (token
// events). Plain values: the engine knows nothing of HTTP or JSON; the server maps its wire types to
// these and back.

import Llama
import Sampling

public struct EngineRequest: Sendable {
    /// The fairness key: requests are admitted round-robin over keys, with a queue limit per key.
    /// The server uses the tenant's name when tenants are configured, else the model name the client
    /// asked for (an adapter name or the base).
    public var queueKey: String
    /// Adapters applied to every forward pass of this sequence (empty: the base model).
    public var adapters: [AdapterUse]
    /// Or: the merged copy of one adapter (then `adapters` is empty), which runs at the base's speed.
    public var merged: MergedAdapter?
    public var prompt: [Int32]
    public var sampling: SamplingParameters
    /// Compute the log-probability of every prompt token (completions with `echo` and `logprobs`).
    /// Such a request never reuses a cached prefix, since a reused prefix has no logits.
    public var promptLogprobs: Bool
    /// Held from submission on, as if `setPaused(id, true)` had been called in the same instant: it
    /// is prefilled and samples its first token, then waits. A pause sent after `submit` returns can
    /// come too late: the engine thread may already have run it for many steps.
    public var startsPaused = false
    /// At most this many sequences of this request's key run at once (0: no limit of its own); the
    /// rest of the key waits in the queue while other keys are admitted.
    public var maxRunning = 0
    /// Its key's queue limit instead of the engine's per-key one (0: the engine's).
    public var maxQueued = 0
    /// Cached prefixes are reused only between requests of one partition (the server: the tenant).
    public var cachePartition = ""
    /// When its key has nothing else live, its prefill may take a step without the decode rows
    /// (EngineConfig.prefillFirst; the server sets it for tenants' requests, so a quiet tenant's first
    /// token is not stretched by a busy one's batch, while keys that are only adapter names share steps).
    public var prefillFirst = false

    public init(queueKey: String, adapters: [AdapterUse] = [], merged: MergedAdapter? = nil, prompt: [Int32],
                sampling: SamplingParameters, promptLogprobs: Bool = false) {
        self.queueKey = queueKey
        self.adapters = merged == nil ? adapters : []
        self.merged = merged
        self.prompt = prompt
        self.sampling = sampling
        self.promptLogprobs = promptLogprobs
    }
}

/// One prompt token's log-probability given the tokens before it (nil for the first token, which
/// nothing predicts), with the most likely alternatives at that position.
public struct PromptTokenLogprob: Sendable, Equatable {
    public var id: Int32
    public var logprob: Float?
    public var top: [TokenLogprob]
}

public struct EngineUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens whose KV came from the prefix cache instead of being computed.
    public var cachedPromptTokens: Int
}

public enum EngineEvent: Sendable {
    /// The request got a slot; `cachedTokens` of its prompt were reused from the prefix cache.
    case admitted(cachedTokens: Int)
    /// Log-probabilities of the prompt tokens (only when asked for), before any generated token.
    case promptLogprobs([PromptTokenLogprob])
    /// One sampled token and the text it completes (possibly empty: a partial UTF-8 character, or
    /// text held back because it may start a stop string).
    case token(SampledToken, text: String)
    /// The end: text still held back (the last partial stop-string candidate), the reason, usage.
    case finished(FinishReason, text: String, usage: EngineUsage)
    /// The request could not run or was stopped by an error; no more events follow.
    case failed(EngineError)
}

public enum EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Too many requests are waiting (over all adapters, or for this one).
    case queueFull(limit: Int, perAdapter: Bool)
    /// Empty, longer than the context allows, or holding ids outside the vocabulary.
    case prompt(PromptError)
    case badParameters(String)
    /// The KV budget could not hold this sequence even after evicting cached prefixes.
    case kvBudgetExhausted(String)
    /// The engine is stopping (SIGTERM) and takes no new requests.
    case shuttingDown
    case cancelled
    case forwardFailed(String)

    public var description: String {
        switch self {
        case .queueFull(let limit, let perAdapter):
            return perAdapter
                ? "too many requests are waiting for this model (limit \(limit)); retry later"
                : "too many requests are waiting (limit \(limit)); retry later"
        case .prompt(let e): return e.description
        case .badParameters(let s): return s
        case .kvBudgetExhausted(let s): return "out of KV cache memory: \(s)"
        case .shuttingDown: return "the server is shutting down"
        case .cancelled: return "cancelled"
        case .forwardFailed(let s): return "the forward pass failed: \(s)"
        }
    }
}

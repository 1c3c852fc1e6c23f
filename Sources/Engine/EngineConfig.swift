// The engine's limits: how many sequences run at once, how much KV memory they may hold, how long
// the queue may grow, how many prompt tokens one step may prefill. Defaults (close to vLLM's and
// llama-server's habits): 32 live sequences, 1 GiB of KV, 4096 tokens of context.

public struct EngineConfig: Sendable, Equatable {
    /// Sequences decoded together in one batch; more wait in the queue.
    public var maxSequences = 32
    /// Bytes all KV caches (live sequences and the prefix cache) may hold together.
    public var kvBudgetBytes = 1 << 30
    /// Positions one sequence may hold (prompt + generated); capped at the model's trained context.
    public var contextLimit = 4096
    /// Requests waiting for a slot, over all adapters; past it, submissions are refused (429).
    public var queueLimit = 256
    /// Requests waiting for a slot with one adapter: a flood on one adapter cannot fill the queue.
    public var perAdapterQueueLimit = 64
    /// Prompt tokens prefilled per step over all new sequences (chunked prefill): a long prompt is
    /// spread over several steps so the decoding sequences keep getting a token each step.
    public var prefillChunk = 256
    /// A key's first sequence (nothing else of its key running), if its request has `prefillFirst`,
    /// is prefilled in a step without the decode rows, at most every other step, so a quiet tenant's
    /// first token is not stretched by a busy one's batch (Engine.step).
    public var prefillFirst = true
    /// Keep the KV of finished prompts and reuse the longest matching prefix.
    public var prefixCache = true
    /// Shortest prefix worth reusing (copying fewer positions saves less than it costs to track).
    public var prefixCacheMinTokens = 8
    /// Entries the prefix cache keeps at most (each is one finished sequence's KV).
    public var prefixCacheMaxEntries = 64

    public init() {}
}

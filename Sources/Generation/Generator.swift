// One sequence's generation loop: prefill the prompt, then sample, stream text and stop.
//
// It ties together the pieces each owned elsewhere: the model's forward pass (LlamaModel), the
// sequence's own KV cache, the sampler (penalties, truncation, draw), the streaming detokenizer
// (whole UTF-8 characters only) and the stop-string matcher (held-back text, cut at the match).
// The per-token decision (what to show, when to stop) is `SequenceSampling`, shared with the
// daemon's engine, which batches many sequences (EngineSequence); this is the single-sequence form
// the commands use, and the reference the batched engine is tested against.

import Foundation
import Llama
import Sampling
import Tokenizer

public struct GenerationResult: Sendable {
    public var text: String
    public var tokens: [Int32]
    public var finishReason: FinishReason
    /// The caller stopped the generation (its `onText` returned false).
    public var cancelled: Bool
    public var promptTokens: Int
    /// Per generated token: its log-probability and alternatives, when requested.
    public var logprobs: [SampledToken]
    public var prefillSeconds: Double
    public var decodeSeconds: Double
}

public struct Generator {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public var parameters: SamplingParameters
    /// LoRA adapters applied to every forward pass of this generation.
    public var adapters: [AdapterUse]

    public init(model: LlamaModel, tokenizer: Tokenizer, parameters: SamplingParameters, adapters: [AdapterUse] = []) {
        self.model = model
        self.tokenizer = tokenizer
        self.parameters = parameters
        self.adapters = adapters
    }

    /// Generates a continuation of `prompt` (token ids). `onText` receives text as soon as it is
    /// safe to show (whole characters, no part of a stop string) and returns false to stop early
    /// (reported as `cancelled`, finish reason `.stop`).
    public func generate(prompt: [Int32], cache: KVCache? = nil,
                         onText: (String) -> Bool = { _ in true }) throws -> GenerationResult {
        let cache = cache ?? model.makeCache()
        let vocabularySize = model.config.vocabularySize
        try PromptError.check(prompt, room: cache.contextLimit - cache.count, vocabularySize: vocabularySize)
        var sampling = try SequenceSampling(parameters: parameters, vocabularySize: vocabularySize, prompt: prompt,
                                            tokenizer: tokenizer)

        let t0 = Date()
        var logits = try model.forward(prompt, cache: cache, adapters: adapters)
        let prefill = Date().timeIntervalSince(t0)

        var text = ""
        var tokens: [Int32] = []
        var logprobs: [SampledToken] = []
        var cancelled = false
        let t1 = Date()
        let finish: FinishReason
        while true {
            let sampled = logits.withUnsafeBufferPointer { sampling.sample(logits: $0) }
            tokens.append(sampled.id)
            if parameters.topLogprobs != nil { logprobs.append(sampled) }
            let step = sampling.accept(sampled.id, contextFull: cache.count >= cache.contextLimit)
            if case .finish(let reason, let piece) = step {
                text += piece
                if !piece.isEmpty { _ = onText(piece) }
                finish = reason
                break
            }
            if case .goOn(let piece) = step, !piece.isEmpty {
                text += piece
                if !onText(piece) {
                    // The caller stopped it: what is held back is never shown.
                    finish = .stop
                    cancelled = true
                    break
                }
            }
            logits = try model.forward([sampled.id], cache: cache, adapters: adapters)
        }
        return GenerationResult(text: text, tokens: tokens, finishReason: finish, cancelled: cancelled, promptTokens: prompt.count,
                                logprobs: logprobs, prefillSeconds: prefill,
                                decodeSeconds: Date().timeIntervalSince(t1))
    }
}

// One sequence's generation loop: prefill the prompt, then sample, stream text and stop.
//
// It ties together the pieces each owned elsewhere: the model's forward pass (LlamaModel), the
// sequence's own KV cache, the sampler (penalties, truncation, draw), the streaming detokenizer
// (whole UTF-8 characters only) and the stop-string matcher (held-back text, cut at the match).
// The daemon's engine batches many sequences with its own per-sequence step (EngineSequence); this
// is the single-sequence form the commands use, and the reference the batched engine is tested
// against.

import Foundation
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

public enum GenerationError: Error, CustomStringConvertible, Sendable {
    case emptyPrompt
    case promptTooLong(tokens: Int, limit: Int)

    public var description: String {
        switch self {
        case .emptyPrompt:
            return "the prompt is empty: give some text (or a chat message) to continue"
        case .promptTooLong(let n, let limit):
            return "the prompt has \(n) tokens but the context holds \(limit) (including at least one generated token)"
        }
    }
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
        guard !prompt.isEmpty else { throw GenerationError.emptyPrompt }
        let cache = cache ?? model.makeCache()
        let room = cache.contextLimit - cache.count
        guard prompt.count < room else { throw GenerationError.promptTooLong(tokens: prompt.count, limit: room) }

        var sampler = try Sampler(parameters: parameters, vocabularySize: model.config.vocabularySize)
        sampler.accept(contentsOf: prompt)
        var decoder = tokenizer.streamingDecoder()
        var stops = StopMatcher(stopStrings: parameters.stop)
        let limits = GenerationLimits(parameters, endOfGenerationTokens: tokenizer.eogTokens)

        let t0 = Date()
        var logits = try model.forward(prompt, cache: cache, adapters: adapters)
        let prefill = Date().timeIntervalSince(t0)

        var text = ""
        var tokens: [Int32] = []
        var logprobs: [SampledToken] = []
        var finish: FinishReason = .length
        var cancelled = false
        let t1 = Date()
        while true {
            let sampled = logits.withUnsafeBufferPointer { sampler.sample(logits: $0) }
            sampler.accept(sampled.id)
            tokens.append(sampled.id)
            if parameters.topLogprobs != nil { logprobs.append(sampled) }
            if limits.isEndOfGeneration(sampled.id) {
                finish = .stop
                break
            }
            let out = stops.feed(decoder.push(sampled.id))
            text += out.text
            if !out.text.isEmpty && !onText(out.text) {
                finish = .stop
                cancelled = true
                break
            }
            if out.stoppedBy != nil {
                finish = .stop
                break
            }
            if let reason = limits.finishReason(after: sampled.id, generatedCount: tokens.count) {
                finish = reason
                break
            }
            // The context is full: stop as OpenAI does for max_tokens.
            if cache.count >= cache.contextLimit {
                finish = .length
                break
            }
            logits = try model.forward([sampled.id], cache: cache, adapters: adapters)
        }
        if !cancelled && !stops.isFinished {
            let rest = stops.feed(decoder.flush()).text + stops.flush()
            if !rest.isEmpty {
                text += rest
                _ = onText(rest)
            }
        }
        return GenerationResult(text: text, tokens: tokens, finishReason: finish, cancelled: cancelled, promptTokens: prompt.count,
                                logprobs: logprobs, prefillSeconds: prefill,
                                decodeSeconds: Date().timeIntervalSince(t1))
    }
}

// One live sequence on the engine thread: its KV cache, its sampling and end decision
// (`SequenceSampling`, the same one the single-sequence Generator uses) and its progress through the
// prompt, kept apart so that the engine can interleave many sequences in one batch.

import Llama
import Sampling
import Tokenizer

final class EngineSequence {
    let id: UInt64
    let request: EngineRequest
    let cache: KVCache
    var sampling: SequenceSampling
    /// Prompt positions already in the cache (prefilled or reused).
    var prefilled: Int
    let cachedPromptTokens: Int
    /// Every token that went through the forward pass, in order (the prefix cache's key).
    var fed: [Int32]
    /// The token to feed next in decode (the last sampled one).
    var pending: Int32?
    var paused = false
    /// Log-probs of prompt tokens collected over the prefill chunks (echo).
    var promptLogprobs: [PromptTokenLogprob] = []
    let admittedOrder: UInt64

    init(id: UInt64, request: EngineRequest, cache: KVCache, reused: Int, tokenizer: Tokenizer,
         vocabularySize: Int, order: UInt64) throws(SamplingParameterError) {
        self.id = id
        self.request = request
        self.cache = cache
        sampling = try SequenceSampling(parameters: request.sampling, vocabularySize: vocabularySize,
                                        prompt: request.prompt, tokenizer: tokenizer)
        prefilled = reused
        cachedPromptTokens = reused
        fed = Array(request.prompt[..<reused])
        admittedOrder = order
    }

    var isPrefilling: Bool { prefilled < request.prompt.count }

    /// Accepts a sampled token: text to show, and whether the sequence ends here.
    func accept(_ sampled: SampledToken) -> SequenceSampling.Step {
        // The token still has to go through the model; with the context full it cannot.
        let step = sampling.accept(sampled.id, contextFull: cache.count + 1 > cache.contextLimit)
        if case .goOn = step { pending = sampled.id }
        return step
    }

    var usage: EngineUsage {
        EngineUsage(promptTokens: request.prompt.count, completionTokens: sampling.generated,
                    cachedPromptTokens: cachedPromptTokens)
    }
}

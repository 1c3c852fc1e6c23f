// One live sequence on the engine thread: its KV cache, sampler, streaming detokenizer, stop
// matcher and progress through the prompt. The same steps as the single-sequence Generator
// (Llama/Generation.swift), split so that the engine can interleave many sequences in one batch.

import Llama
import Tokenizer

final class EngineSequence {
    let id: UInt64
    let request: EngineRequest
    let cache: KVCache
    var sampler: Sampler
    var decoder: StreamingDecoder
    var stops: StopMatcher
    let limits: GenerationLimits
    /// Prompt positions already in the cache (prefilled or reused).
    var prefilled: Int
    let cachedPromptTokens: Int
    /// Every token that went through the forward pass, in order (the prefix cache's key).
    var fed: [Int32]
    var generated = 0
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
        sampler = try Sampler(parameters: request.sampling, vocabularySize: vocabularySize)
        sampler.accept(contentsOf: request.prompt)
        decoder = tokenizer.streamingDecoder()
        stops = StopMatcher(stopStrings: request.sampling.stop)
        limits = GenerationLimits(request.sampling, endOfGenerationTokens: tokenizer.eogTokens)
        prefilled = reused
        cachedPromptTokens = reused
        fed = Array(request.prompt[..<reused])
        admittedOrder = order
    }

    var isPrefilling: Bool { prefilled < request.prompt.count }

    /// What the outcome of one sampled token is for this sequence.
    enum Step {
        case goOn(text: String)
        case finish(FinishReason, text: String)
    }

    /// Accepts a sampled token: text to show, and whether the sequence ends here.
    func accept(_ sampled: SampledToken) -> Step {
        sampler.accept(sampled.id)
        generated += 1
        if limits.isEndOfGeneration(sampled.id) {
            return .finish(.stop, text: stops.isFinished ? "" : heldBack())
        }
        let out = stops.feed(decoder.push(sampled.id))
        if out.stoppedBy != nil { return .finish(.stop, text: out.text) }
        if let reason = limits.finishReason(after: sampled.id, generatedCount: generated) {
            return .finish(reason, text: out.text + heldBack())
        }
        // The sampled token still has to go through the model; with the context full it cannot.
        if cache.count + 1 > cache.contextLimit {
            return .finish(.length, text: out.text + heldBack())
        }
        pending = sampled.id
        return .goOn(text: out.text)
    }

    /// At the end: the partial character the decoder holds and the text the stop matcher held back.
    private func heldBack() -> String {
        stops.feed(decoder.flush()).text + stops.flush()
    }

    var usage: EngineUsage {
        EngineUsage(promptTokens: request.prompt.count, completionTokens: generated,
                    cachedPromptTokens: cachedPromptTokens)
    }
}

// One sequence's decision, token by token: which token comes next, what text may be shown now, and
// whether the generation ends here and why. It is made once, here, for both places that generate:
// the single-sequence `Generator` (the `generate` and `chat` commands) and the engine's batched
// `EngineSequence`, so the two cannot disagree on an ending.
//
// After each sampled token, in this order (llama-server's `process_token`, FORMATS.md §7.3):
// 1. an end-of-generation token ends it with "stop"; the token's own text is never shown, and
//    whatever the detokenizer and the stop matcher still hold is released;
// 2. the token's text goes through the stop matcher: a stop string ends it with "stop", cut before
//    the match;
// 3. the token cap ends it with "length", releasing what was held back;
// 4. a full context ends it with "length" too (the token could not go through the model).

import Tokenizer

/// Why a prompt cannot be generated from; the same rule for the commands and the engine.
public enum PromptError: Error, Sendable, Equatable, CustomStringConvertible {
    case empty
    /// `limit` counts the room left in the context, which must keep one position for a generated token.
    case tooLong(tokens: Int, limit: Int)
    case tokenOutOfVocabulary(id: Int32, vocabularySize: Int)

    /// Checks `prompt` against the room left in the context and the vocabulary.
    public static func check(_ prompt: [Int32], room: Int, vocabularySize: Int) throws(PromptError) {
        guard !prompt.isEmpty else { throw .empty }
        guard prompt.count < room else { throw .tooLong(tokens: prompt.count, limit: room) }
        if let bad = prompt.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
            throw .tokenOutOfVocabulary(id: bad, vocabularySize: vocabularySize)
        }
    }

    public var description: String {
        switch self {
        case .empty:
            return "the prompt is empty: give some text (or a chat message) to continue"
        case .tooLong(let n, let limit):
            return "the prompt has \(n) tokens but the context holds \(limit), including at least one generated token"
        case .tokenOutOfVocabulary(let id, let vocabularySize):
            return "token id \(id) is outside the vocabulary (0..<\(vocabularySize))"
        }
    }
}

/// The sampling state of one sequence and its end decision.
public struct SequenceSampling {
    public private(set) var sampler: Sampler
    private var decoder: StreamingDecoder
    private var stops: StopMatcher
    private let limits: GenerationLimits
    /// Where the output stands in `parameters.constraint`, when there is one.
    public private(set) var constraint: ConstraintState?
    /// Tokens accepted so far (the current one included).
    public private(set) var generated = 0

    /// What one accepted token means for the sequence.
    public enum Step: Equatable {
        /// Show `text` (possibly empty: a partial character, or text that may start a stop string)
        /// and feed the token to the model.
        case goOn(text: String)
        /// The generation ends: show `text` (the last of it, held back until now), report `reason`.
        case finish(FinishReason, text: String)
    }

    /// `prompt` goes into the penalty window (llama-server does the same).
    public init(parameters: SamplingParameters, vocabularySize: Int, prompt: [Int32],
                tokenizer: Tokenizer) throws(SamplingParameterError) {
        sampler = try Sampler(parameters: parameters, vocabularySize: vocabularySize)
        sampler.accept(contentsOf: prompt)
        decoder = tokenizer.streamingDecoder()
        stops = StopMatcher(stopStrings: parameters.stop)
        limits = GenerationLimits(parameters, endOfGenerationTokens: tokenizer.eogTokens)
        constraint = parameters.constraint?.makeState()
    }

    /// Picks the next token from one row of logits; `accept` it next. A constrained sequence
    /// samples only among the tokens its constraint allows now (the mask goes before the chain).
    public mutating func sample(logits: UnsafeBufferPointer<Float>) -> SampledToken {
        sampler.sample(logits: logits, allowed: constraint?.allowed())
    }

    /// Accepts the token just sampled. `contextFull`: the cache has no position left for it.
    public mutating func accept(_ token: Int32, contextFull: Bool) -> Step {
        sampler.accept(token)
        generated += 1
        if limits.isEndOfGeneration(token) {
            return .finish(.stop, text: heldBack())
        }
        constraint?.advance(token)
        let out = stops.feed(decoder.push(token))
        if out.stoppedBy != nil { return .finish(.stop, text: out.text) }
        if let reason = limits.finishReason(after: token, generatedCount: generated) {
            return .finish(reason, text: out.text + heldBack())
        }
        if contextFull { return .finish(.length, text: out.text + heldBack()) }
        return .goOn(text: out.text)
    }

    /// The partial character the decoder holds and the text the stop matcher held back.
    private mutating func heldBack() -> String {
        stops.isFinished ? "" : stops.feed(decoder.flush()).text + stops.flush()
    }
}

// Per-request sampling settings, their llama.cpp defaults, and their validation.
//
// Defaults are llama.cpp's `common_params_sampling` (common/common.h, the version vendored by
// llama-cpp-python 0.3.36); see docs FORMATS.md §7.1. Allowed ranges follow the OpenAI API where it
// has one (penalties −2…2, top_logprobs 0…20, logit bias −100…100) and llama.cpp's meaning elsewhere
// (temperature ≥ 0 with 0 = greedy, top_k 0 = off, top_p 1 = off, min_p 0 = off, FORMATS.md §7.2-7.3).
// Field names in errors are the JSON request names, because that is what a client can fix.

/// How to pick the next token and when to stop. Value type: one copy per request.
public struct SamplingParameters: Sendable, Equatable {
    /// Divides the logits after truncation. `0` (or below) means greedy: always the most likely token.
    public var temperature: Float = 0.8
    /// Keep only the `topK` highest logits; `0` disables the stage.
    public var topK: Int = 40
    /// Keep the smallest most-likely prefix whose probability mass reaches `topP`; `1` disables it.
    public var topP: Float = 0.95
    /// Keep tokens whose probability is at least `minP` times the top token's; `0` disables it.
    public var minP: Float = 0.05
    /// llama.cpp's repetition penalty: a recent token's logit is divided by it when positive and
    /// multiplied by it when negative or zero. `1` disables it.
    public var repeatPenalty: Float = 1.0
    /// How many of the most recent accepted tokens (prompt included) the three penalties look at.
    /// `0` disables all penalties. (Older llama.cpp took −1 for "whole context"; the version we
    /// follow rejects negative values, and so do we.)
    public var repeatLastN: Int = 64
    /// Subtracted once per occurrence of a token in the penalty window (OpenAI semantics).
    public var frequencyPenalty: Float = 0
    /// Subtracted once from every token that occurs in the penalty window (OpenAI semantics).
    public var presencePenalty: Float = 0
    /// Seed of the sampler's random generator; `nil` draws a fresh seed from the system.
    public var seed: UInt64? = nil
    /// Added to a token's logit before anything else. `-Float.infinity` bans the token.
    public var logitBias: [Int32: Float] = [:]
    /// Cap on generated tokens; `nil` means no cap (until end of generation or the context is full).
    public var maxTokens: Int? = nil
    /// Generation stops when the output contains one of these; the match and anything after it
    /// are removed from the output.
    public var stop: [String] = []
    /// `nil`: no log-probabilities. `n`: report the chosen token's log-probability and the `n`
    /// most likely alternatives (0…20), all from the raw model distribution (see `Sampler`).
    public var topLogprobs: Int? = nil
    /// A compiled constraint (`guided_regex`, `guided_choice`, `--regex`): only tokens that keep the
    /// output a prefix of a match may be sampled, and end of generation only once it matches.
    /// Shared and immutable; each sequence keeps its own position in it (`SequenceSampling`).
    /// Compared by identity, as the compiler's cache hands out one object per pattern.
    public var constraint: TokenConstraint? = nil

    public init(temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, minP: Float = 0.05,
                repeatPenalty: Float = 1.0, repeatLastN: Int = 64,
                frequencyPenalty: Float = 0, presencePenalty: Float = 0,
                seed: UInt64? = nil, logitBias: [Int32: Float] = [:], maxTokens: Int? = nil,
                stop: [String] = [], topLogprobs: Int? = nil) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repeatPenalty = repeatPenalty
        self.repeatLastN = repeatLastN
        self.frequencyPenalty = frequencyPenalty
        self.presencePenalty = presencePenalty
        self.seed = seed
        self.logitBias = logitBias
        self.maxTokens = maxTokens
        self.stop = stop
        self.topLogprobs = topLogprobs
    }

    public static func == (a: SamplingParameters, b: SamplingParameters) -> Bool {
        a.temperature == b.temperature && a.topK == b.topK && a.topP == b.topP && a.minP == b.minP
            && a.repeatPenalty == b.repeatPenalty && a.repeatLastN == b.repeatLastN
            && a.frequencyPenalty == b.frequencyPenalty && a.presencePenalty == b.presencePenalty
            && a.seed == b.seed && a.logitBias == b.logitBias && a.maxTokens == b.maxTokens && a.stop == b.stop
            && a.topLogprobs == b.topLogprobs && a.constraint === b.constraint
    }

    /// Always the most likely token (after logit bias and penalties); everything else default.
    public static let greedy = SamplingParameters(temperature: 0)

    /// Whether the draw is replaced by an argmax (llama.cpp: `temp <= 0`).
    public var isGreedy: Bool { temperature <= 0 }

    /// Whether the penalty stage can change anything (llama.cpp's `is_disabled`).
    var penaltiesEnabled: Bool {
        repeatLastN > 0 && (repeatPenalty != 1 || frequencyPenalty != 0 || presencePenalty != 0)
    }

    /// The largest number of alternatives a request may ask for (OpenAI's `top_logprobs` bound).
    public static let maxTopLogprobs = 20

    /// Checks every field. `vocabularySize`, when given, also bounds the token ids in `logitBias`.
    /// The first bad field is reported.
    public func validate(vocabularySize: Int? = nil) throws(SamplingParameterError) {
        func fail(_ field: String, _ allowed: String, _ found: String, _ hint: String? = nil) -> SamplingParameterError {
            SamplingParameterError(field: field, allowed: allowed, found: found, hint: hint)
        }
        // `!(x >= 0)` rather than `x < 0` so that NaN is rejected too.
        if !(temperature >= 0) || temperature.isInfinite {
            throw fail("temperature", "a finite number >= 0 (0 = greedy)", "\(temperature)")
        }
        if topK < 0 {
            throw fail("top_k", "an integer >= 0 (0 = disabled)", "\(topK)")
        }
        if !(topP > 0 && topP <= 1) {
            throw fail("top_p", "(0, 1] (1 = disabled)", "\(topP)")
        }
        if !(minP >= 0 && minP <= 1) {
            throw fail("min_p", "[0, 1] (0 = disabled)", "\(minP)")
        }
        if !(repeatPenalty > 0) || repeatPenalty.isInfinite {
            throw fail("repeat_penalty", "a finite number > 0 (1 = disabled)", "\(repeatPenalty)")
        }
        if repeatLastN < 0 || repeatLastN > Int(Int32.max) {
            throw fail("repeat_last_n", "0...\(Int32.max) (0 = penalties disabled)", "\(repeatLastN)")
        }
        if !(frequencyPenalty >= -2 && frequencyPenalty <= 2) {
            throw fail("frequency_penalty", "[-2, 2]", "\(frequencyPenalty)")
        }
        if !(presencePenalty >= -2 && presencePenalty <= 2) {
            throw fail("presence_penalty", "[-2, 2]", "\(presencePenalty)")
        }
        for (token, bias) in logitBias.sorted(by: { $0.key < $1.key }) {
            if token < 0 || (vocabularySize.map { Int(token) >= $0 } ?? false) {
                let range = vocabularySize.map { "0..<\($0)" } ?? ">= 0"
                throw fail("logit_bias", "token ids in \(range)", "token id \(token)",
                           "token ids are those of the model's vocabulary")
            }
            if !(bias >= -100 && bias <= 100) && bias != -.infinity {
                throw fail("logit_bias", "biases in [-100, 100], or -infinity to ban a token",
                           "bias \(bias) for token \(token)")
            }
        }
        if let maxTokens, maxTokens < 1 {
            throw fail("max_tokens", "an integer >= 1, or absent for no limit", "\(maxTokens)")
        }
        if let i = stop.firstIndex(of: "") {
            throw fail("stop", "non-empty strings", "an empty string at index \(i)",
                       "an empty stop string would end every generation at once; remove it")
        }
        if let topLogprobs, !(0...Self.maxTopLogprobs).contains(topLogprobs) {
            throw fail("top_logprobs", "0...\(Self.maxTopLogprobs)", "\(topLogprobs)")
        }
    }
}

/// A sampling parameter outside its allowed range.
public struct SamplingParameterError: Error, Equatable, CustomStringConvertible {
    /// The request field, spelled as in the JSON API (`top_p`, `frequency_penalty`, …).
    public let field: String
    /// The allowed values, in words.
    public let allowed: String
    /// What the request had.
    public let found: String
    /// Extra advice, when the range alone does not say how to fix it.
    public let hint: String?

    public var description: String {
        var text = "invalid sampling parameter \(field): expected \(allowed), found \(found)"
        if let hint { text += " (hint: \(hint))" }
        return text
    }
}

// When a generation ends and why: end-of-generation tokens, the token cap, and the finish reason.
//
// OpenAI reports `finish_reason` "stop" (end-of-sequence token or stop string) or "length" (token
// cap), FORMATS.md §7.3. llama-server checks the cap first and then the EOG token, so an EOG token
// that is also the last allowed token reports "stop" (tools/server/server-context.cpp
// `process_token`); we do the same. Stop strings are found by `StopMatcher` on the text.
// SmolLM2's EOG set is {0, 2, 4} (FORMATS.md §6.3); the tokenizer knows it, this type is told.

/// Why a generation ended, spelled as in the OpenAI API.
public enum FinishReason: String, Sendable, Equatable, CaseIterable {
    /// An end-of-generation token or a stop string.
    case stop
    /// The `maxTokens` cap (or the context) was reached.
    case length
}

/// The token-level end conditions of one generation.
public struct GenerationLimits: Sendable, Equatable {
    /// Cap on generated tokens; `nil` means none.
    public var maxTokens: Int?
    /// Tokens that end the generation; the token itself is not part of the output text.
    public var endOfGenerationTokens: Set<Int32>

    public init(maxTokens: Int?, endOfGenerationTokens: Set<Int32>) {
        self.maxTokens = maxTokens
        self.endOfGenerationTokens = endOfGenerationTokens
    }

    /// Limits for `parameters` with the model's EOG set.
    public init(_ parameters: SamplingParameters, endOfGenerationTokens: Set<Int32>) {
        self.init(maxTokens: parameters.maxTokens, endOfGenerationTokens: endOfGenerationTokens)
    }

    /// Call after each sampled token. `generatedCount` counts generated tokens including `token`.
    /// Returns nil to continue.
    public func finishReason(after token: Int32, generatedCount: Int) -> FinishReason? {
        if endOfGenerationTokens.contains(token) { return .stop }
        if let maxTokens, generatedCount >= maxTokens { return .length }
        return nil
    }

    /// Whether `token` ends the generation without being shown.
    public func isEndOfGeneration(_ token: Int32) -> Bool {
        endOfGenerationTokens.contains(token)
    }
}

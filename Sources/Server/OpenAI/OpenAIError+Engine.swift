// The one mapping from the engine's errors to OpenAI's, for a refused submission and for a stream
// that fails after it started alike.

import Engine
import Sampling

extension OpenAIError {
    /// `maxTokens` and `endpoint` fill in the context-length wording clients parse.
    init(_ error: EngineError, endpoint: GenerationRequest.Endpoint, maxTokens: Int?) {
        switch error {
        case .queueFull:
            self = .tooManyRequests(retryAfter: 1, message: error.description)
        case .shuttingDown:
            self = .unavailable(error.description, retryAfter: 5)
        case .kvBudgetExhausted:
            self = .unavailable(error.description, retryAfter: 1)
        case .prompt(.tooLong(let n, let limit)):
            self = .contextTooLong(promptTokens: n, maxTokens: maxTokens, limit: limit, endpoint: endpoint)
        case .prompt(.empty):
            self = .badRequest(param: endpoint == .chat ? "messages" : "prompt", message: "the prompt is empty")
        case .prompt(.tokenOutOfVocabulary):
            self = .badRequest(param: "prompt", message: error.description)
        case .badParameters(let m):
            self = .badRequest(param: nil, message: m)
        case .cancelled, .forwardFailed:
            self = .internal(error.description)
        }
    }
}

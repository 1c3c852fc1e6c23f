// Errors as the OpenAI API reports them: an HTTP status and a body
// `{"error": {"message", "type", "param", "code"}}` (param and code are null when they do not apply,
// as in OpenAI's responses). Every client-side problem with a request is a 400
// "invalid_request_error" that names the offending field in `param` and says what was expected and
// what was found, so a client can fix the request without reading our source.

import Llama
import JSON

public struct OpenAIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// HTTP status code.
    public var status: Int
    public var message: String
    /// OpenAI's error type: "invalid_request_error", "rate_limit_error", "server_error", ...
    public var type: String
    /// The request field at fault (`temperature`, `messages[1].role`), when there is one.
    public var param: String?
    /// A machine-readable code (`model_not_found`, `context_length_exceeded`), when there is one.
    public var code: String?
    /// Seconds for a `Retry-After` header (429 and 503 only); not part of the body.
    public var retryAfter: Int?

    public init(status: Int, message: String, type: String, param: String? = nil, code: String? = nil,
                retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public var description: String {
        "\(status) \(type)\(param.map { " (\($0))" } ?? ""): \(message)"
    }

    /// The response body, as OpenAI writes it.
    public func body() -> [UInt8] {
        let error = JSONValue.object([
            ("message", .string(message)),
            ("type", .string(type)),
            ("param", param.map(JSONValue.string) ?? .null),
            ("code", code.map(JSONValue.string) ?? .null),
        ])
        return Array(JSONValue.object([("error", error)]).serialized().utf8)
    }

    // MARK: - The kinds the server needs

    /// 400: a request field is missing, malformed or out of range.
    public static func badRequest(param: String?, message: String) -> OpenAIError {
        OpenAIError(status: 400, message: message, type: "invalid_request_error", param: param)
    }

    /// 400 for a field whose value is wrong: "`param` must be `expected`, found `found`".
    static func invalid(_ param: String, expected: String, found: JSONValue, hint: String? = nil) -> OpenAIError {
        var message = "\(param) must be \(expected), found \(describe(found))"
        if let hint { message += " (\(hint))" }
        return badRequest(param: param, message: message)
    }

    /// 404 for a model (base or adapter) that does not exist or that this caller may not use; the
    /// two look the same on purpose (DESIGN.md §7), with OpenAI's wording and code.
    public static func notFound(model: String) -> OpenAIError {
        OpenAIError(status: 404, message: "The model `\(excerpt(model))` does not exist or you do not have access to it.",
                    type: "invalid_request_error", code: "model_not_found")
    }

    /// 404 for a path the server does not serve.
    public static func notFound(path: String) -> OpenAIError {
        OpenAIError(status: 404, message: "Unknown request URL: \(path). Please check the URL for typos.",
                    type: "invalid_request_error", code: "unknown_url")
    }

    /// 401: missing or wrong bearer token.
    public static func unauthorized(_ message: String = "Incorrect or missing API key; send it as `Authorization: Bearer <token>`.") -> OpenAIError {
        OpenAIError(status: 401, message: message, type: "invalid_request_error", code: "invalid_api_key")
    }

    /// 429: the request queue is full; retry after `retryAfter` seconds.
    public static func tooManyRequests(retryAfter: Int, message: String? = nil) -> OpenAIError {
        OpenAIError(status: 429,
                    message: message ?? "Too many requests are waiting; please retry in \(retryAfter) second\(retryAfter == 1 ? "" : "s").",
                    type: "rate_limit_error", code: "rate_limit_exceeded", retryAfter: retryAfter)
    }

    /// 503: the server is not taking requests (starting up or draining for shutdown).
    public static func unavailable(_ message: String, retryAfter: Int? = nil) -> OpenAIError {
        OpenAIError(status: 503, message: message, type: "server_error", code: "service_unavailable", retryAfter: retryAfter)
    }

    /// 400 with OpenAI's context-length wording, which clients parse for the two numbers.
    /// `maxTokens` is the requested completion cap, nil when the request set none (then only the
    /// prompt is too long).
    /// `atLeast`: the prompt was refused before tokenizing it, from its length in bytes, so
    /// `promptTokens` is a lower bound.
    public static func contextTooLong(promptTokens: Int, maxTokens: Int? = nil, limit: Int,
                                      endpoint: GenerationRequest.Endpoint = .chat, atLeast: Bool = false) -> OpenAIError {
        let what = endpoint == .chat ? "messages" : "prompt"
        let message: String
        if atLeast {
            message = "This model's maximum context length is \(limit) tokens. However, your \(what) is too long "
                + "to fit: it has at least \(promptTokens) tokens. Please reduce the length of the \(what)."
        } else if let maxTokens {
            message = "This model's maximum context length is \(limit) tokens. However, you requested "
                + "\(promptTokens + maxTokens) tokens (\(promptTokens) in the \(what), \(maxTokens) in the completion). "
                + "Please reduce the length of the \(what) or completion."
        } else {
            message = "This model's maximum context length is \(limit) tokens. However, your \(what) resulted in "
                + "\(promptTokens) tokens. Please reduce the length of the \(what)."
        }
        return OpenAIError(status: 400, message: message, type: "invalid_request_error", param: what,
                           code: "context_length_exceeded")
    }

    /// 500: our own failure. The message should say what failed, not leak internals.
    public static func `internal`(_ message: String) -> OpenAIError {
        OpenAIError(status: 500, message: message, type: "server_error")
    }

    // MARK: - Rendering found values

    /// A short rendering of a JSON value for "found ..." (quoted strings, numbers as written,
    /// long values cut with an ellipsis).
    /// A client's string cut to `limit` characters for a message or a log line: a name is echoed
    /// so the client can see what it sent, but a 100 KB "name" must not become a 100 KB log line.
    public static func excerpt(_ text: String, limit: Int = 96) -> String {
        guard text.count > limit else { return text }
        return String(text.prefix(limit)) + "… (\(text.utf8.count) bytes)"
    }

    static func describe(_ value: JSONValue) -> String {
        let text = value.serialized()
        let limit = 48
        guard text.count > limit else { return text }
        return String(text.prefix(limit)) + "…"
    }
}

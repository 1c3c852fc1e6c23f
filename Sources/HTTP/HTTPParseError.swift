// The one error type of the request parser: the status to answer with and a message that says what
// was expected and what was found. Every parse error is fatal for the connection: the server writes
// the status and closes, because after a framing error it cannot know where the next request starts.

public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The response status: 400, 408, 413, 414, 417, 431, 501 or 505.
    public var status: Int
    public var message: String

    public init(status: Int, message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status) \(HTTPResponse.reasonPhrase(status)): \(message)" }

    static func badRequest(_ message: String) -> HTTPParseError { .init(status: 400, message: message) }
}

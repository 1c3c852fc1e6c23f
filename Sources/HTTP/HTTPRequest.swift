// One complete request as the parser hands it over: the request line split into its parts, the
// header fields as received, the decoded body, and whether the connection stays open after the
// response (RFC 9112 §9.3).

/// The HTTP versions the parser accepts; any other `HTTP/x.y` is answered with 505.
public enum HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    case http10, http11

    public var description: String { self == .http10 ? "HTTP/1.0" : "HTTP/1.1" }
}

public struct HTTPRequest: Sendable, Equatable {
    /// The method as sent; methods are case-sensitive tokens, so "get" is not "GET".
    public var method: String
    /// The request-target as sent.
    public var target: String
    /// The path, not percent-decoded: for origin-form the target up to '?'; for absolute-form
    /// ("http://host/p?q") the path component ("/p", or "/" when empty), so routes match either form;
    /// for asterisk-form "*"; for CONNECT's authority-form the authority itself.
    public var path: String
    /// What follows the first '?', or nil when there is none.
    public var query: String?
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Whether the connection stays open after the response: on HTTP/1.1 unless a Connection field
    /// lists "close"; on HTTP/1.0 only when it lists "keep-alive" and not "close".
    public var keepAlive: Bool

    public init(method: String, target: String, path: String, query: String? = nil,
                version: HTTPVersion = .http11, headers: HTTPHeaders = .init(), body: [UInt8] = [],
                keepAlive: Bool = true) {
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }
}

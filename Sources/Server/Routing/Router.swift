// The route table: method and path pattern to handler, on the loop thread.
//
// A pattern is a path whose segments are literals or `{name}` captures (`/v1/models/{id}`). The
// request path is split on `/` first and each segment percent-decoded after (RFC 3986 §2.1), so
// `/v1/models/demo%40v1` captures `demo@v1` and an encoded slash stays inside its segment.
// Dispatch answers what matches no route: 501 for a method HTTP does not define, 400 for a bad
// percent-encoding, 404 for an unknown path, 405 with `Allow` for a known path and another method.
// Before a handler runs, `authorize` (when set) may refuse the request: the one place an
// authentication step goes; its refusals are logged and counted through `Responder.refuse`.
//
// Body limits: a route may take bodies larger than `server.max_body_bytes` (`maxBodyBytes`, for
// uploads). The connection asks `bodyLimit(for:on:)` once a request's head has arrived and before
// its body is read; the larger limit applies only when `authorize` admits the caller, so anyone
// else is cut off at the server's limit before sending the bytes.

import Foundation
import HTTP

/// One request on its way to a handler.
struct RoutedRequest {
    let http: HTTPRequest
    let connection: HTTPConnection
    let started: Date
    /// The route's pattern, the request's name in logs and metrics (`/v1/models/{id}`).
    let endpoint: String
    /// The pattern's captures, percent-decoded.
    let parameters: [String: String]
    /// Who is calling, as `authorize` decided (`.open` when nothing authorizes).
    var caller: Caller = .open
}

struct Route {
    /// A route's own body limit: the configuration key that sets it, read at each request (live).
    struct BodyLimit {
        let setting: String
        let bytes: () -> Int
    }

    let method: String
    let pattern: String
    /// Who may call it: `authorize` decides from this.
    let access: RouteAccess
    var admin: Bool { access == .admin || access == .publish || access == .publishers }
    /// The body limit for callers `authorize` admits, instead of the server's; nil: the server's.
    let maxBodyBytes: BodyLimit?
    let handler: (RoutedRequest) -> Void
    /// `pattern` split once, at registration.
    private let segments: [Substring]

    init(method: String, pattern: String, access: RouteAccess, maxBodyBytes: BodyLimit? = nil, handler: @escaping (RoutedRequest) -> Void) {
        self.method = method
        self.pattern = pattern
        self.access = access
        self.maxBodyBytes = maxBodyBytes
        self.handler = handler
        segments = pattern.split(separator: "/", omittingEmptySubsequences: false)
    }

    /// The captures when `path` (split, each segment decoded) matches this pattern.
    func match(_ path: [String]) -> [String: String]? {
        guard segments.count == path.count else { return nil }
        var captures: [String: String] = [:]
        for (p, s) in zip(segments, path) {
            if p.hasPrefix("{") && p.hasSuffix("}") {
                captures[String(p.dropFirst().dropLast())] = s
            } else if p != s {
                return nil
            }
        }
        return captures
    }
}

final class Router {
    private var routes: [Route] = []
    /// Runs before every handler: the caller, or the error that refuses the request.
    var authorize: ((RoutedRequest, Route) -> Result<Caller, Refusal>)?
    /// Answers what no handler takes (and what `authorize` refuses).
    private let responder: Responder

    /// The methods RFC 9110 defines (plus PATCH, RFC 5789): one of these not allowed on a path gets
    /// 405 with Allow; any other method is one this server does not implement, 501 (§15.6.2).
    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]

    init(responder: Responder) {
        self.responder = responder
    }

    func add(_ method: String, _ pattern: String, access: RouteAccess = .tenants, maxBodyBytes: Route.BodyLimit? = nil,
             _ handler: @escaping (RoutedRequest) -> Void) {
        // An open route with a larger limit would let any client make the daemon buffer that much:
        // only routes behind `authorize`'s admin or publish check may have one.
        precondition(maxBodyBytes == nil || access == .admin || access == .publish || access == .publishers,
                     "\(method) \(pattern): only admin routes may take more than server.max_body_bytes")
        routes.append(Route(method: method, pattern: pattern, access: access, maxBodyBytes: maxBodyBytes, handler: handler))
    }

    /// The body limit for a request whose head (`head`, no body yet) has arrived on `conn`: the
    /// route's own when it has one and `authorize` admits the caller (the same check its handler
    /// will pass, decided once); nil (the server's) otherwise, including for every request no route
    /// takes.
    func bodyLimit(for head: HTTPRequest, on conn: HTTPConnection) -> HTTPBodyLimit? {
        bodyLimit(method: head.method, path: head.path) { route, captures in
            let routed = RoutedRequest(http: head, connection: conn, started: Date(), endpoint: route.pattern, parameters: captures)
            guard let authorize else { return true }
            if case .success = authorize(routed, route) { return true }
            return false
        }
    }

    /// `bodyLimit(for:on:)` with the admission step given (`admits`), for tests without a connection.
    func bodyLimit(method: String, path: String, admits: (Route, [String: String]) -> Bool) -> HTTPBodyLimit? {
        guard case .route(let route, let captures) = resolve(method: method, path: path), let limit = route.maxBodyBytes,
              admits(route, captures) else { return nil }
        return HTTPBodyLimit(bytes: limit.bytes(), setting: limit.setting)
    }

    /// Where a method and a (raw) path lead.
    enum Resolution {
        case route(Route, parameters: [String: String])
        /// A method HTTP does not define (501).
        case unknownMethod
        /// A bad percent-encoding (400).
        case badPath
        case notFound(path: String)
        /// The path exists with other methods: `allowed`, sorted (405).
        case methodNotAllowed(pattern: String, allowed: [String])
    }

    func resolve(method: String, path rawPath: String) -> Resolution {
        guard Self.knownMethods.contains(method) else { return .unknownMethod }
        guard let path = Self.segments(rawPath) else { return .badPath }
        let matching = routes.compactMap { route in route.match(path).map { (route, $0) } }
        guard let first = matching.first else { return .notFound(path: path.joined(separator: "/")) }
        guard let (route, captures) = matching.first(where: { $0.0.method == method }) else {
            return .methodNotAllowed(pattern: first.0.pattern, allowed: Set(matching.map(\.0.method)).sorted())
        }
        return .route(route, parameters: captures)
    }

    func dispatch(_ request: HTTPRequest, on conn: HTTPConnection) {
        let started = Date()
        func refuse(_ e: OpenAIError, endpoint: String, headers: [(String, String)] = []) {
            // No route ran `authorize`: no caller is known.
            responder.fail(e, request, conn, endpoint: endpoint, tenant: TenantLabel.none, started: started, extraHeaders: headers)
        }
        switch resolve(method: request.method, path: request.path) {
        case .unknownMethod:
            var e = OpenAIError(status: 501, message: "the method \(OpenAIError.excerpt(request.method, limit: 32)) is not implemented; lorad answers GET and POST",
                                type: "invalid_request_error")
            e.code = "not_implemented"
            refuse(e, endpoint: "(unknown)")
        case .badPath:
            refuse(.badRequest(param: nil, message: "the request path has a bad percent-encoding (expected %XX hex pairs that decode to UTF-8 without NUL)"),
                   endpoint: "(unknown)")
        case .notFound(let path):
            refuse(.notFound(path: OpenAIError.excerpt(path)), endpoint: "(unknown)")
        case .methodNotAllowed(let pattern, let allowed):
            let list = allowed.joined(separator: ", ")
            var e = OpenAIError(status: 405, message: "\(request.method) is not allowed on \(pattern); use \(list)",
                                type: "invalid_request_error")
            e.code = "method_not_allowed"
            refuse(e, endpoint: pattern, headers: [("Allow", list)])
        case .route(let route, let captures):
            var routed = RoutedRequest(http: request, connection: conn, started: started, endpoint: route.pattern,
                                       parameters: captures)
            if let authorize {
                switch authorize(routed, route) {
                case .failure(let refusal):
                    return responder.refuse(refusal, request, conn, endpoint: route.pattern, started: started)
                case .success(let caller): routed.caller = caller
                }
            }
            route.handler(routed)
        }
    }

    /// The path's segments, each percent-decoded; nil for a bad encoding.
    static func segments(_ path: String) -> [String]? {
        var out: [String] = []
        for raw in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard let s = PercentDecoding.decode(String(raw)) else { return nil }
            out.append(s)
        }
        return out
    }
}

// The route table on its own: patterns, captures, percent-decoding per segment, and what a path
// that no route takes resolves to (the live tests see the same answers over HTTP).

import HTTP
import Testing
@testable import Server

struct RouterTests {
    static func router() -> Router {
        let r = Router(responder: Responder(metrics: ServerMetrics(), isServing: { true }, log: { _, _ in }))
        for (m, p) in [("GET", "/healthz"), ("GET", "/v1/models"), ("GET", "/v1/models/{id}"),
                       ("POST", "/v1/chat/completions"), ("DELETE", "/v1/adapters/{name}/versions/{n}"),
                       ("GET", "/v1/adapters/{name}")] {
            r.add(m, p) { _ in }
        }
        return r
    }

    @Test func literalAndCapturedSegments() throws {
        let r = Self.router()
        guard case .route(let route, let params) = r.resolve(method: "GET", path: "/v1/models/demo%40v1") else {
            Issue.record("no route")
            return
        }
        #expect(route.pattern == "/v1/models/{id}")
        #expect(params == ["id": "demo@v1"])
        guard case .route(let r2, let p2) = r.resolve(method: "DELETE", path: "/v1/adapters/faq/versions/3") else {
            Issue.record("no route")
            return
        }
        #expect(r2.pattern == "/v1/adapters/{name}/versions/{n}")
        #expect(p2 == ["name": "faq", "n": "3"])
        guard case .route(let r3, _) = r.resolve(method: "GET", path: "/v1/models") else {
            Issue.record("no route")
            return
        }
        #expect(r3.pattern == "/v1/models")
    }

    /// An encoded slash stays inside its segment: it neither reaches another route nor splits a name.
    @Test func encodedSlashStaysInItsSegment() {
        let r = Self.router()
        guard case .notFound = r.resolve(method: "GET", path: "/v1%2Fmodels") else {
            Issue.record("an encoded slash matched /v1/models")
            return
        }
        guard case .route(_, let params) = r.resolve(method: "GET", path: "/v1/models/a%2Fb") else {
            Issue.record("no route")
            return
        }
        #expect(params["id"] == "a/b")
    }

    @Test func refusals() {
        let r = Self.router()
        guard case .methodNotAllowed(let pattern, let allowed) = r.resolve(method: "POST", path: "/v1/models/x") else {
            Issue.record("POST on a GET route was not 405")
            return
        }
        #expect(pattern == "/v1/models/{id}")
        #expect(allowed == ["GET"])
        guard case .unknownMethod = r.resolve(method: "BREW", path: "/healthz") else {
            Issue.record("BREW was not 501")
            return
        }
        guard case .badPath = r.resolve(method: "GET", path: "/v1/models/%zz") else {
            Issue.record("a bad escape was not 400")
            return
        }
        guard case .notFound = r.resolve(method: "GET", path: "/v1/models/x/y") else {
            Issue.record("an extra segment matched")
            return
        }
    }

    @Test(arguments: [
        ("/healthz", "/healthz"),
        ("/v1/models/demo%40v1", "/v1/models/demo@v1"),
        ("/%68ealthz", "/healthz"),
        ("/a%2Fb", "/a/b"),
        ("/caf%C3%A9", "/café"),
        ("/%7e%7E", "/~~"),
    ])
    func percentDecoding(raw: String, decoded: String) {
        #expect(PercentDecoding.decode(raw) == decoded)
    }

    @Test(arguments: ["/%", "/%4", "/%zz", "/a%00b", "/%C3", "/%FF%FE"])
    func badPercentEncodingIsRefused(raw: String) {
        #expect(PercentDecoding.decode(raw) == nil)
    }

    /// A route's own body limit applies only to the method and path it serves and only when the
    /// caller is admitted; everything else keeps the server's (nil). Read at each request (live).
    @Test func routeBodyLimitOnlyForAdmittedCallers() {
        let r = Self.router()
        var upload = 1 << 20
        r.add("POST", "/v1/adapters/{name}/versions", access: .admin,
              maxBodyBytes: Route.BodyLimit(setting: "admin.max_upload_bytes", bytes: { upload })) { _ in }
        var seen: [String: String] = [:]
        let admitted = r.bodyLimit(method: "POST", path: "/v1/adapters/faq/versions") { route, captures in
            seen = captures
            return route.admin
        }
        #expect(admitted == HTTPBodyLimit(bytes: 1 << 20, setting: "admin.max_upload_bytes"))
        #expect(seen == ["name": "faq"])
        upload = 2 << 20
        #expect(r.bodyLimit(method: "POST", path: "/v1/adapters/faq/versions") { _, _ in true }?.bytes == 2 << 20)
        #expect(r.bodyLimit(method: "POST", path: "/v1/adapters/faq/versions") { _, _ in false } == nil, "a refused caller")
        #expect(r.bodyLimit(method: "GET", path: "/v1/adapters/faq/versions") { _, _ in true } == nil, "another method")
        #expect(r.bodyLimit(method: "POST", path: "/v1/chat/completions") { _, _ in true } == nil, "a route without its own")
        #expect(r.bodyLimit(method: "POST", path: "/nowhere") { _, _ in true } == nil)
    }
}

// Answers and the request log: every response goes out through here, so every request is logged in
// one line and counted in metrics once, whichever handler (or the router itself) answered it. Each
// answer names its caller's tenant label (Audit.swift: a configured name, "(none)" or "(unknown)")
// for the per-tenant counters; a refusal (401, 403, 429) also gets its audit line and is counted by
// reason, through `refuse`.

import Foundation
import HTTP
import Logging

final class Responder {
    let metrics: ServerMetrics
    private let log: (Logger.Level, String) -> Void
    /// False once the daemon drains: responses then close their connection.
    private let isServing: () -> Bool

    init(metrics: ServerMetrics, isServing: @escaping () -> Bool, log: @escaping (Logger.Level, String) -> Void) {
        self.metrics = metrics
        self.isServing = isServing
        self.log = log
    }

    /// Keep-alive for a response to `request`: as the client asked, unless the daemon is draining.
    func keepAlive(_ request: HTTPRequest) -> Bool { request.keepAlive && isServing() }

    func respondJSON(_ status: Int, _ body: [UInt8], _ request: HTTPRequest, _ conn: HTTPConnection,
                     endpoint: String, tenant: String, adapter: String = "", started: Date) {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        finish(HTTPResponse(status: status, headers: h, body: body), request, conn,
               endpoint: endpoint, tenant: tenant, adapter: adapter, started: started)
    }

    func fail(_ e: OpenAIError, _ request: HTTPRequest, _ conn: HTTPConnection, endpoint: String, tenant: String, adapter: String = "",
              started: Date, extraHeaders: [(String, String)] = []) {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        if let r = e.retryAfter { h.add("Retry-After", String(r)) }
        for (k, v) in extraHeaders { h.add(k, v) }
        finish(HTTPResponse(status: e.status, headers: h, body: e.body()), request, conn,
               endpoint: endpoint, tenant: tenant, adapter: adapter, started: started, detail: e.message)
    }

    /// A refused request: its answer and request line (`fail`), plus its audit line and refusal count.
    /// `endpoint` is the route pattern, the action the audit line names.
    func refuse(_ refusal: Refusal, _ request: HTTPRequest, _ conn: HTTPConnection, endpoint: String, adapter: String = "",
                started: Date) {
        metrics.refused(tenant: refusal.tenant, reason: refusal.reason.rawValue)
        let uid = conn.stream.peerCredentials.map { Int($0.uid) }
        log(.notice, Audit.refusedLine(who: refusal.who, uid: uid, method: request.method, pattern: endpoint,
                                       status: refusal.error.status, reason: refusal.reason))
        fail(refusal.error, request, conn, endpoint: endpoint, tenant: refusal.tenant, adapter: adapter, started: started)
    }

    func finish(_ response: HTTPResponse, _ request: HTTPRequest, _ conn: HTTPConnection,
                endpoint: String, tenant: String, adapter: String, started: Date, detail: String? = nil) {
        conn.finish(response, keepAlive: keepAlive(request))
        logRequest(request, status: response.status, endpoint: endpoint, tenant: tenant, adapter: adapter, started: started, detail: detail)
    }

    func logRequest(_ request: HTTPRequest, status: Int, endpoint: String, tenant: String, adapter: String, started: Date,
                    detail: String? = nil, extra: String = "") {
        metrics.requestFinished(endpoint: endpoint, status: status, adapter: adapter, tenant: tenant)
        let ms = Int(Date().timeIntervalSince(started) * 1000)
        var line = "\(OpenAIError.excerpt(request.method, limit: 32)) \(OpenAIError.excerpt(request.path)) \(status) \(ms)ms"
        if !adapter.isEmpty { line += " model=\(adapter)" }
        if !extra.isEmpty { line += " " + extra }
        if let detail { line += " error=\(detail.debugDescription)" }
        log(status >= 500 ? .error : .info, line)
    }
}

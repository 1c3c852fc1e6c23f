// Answers and the request log: every response goes out through here, so every request is logged in
// one line and counted in metrics once, whichever handler (or the router itself) answered it.

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
                     endpoint: String, adapter: String = "", started: Date) {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        finish(HTTPResponse(status: status, headers: h, body: body), request, conn,
               endpoint: endpoint, adapter: adapter, started: started)
    }

    func fail(_ e: OpenAIError, _ request: HTTPRequest, _ conn: HTTPConnection, endpoint: String, adapter: String = "",
              started: Date, extraHeaders: [(String, String)] = []) {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        if let r = e.retryAfter { h.add("Retry-After", String(r)) }
        for (k, v) in extraHeaders { h.add(k, v) }
        finish(HTTPResponse(status: e.status, headers: h, body: e.body()), request, conn,
               endpoint: endpoint, adapter: adapter, started: started, detail: e.message)
    }

    func finish(_ response: HTTPResponse, _ request: HTTPRequest, _ conn: HTTPConnection,
                endpoint: String, adapter: String, started: Date, detail: String? = nil) {
        conn.finish(response, keepAlive: keepAlive(request))
        logRequest(request, status: response.status, endpoint: endpoint, adapter: adapter, started: started, detail: detail)
    }

    func logRequest(_ request: HTTPRequest, status: Int, endpoint: String, adapter: String, started: Date,
                    detail: String? = nil, extra: String = "") {
        metrics.requestFinished(endpoint: endpoint, status: status, adapter: adapter)
        let ms = Int(Date().timeIntervalSince(started) * 1000)
        var line = "\(OpenAIError.excerpt(request.method, limit: 32)) \(OpenAIError.excerpt(request.path)) \(status) \(ms)ms"
        if !adapter.isEmpty { line += " model=\(adapter)" }
        if !extra.isEmpty { line += " " + extra }
        if let detail { line += " error=\(detail.debugDescription)" }
        log(status >= 500 ? .error : .info, line)
    }
}

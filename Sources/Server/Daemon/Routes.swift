// The router: method and path to handler, on the loop thread. Operations endpoints (/healthz,
// /readyz, /metrics), the OpenAI-compatible API (/v1/models, /v1/chat/completions, /v1/completions)
// and vLLM's /tokenize and /detokenize. Every answer is logged in one line and counted in metrics.

import ChatTemplate
import Foundation
import Generation
import HTTP
import Engine
import Llama
import ModelFormats
import Tokenizer

extension Daemon {
    private static let routes: [String: Set<String>] = [
        "/healthz": ["GET"], "/health": ["GET"], "/readyz": ["GET"], "/metrics": ["GET"],
        "/v1/models": ["GET"],
        "/v1/chat/completions": ["POST"], "/v1/completions": ["POST"],
        "/tokenize": ["POST"], "/detokenize": ["POST"],
    ]

    /// The methods RFC 9110 defines (plus PATCH, RFC 5789): one of these not allowed on a path gets
    /// 405 with Allow; any other method is one this server does not implement, 501 (§15.6.2).
    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]

    func handle(_ request: HTTPRequest, on conn: HTTPConnection) {
        let started = Date()
        guard Self.knownMethods.contains(request.method) else {
            var e = OpenAIError(status: 501, message: "the method \(OpenAIError.excerpt(request.method, limit: 32)) is not implemented; lorad answers GET and POST",
                                type: "invalid_request_error")
            e.code = "not_implemented"
            return fail(e, request, conn, endpoint: "(unknown)", started: started)
        }
        // Routes match the decoded path, so /v1/models/demo%40v1 names demo@v1 (RFC 3986 §2.1).
        guard let path = PercentDecoding.decode(request.path) else {
            return fail(.badRequest(param: nil, message: "the request path has a bad percent-encoding (expected %XX hex pairs that decode to UTF-8 without NUL)"),
                        request, conn, endpoint: "(unknown)", started: started)
        }
        if path.hasPrefix("/v1/models/") && request.method == "GET" {
            return respondModel(String(path.dropFirst("/v1/models/".count)), request, conn, started)
        }
        guard let methods = Self.routes[path] else {
            return fail(.notFound(path: OpenAIError.excerpt(path)), request, conn, endpoint: "(unknown)", started: started)
        }
        guard methods.contains(request.method) else {
            var e = OpenAIError(status: 405, message: "\(request.method) is not allowed on \(path); use \(methods.sorted().joined(separator: ", "))",
                                type: "invalid_request_error")
            e.code = "method_not_allowed"
            return fail(e, request, conn, endpoint: path, started: started, extraHeaders: [("Allow", methods.sorted().joined(separator: ", "))])
        }
        switch path {
        case "/healthz", "/health":   // /health: vLLM's and llama-server's name
            respondJSON(200, Array(#"{"status":"ok"}"#.utf8), request, conn, endpoint: path, started: started)
        case "/readyz":
            if state == .serving {
                respondJSON(200, Array(#"{"status":"ready"}"#.utf8), request, conn, endpoint: path, started: started)
            } else {
                fail(.unavailable("the server is shutting down", retryAfter: 5), request, conn, endpoint: path, started: started)
            }
        case "/metrics":
            updateGauges()
            var h = HTTPHeaders()
            h.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            finishResponse(HTTPResponse(status: 200, headers: h, body: Array(metrics.render().utf8)), request, conn,
                           endpoint: path, adapter: "", started: started)
        case "/v1/models":
            respondJSON(200, OpenAIEncode.models(modelEntries()), request, conn, endpoint: path, started: started)
        case "/tokenize":
            handleTokenize(request, conn, started)
        case "/detokenize":
            handleDetokenize(request, conn, started)
        default:
            startGeneration(request, conn, started: started,
                            endpoint: path == "/v1/chat/completions" ? .chat : .completion)
        }
    }

    // MARK: Models

    func modelEntries() -> [ModelEntry] {
        let context = engine.contextLimit
        var out = [ModelEntry(id: servedName, created: createdAt, ownedBy: "lorad", parent: nil, root: bundle.gguf.path,
                              maxModelLength: context)]
        for name in catalog.sortedNames {
            let e = catalog.entries[name]!
            out.append(ModelEntry(id: name, created: e.created, ownedBy: "lorad", parent: servedName, root: e.path,
                                  maxModelLength: context))
        }
        return out
    }

    private func respondModel(_ id: String, _ request: HTTPRequest, _ conn: HTTPConnection, _ started: Date) {
        // The base by its served name, an adapter by `name` or `name@v1` (its entry is under `name`).
        let name = id == servedName ? servedName : catalog.lookup(id)?.name
        guard let name, let entry = modelEntries().first(where: { $0.id == name }) else {
            return fail(.notFound(model: id), request, conn, endpoint: "/v1/models/{id}", started: started)
        }
        respondJSON(200, OpenAIEncode.model(entry), request, conn, endpoint: "/v1/models/{id}", started: started)
    }

    // MARK: Tokenize

    /// /tokenize: prepared like a generation (inline when small, else on the prompt thread).
    private func handleTokenize(_ request: HTTPRequest, _ conn: HTTPConnection, _ started: Date) {
        let endpoint = "/tokenize"
        let context = preparationContext, body = request.body
        prepare(request, conn, endpoint: endpoint, started: started, { Self.tokenize(body: body, context) },
                then: { [unowned self] result in
            switch result {
            case .success(let json): respondJSON(200, json, request, conn, endpoint: endpoint, started: started)
            case .failure(let e): fail(e, request, conn, endpoint: endpoint, started: started)
            }
        })
    }

    /// The /tokenize answer for `body`. Pure: any thread.
    static func tokenize(body: [UInt8], _ c: PreparationContext) -> Result<[UInt8], OpenAIError> {
        do {
            let r = try OpenAIDecode.tokenizeRequest(body: body)
            if let m = r.model, m != c.servedName, c.catalog.lookup(m) == nil {
                throw OpenAIError.notFound(model: m)
            }
            let tokenizer = c.bundle.tokenizer
            let tokens: [Int32]
            switch r.input {
            case .text(let text):
                tokens = tokenizer.encode(text, parseSpecial: r.parseSpecial, addBOS: r.addSpecialTokens ? nil : false)
            case .chat(let messages):
                tokens = try chatTokens(c.bundle, messages)
            }
            let strings = r.returnTokenStrings ? tokens.map { tokenizer.tokenText($0) ?? "" } : nil
            return .success(OpenAIEncode.tokenize(tokens: tokens, maxModelLength: c.contextLimit, tokenStrings: strings))
        } catch let e as OpenAIError {
            return .failure(e)
        } catch {
            return .failure(.internal("\(error)"))
        }
    }

    private func handleDetokenize(_ request: HTTPRequest, _ conn: HTTPConnection, _ started: Date) {
        let endpoint = "/detokenize"
        do {
            let r = try OpenAIDecode.detokenizeRequest(body: request.body, vocabularySize: bundle.model.config.vocabularySize)
            let vocab = bundle.model.config.vocabularySize
            if let (i, bad) = r.tokens.enumerated().first(where: { $0.element < 0 || Int($0.element) >= vocab }) {
                throw OpenAIError.badRequest(param: "tokens[\(i)]", message: "token id \(bad) is outside the vocabulary (0..<\(vocab))")
            }
            respondJSON(200, OpenAIEncode.detokenize(prompt: bundle.tokenizer.decode(r.tokens)),
                        request, conn, endpoint: endpoint, started: started)
        } catch let e as OpenAIError {
            fail(e, request, conn, endpoint: endpoint, started: started)
        } catch {
            fail(.internal("\(error)"), request, conn, endpoint: endpoint, started: started)
        }
    }

    /// The prompt of a chat: messages rendered by the template, contents as plain text. Any thread.
    static func chatTokens(_ bundle: ModelBundle, _ messages: [ChatMessage]) throws -> [Int32] {
        bundle.tokenizer.encode(try renderChat(bundle, messages))
    }

    /// The rendered chat, ready to bound or encode; template failures become 400s naming messages.
    static func renderChat(_ bundle: ModelBundle, _ messages: [ChatMessage]) throws -> ChatPrompt {
        do {
            return try bundle.renderChat(messages)
        } catch let e as ModelBundleError {
            throw OpenAIError.badRequest(param: "messages", message: "\(e)")
        } catch {
            throw OpenAIError.badRequest(param: "messages", message: "the chat template failed on these messages: \(error)")
        }
    }

    // MARK: Responses

    func respondJSON(_ status: Int, _ body: [UInt8], _ request: HTTPRequest, _ conn: HTTPConnection,
                     endpoint: String, adapter: String = "", started: Date) {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        finishResponse(HTTPResponse(status: status, headers: h, body: body), request, conn,
                       endpoint: endpoint, adapter: adapter, started: started)
    }

    func fail(_ e: OpenAIError, _ request: HTTPRequest, _ conn: HTTPConnection, endpoint: String, adapter: String = "",
              started: Date, extraHeaders: [(String, String)] = []) {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        if let r = e.retryAfter { h.add("Retry-After", String(r)) }
        for (k, v) in extraHeaders { h.add(k, v) }
        finishResponse(HTTPResponse(status: e.status, headers: h, body: e.body()), request, conn,
                       endpoint: endpoint, adapter: adapter, started: started, detail: e.message)
    }

    func finishResponse(_ response: HTTPResponse, _ request: HTTPRequest, _ conn: HTTPConnection,
                        endpoint: String, adapter: String, started: Date, detail: String? = nil) {
        let keepAlive = request.keepAlive && state == .serving
        conn.finish(response, keepAlive: keepAlive)
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

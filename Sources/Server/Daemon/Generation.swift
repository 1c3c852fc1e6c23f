// Chat and text completions: from a decoded request to an engine submission, and from engine
// events back to the client, whole (one JSON body) or streamed (Server-Sent Events in OpenAI's
// chunk shape, ending with `data: [DONE]`).
//
// A request is first prepared: decoded, its `model` resolved to the base (the served name) or an
// adapter (`name`, `name@v1`) with the `adapters` extension stacking more, its prompt rendered and
// tokenized and checked against the context, so the client gets a 400 with both numbers before
// anything is queued. Preparing is a pure function of the body and immutable state (the model, a
// snapshot of the catalog), so a large body is prepared on the prompt thread while the loop goes on
// serving; a small one (most requests) is prepared inline. A prompt is refused from its length in
// bytes alone when even the fewest tokens it could make cannot fit, before any tokenizing.
// Everything else here runs on the loop thread.

import ChatTemplate
import Foundation
import Generation
import HTTP
import Engine
import Llama
import LoRA
import ModelFormats
import Sampling
import Tokenizer

/// A request ready for the engine, or the error to answer.
enum PreparedGeneration: @unchecked Sendable {
    // @unchecked: GenerationRequest, [AdapterUse] and the token ids are immutable values.
    case ready(Ready)
    case failed(OpenAIError, label: String)

    struct Ready {
        let request: GenerationRequest
        /// The model's name for logs, metrics and the queue key.
        let label: String
        let uses: [AdapterUse]
        let prompt: [Int32]
        let echoText: String?
    }
}

/// Immutable state a preparation reads, so that it can run on any thread.
struct PreparationContext: @unchecked Sendable {
    // @unchecked: ModelBundle is immutable; the catalog is a value snapshot of immutable entries.
    let bundle: ModelBundle
    let catalog: AdapterCatalog
    let servedName: String
    let contextLimit: Int
    /// 0: none.
    let maxTokensDefault: Int
}

extension Daemon {
    /// Bodies up to this size are prepared on the loop: tokenizing them costs microseconds, less than
    /// a trip to the prompt thread and back.
    static let inlinePreparationBytes = 4096

    /// What a preparation reads, snapshotted now on the loop.
    var preparationContext: PreparationContext {
        PreparationContext(bundle: bundle, catalog: catalog, servedName: servedName,
                           contextLimit: engine.contextLimit, maxTokensDefault: config.engine.maxTokensDefault)
    }

    /// Runs `prepare` inline for a small body, else on the prompt thread; then `then` on the loop,
    /// unless the client left meanwhile (logged as 499).
    func prepare<T>(_ request: HTTPRequest, _ conn: HTTPConnection, endpoint: String, started: Date,
                    _ prepare: @escaping @Sendable () -> T, then: @escaping (T) -> Void) {
        if request.body.count <= Self.inlinePreparationBytes { return then(prepare()) }
        work.run(on: promptQueue, prepare, then: { [unowned self] result in
            guard !conn.isClosed else {
                return logRequest(request, status: 499, endpoint: endpoint, adapter: "", started: started,
                                  extra: "the client left while its request was prepared")
            }
            then(result)
        })
    }

    func startGeneration(_ request: HTTPRequest, _ conn: HTTPConnection, started: Date, endpoint: GenerationRequest.Endpoint) {
        let context = preparationContext, body = request.body
        prepare(request, conn, endpoint: endpoint.path, started: started, {
            Self.prepareGeneration(body: body, endpoint: endpoint, context)
        }, then: { [unowned self] prepared in
            submitGeneration(prepared, request, conn, started: started, endpoint: endpoint)
        })
    }

    /// Decodes, resolves and tokenizes one generation request. Pure: runs on the loop or the prompt thread.
    static func prepareGeneration(body: [UInt8], endpoint: GenerationRequest.Endpoint,
                                  _ c: PreparationContext) -> PreparedGeneration {
        let r: GenerationRequest
        do {
            r = try OpenAIDecode.generationRequest(body: body, endpoint: endpoint,
                                                  vocabularySize: c.bundle.model.config.vocabularySize)
        } catch {
            return .failed(error, label: "")
        }
        // Model and adapters. One rule for repeats: each adapter is applied once, whether it is named
        // by `model` or in `adapters`, under any spelling (demo, demo@v1).
        var uses: [AdapterUse] = []
        var applied: [String: String] = [:]   // adapter name -> the field that applied it
        let label: String
        if r.model == c.servedName {
            label = c.servedName
        } else if let e = c.catalog.lookup(r.model) {
            uses.append(AdapterUse(e.adapter))
            applied[e.name] = "model"
            label = e.name
        } else {
            return .failed(.notFound(model: r.model), label: "")
        }
        for (i, extra) in r.adapters.enumerated() {
            let param = "adapters[\(i)].name"
            guard let e = c.catalog.lookup(extra.name) else {
                var err = OpenAIError.notFound(model: extra.name)
                err.param = param
                return .failed(err, label: label)
            }
            if let first = applied[e.name] {
                return .failed(.badRequest(param: param, message: "\(param) names \(e.name), which \(first) already applies; "
                                            + "give each adapter once (its scale sets how strongly it applies)"), label: label)
            }
            applied[e.name] = param
            uses.append(AdapterUse(e.adapter, scale: extra.scale))
        }
        // Prompt.
        let tokenizer = c.bundle.tokenizer
        let limit = c.contextLimit
        let prompt: [Int32]
        var echoText: String? = nil
        do {
            switch r.prompt {
            case .chat(let messages):
                let rendered = try renderChat(c.bundle, messages)
                let least = tokenizer.minimumTokenCount(rendered)
                if least >= limit {
                    return .failed(.contextTooLong(promptTokens: least, limit: limit, endpoint: endpoint, atLeast: true), label: label)
                }
                prompt = tokenizer.encode(rendered)
            case .text(let text):
                let least = tokenizer.minimumTokenCount(text, parseSpecial: r.parseSpecial)
                if least >= limit {
                    return .failed(.contextTooLong(promptTokens: least, limit: limit, endpoint: endpoint, atLeast: true), label: label)
                }
                prompt = tokenizer.encode(text, parseSpecial: r.parseSpecial)
                echoText = text
            case .tokens(let ids):
                prompt = ids
                echoText = tokenizer.decode(ids)
            }
        } catch let e as OpenAIError {
            return .failed(e, label: label)
        } catch {
            return .failed(.internal("\(error)"), label: label)
        }
        if prompt.count >= limit || (r.sampling.maxTokens.map { prompt.count + $0 > limit } ?? false) {
            return .failed(.contextTooLong(promptTokens: prompt.count, maxTokens: r.sampling.maxTokens, limit: limit,
                                           endpoint: endpoint), label: label)
        }
        var request = r
        if request.sampling.maxTokens == nil, c.maxTokensDefault > 0 {
            request.sampling.maxTokens = min(c.maxTokensDefault, limit - prompt.count)
        }
        // Raw log-probabilities are computed only when asked for (they cost a softmax per token).
        request.sampling.topLogprobs = r.logprobs ? r.topLogprobs : nil
        return .ready(.init(request: request, label: label, uses: uses, prompt: prompt, echoText: echoText))
    }

    /// Queues a prepared request in the engine and starts its response (loop thread).
    private func submitGeneration(_ prepared: PreparedGeneration, _ request: HTTPRequest, _ conn: HTTPConnection,
                                  started: Date, endpoint: GenerationRequest.Endpoint) {
        let path = endpoint.path
        let p: PreparedGeneration.Ready
        switch prepared {
        case .failed(let e, let label):
            return fail(e, request, conn, endpoint: path, adapter: label, started: started)
        case .ready(let ready):
            p = ready
        }
        guard state == .serving else {
            return fail(.unavailable("the server is shutting down", retryAfter: 5), request, conn, endpoint: path,
                        adapter: p.label, started: started)
        }
        let r = p.request
        let wantsPromptLogprobs = endpoint == .completion && r.echo && r.logprobs
        let submission = EngineRequest(queueKey: p.label, adapters: p.uses, prompt: p.prompt, sampling: r.sampling,
                                       promptLogprobs: wantsPromptLogprobs)
        let id: UInt64
        do {
            id = try engine.submit(submission)
        } catch {
            if case .queueFull = error { metrics.rejected(reason: "queue_full") }
            return fail(OpenAIError(error, endpoint: endpoint, maxTokens: r.sampling.maxTokens), request, conn,
                        endpoint: path, adapter: p.label, started: started)
        }
        let prefix = endpoint == .chat ? "chatcmpl-" : "cmpl-"
        let g = GenerationStream(daemon: self, connection: conn, http: request, request: r, engineID: id,
                                 responseID: prefix + String(format: "%016llx", nextRequestID() ^ UInt64(createdAt) << 20),
                                 label: p.label, prompt: p.prompt, echoText: p.echoText, started: started)
        generations[id] = g
        conn.generationID = id
        g.begin()
    }
}

/// One running generation: turns engine events into the response.
final class GenerationStream {
    unowned let daemon: Daemon
    let connection: HTTPConnection
    let http: HTTPRequest
    let request: GenerationRequest
    let engineID: UInt64
    let responseID: String
    let label: String
    let prompt: [Int32]
    let echoText: String?
    let started: Date
    let created = Int(Date().timeIntervalSince1970)
    private var text = ""
    private var tokenInfos: [TokenLogprobInfo] = []
    private var promptInfos: [PromptTokenLogprob] = []
    private var firstTokenAt: Date?
    private var lastTokenAt: Date?
    private var completionTokens = 0
    private var sentFirstChunk = false
    /// The engine took the sequence in (its prompt is being or has been processed).
    private var admitted = false
    /// Characters of text already streamed (completions' `text_offset` continues from here).
    private var streamedCharacters = 0

    init(daemon: Daemon, connection: HTTPConnection, http: HTTPRequest, request: GenerationRequest, engineID: UInt64,
         responseID: String, label: String, prompt: [Int32], echoText: String?, started: Date) {
        self.daemon = daemon
        self.connection = connection
        self.http = http
        self.request = request
        self.engineID = engineID
        self.responseID = responseID
        self.label = label
        self.prompt = prompt
        self.echoText = echoText
        self.started = started
    }

    private var keepAlive: Bool { http.keepAlive }
    private var tokenizer: Tokenizer { daemon.bundle.tokenizer }
    private var endpoint: String { request.endpoint.path }

    func begin() {
        guard request.stream else { return }
        var h = HTTPHeaders()
        h.add("Content-Type", "text/event-stream")
        h.add("Cache-Control", "no-cache")
        h.add("X-Request-Id", responseID)
        connection.startStream(status: 200, headers: h, keepAlive: keepAlive)
    }

    /// The client went away; the engine has been told to cancel.
    func abandoned() {
        // The work done still counts: the prompt once the engine admitted it, and every token made.
        daemon.metrics.tokens(prompt: admitted ? prompt.count : 0, generated: completionTokens, adapter: label)
        daemon.logRequest(http, status: 499, endpoint: endpoint, adapter: label, started: started,
                          extra: "cancelled after \(completionTokens) token(s)")
    }

    /// Handles one event; true when the generation is over.
    func handle(_ event: EngineEvent) -> Bool {
        switch event {
        case .admitted(let cached):
            admitted = true
            daemon.metrics.prefixCache(hit: cached > 0, reusedTokens: cached)
            return false
        case .promptLogprobs(let lp):
            promptInfos = lp
            return false
        case .token(let sampled, let piece):
            let now = Date()
            if let last = lastTokenAt {
                daemon.metrics.interTokenLatency(seconds: now.timeIntervalSince(last))
            } else {
                daemon.metrics.timeToFirstToken(seconds: now.timeIntervalSince(started), adapter: label)
            }
            firstTokenAt = firstTokenAt ?? now
            lastTokenAt = now
            completionTokens += 1
            var info: TokenLogprobInfo? = nil
            if request.logprobs, !tokenizer.isEndOfGeneration(sampled.id) {
                info = logprobInfo(sampled)
                tokenInfos.append(info!)
            }
            if request.stream {
                if !sentFirstChunk { sendFirstChunk() }
                if !piece.isEmpty || info != nil {
                    sendDelta(piece, logprobs: info.map { [$0] }, finish: nil)
                }
            }
            text += piece
            return false
        case .finished(let reason, let tail, let usage):
            text += tail
            finish(reason, tail: tail, usage: usage)
            return true
        case .failed(let error):
            failed(error)
            return true
        }
    }

    private func logprobInfo(_ s: SampledToken) -> TokenLogprobInfo {
        TokenLogprobInfo(token: tokenString(s.id), bytes: tokenizer.decodeBytes([s.id], renderSpecial: true),
                         logprob: s.logprob ?? 0,
                         top: s.topLogprobs.map { (token: tokenString($0.id), bytes: tokenizer.decodeBytes([$0.id], renderSpecial: true), logprob: $0.logprob) })
    }

    private func tokenString(_ id: Int32) -> String {
        String(decoding: tokenizer.decodeBytes([id], renderSpecial: true), as: UTF8.self)
    }

    private func usage(_ u: EngineUsage) -> Usage {
        Usage(promptTokens: u.promptTokens, completionTokens: u.completionTokens, cachedPromptTokens: u.cachedPromptTokens)
    }

    // MARK: Streaming

    private func sendEvent(_ json: String) {
        connection.writeChunk(ServerSentEvents.event(data: json))
    }

    private func sendFirstChunk() {
        sentFirstChunk = true
        switch request.endpoint {
        case .chat:
            sendEvent(OpenAIEncode.chatChunk(id: responseID, created: created, model: request.model, role: true, content: "",
                                             finishReason: nil, logprobs: nil, usage: request.includeUsage ? .some(nil) : nil))
        case .completion:
            if request.echo, let echoText {
                defer { streamedCharacters += echoText.count }
                sendEvent(OpenAIEncode.completionChunk(id: responseID, created: created, model: request.model, text: echoText,
                                                       finishReason: nil, logprobs: request.logprobs ? completionLogprobs(promptOnly: true) : nil,
                                                       usage: request.includeUsage ? .some(nil) : nil))
            }
        }
    }

    private func sendDelta(_ piece: String, logprobs: [TokenLogprobInfo]?, finish: FinishReason?) {
        defer { streamedCharacters += piece.count }
        switch request.endpoint {
        case .chat:
            sendEvent(OpenAIEncode.chatChunk(id: responseID, created: created, model: request.model, role: false,
                                             content: piece.isEmpty && finish != nil ? nil : piece,
                                             finishReason: finish, logprobs: logprobs,
                                             usage: request.includeUsage ? .some(nil) : nil))
        case .completion:
            sendEvent(OpenAIEncode.completionChunk(id: responseID, created: created, model: request.model, text: piece,
                                                   finishReason: finish,
                                                   logprobs: logprobs.map { CompletionLogprobs(tokens: $0, textOffsetStart: streamedCharacters) },
                                                   usage: request.includeUsage ? .some(nil) : nil))
        }
    }

    // MARK: The end

    private func finish(_ reason: FinishReason, tail: String, usage u: EngineUsage) {
        let usage = usage(u)
        var extra = "prompt=\(u.promptTokens) cached=\(u.cachedPromptTokens) completion=\(u.completionTokens) finish=\(reason.rawValue)"
        if let f = firstTokenAt { extra += " ttft=\(Int(f.timeIntervalSince(started) * 1000))ms" }
        daemon.metrics.tokens(prompt: u.promptTokens, generated: u.completionTokens, adapter: label)
        if request.stream {
            if !sentFirstChunk { sendFirstChunk() }
            sendDelta(tail, logprobs: nil, finish: reason)
            if request.includeUsage {
                switch request.endpoint {
                case .chat:
                    sendEvent(OpenAIEncode.chatUsageChunk(id: responseID, created: created, model: request.model, usage: usage))
                case .completion:
                    sendEvent(OpenAIEncode.completionUsageChunk(id: responseID, created: created, model: request.model, usage: usage))
                }
            }
            connection.writeChunk(ServerSentEvents.event(data: "[DONE]"))
            connection.endStream(keepAlive: keepAlive && daemon.state == .serving)
            daemon.logRequest(http, status: 200, endpoint: endpoint, adapter: label, started: started, extra: extra + " stream")
            return
        }
        let body: [UInt8]
        switch request.endpoint {
        case .chat:
            body = OpenAIEncode.chatCompletion(id: responseID, created: created, model: request.model, text: text,
                                               finishReason: reason, logprobs: request.logprobs ? tokenInfos : nil, usage: usage)
        case .completion:
            let full = (request.echo ? (echoText ?? "") : "") + text
            body = OpenAIEncode.completion(id: responseID, created: created, model: request.model, text: full,
                                           finishReason: reason,
                                           logprobs: request.logprobs ? completionLogprobs(promptOnly: false) : nil, usage: usage)
        }
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        h.add("X-Request-Id", responseID)
        connection.finish(HTTPResponse(status: 200, headers: h, body: body), keepAlive: keepAlive && daemon.state == .serving)
        daemon.logRequest(http, status: 200, endpoint: endpoint, adapter: label, started: started, extra: extra)
    }

    /// Completions' logprobs: the echoed prompt's tokens first (the first with no log-probability),
    /// then the generated ones.
    private func completionLogprobs(promptOnly: Bool) -> CompletionLogprobs {
        var entries: [CompletionLogprobs.Entry] = []
        if request.echo {
            for p in promptInfos {
                entries.append(.init(token: tokenString(p.id), logprob: p.logprob,
                                     top: p.top.map { (tokenString($0.id), $0.logprob) }))
            }
        }
        if !promptOnly {
            for t in tokenInfos {
                entries.append(.init(token: t.token, logprob: t.logprob, top: t.top.map { ($0.token, $0.logprob) }))
            }
        }
        return CompletionLogprobs(entries: entries, textOffsetStart: 0)
    }

    private func failed(_ error: EngineError) {
        let e = OpenAIError(error, endpoint: request.endpoint, maxTokens: request.sampling.maxTokens)
        if request.stream {
            // Headers are out: report in the stream, as vLLM does, then end it.
            connection.writeChunk(ServerSentEvents.event(data: String(decoding: e.body(), as: UTF8.self)))
            connection.writeChunk(ServerSentEvents.event(data: "[DONE]"))
            connection.endStream(keepAlive: false)
            daemon.logRequest(http, status: e.status, endpoint: endpoint, adapter: label, started: started, detail: e.message)
        } else {
            daemon.fail(e, http, connection, endpoint: endpoint, adapter: label, started: started)
        }
    }
}

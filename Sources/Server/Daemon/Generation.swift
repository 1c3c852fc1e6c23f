// Chat and text completions: from a decoded request to an engine submission, and from engine
// events back to the client, whole (one JSON body) or streamed (Server-Sent Events in OpenAI's
// chunk shape, ending with `data: [DONE]`). Loop thread only.
//
// `model` resolves to the base (the served name) or an adapter (`name`, `name@v1`); the `adapters`
// extension stacks more adapters with their scales. Prompt length is checked here against the
// context so the client gets a 400 with both numbers before anything is queued.

import Foundation
import HTTP
import Engine
import Llama
import LoRA
import ModelFormats
import Tokenizer

extension Daemon {
    func startGeneration(_ request: HTTPRequest, _ conn: HTTPConnection, started: Date, endpoint: GenerationRequest.Endpoint) {
        let path = endpoint.path
        let r: GenerationRequest
        do {
            r = try OpenAIDecode.generationRequest(body: request.body, endpoint: endpoint,
                                                  vocabularySize: bundle.model.config.vocabularySize)
        } catch {
            return fail(error, request, conn, endpoint: path, started: started)
        }
        guard state == .serving else {
            return fail(.unavailable("the server is shutting down", retryAfter: 5), request, conn, endpoint: path,
                        adapter: r.model, started: started)
        }
        // Model and adapters.
        var uses: [AdapterUse] = []
        let label: String
        if r.model == servedName {
            label = servedName
        } else if let e = catalog.lookup(r.model) {
            uses.append(AdapterUse(e.adapter))
            label = e.name
        } else {
            return fail(.notFound(model: r.model), request, conn, endpoint: path, started: started)
        }
        for (i, extra) in r.adapters.enumerated() {
            guard let e = catalog.lookup(extra.name) else {
                var err = OpenAIError.notFound(model: extra.name)
                err.param = "adapters[\(i)].name"
                return fail(err, request, conn, endpoint: path, adapter: label, started: started)
            }
            uses.append(AdapterUse(e.adapter, scale: extra.scale))
        }
        // Prompt.
        let prompt: [Int32]
        var echoText: String? = nil
        do {
            switch r.prompt {
            case .chat(let messages):
                prompt = try chatTokens(messages)
            case .text(let text):
                prompt = bundle.tokenizer.encode(text, parseSpecial: true)
                echoText = text
            case .tokens(let ids):
                prompt = ids
                echoText = bundle.tokenizer.decode(ids)
            }
        } catch let e as OpenAIError {
            return fail(e, request, conn, endpoint: path, adapter: label, started: started)
        } catch {
            return fail(.internal("\(error)"), request, conn, endpoint: path, adapter: label, started: started)
        }
        let limit = engine.contextLimit
        if prompt.count >= limit || (r.sampling.maxTokens.map { prompt.count + $0 > limit } ?? false) {
            return fail(.contextTooLong(promptTokens: prompt.count, maxTokens: r.sampling.maxTokens, limit: limit),
                        request, conn, endpoint: path, adapter: label, started: started)
        }
        var sampling = r.sampling
        if sampling.maxTokens == nil, let d = config.engine.maxTokensDefault { sampling.maxTokens = d }
        // Raw log-probabilities are computed only when asked for (they cost a softmax per token).
        sampling.topLogprobs = r.logprobs ? r.topLogprobs : nil
        let wantsPromptLogprobs = endpoint == .completion && r.echo && r.logprobs
        let submission = EngineRequest(queueKey: label, adapters: uses, prompt: prompt, sampling: sampling,
                                       promptLogprobs: wantsPromptLogprobs)
        let id: UInt64
        do {
            id = try engine.submit(submission)
        } catch {
            let e: OpenAIError
            switch error {
            case .queueFull:
                e = .tooManyRequests(retryAfter: 1, message: error.description)
                metrics.rejected(reason: "queue_full")
            case .shuttingDown:
                e = .unavailable(error.description, retryAfter: 5)
            case .promptTooLong(let n, let l):
                e = .contextTooLong(promptTokens: n, maxTokens: r.sampling.maxTokens, limit: l)
            case .emptyPrompt:
                e = .badRequest(param: endpoint == .chat ? "messages" : "prompt", message: "the prompt is empty")
            default:
                e = .badRequest(param: nil, message: error.description)
            }
            return fail(e, request, conn, endpoint: path, adapter: label, started: started)
        }
        let prefix = endpoint == .chat ? "chatcmpl-" : "cmpl-"
        let g = GenerationStream(daemon: self, connection: conn, http: request, request: r, engineID: id,
                                 responseID: prefix + String(format: "%016llx", nextRequestID() ^ UInt64(createdAt) << 20),
                                 label: label, prompt: prompt, echoText: echoText, started: started)
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
        daemon.logRequest(http, status: 499, endpoint: endpoint, adapter: label, started: started,
                          extra: "cancelled after \(completionTokens) token(s)")
    }

    /// Handles one event; true when the generation is over.
    func handle(_ event: EngineEvent) -> Bool {
        switch event {
        case .admitted(let cached):
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
        let e: OpenAIError
        switch error {
        case .shuttingDown: e = .unavailable(error.description, retryAfter: 5)
        case .kvBudgetExhausted: e = .unavailable(error.description, retryAfter: 1)
        case .badParameters(let m): e = .badRequest(param: nil, message: m)
        default: e = .internal(error.description)
        }
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

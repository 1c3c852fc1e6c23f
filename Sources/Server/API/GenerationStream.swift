// One running generation on one connection: everything about it lives here (its engine id, pause
// and resume while the client reads slowly, cancel when the client leaves, its metrics and its log
// line). It turns the engine's events into the response, whole (one JSON body) or streamed
// (Server-Sent Events in OpenAI's chunk shape, ending with `data: [DONE]`).

import Foundation
import HTTP
import LoRA
import Registry
import Engine
import Sampling
import Tokenizer

/// One running generation: turns engine events into the response.
final class GenerationStream: ResponseProducer {
    unowned let endpoints: Endpoints
    let connection: HTTPConnection
    let http: HTTPRequest
    let request: GenerationRequest
    let engineID: UInt64
    let responseID: String
    let label: String
    let prompt: [Int32]
    let echoText: String?
    /// It runs on the adapter's merged copy (said in the log line).
    var onMergedWeights = false
    /// The adapter versions it runs with: resident and never evicted until it ends.
    var holds: [(AdapterReference, LoRAAdapter)] = []
    let started: Date
    /// The route, for logs and metrics.
    let endpoint: String
    let created = Int(Date().timeIntervalSince1970)
    private var text = ""
    private var tokenInfos: [TokenLogprobInfo] = []
    private var promptInfos: [PromptTokenLogprob] = []
    private var firstTokenAt: Date?
    private var lastTokenAt: Date?
    private(set) var completionTokens = 0
    private var sentFirstChunk = false
    /// The engine took the sequence in (its prompt is being or has been processed).
    private var admitted = false
    /// Characters of text already streamed (completions' `text_offset` continues from here).
    private var streamedCharacters = 0

    init(endpoints: Endpoints, routed: RoutedRequest, request: GenerationRequest, engineID: UInt64,
         responseID: String, label: String, prompt: [Int32], echoText: String?) {
        self.endpoints = endpoints
        self.connection = routed.connection
        self.http = routed.http
        self.request = request
        self.engineID = engineID
        self.responseID = responseID
        self.label = label
        self.prompt = prompt
        self.echoText = echoText
        self.started = routed.started
        self.endpoint = routed.endpoint
        self.caller = routed.caller
    }

    /// Who asked (a tenant's token rate is charged when it ends).
    let caller: Caller
    /// Prompt tokens the engine ran for it (none when it never got a slot).
    var promptTokenCount: Int { admitted ? prompt.count : 0 }

    private var responder: Responder { endpoints.responder }
    private var metrics: ServerMetrics { endpoints.metrics }
    private var tokenizer: Tokenizer { endpoints.bundle.tokenizer }

    func begin() {
        connection.producer = self
        guard request.stream else { return }
        var h = HTTPHeaders()
        h.add("Content-Type", "text/event-stream")
        h.add("Cache-Control", "no-cache")
        h.add("X-Request-Id", responseID)
        connection.startStream(status: 200, headers: h, keepAlive: http.keepAlive)
    }

    // MARK: The connection's requests

    /// The client does not read fast enough: the engine holds the sequence until `resume`.
    func pause() { endpoints.engine.setPaused(engineID, true) }

    func resume() { endpoints.engine.setPaused(engineID, false) }

    /// The client went away: the engine stops the sequence and nothing more is sent.
    func cancel() {
        guard endpoints.cancelled(self) else { return }   // it had ended already
        // The work done still counts: the prompt once the engine admitted it, and every token made.
        metrics.tokens(prompt: admitted ? prompt.count : 0, generated: completionTokens, adapter: label, tenant: caller.tenantLabel)
        responder.logRequest(http, status: 499, endpoint: endpoint, tenant: caller.tenantLabel, adapter: label, started: started,
                             extra: "cancelled after \(completionTokens) token(s)")
    }

    /// Handles one event; true when the generation is over.
    func handle(_ event: EngineEvent) -> Bool {
        switch event {
        case .admitted(let cached):
            admitted = true
            metrics.prefixCache(hit: cached > 0, reusedTokens: cached)
            return false
        case .promptLogprobs(let lp):
            promptInfos = lp
            return false
        case .token(let sampled, let piece):
            let now = Date()
            if let last = lastTokenAt {
                metrics.interTokenLatency(seconds: now.timeIntervalSince(last))
            } else {
                metrics.timeToFirstToken(seconds: now.timeIntervalSince(started), adapter: label)
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
        if onMergedWeights { extra += " merged" }
        if let f = firstTokenAt { extra += " ttft=\(Int(f.timeIntervalSince(started) * 1000))ms" }
        metrics.tokens(prompt: u.promptTokens, generated: u.completionTokens, adapter: label, tenant: caller.tenantLabel)
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
            connection.endStream(keepAlive: responder.keepAlive(http))
            responder.logRequest(http, status: 200, endpoint: endpoint, tenant: caller.tenantLabel, adapter: label, started: started, extra: extra + " stream")
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
        connection.finish(HTTPResponse(status: 200, headers: h, body: body), keepAlive: responder.keepAlive(http))
        responder.logRequest(http, status: 200, endpoint: endpoint, tenant: caller.tenantLabel, adapter: label, started: started, extra: extra)
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
            responder.logRequest(http, status: e.status, endpoint: endpoint, tenant: caller.tenantLabel, adapter: label, started: started, detail: e.message)
        } else {
            responder.fail(e, http, connection, endpoint: endpoint, tenant: caller.tenantLabel, adapter: label, started: started)
        }
    }
}

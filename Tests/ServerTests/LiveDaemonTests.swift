// Live tests against a real daemon (see LiveDaemonSupport.swift): the API's answers and errors,
// concurrent streams on different adapters that each get exactly the tokens they get alone,
// cancellation on disconnect, 429 on a full queue, the prefix cache, and SIGTERM draining.

import Foundation
import Testing
@testable import Server
import LoradClient
import JSON
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct LiveDaemonTests {
    @Test func operationsAndModels() throws {
        let d = try LiveDaemon()
        #expect(try d.get("/healthz").status == 200)
        #expect(try d.get("/readyz").status == 200)
        let models = try #require(try d.get("/v1/models").json)
        let data = try #require(models["data"]?.arrayValue)
        let ids = data.compactMap { $0["id"]?.stringValue }
        #expect(ids == ["base", "alpha", "beta"], "served: \(ids)")
        for m in data {
            #expect(m["object"]?.stringValue == "model")
            #expect(m["owned_by"]?.stringValue != nil)
            #expect(m["created"]?.intValue != nil)
            #expect(m["max_model_len"]?.intValue == 256, "the configured context")
            if m["id"]?.stringValue != "base" { #expect(m["parent"]?.stringValue == "base") }
        }
        // The broken and badly named adapters were skipped, logged and counted.
        #expect(d.logText.contains("broken"))
        #expect(d.logText.contains("Bad_Name"))
        let failures = try d.get("/metrics").text.split(separator: "\n").filter { $0.hasPrefix("lorad_adapter_load_failures_total{") }
        #expect(failures.count == 2, "\(failures)")
        #expect(try d.get("/v1/models/alpha").json?["parent"]?.stringValue == "base")
        // Socket mode: 0660 by default.
        var st = stat()
        #expect(stat(d.socket, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o660)
    }

    @Test func errorsHaveTheRightStatusAndShape() throws {
        let d = try LiveDaemon()
        func check(_ r: LiveDaemon.Reply, _ status: Int, param: String? = nil, _ comment: Comment) {
            #expect(r.status == status, comment)
            let e = r.json?["error"]
            #expect(e?["message"]?.stringValue?.isEmpty == false, comment)
            #expect(e?["type"]?.stringValue != nil, comment)
            if let param { #expect(e?["param"]?.stringValue == param, comment) }
        }
        check(try d.post("/v1/chat/completions", chatBody(model: "nope", "hi")), 404, "unknown adapter")
        check(try d.post("/v1/chat/completions", chatBody(model: "../../etc/passwd", "hi")), 404, "path as a name")
        check(try d.post("/v1/chat/completions", .object([("messages", .array([]))])), 400, param: "model", "no model")
        let hot = JSONValue.object([("model", .string("alpha")), ("temperature", .string("hot")),
                                    ("messages", .array([.object([("role", .string("user")), ("content", .string("hi"))])]))])
        check(try d.post("/v1/chat/completions", hot), 400, param: "temperature", "bad temperature")
        check(try d.post("/v1/chat/completions", raw: Array(#"{"model":"alpha","model":"beta","messages":[]}"#.utf8)), 400,
              "duplicate keys")
        check(try d.post("/v1/chat/completions", raw: Array("{\"model\": ".utf8)), 400, "truncated JSON")
        let long = String(repeating: "word ", count: 400)
        let tooLong = try d.post("/v1/completions", .object([("model", .string("base")), ("prompt", .string(long))]))
        check(tooLong, 400, "prompt too long")
        let message = tooLong.json?["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("256"), "the limit: \(message)")
        #expect(message.range(of: #"\b\d{3,4}\b"#, options: .regularExpression) != nil)
        check(try d.get("/v1/nothing"), 404, "unknown path")
        let wrongMethod = try d.get("/v1/chat/completions")
        check(wrongMethod, 405, "GET on a POST route")
        #expect(wrongMethod.head.header("Allow") == "POST")
        // Malformed HTTP gets the parser's status and the daemon keeps serving.
        let c = try DaemonClient(socket: d.socket)
        try c.send(Array("GET / HTTP/9.9\r\nHost: x\r\n\r\n".utf8))
        #expect(try c.readHead().status == 505)
        #expect(try d.get("/healthz").status == 200)
    }

    /// Keep-alive and pipelining on one connection, chunked request bodies, 100-continue, and an
    /// HTTP/1.0 client's stream (no chunked encoding: the body ends when the connection closes).
    @Test func httpDetailsOnTheWire() throws {
        let d = try LiveDaemon()
        // Two pipelined requests in one write, answered in order on the same connection.
        let c = try DaemonClient(socket: d.socket)
        let body = Array(JSONValue.object([("prompt", .string("Hello"))]).serialized().utf8)
        try c.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPOST /tokenize HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        #expect(try c.readHead().status == 200)
        #expect(String(decoding: try c.readBody(), as: UTF8.self).contains("ok"))
        #expect(try c.readHead().status == 200)
        let tokens = try JSONValue.parse(try c.readBody())
        #expect(tokens["count"]?.intValue == tokens["tokens"]?.arrayValue?.count)
        // A chunked request body with Expect: 100-continue.
        let c2 = try DaemonClient(socket: d.socket)
        let half = body.count / 2
        try c2.send(Array("POST /tokenize HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".utf8))
        try c2.send(Array(String(half, radix: 16).utf8) + [13, 10] + Array(body[..<half]) + [13, 10]
                    + Array(String(body.count - half, radix: 16).utf8) + [13, 10] + Array(body[half...]) + Array("\r\n0\r\n\r\n".utf8))
        #expect(try c2.readHead().status == 200)
        #expect(try JSONValue.parse(try c2.readBody()) == tokens)
        // HTTP/1.0 streaming: close-delimited.
        let c3 = try DaemonClient(socket: d.socket)
        let chat = Array(chatBody(model: "alpha", "hi", maxTokens: 4, stream: true).serialized().utf8)
        try c3.send(Array("POST /v1/chat/completions HTTP/1.0\r\nContent-Length: \(chat.count)\r\n\r\n".utf8) + chat)
        let head = try c3.readHead()
        #expect(head.status == 200)
        #expect(head.header("Transfer-Encoding") == nil)
        let raw = String(decoding: try c3.readBody(), as: UTF8.self)
        #expect(raw.hasSuffix("data: [DONE]\n\n"))
        // A body over the limit: 413.
        let big = [UInt8](repeating: 0x20, count: 9 << 20)
        let c4 = try DaemonClient(socket: d.socket)
        try? c4.send(Array("POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: \(big.count)\r\n\r\n".utf8))
        #expect(try c4.readHead().status == 413)
        #expect(try d.get("/healthz").status == 200)
    }

    /// A request that stops arriving gets 408; an idle keep-alive connection is closed quietly; a
    /// completions prompt may be token ids.
    @Test func timeoutsAndTokenPrompts() throws {
        let d = try LiveDaemon(server: ["read_timeout_seconds = 1", "idle_timeout_seconds = 1"])
        let partial = try DaemonClient(socket: d.socket)
        try partial.send(Array("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"mo".utf8))
        let started = Date()
        #expect(try partial.readHead().status == 408)
        #expect(Date().timeIntervalSince(started) < 10)
        // DaemonClient's requests say Connection: close; a raw keep-alive request stays open instead.
        // The client's own read timeout (10 s) is far past the server's idle timeout (1 s), and the
        // error must be the end of the stream, not a timed-out read.
        let keep = try DaemonClient(socket: d.socket, timeoutSeconds: 10)
        try keep.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(try keep.readHead().status == 200)
        _ = try keep.readBody()
        let idleSince = Date()
        let closed = #expect(throws: DaemonClientError.self) { _ = try keep.readHead() }
        let idle = Date().timeIntervalSince(idleSince)
        #expect(closed?.message == "connection closed before a response", "\(String(describing: closed))")
        #expect(idle > 0.5 && idle < 8, "closed after \(idle) s idle")
        let ids = try #require(try d.post("/tokenize", .object([("prompt", .string("Once upon a time"))])).json?["tokens"]?.arrayValue)
        let r = try d.post("/v1/completions", .object([("model", .string("beta")), ("prompt", .array(ids)),
                                                       ("max_tokens", .int(3)), ("temperature", .int(0))]))
        #expect(r.status == 200)
        #expect(r.json?["usage"]?["prompt_tokens"]?.intValue == ids.count)
    }

    /// Streams on the base and two adapters, all at once, each give the tokens they give alone.
    @Test func concurrentStreamsMatchSoloRuns() throws {
        let d = try LiveDaemon()
        let cases: [(String, String)] = [("base", "Hello there"), ("alpha", "Hello there"), ("beta", "Hello there"),
                                         ("alpha", "What is the time?"), ("beta", "Tell me a story about a cat")]
        @Sendable func tokens(_ events: [String]) -> [String] {
            events.compactMap { try? JSONValue.parse(Array($0.utf8)) }.flatMap { e -> [String] in
                guard let lp = e["choices"]?.arrayValue?.first?["logprobs"]?["content"]?.arrayValue else { return [] }
                return lp.compactMap { $0["token"]?.stringValue }
            }
        }
        @Sendable func text(_ events: [String]) -> String {
            events.compactMap { try? JSONValue.parse(Array($0.utf8)) }
                .compactMap { $0["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue }.joined()
        }
        // 150 tokens each with the tiny model's end tokens (264 <|endoftext|>, 266 <|im_end|>) banned:
        // 150 engine steps per stream at least, so the first cannot be over before the loop has read
        // the other four, even on a loaded machine (with 24 tokens it sometimes was).
        let noEnd = JSONValue.object([("264", .int(-100)), ("266", .int(-100))])
        let extra: [(String, JSONValue)] = [("logprobs", .bool(true)), ("top_logprobs", .int(2)), ("logit_bias", noEnd)]
        var alone: [(tokens: [String], text: String)] = []
        for (m, q) in cases {
            let r = try d.stream("/v1/chat/completions", chatBody(model: m, q, maxTokens: 150, stream: true, extra: extra))
            #expect(r.status == 200)
            #expect(r.events.last == "[DONE]")
            alone.append((tokens(r.events), text(r.events)))
        }
        #expect(Set(alone.map(\.text)).count >= 3, "adapters should change the output")
        // Forward passes that ran more than one sequence: none yet, the solo runs came one by one.
        func multiSequenceBatches() throws -> Double {
            let e = Exposition(try d.get("/metrics").text)
            return (e.samples["lorad_batch_size_count"] ?? 0) - (e.samples[#"lorad_batch_size_bucket{le="1.0"}"#] ?? 0)
        }
        #expect(try multiSequenceBatches() == 0)
        // All five requests reach the daemon while it is stopped (SIGSTOP), so when it continues they
        // are all there at once: however fast the tiny model is, the engine cannot finish the first
        // before the others arrive, and they share forward passes.
        kill(d.pid, SIGSTOP)
        var clients: [DaemonClient] = []
        do {
            defer { kill(d.pid, SIGCONT) }
            for (m, q) in cases {
                let c = try DaemonClient(socket: d.socket)
                try c.request(method: "POST", path: "/v1/chat/completions",
                              body: Array(chatBody(model: m, q, maxTokens: 150, stream: true, extra: extra).serialized().utf8))
                clients.append(c)
            }
        }
        for (i, c) in clients.enumerated() {
            #expect(try c.readHead().status == 200)
            var events: [String] = []
            try c.readEvents { events.append($0) }
            #expect(tokens(events) == alone[i].tokens, "case \(i) (\(cases[i].0)) changed when run concurrently")
            #expect(text(events) == alone[i].text)
            #expect(tokens(events).count == 150)
        }
        let shared = try multiSequenceBatches()
        #expect(shared > 0, "no forward pass ran more than one sequence")
        print("concurrent streams: \(Int(shared)) forward passes ran more than one sequence")
    }

    @Test func disconnectMidStreamFreesTheSequence() throws {
        // The real SmolLM2 with its end-of-generation tokens banned: 150 tokens take seconds, so the
        // sequence is surely still running when the client hangs up (the tiny model could finish first).
        let d = try LiveDaemon(model: try LiveFixtures.realModel(), engine: ["prefix_cache = false"], adapters: false)
        let baseline = try #require(try d.metric("lorad_kv_cache_bytes{kind=\"sequences\"}"))
        #expect(baseline == 0)
        var seen = 0
        let noEnd = JSONValue.object([("0", .int(-100)), ("2", .int(-100))])
        _ = try d.stream("/v1/chat/completions", chatBody(model: "base", "Go on forever", maxTokens: 150, stream: true,
                                                          extra: [("logit_bias", noEnd)])) { _, _ in
            seen += 1
            return seen < 3     // hang up after three events
        }
        // The engine notices at its next step.
        let deadline = Date().addingTimeInterval(20)
        var live = 1.0, kv = 1.0
        while Date() < deadline {
            live = try d.metric("lorad_live_sequences") ?? -1
            kv = try d.metric("lorad_kv_cache_bytes{kind=\"sequences\"}") ?? -1
            if live == 0 && kv == baseline { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(live == 0)
        #expect(kv == baseline)
        #expect(d.logText.contains("499"), "the cancelled request is logged")
        #expect(try d.get("/healthz").status == 200)
    }

    @Test func fullQueueAnswers429() throws {
        // One slot, one queue place. The first request holds the slot for seconds: the real SmolLM2
        // generating 150 tokens with its end-of-generation tokens (ids 0 and 2) banned, far longer than
        // the few milliseconds the next two requests take to arrive. (The tiny model finishes 230
        // tokens before a loaded loop thread can even pause it, which made an earlier form racy.)
        let d = try LiveDaemon(model: try LiveFixtures.realModel(), engine: ["max_sequences = 1", "queue_limit = 1",
                                                                             "per_adapter_queue_limit = 1"],
                               adapters: false)
        let noEnd = JSONValue.object([("0", .int(-100)), ("2", .int(-100))])
        var c1: DaemonClient? = try DaemonClient(socket: d.socket)
        try c1!.request(method: "POST", path: "/v1/chat/completions",
                        body: Array(chatBody(model: "base", "one", maxTokens: 150, stream: true,
                                             extra: [("logit_bias", noEnd)]).serialized().utf8))
        #expect(try c1!.readHead().status == 200)
        // Wait until it is admitted (the queue is empty again) before queueing the second.
        let admitted = Date().addingTimeInterval(20)
        while Date() < admitted {
            let live = try d.metric("lorad_live_sequences"), queued = try d.metric("lorad_queue_depth")
            if live == 1 && queued == 0 { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(try d.metric("lorad_live_sequences") == 1)
        // The second waits in the queue; the third finds it full.
        let c2 = try DaemonClient(socket: d.socket)
        try c2.request(method: "POST", path: "/v1/chat/completions",
                       body: Array(chatBody(model: "base", "two", maxTokens: 2, stream: true).serialized().utf8))
        #expect(try c2.readHead().status == 200)
        let r3 = try d.post("/v1/chat/completions", chatBody(model: "base", "three"))
        #expect(r3.status == 429)
        #expect(r3.head.header("Retry-After") != nil)
        #expect(r3.json?["error"]?["type"]?.stringValue != nil)
        let rejected = try d.metric("lorad_rejected_requests_total") ?? 0
        #expect(rejected >= 1)
        // The first client hangs up: its sequence is cancelled and the queued request runs to its end.
        c1 = nil
        var events2: [String] = []
        try c2.readEvents { events2.append($0) }
        #expect(events2.last == "[DONE]")
    }

    @Test func prefixCacheReusesTheSystemPromptAndChangesNothing() throws {
        let system = "You are the support assistant of Acme Toasters. Answer briefly, politely and only about toasters."
        let withCache = try LiveDaemon()
        let first = try withCache.post("/v1/chat/completions", chatBody(model: "alpha", "Where is my order?", maxTokens: 10, system: system))
        #expect(first.status == 200)
        #expect(first.json?["usage"]?["prompt_tokens_details"]?["cached_tokens"]?.intValue == 0)
        let second = try withCache.post("/v1/chat/completions", chatBody(model: "alpha", "How do I descale it?", maxTokens: 10, system: system))
        let cached = second.json?["usage"]?["prompt_tokens_details"]?["cached_tokens"]?.intValue ?? 0
        #expect(cached > 20, "cached tokens: \(cached)")
        #expect(try withCache.metric("lorad_prefix_cache_hits_total") ?? 0 >= 1)
        // Another adapter never reuses alpha's KV.
        let other = try withCache.post("/v1/chat/completions", chatBody(model: "beta", "How do I descale it?", maxTokens: 10, system: system))
        #expect(other.json?["usage"]?["prompt_tokens_details"]?["cached_tokens"]?.intValue == 0)

        let noCache = try LiveDaemon(engine: ["prefix_cache = false"])
        let reference = try noCache.post("/v1/chat/completions", chatBody(model: "alpha", "How do I descale it?", maxTokens: 10, system: system))
        let content = { (r: LiveDaemon.Reply) in r.json?["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue }
        #expect(content(second) != nil)
        #expect(content(second) == content(reference), "the cache changed the answer")
    }

    /// SIGTERM while a stream is generating: the daemon says it is draining one running request
    /// (so the signal surely came while it ran), tokens keep arriving after the signal, and the stream
    /// ends normally at max_tokens. The real SmolLM2 with its end-of-generation tokens banned, so the
    /// 60 tokens take a while; the signal goes out on the first event.
    @Test func sigtermDrainsRunningRequestsThenExitsZero() throws {
        let d = try LiveDaemon(model: try LiveFixtures.realModel(), engine: ["prefix_cache = false"], adapters: false)
        let c = try DaemonClient(socket: d.socket)
        let noEnd = JSONValue.object([("0", .int(-100)), ("2", .int(-100))])
        try c.request(method: "POST", path: "/v1/completions",
                      body: Array(JSONValue.object([("model", .string("base")), ("prompt", .string("Once upon a time")),
                                                    ("max_tokens", .int(60)), ("temperature", .int(0)),
                                                    ("logit_bias", noEnd), ("stream", .bool(true))]).serialized().utf8))
        #expect(try c.readHead().status == 200)
        var events: [String] = []
        var afterSignal = 0
        var signalled = false
        try c.readEvents { data in
            events.append(data)
            if signalled { afterSignal += 1 }
            if !signalled {
                signalled = true
                kill(d.pid, SIGTERM)
            }
        }
        #expect(d.logText.contains("draining 1 running request(s)"), "\(d.logText)")
        #expect(afterSignal > 10, "only \(afterSignal) events after the signal")
        #expect(events.last == "[DONE]", "the running request finished")
        let finish = events.dropLast().last.flatMap { try? JSONValue.parse(Array($0.utf8)) }?["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue
        #expect(finish == "length")
        let code = d.stop(SIGTERM)
        #expect(code == 0, "exit status \(String(describing: code)); log:\n\(d.logText)")
        #expect(!FileManager.default.fileExists(atPath: d.socket), "the socket file is removed")
    }

    /// A request accepted before SIGTERM but not yet submitted when it came gets 503 with Retry-After.
    /// The prompt thread is serial: a /tokenize of 8 MiB (over a million tokens, seconds of work)
    /// holds it while a chat request whose body is over 4 KiB (prepared there, not inline) waits; the
    /// signal comes in between, so the chat request is prepared after the drain began.
    @Test func aRequestPreparedAfterSIGTERMGets503() throws {
        let d = try LiveDaemon(model: try LiveFixtures.realModel(), server: ["max_body_bytes = \"16MiB\""], adapters: false)
        let tokenize = try DaemonClient(socket: d.socket)
        try tokenize.request(method: "POST", path: "/tokenize",
                             body: Array(JSONValue.object([("prompt", .string(String(repeating: "a", count: 8 << 20)))]).serialized().utf8))
        let chat = try DaemonClient(socket: d.socket)
        // Over 4 KiB of body by JSON whitespace, a short prompt.
        try chat.request(method: "POST", path: "/v1/chat/completions",
                         body: Array(chatBody(model: "base", "hi").serialized().utf8) + Array(repeating: 0x20, count: 5000))
        Thread.sleep(forTimeInterval: 0.3)   // both read by the loop (the tokenize runs for seconds)
        #expect(!d.logText.contains("/tokenize 200"), "the tokenize finished before the signal:\n\(d.logText)")
        kill(d.pid, SIGTERM)
        #expect(try tokenize.readHead().status == 200, "the running request is finished")
        let refused = try chat.readHead()
        #expect(refused.status == 503, "\(d.logText)")
        #expect(refused.header("Retry-After") == "5")
        let message = (try? JSONValue.parse(try chat.readBody()))?["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("shutting down"), "\(message)")
        #expect(d.stop(SIGTERM) == 0)
    }
}

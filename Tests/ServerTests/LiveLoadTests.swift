// Load and slow clients against a live daemon on the tiny model.
//
// The load test runs two identical rounds of 32 concurrent clients (LORAD_LOAD_SECONDS each, 2 by
// default and in `make test`; set it higher for a soak) mixing streamed and whole chat and completion
// requests on the base and both adapters, with a request now and then cancelled mid-stream. No
// request may fail, every client gets answers, and after each round the daemon holds nothing for
// the requests that ended: no live sequence, no sequence KV, no client connection but the scrape's,
// and exactly the descriptors it had after the first round. Resident memory is only bounded loosely:
// how much freed memory glibc's malloc hands back to the kernel depends on its arenas and trim
// thresholds, not on lorad (a 5% bound on RSS growth used to fail on that alone).

import Foundation
import Testing
@testable import Server
import LoradClient
import JSON
#if canImport(Glibc)
import Glibc
#endif

/// Resident memory of a process, from /proc (bytes).
func residentBytes(_ pid: pid_t) -> Int? {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first
        return kb.map { $0 * 1024 }
    }
    return nil
}

final class LoadCounters: @unchecked Sendable {
    // @unchecked: every field is only touched under `lock`.
    private let lock = NSLock()
    private(set) var ok = 0
    private(set) var cancelled = 0
    private(set) var failures: [String] = []
    private(set) var tokens = 0
    private(set) var clientsAnswered: Set<Int> = []
    func success(client: Int, tokens n: Int) { lock.withLock { ok += 1; tokens += n; clientsAnswered.insert(client) } }
    func cancel() { lock.withLock { cancelled += 1 } }
    func fail(_ s: String) { lock.withLock { failures.append(s) } }
}

@Suite(.serialized) struct LiveLoadTests {
    static var seconds: Double {
        ProcessInfo.processInfo.environment["LORAD_LOAD_SECONDS"].flatMap(Double.init) ?? 2
    }

    /// One client's loop: requests back to back until `until`.
    static func client(_ i: Int, socket: String, until: Date, counters: LoadCounters) {
        var n = 0
        let models = ["base", "alpha", "beta"]
        while Date() < until {
            n += 1
            let model = models[(i + n) % 3]
            let stream = (i + n) % 2 == 0
            let hangUp = (i * 7 + n) % 23 == 0 && stream
            let body: JSONValue
            let path: String
            if (i + n) % 3 == 0 {
                path = "/v1/completions"
                body = .object([("model", .string(model)), ("prompt", .string("Client \(i) request \(n): once upon a time")),
                                ("max_tokens", .int(8 + (i + n) % 16)), ("temperature", .double(0.7)), ("seed", .int(i * 1000 + n)),
                                ("stream", .bool(stream))])
            } else {
                path = "/v1/chat/completions"
                body = chatBody(model: model, "Client \(i) asks question \(n) about toasters", maxTokens: 8 + (i * n) % 24,
                                stream: stream, system: n % 4 == 0 ? "You are the support assistant of Acme Toasters." : nil)
            }
            do {
                let c = try DaemonClient(socket: socket, timeoutSeconds: 60)
                try c.request(method: "POST", path: path, body: Array(body.serialized().utf8))
                let head = try c.readHead()
                guard head.status == 200 else {
                    counters.fail("\(path) \(model): status \(head.status) \(String(decoding: try c.readBody(), as: UTF8.self))")
                    continue
                }
                if stream {
                    var events: [String] = []
                    struct HangUp: Error {}
                    do {
                        try c.readEvents { data in
                            events.append(data)
                            if hangUp && events.count == 2 { throw HangUp() }
                        }
                    } catch is HangUp {
                        counters.cancel()
                        continue
                    }
                    guard events.last == "[DONE]" else {
                        counters.fail("\(path) \(model): stream ended without [DONE]: \(events.suffix(2))")
                        continue
                    }
                    counters.success(client: i, tokens: events.count - 2)
                } else {
                    let reply = try JSONValue.parse(try c.readBody())
                    guard let used = reply["usage"]?["completion_tokens"]?.intValue else {
                        counters.fail("\(path) \(model): no usage in \(reply.serialized().prefix(200))")
                        continue
                    }
                    counters.success(client: i, tokens: used)
                }
            } catch {
                counters.fail("\(path) \(model): \(error)")
            }
        }
    }

    @Test func twoRoundsOf32ClientsFailNothingAndLeakNothing() throws {
        let d = try LiveDaemon()
        var rss: [Int] = [], fds: [Double] = []
        for round in 1...2 {
            let counters = LoadCounters()
            let until = Date().addingTimeInterval(Self.seconds)
            let socket = d.socket
            // One thread per client: concurrentPerform would run only as many at once as there are
            // cores, and the rest would start after the deadline and send nothing.
            let done = DispatchGroup()
            for i in 0..<32 {
                done.enter()
                Thread {
                    Self.client(i, socket: socket, until: until, counters: counters)
                    done.leave()
                }.start()
            }
            done.wait()
            #expect(counters.failures.isEmpty, "round \(round): \(counters.failures.count) failures, first: \(counters.failures.prefix(3))")
            // Every client was answered at least once (a starved adapter or client would show here),
            // and client 13's first request (a stream) always hangs up after two events.
            #expect(counters.clientsAnswered.count == 32, "round \(round): answered clients \(counters.clientsAnswered.sorted())")
            #expect(counters.cancelled > 0)
            // Let cancelled sequences leave the engine and closed connections leave the loop.
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if try d.metric("lorad_live_sequences") == 0, try d.metric("lorad_connections_open") == 1 { break }
                Thread.sleep(forTimeInterval: 0.05)
            }
            #expect(try d.metric("lorad_live_sequences") == 0)
            #expect(try d.metric("lorad_kv_cache_bytes{kind=\"sequences\"}") == 0)
            #expect(try d.metric("lorad_connections_open") == 1, "only the scrape's own connection")
            fds.append(try #require(try d.metric("process_open_fds")))
            rss.append(residentBytes(d.pid) ?? 0)
            print("load round \(round): \(counters.ok) requests, \(counters.cancelled) cancelled, \(counters.tokens) tokens streamed/generated, RSS \(rss.last! >> 20) MiB, \(Int(fds.last!)) fds")
        }
        #expect(fds[1] == fds[0], "open descriptors after round 1: \(fds[0]), after round 2: \(fds[1])")
        // A gross leak only (see the header): the daemon sits at 32-34 MiB after either round here,
        // with under 1 MiB between them, and a round is thousands of requests, so leaking even 16 KiB
        // of buffers per request would pass 64 MiB.
        #expect(rss[0] > 0)
        #expect(rss[1] - rss[0] < 64 << 20, "resident memory went from \(rss[0]) to \(rss[1]) bytes")
        #expect(try d.get("/healthz").status == 200)
    }

    /// A client that stops reading a long stream is paused (its sequence holds, others go on), then
    /// cut off after the slow-reader timeout, and its sequence freed.
    @Test func slowReaderIsPausedThenDisconnected() throws {
        // The real SmolLM2, so the stream is still being generated when its unread output passes the
        // write buffer (the tiny model can finish 230 tokens before a loaded loop thread reacts).
        let d = try LiveDaemon(model: try LiveFixtures.realModel(), engine: ["prefix_cache = false"],
                               server: ["write_buffer_bytes = \"4KiB\"", "slow_reader_timeout_seconds = 1"], adapters: false)
        let slow = try DaemonClient(socket: d.socket)
        // Big chunks: 20 alternatives per token make each event a few KB, far more than the kernel buffers.
        // SmolLM2's end-of-generation tokens (ids 0 and 2) are banned so the stream runs to max_tokens.
        let noEnd = JSONValue.object([("0", .int(-100)), ("2", .int(-100))])
        try slow.request(method: "POST", path: "/v1/chat/completions",
                         body: Array(chatBody(model: "base", "talk", maxTokens: 150, stream: true,
                                              extra: [("logprobs", .bool(true)), ("top_logprobs", .int(20)),
                                                      ("logit_bias", noEnd)]).serialized().utf8))
        // Meanwhile other requests complete normally.
        for _ in 0..<3 {
            let r = try d.post("/v1/chat/completions", chatBody(model: "base", "quick one", maxTokens: 5))
            #expect(r.status == 200)
        }
        let deadline = Date().addingTimeInterval(20)
        while !d.logText.contains("reader stuck") && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(d.logText.contains("reader stuck"), "\(d.logText)")
        while (try d.metric("lorad_live_sequences") ?? 1) > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(try d.metric("lorad_live_sequences") == 0)
        #expect(try d.metric("lorad_kv_cache_bytes{kind=\"sequences\"}") == 0)
        // It was held, not merely slow: cut off (499) before reaching its 150 tokens. Had the pause
        // come too late, the stream would have ended normally and been logged with 200.
        let cut = d.logText.firstMatch(of: /499 .*cancelled after (\d+) token\(s\)/).flatMap { Int($0.1) }
        #expect(cut != nil && cut! < 150, "\(d.logText)")
        _ = slow
    }
}

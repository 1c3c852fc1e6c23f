// Load and slow clients against a live daemon on the tiny model.
//
// The load test runs two identical rounds of 32 concurrent clients (LORAD_LOAD_SECONDS each, 30 by
// default) mixing streamed and whole chat and completion requests on the base and both adapters,
// with a request now and then cancelled mid-stream. No request may fail, and the daemon's resident
// memory after the second round must be within 5% of after the first: whatever the first round
// allocated (KV, prefix cache, buffers) is reused, not leaked.

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
    func success(tokens n: Int) { lock.withLock { ok += 1; tokens += n } }
    func cancel() { lock.withLock { cancelled += 1 } }
    func fail(_ s: String) { lock.withLock { failures.append(s) } }
}

@Suite(.serialized) struct LiveLoadTests {
    static var seconds: Double {
        ProcessInfo.processInfo.environment["LORAD_LOAD_SECONDS"].flatMap(Double.init) ?? 30
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
                    counters.success(tokens: events.count - 2)
                } else {
                    let reply = try JSONValue.parse(try c.readBody())
                    guard let used = reply["usage"]?["completion_tokens"]?.intValue else {
                        counters.fail("\(path) \(model): no usage in \(reply.serialized().prefix(200))")
                        continue
                    }
                    counters.success(tokens: used)
                }
            } catch {
                counters.fail("\(path) \(model): \(error)")
            }
        }
    }

    @Test func twoRoundsOf32ClientsFailNothingAndLeakNothing() throws {
        let d = try LiveDaemon()
        var rss: [Int] = []
        for round in 1...2 {
            let counters = LoadCounters()
            let until = Date().addingTimeInterval(Self.seconds)
            let socket = d.socket
            DispatchQueue.concurrentPerform(iterations: 32) { i in
                Self.client(i, socket: socket, until: until, counters: counters)
            }
            #expect(counters.failures.isEmpty, "round \(round): \(counters.failures.count) failures, first: \(counters.failures.prefix(3))")
            #expect(counters.ok > 100, "round \(round): only \(counters.ok) requests completed")
            #expect(counters.cancelled > 0)
            // Let cancelled sequences leave the engine before measuring.
            let deadline = Date().addingTimeInterval(10)
            while (try d.metric("lorad_live_sequences") ?? 1) > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            #expect(try d.metric("lorad_live_sequences") == 0)
            #expect(try d.metric("lorad_kv_cache_bytes{kind=\"sequences\"}") == 0)
            rss.append(residentBytes(d.pid) ?? 0)
            print("load round \(round): \(counters.ok) requests, \(counters.cancelled) cancelled, \(counters.tokens) tokens streamed/generated, RSS \(rss.last! >> 20) MiB")
        }
        let growth = Double(rss[1] - rss[0]) / Double(rss[0])
        #expect(rss[0] > 0)
        #expect(abs(growth) <= 0.05, "resident memory went from \(rss[0]) to \(rss[1]) bytes (\(growth * 100)%)")
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
        _ = slow
    }
}

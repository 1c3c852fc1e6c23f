// The registry under a running daemon: `lorad adapter import`, `rollback` and `rm` on the root it
// serves are picked up without a signal (file-system events, RegistryWatch), and each request comes
// from the version that was active when it was prepared.

import Foundation
import JSON
import Testing

@Suite struct LiveRegistryTests {
    static func lorad(_ args: [String], root: String) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try LiveFixtures.binary())
        p.arguments = ["adapter"] + args.prefix(1) + ["--adapters", root] + args.dropFirst()
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func importRollbackAndRemoveAreServedWithoutASignal() throws {
        let d = try LiveDaemon()
        let root = d.dir.appendingPathComponent("adapters").path
        let model = LiveFixtures.root.appendingPathComponent("model.gguf").path
        let alpha = try #require(try d.answer("alpha"))
        let beta = try #require(try d.answer("beta"))
        #expect(alpha != beta, "the fixtures' two adapters must answer differently for this test to mean anything")

        // A new version of alpha with beta's weights: served without SIGHUP. The design's bound is one
        // second (a 100 ms settle, then a rescan that reloads only what changed); the limit here is
        // wider for a loaded machine, and the time is printed.
        var r = try Self.lorad(["import", "alpha", root + "/beta.gguf", "--model", model], root: root)
        #expect(r.status == 0, "\(r.output)")
        let swapped = try secondsUntil(5) { try d.answer("alpha") == beta }
        #expect(swapped != nil, "alpha@v2 was not served: \(d.logText)")
        print("registry: alpha@v2 served \(swapped.map { String(format: "%.3f", $0) } ?? "-") s after the import finished")
        #expect(try d.get("/v1/models/alpha@v2").status == 200)

        r = try Self.lorad(["rollback", "alpha"], root: root)
        #expect(r.status == 0 && r.output.contains("alpha@v1 is active"), "\(r.output)")
        #expect(try secondsUntil(5) { try d.answer("alpha") == alpha } != nil, "rollback not served")

        // A new adapter appears, then goes.
        r = try Self.lorad(["import", "gamma", root + "/alpha/v1", "--model", model], root: root)
        #expect(r.status == 0, "\(r.output)")
        #expect(try secondsUntil(5) { try d.answer("gamma") == alpha } != nil, "gamma not served")
        r = try Self.lorad(["rm", "gamma"], root: root)
        #expect(r.status == 0, "\(r.output)")
        #expect(try secondsUntil(5) {
            try d.post("/v1/chat/completions", chatBody(model: "gamma", "hi", maxTokens: 2)).status == 404
        } != nil, "gamma still served after rm")
        #expect(!d.logText.contains("SIGHUP"), "no signal was sent: \(d.logText)")
        // Metrics: alpha changed served version twice (v2, then back to v1), and loads were counted.
        #expect(try d.metric("lorad_adapter_activations_total{adapter=\"alpha\"}") == 2)
        #expect((try d.metric("lorad_adapter_loads_total{adapter=\"alpha\"}") ?? 0) >= 2)
        #expect((try d.metric("lorad_adapter_bytes") ?? 0) > 0)
        #expect(d.stop() == 0)
    }

    /// 100 activations alternating between two versions whose greedy answers differ, while 8 clients
    /// stream on that adapter: no request fails, and every answer is wholly one version's.
    @Test func activationsUnderStreamingLoadNeverMixVersions() throws {
        let d = try LiveDaemon(adapterKeys: ["rescan_seconds = 0"])
        let root = d.dir.appendingPathComponent("adapters").path
        let model = LiveFixtures.root.appendingPathComponent("model.gguf").path
        let body = chatBody(model: "alpha", "tell me a story", maxTokens: 16, stream: true)
        nonisolated(unsafe) let daemon = d   // its methods make one connection each: safe from any thread
        @Sendable func streamed() throws -> String? {
            let (status, events) = try daemon.stream("/v1/chat/completions", body)
            guard status == 200, events.last == "[DONE]" else { return nil }
            var text = ""
            for e in events.dropLast() {
                guard let v = try? JSONValue.parse(e) else { return nil }
                if v["error"] != nil { return nil }
                text += v["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue ?? ""
            }
            return text
        }
        let v1 = try #require(try streamed())
        #expect(try Self.lorad(["import", "alpha", root + "/beta.gguf", "--model", model], root: root).status == 0)
        #expect(try secondsUntil(5) { try streamed() != v1 } != nil)
        let v2 = try #require(try streamed())
        #expect(v1 != v2)

        final class Tally: @unchecked Sendable {
            let lock = NSLock()
            var answers: [String: Int] = [:]
            var failures: [String] = []
            var stop = false
        }
        let tally = Tally()
        let group = DispatchGroup()
        for _ in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                while !tally.lock.withLock({ tally.stop }) {
                    let text = (try? streamed()) ?? nil
                    tally.lock.withLock {
                        if let text { tally.answers[text, default: 0] += 1 } else { tally.failures.append("a failed request") }
                    }
                }
            }
        }
        var activationFailures = 0
        for i in 0..<100 {
            let r = try d.send("POST", "/v1/adapters/alpha/activate", .object([("version", .int(i % 2 == 0 ? 1 : 2))]))
            if r.status != 200 { activationFailures += 1 }
        }
        tally.lock.withLock { tally.stop = true }
        #expect(group.wait(timeout: .now() + 60) == .success)
        #expect(activationFailures == 0)
        #expect(tally.failures.isEmpty, "\(tally.failures.count) failed requests")
        let mixed = tally.answers.keys.filter { $0 != v1 && $0 != v2 }
        #expect(mixed.isEmpty, "answers from neither version alone: \(mixed)")
        #expect((tally.answers[v1] ?? 0) > 0 && (tally.answers[v2] ?? 0) > 0, "both versions served during the swaps: \(tally.answers.values)")
        print("registry: 100 activations under 8 streaming clients, \(tally.answers.values.reduce(0, +)) answers: v1 \(tally.answers[v1] ?? 0), v2 \(tally.answers[v2] ?? 0)")
        #expect(d.stop() == 0)
    }

    /// A republish under the same name with other weights never reuses the old version's prefix KV
    /// (vLLM's #42125): the cache keys on the adapter's content digest (for a published version, its
    /// manifest's sha256 of the files), never on its name.
    @Test func aRepublishNeverReusesTheOldPrefix() throws {
        let d = try LiveDaemon(adapterKeys: ["rescan_seconds = 0"])
        let root = d.dir.appendingPathComponent("adapters").path
        let model = LiveFixtures.root.appendingPathComponent("model.gguf").path
        let system = "You are the support assistant of Acme Toasters. Answer briefly, politely and only about toasters."
        func ask(_ name: String, _ question: String) throws -> (cached: Int, text: String?) {
            let r = try d.post("/v1/chat/completions", chatBody(model: name, question, maxTokens: 8, system: system))
            #expect(r.status == 200, "\(r.text)")
            return (r.json?["usage"]?["prompt_tokens_details"]?["cached_tokens"]?.intValue ?? -1,
                    r.json?["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue)
        }
        _ = try ask("alpha", "Where is my order?")
        #expect(try ask("alpha", "How do I descale it?").cached > 20, "the prefix cache is on and alpha's prefix is cached")
        let betaAnswer = try ask("beta", "How do I descale it?").text

        #expect(try Self.lorad(["import", "alpha", root + "/beta.gguf", "--model", model], root: root).status == 0)
        #expect(try secondsUntil(5) { try d.get("/v1/models/alpha@v2").status == 200 } != nil)
        let after = try ask("alpha", "How do I descale it?")
        #expect(after.cached == 0, "alpha@v2 reused \(after.cached) tokens of another adapter's KV")
        #expect(after.text == betaAnswer, "alpha@v2 has beta's weights, so it answers as beta does")
        #expect(try ask("alpha", "Is it dishwasher safe?").cached > 20, "v2's own prefix is cached from now on")
        // Unloading alpha drops the KV computed with it, and nobody else's.
        #expect(try d.send("POST", "/v1/adapters/alpha/unload").status == 200)
        #expect(try d.send("POST", "/v1/adapters/beta/load").status == 200)
        #expect(try ask("beta", "Where is my order?").cached > 20, "beta's own prefix outlives alpha's unload")
        #expect(try ask("alpha", "Where is my order?").cached == 0, "alpha's prefixes went with its unload")
        #expect(d.stop() == 0)
    }

    /// `name@vN` for a version that is not the active one: loaded on first use (off the loop), served
    /// from that version's weights, dropped least recently used beyond adapters.cache_bytes; an
    /// unknown version is a 404 that lists the versions.
    @Test func olderVersionsAreServedOnDemand() throws {
        // A budget smaller than any adapter: only the version just loaded stays, so each pinned load
        // evicts the one before.
        let d = try LiveDaemon(adapterKeys: ["rescan_seconds = 0", "cache_bytes = 1"])
        let root = d.dir.appendingPathComponent("adapters").path
        let model = LiveFixtures.root.appendingPathComponent("model.gguf").path
        let alpha = try #require(try d.answer("alpha"))
        let beta = try #require(try d.answer("beta"))
        #expect(try Self.lorad(["import", "alpha", root + "/beta.gguf", "--model", model], root: root).status == 0)
        #expect(try Self.lorad(["import", "alpha", root + "/alpha/v1", "--model", model], root: root).status == 0)
        #expect(try secondsUntil(5) { try d.get("/v1/models/alpha@v3").status == 200 } != nil)
        // v3 (active) = v1's weights; v2 = beta's.
        #expect(try d.answer("alpha") == alpha)
        #expect(try d.answer("alpha@v2") == beta)
        #expect(try d.answer("alpha@v1") == alpha)
        #expect(try d.answer("alpha@v2") == beta, "loaded again after its eviction")
        let r = try d.post("/v1/chat/completions", chatBody(model: "alpha@v7", "hi", maxTokens: 2))
        #expect(r.status == 404 && r.text.contains("alpha has no version v7 (versions: v1, v2, v3)"), "\(r.text)")
        // Stacked: alpha@v2 under `adapters` at scale 0 changes nothing, so this is beta's answer.
        let stacked = try d.post("/v1/chat/completions", chatBody(model: "beta", "hello there", maxTokens: 6,
            extra: [("adapters", .array([.object([("name", .string("alpha@v2")), ("scale", .int(0))])]))]))
        #expect(stacked.status == 200, "\(stacked.text)")
        #expect(stacked.json?["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue == beta)
        #expect((try d.metric("lorad_adapter_evictions_total{adapter=\"alpha\"}") ?? 0) >= 2)
        #expect(d.stop() == 0)
    }
}

// Which adapters are in memory: loaded on first use, evicted least recently used beyond
// adapters.cache_bytes, never while a sequence uses them, kept when preloaded or loaded by the admin
// API, and really freed when unloaded (their cached prefixes too).

import Foundation
import JSON
import Testing

@Suite struct LiveResidencyTests {
    func served(_ d: LiveDaemon, _ name: String) throws -> JSONValue? { try d.send("GET", "/v1/adapters/\(name)").json }

    @Test func adaptersLoadOnFirstUseAndUnloadFreesThemAndTheirPrefixes() throws {
        let d = try LiveDaemon()
        #expect(try d.metric("lorad_adapters_registered") == 2, "alpha and beta are servable")
        #expect(try d.metric("lorad_adapters_loaded") == 0, "nothing is loaded before a request asks for it")
        #expect(try served(d, "alpha")?["resident"]?.boolValue == false)

        let system = "You are the support assistant of Acme Toasters. Answer briefly, politely and only about toasters."
        for q in ["Where is my order?", "How do I descale it?"] {
            #expect(try d.post("/v1/chat/completions", chatBody(model: "alpha", q, maxTokens: 4, system: system)).status == 200)
        }
        var alpha = try served(d, "alpha")
        #expect(alpha?["resident"]?.boolValue == true && alpha?["pinned"]?.boolValue == false, "\(String(describing: alpha))")
        #expect(alpha?["requests"]?.intValue == 2 && alpha?["generated_tokens"]?.intValue == 8 && alpha?["rank"]?.intValue ?? 0 > 0,
                "\(String(describing: alpha))")
        #expect(try d.metric("lorad_adapters_loaded") == 1)
        #expect((try d.metric("lorad_kv_cache_bytes{kind=\"prefix_cache\"}") ?? 0) > 0, "alpha's prompts are cached")

        // Unloaded: out of memory, and the prefix cache lets go of the KV computed with it.
        var r = try d.send("POST", "/v1/adapters/alpha/unload")
        #expect(r.status == 200 && r.json?["resident"]?.boolValue == false, "\(r.text)")
        #expect(try d.metric("lorad_adapters_loaded") == 0)
        #expect(try secondsUntil(2) { try d.metric("lorad_kv_cache_bytes{kind=\"prefix_cache\"}") == 0 } != nil,
                "alpha's cached prefixes outlived its unload")
        // Loaded by the admin API: pinned; a request still works after an unload (it loads again).
        r = try d.send("POST", "/v1/adapters/beta/load")
        #expect(r.status == 200 && r.json?["resident"]?.boolValue == true && r.json?["pinned"]?.boolValue == true, "\(r.text)")
        #expect(try d.answer("alpha") != nil)
        alpha = try served(d, "alpha")
        #expect(alpha?["resident"]?.boolValue == true)
        #expect(try d.send("POST", "/v1/adapters/nope/load").status == 404)
        #expect(try d.send("POST", "/v1/adapters/alpha/load", .object([("version", .int(9))])).status == 404)
        #expect(try d.send("POST", "/v1/adapters/alpha/load", .object([("version", .string("latest"))])).status == 400)
        #expect(d.logText.contains("unloaded alpha (alpha@v1)") && d.logText.contains("loaded beta@v1 (pinned)"), "\(d.logText)")
        #expect(d.stop() == 0)
    }

    /// A budget smaller than any adapter: a preloaded adapter stays, the others leave as soon as
    /// their requests end.
    @Test func preloadedAdaptersStayUnderPressure() throws {
        let d = try LiveDaemon(adapterKeys: ["preload = [\"beta\"]", "cache_bytes = 1"])
        #expect(try d.metric("lorad_adapters_loaded") == 1, "beta is preloaded")
        #expect(try served(d, "beta")?["pinned"]?.boolValue == true)
        #expect(try d.answer("alpha") != nil)
        #expect(try secondsUntil(2) { try d.metric("lorad_adapter_evictions_total{adapter=\"alpha\"}") == 1 } != nil,
                "alpha stays past the budget after its request ended")
        #expect(try served(d, "beta")?["resident"]?.boolValue == true)
        #expect(try d.metric("lorad_adapter_evictions_total{adapter=\"beta\"}") == nil)
        #expect(d.stop() == 0)
    }

    /// The eviction test: a budget of one adapter and two tenants. While the first streams,
    /// the second's request loads its adapter; the first is over budget but in use, so it stays until
    /// its stream ends, and its answer is the one it gives alone. (The real model: its stream runs
    /// for seconds, long enough to look inside while it runs.)
    @Test func anEvictionNeverTouchesAnAdapterInUse() throws {
        let model = try LiveFixtures.realModel()
        // Random-weight SmolLM2 adapters (scripts/goldens/lora_smollm2.py): they change the answers
        // without teaching anything, so the story runs its full length.
        let fixtures = LiveFixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("LlamaTests/Fixtures")
        let d = try LiveDaemon(model: model, adapterKeys: ["cache_bytes = 1"], adapters: false, beforeStart: { dir in
            let to = dir.appendingPathComponent("adapters")
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent("lora_smollm2_peft"), to: to.appendingPathComponent("first"))
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent("lora_smollm2.gguf"), to: to.appendingPathComponent("other.gguf"))
        })
        let question = "Write a long story about a toaster that learns to sing."
        let alone = try d.post("/v1/chat/completions", chatBody(model: "first", question, maxTokens: 160))
        let expected = try #require(alone.json?["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue)
        #expect(try secondsUntil(2) { try d.metric("lorad_adapter_evictions_total{adapter=\"first\"}") == 1 } != nil)

        var looked = false
        var text = ""
        let s = try d.stream("/v1/chat/completions", chatBody(model: "first", question, maxTokens: 160, stream: true)) { data, _ in
            if let delta = (try? JSONValue.parse(data))?["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue { text += delta }
            guard !looked else { return true }
            looked = true
            // first streams: another tenant's request loads its adapter past the budget.
            let other = try d.post("/v1/chat/completions", chatBody(model: "other", "hi", maxTokens: 2))
            #expect(other.status == 200, "\(other.text)")
            let first = try served(d, "first")
            #expect(first?["resident"]?.boolValue == true && first?["in_use"]?.intValue == 1, "\(String(describing: first))")
            #expect(try d.metric("lorad_adapter_evictions_total{adapter=\"first\"}") == 1, "first was evicted while it streamed")
            #expect(try d.metric("lorad_adapters_loaded") == 1, "other's adapter left after its request; first stays")
            return true
        }
        #expect(s.status == 200 && looked)
        #expect(text == expected, "the stream's answer is the one first gives alone")
        #expect(try secondsUntil(2) { try d.metric("lorad_adapter_evictions_total{adapter=\"first\"}") == 2 } != nil,
                "first was not evicted when its stream ended")
        #expect(try d.metric("lorad_adapters_loaded") == 0)
        #expect(d.stop() == 0)
    }

    /// Loading and unloading 1,000 times (with a request every tenth cycle) leaves resident memory
    /// where it was after the first 100: no adapter, kernel copy or cached prefix outlives its unload.
    @Test func aThousandLoadsAndUnloadsKeepMemoryFlat() throws {
        let d = try LiveDaemon()
        func rssKiB() throws -> Int {
            let status = try String(contentsOfFile: "/proc/\(d.pid)/status", encoding: .utf8)
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
            return Int(line.split(separator: " ")[1])!
        }
        func cycle(_ i: Int) throws {
            #expect(try d.send("POST", "/v1/adapters/alpha/load").status == 200)
            if i % 10 == 0 { #expect(try d.answer("alpha") != nil) }
            #expect(try d.send("POST", "/v1/adapters/alpha/unload").status == 200)
        }
        for i in 0..<100 { try cycle(i) }
        let warm = try rssKiB()
        #expect(try d.send("POST", "/v1/adapters/alpha/load").status == 200)
        let adapterKiB = (try served(d, "alpha")?["bytes"]?.intValue ?? 0) / 1024
        #expect(adapterKiB > 0)
        for i in 100..<1000 { try cycle(i) }
        let after = try rssKiB()
        print("residency: RSS \(warm) KiB after 100 load/unload cycles, \(after) KiB after 1,000 (alpha holds \(adapterKiB) KiB)")
        // Bound: 2 MiB, for malloc's arenas and the metrics' label sets settling. One adapter kept per
        // cycle would add 900 × its size (tens of MiB here).
        #expect(after - warm < 2048, "RSS grew by \(after - warm) KiB over 900 cycles (adapter: \(adapterKiB) KiB)")
        // 1,001 loads: the scan validated alpha once at start (a plain adapter has no manifest).
        #expect(try d.metric("lorad_adapter_loads_total{adapter=\"alpha\"}") == 1001)
        #expect(d.stop() == 0)
    }

    /// A version published with `--merge` is served merged, as `adapters.merge` would.
    @Test func aManifestMergeFlagMergesWhenServed() throws {
        let d = try LiveDaemon(adapterKeys: ["rescan_seconds = 0"])
        let root = d.dir.appendingPathComponent("adapters").path
        let model = LiveFixtures.root.appendingPathComponent("model.gguf").path
        let r = try LiveRegistryTests.lorad(["import", "gamma", root + "/beta.gguf", "--model", model, "--merge"], root: root)
        #expect(r.status == 0, "\(r.output)")
        #expect(try secondsUntil(5) { try served(d, "gamma")?["merged"]?.boolValue == true } != nil, "gamma not merged: \(d.logText)")
        let manifest = try String(contentsOfFile: root + "/gamma/v1/lorad.json", encoding: .utf8)
        #expect(manifest.contains("\"merge\":true"), "\(manifest)")
        #expect(try d.answer("gamma") == (try d.answer("beta")))
        #expect(d.stop() == 0)
    }
}

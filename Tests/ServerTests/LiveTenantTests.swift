// Tenants on a running daemon: tokens, isolation between tenants (another tenant's adapter looks
// exactly like a missing one), privileges (admin, may_publish for its own adapters only), and token
// rotation on SIGHUP.

import Crypto
import Foundation
import JSON
import LoradClient
import Testing

@Suite struct LiveTenantTests {
    static func hash(_ token: String) -> String { SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined() }

    /// Two tenants: acme uses alpha and the base; betaco uses beta* (not the base) and may publish them.
    /// No uid is admin (admin.uids = []): only the admin token is.
    static func daemon(acmeToken: String = "token-acme") throws -> LiveDaemon {
        try LiveDaemon(adapterKeys: ["rescan_seconds = 0", "import_roots = [\"/\"]"],
                       admin: ["uids = []", "token_sha256 = \"\(hash("token-admin"))\""], beforeStart: { dir in
            let config = dir.appendingPathComponent("lorad.toml")
            var toml = try String(contentsOf: config, encoding: .utf8)
            toml += Self.tenants(acmeToken: acmeToken)
            try toml.write(to: config, atomically: true, encoding: .utf8)
        })
    }

    static func tenants(acmeToken: String) -> String {
        """

        [[tenants]]
        name = "acme"
        token_sha256 = "\(hash(acmeToken))"
        adapters = ["alpha"]
        base = true

        [[tenants]]
        name = "betaco"
        token_sha256 = "\(hash("token-beta"))"
        adapters = ["beta*"]
        may_publish = true

        """
    }

    @Test func aTenantSeesAndUsesOnlyItsOwnAdapters() throws {
        let d = try Self.daemon()
        func ids(_ token: String) throws -> [String] {
            (try d.call("GET", "/v1/models", token: token).json?["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        }
        #expect(try ids("token-acme") == ["base", "alpha"])
        #expect(try ids("token-beta") == ["beta"])
        #expect(try ids("token-admin") == ["base", "alpha", "beta"])

        // Missing or unknown token: 401 in OpenAI's shape; health checks need none.
        let none = try d.post("/v1/chat/completions", chatBody(model: "alpha", "hi", maxTokens: 2))
        #expect(none.status == 401 && none.json?["error"]?["code"]?.stringValue == "invalid_api_key", "\(none.text)")
        #expect(try d.call("GET", "/v1/models", token: "token-nobody").status == 401)
        #expect(try d.get("/v1/models").status == 401)
        #expect(try d.get("/healthz").status == 200)

        // Own adapter: served. Another tenant's: exactly the answer a missing adapter gets.
        #expect(try d.call("POST", "/v1/chat/completions", chatBody(model: "alpha", "hi", maxTokens: 2), token: "token-acme").status == 200)
        let other = try d.call("POST", "/v1/chat/completions", chatBody(model: "beta", "hi", maxTokens: 2), token: "token-acme")
        let missing = try d.call("POST", "/v1/chat/completions", chatBody(model: "bzzz", "hi", maxTokens: 2), token: "token-acme")
        #expect(other.status == 404 && missing.status == 404)
        #expect(other.text.replacingOccurrences(of: "beta", with: "X") == missing.text.replacingOccurrences(of: "bzzz", with: "X"),
                "\(other.text) vs \(missing.text)")
        // The same for a pinned version, a stacked adapter, a model lookup and tokenize.
        let pinned = try d.call("POST", "/v1/chat/completions", chatBody(model: "beta@v1", "hi", maxTokens: 2), token: "token-acme")
        #expect(pinned.status == 404 && !pinned.text.contains("version"), "\(pinned.text)")
        let stacked = try d.call("POST", "/v1/chat/completions", chatBody(model: "alpha", "hi", maxTokens: 2,
            extra: [("adapters", .array([.object([("name", .string("beta"))])]))]), token: "token-acme")
        #expect(stacked.status == 404, "\(stacked.text)")
        #expect(try d.call("GET", "/v1/models/beta", token: "token-acme").status == 404)
        #expect(try d.call("GET", "/v1/models/alpha", token: "token-beta").status == 404)
        #expect(try d.call("POST", "/tokenize", .object([("model", .string("beta")), ("prompt", .string("hi"))]), token: "token-acme").status == 404)
        // betaco may not use the base.
        #expect(try d.call("POST", "/v1/chat/completions", chatBody(model: "base", "hi", maxTokens: 2), token: "token-beta").status == 404)
        #expect(try d.call("POST", "/v1/chat/completions", chatBody(model: "beta", "hi", maxTokens: 2), token: "token-beta").status == 200)
        // Cached prefixes are not shared between tenants (a hit would tell one what the other sent):
        // the same long prompt on the base is cached for acme, not for admin, and again for acme.
        let system = "You are the support assistant of Acme Toasters. Answer briefly, politely and only about toasters."
        func cached(_ token: String) throws -> Int {
            try d.call("POST", "/v1/chat/completions", chatBody(model: "base", "Where is my order?", maxTokens: 2, system: system),
                       token: token).json?["usage"]?["prompt_tokens_details"]?["cached_tokens"]?.intValue ?? -1
        }
        #expect(try cached("token-acme") == 0)
        #expect(try cached("token-admin") == 0, "admin reused acme's cached prompt")
        #expect(try cached("token-acme") > 20, "acme's own prompt is cached")
        // Metrics name every adapter: operators only.
        #expect(try d.call("GET", "/metrics", token: "token-acme").status == 403)
        #expect(try d.call("GET", "/metrics", token: "token-admin").status == 200)
        #expect(!d.logText.contains("token-acme") && !d.logText.contains("token-admin"), "a token reached the log")
        #expect(d.stop() == 0)
    }

    @Test func privileges() throws {
        let d = try Self.daemon()
        let root = d.dir.appendingPathComponent("adapters").path
        // No uid is admin here (admin.uids = []): the caller's own uid gets 403 for admin calls.
        #expect(try d.send("GET", "/v1/adapters").status == 403)
        #expect(try d.call("GET", "/v1/adapters", token: "token-admin").status == 200)
        // A tenant without may_publish: 403 on the admin API, even for its own adapter.
        #expect(try d.call("GET", "/v1/adapters", token: "token-acme").status == 403)
        #expect(try d.call("POST", "/v1/adapters/alpha/rollback", token: "token-acme").status == 403)
        // may_publish: its own names only.
        let upload: JSONValue = .object([("files", .object([
            ("adapter.gguf", .string(try Data(contentsOf: URL(fileURLWithPath: root + "/beta.gguf")).base64EncodedString())),
        ]))])
        let own = try d.call("POST", "/v1/adapters/beta-new/versions", upload, token: "token-beta")
        #expect(own.status == 200, "\(own.text)")
        let foreign = try d.call("POST", "/v1/adapters/alpha/versions", upload, token: "token-beta")
        #expect(foreign.status == 403, "\(foreign.text)")
        // Not by a path on the server: that names the daemon's files, an admin's business.
        let byPath = try d.call("POST", "/v1/adapters/beta-new/versions", .object([("path", .string(root + "/beta.gguf"))]), token: "token-beta")
        #expect(byPath.status == 403 && byPath.text.contains("by upload"), "\(byPath.text)")
        #expect(try d.call("GET", "/v1/adapters/beta-new", token: "token-beta").status == 200)
        #expect(try d.call("DELETE", "/v1/adapters/beta-new", token: "token-beta").status == 403, "removing is not publishing")
        #expect(try d.call("POST", "/v1/chat/completions", chatBody(model: "beta-new", "hi", maxTokens: 2), token: "token-beta").status == 200)
        #expect(d.stop() == 0)
    }

    /// `lorad ask` as a tenant: the token from LORAD_TOKEN (never a flag, which the process list
    /// would show); without it, the daemon's 401 and exit 1.
    @Test func askTakesTheTokenFromTheEnvironment() throws {
        let d = try Self.daemon()
        let log = d.dir.appendingPathComponent("ask.log").path
        var env = ProcessInfo.processInfo.environment
        env["LORAD_TOKEN"] = "token-acme"
        let ask = [try LiveFixtures.binary(), "ask", "--socket", d.socket, "--model", "alpha", "--max-tokens", "4", "--temperature", "0", "Hello?"]
        #expect(waitExit(try spawn(ask, environment: env, log: log), timeout: 60) == 0, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        env["LORAD_TOKEN"] = nil
        #expect(waitExit(try spawn(ask, environment: env, log: log + "2"), timeout: 60) == 1)
        #expect(((try? String(contentsOfFile: log + "2", encoding: .utf8)) ?? "").contains("401"))
        #expect(d.stop() == 0)
    }

    /// A SIGHUP that replaces a token: the request streaming under the old one finishes; new
    /// requests with the old token get 401, with the new one 200.
    @Test func tokenRotationOnSIGHUP() throws {
        let d = try Self.daemon(acmeToken: "token-old")
        let config = d.dir.appendingPathComponent("lorad.toml")
        var rotated = false
        var text = ""
        let s = try d.stream("/v1/chat/completions", chatBody(model: "alpha", "Tell me a long story", maxTokens: 48, stream: true),
                             token: "token-old") { data, _ in
            if let delta = (try? JSONValue.parse(data))?["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue { text += delta }
            guard !rotated else { return true }
            rotated = true
            var toml = try String(contentsOf: config, encoding: .utf8)
            toml = toml.replacingOccurrences(of: Self.hash("token-old"), with: Self.hash("token-new"))
            try toml.write(to: config, atomically: true, encoding: .utf8)
            kill(d.pid, SIGHUP)
            #expect(secondsUntil(10) { d.logText.contains("SIGHUP: applied tenants") } != nil, "\(d.logText)")
            return true
        }
        #expect(s.status == 200 && s.events.last == "[DONE]" && !text.isEmpty, "the stream under the old token finished")
        #expect(try d.call("GET", "/v1/models", token: "token-old").status == 401)
        #expect(try d.call("GET", "/v1/models", token: "token-new").status == 200)
        #expect(d.stop() == 0)
    }
    final class Shared: @unchecked Sendable {
        // @unchecked: `finished` only under `lock`; the daemon's client calls open their own connections.
        let d: LiveDaemon
        let lock = NSLock()
        var finished: [String] = []
        init(_ d: LiveDaemon) { self.d = d }

        /// `count` chat requests at once, each on its own thread, as `token`; `finished` gets
        /// "acme" (200) or "acme failed" per answer, in the order they come. Wait on the group.
        func flood(_ count: Int, token: String, _ body: @escaping @Sendable (Int) -> JSONValue) -> DispatchGroup {
            let group = DispatchGroup()
            for i in 0..<count {
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    let r = try? self.d.call("POST", "/v1/chat/completions", body(i), token: token)
                    self.lock.withLock { self.finished.append(r?.status == 200 ? "acme" : "acme failed") }
                }
            }
            return group
        }
    }

    /// Two tenants whose tokens are "token-NAME", with extra TOML lines each.
    static func twoTenants(model: String? = nil, engine: [String], acme: [String], quiet: [String]) throws -> LiveDaemon {
        try LiveDaemon(model: model, engine: engine, adapters: model == nil, beforeStart: { dir in
            let config = dir.appendingPathComponent("lorad.toml")
            var toml = try String(contentsOf: config, encoding: .utf8)
            for (name, extra) in [("acme", acme), ("quiet", quiet)] {
                toml += "\n[[tenants]]\nname = \"\(name)\"\ntoken_sha256 = \"\(hash("token-" + name))\"\n" + extra.joined(separator: "\n") + "\n"
            }
            try toml.write(to: config, atomically: true, encoding: .utf8)
        })
    }

    /// One busy tenant with many adapters cannot crowd out a quiet one: admission is round-robin
    /// over tenants, not adapters. One slot; acme queues 12 requests on two adapters; quiet then
    /// asks on one of them and is admitted as soon as the running request ends: at most two of
    /// acme's requests finish between quiet's arrival and its answer (the one running, and one that
    /// may have been admitted in the same instant). Keyed by adapter it would wait behind acme's
    /// queue for that adapter, interleaved with the other: about ten. (The real model, so that a
    /// request lasts long enough for the queue to be seen full.)
    @Test func aBusyTenantCannotCrowdOutAQuietOne() throws {
        let model = try LiveFixtures.realModel()
        // Random-weight SmolLM2 adapters (scripts/goldens/lora_smollm2.py): their stories run to max_tokens.
        let fixtures = LiveFixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("LlamaTests/Fixtures")
        let d = try LiveDaemon(model: model, engine: ["max_sequences = 1"], adapters: false, beforeStart: { dir in
            let to = dir.appendingPathComponent("adapters")
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent("lora_smollm2_peft"), to: to.appendingPathComponent("first"))
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent("lora_smollm2.gguf"), to: to.appendingPathComponent("other.gguf"))
            let config = dir.appendingPathComponent("lorad.toml")
            var toml = try String(contentsOf: config, encoding: .utf8)
            toml += "\n[[tenants]]\nname = \"acme\"\ntoken_sha256 = \"\(Self.hash("token-acme"))\"\nadapters = [\"first\", \"other\"]\n"
            toml += "\n[[tenants]]\nname = \"quiet\"\ntoken_sha256 = \"\(Self.hash("token-quiet"))\"\nadapters = [\"first\"]\n"
            try toml.write(to: config, atomically: true, encoding: .utf8)
        })
        let shared = Shared(d)
        let group = shared.flood(12, token: "token-acme") { i in
            chatBody(model: i % 2 == 0 ? "first" : "other", "Write a story, part \(i).", maxTokens: 24)
        }
        #expect(try secondsUntil(20) { (try d.metric("lorad_queue_depth") ?? 0) >= 8 } != nil, "acme's requests did not queue")
        let arrived = shared.lock.withLock { shared.finished.count }
        let quiet = try d.call("POST", "/v1/chat/completions", chatBody(model: "first", "hello", maxTokens: 4), token: "token-quiet")
        let answered = shared.lock.withLock { shared.finished.count }
        #expect(quiet.status == 200, "\(quiet.text)")
        group.wait()
        #expect(!shared.lock.withLock { shared.finished }.contains("acme failed"))
        print("fairness: \(answered - arrived) of acme's requests finished while quiet waited (\(12 - arrived) were queued or running)")
        #expect(answered - arrived <= 2, "quiet waited behind \(answered - arrived) of acme's requests")
        #expect(d.stop() == 0)
    }

    /// `max_running` keeps room for others: with acme held to 3 of 4 slots, quiet is admitted at the
    /// next engine step instead of waiting for one of acme's 64-token requests to end. Counted in
    /// engine steps (`lorad_batch_size_count`, one per forward pass), not in time, so that a loaded
    /// machine cannot make it flaky: from just before quiet's request to its first token, at most 4
    /// steps (the step running when it arrives, its prefill, and room for the two scrapes); held to
    /// the fourth slot's wait it would take until an acme request ends, 16 steps on average.
    /// Times are printed for the record; they are measured by benchmarks, not asserted.
    @Test func maxRunningKeepsRoomForAQuietTenant() throws {
        let model = try LiveFixtures.realModel()
        let d = try Self.twoTenants(model: model, engine: ["max_sequences = 4"], acme: ["base = true", "max_running = 3"],
                                    quiet: ["base = true"])
        func steps() throws -> Double { try d.metric("lorad_batch_size_count") ?? 0 }
        func firstToken() throws -> (seconds: Double, steps: Double) {
            let before = try steps()
            let started = Date()
            var first: (Double, Double)?
            _ = try d.stream("/v1/chat/completions", chatBody(model: "base", "What is a toaster?", maxTokens: 2, stream: true),
                             token: "token-quiet") { data, _ in
                if first == nil, data.contains("\"content\"") { first = (Date().timeIntervalSince(started), try steps() - before) }
                return true
            }
            return try #require(first)
        }
        _ = try firstToken()
        let idle = try firstToken()
        let group = Shared(d).flood(12, token: "token-acme") { i in
            chatBody(model: "base", "Tell a long story number \(i).", maxTokens: 64)
        }
        #expect(try secondsUntil(10) { (try d.metric("lorad_queue_depth") ?? 0) >= 6 } != nil, "acme's requests did not queue")
        let busy = try firstToken()
        print("fairness: quiet's first token idle \(Int(idle.seconds * 1000)) ms (\(Int(idle.steps)) steps), "
              + "while acme floods \(Int(busy.seconds * 1000)) ms (\(Int(busy.steps)) steps)")
        #expect(busy.steps <= 4, "quiet waited \(busy.steps) engine steps for its first token")
        group.wait()
        #expect(d.stop() == 0)
    }

    /// max_queued: a tenant's requests past one running and one waiting get 429 (audited as
    /// queue_full), while another tenant is served. The real model, so that the running request
    /// lasts while the others arrive.
    @Test func aTenantsQueueLimitAnswers429() throws {
        let model = try LiveFixtures.realModel()
        let d = try Self.twoTenants(model: model, engine: ["max_sequences = 2"],
                                    acme: ["base = true", "max_running = 1", "max_queued = 1"], quiet: ["base = true"])
        let shared = Shared(d)
        let group = shared.flood(6, token: "token-acme") { i in chatBody(model: "base", "Tell a story, part \(i).", maxTokens: 32) }
        #expect(try d.call("POST", "/v1/chat/completions", chatBody(model: "base", "hi", maxTokens: 2), token: "token-quiet").status == 200)
        group.wait()
        let finished = shared.lock.withLock { shared.finished }
        let refused = finished.filter { $0 == "acme failed" }.count
        // One runs and at most one waits; the rest are refused (five, when they all arrive before the
        // engine thread has taken the first from the queue, since max_queued counts waiting ones).
        #expect(refused >= 4 && refused <= 5, "one runs, at most one waits, the rest are refused: \(finished)")
        let lines = d.logText.components(separatedBy: "refused: tenant acme, uid \(getuid()): POST /v1/chat/completions: 429 queue_full").count - 1
        #expect(lines == refused, "one audit line per refusal: \(d.logText)")
        #expect(d.stop() == 0)
    }

    /// tokens_per_minute: past it, 429 with Retry-After; other tenants are not affected.
    @Test func aTokenRateLimitAnswers429() throws {
        let d = try Self.twoTenants(engine: [], acme: ["adapters = [\"alpha\"]", "tokens_per_minute = 30"], quiet: ["adapters = [\"alpha\"]"])
        let first = try d.call("POST", "/v1/chat/completions", chatBody(model: "alpha", "hello there", maxTokens: 16), token: "token-acme")
        #expect(first.status == 200)
        let second = try d.call("POST", "/v1/chat/completions", chatBody(model: "alpha", "hello there", maxTokens: 16), token: "token-acme")
        #expect(second.status == 429 && (second.head.header("retry-after").flatMap { Int($0) } ?? 0) >= 1, "\(second.text)")
        #expect(second.json?["error"]?["type"]?.stringValue == "rate_limit_error")
        #expect(try d.call("POST", "/v1/chat/completions", chatBody(model: "alpha", "hello there", maxTokens: 16), token: "token-quiet").status == 200)
        #expect(d.stop() == 0)
    }
}

extension LiveDaemon {
    /// A request with `Authorization: Bearer token`.
    func call(_ method: String, _ path: String, _ body: JSONValue? = nil, token: String) throws -> Reply {
        let c = try DaemonClient(socket: socket, timeoutSeconds: 60)
        try c.request(method: method, path: path, body: body.map { Array($0.serialized().utf8) }, headers: [("Authorization", "Bearer \(token)")])
        let h = try c.readHead()
        return Reply(status: h.status, head: h, body: try c.readBody())
    }
}

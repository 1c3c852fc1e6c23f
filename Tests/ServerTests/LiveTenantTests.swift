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
        let own = try d.call("POST", "/v1/adapters/beta-new/versions", .object([("path", .string(root + "/beta.gguf"))]), token: "token-beta")
        #expect(own.status == 200, "\(own.text)")
        let foreign = try d.call("POST", "/v1/adapters/alpha/versions", .object([("path", .string(root + "/beta.gguf"))]), token: "token-beta")
        #expect(foreign.status == 403, "\(foreign.text)")
        #expect(try d.call("GET", "/v1/adapters/beta-new", token: "token-beta").status == 200)
        #expect(try d.call("DELETE", "/v1/adapters/beta-new", token: "token-beta").status == 403, "removing is not publishing")
        #expect(try d.call("POST", "/v1/chat/completions", chatBody(model: "beta-new", "hi", maxTokens: 2), token: "token-beta").status == 200)
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

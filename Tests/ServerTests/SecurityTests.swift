// docs/SECURITY.md's claims that had no test before it: the socket's directory (refused when anyone
// may replace the socket, a warning with the sticky bit, socket activation exempt), the audit trail
// (one line per refused request and per admin action, naming the caller), the per-tenant counters,
// no token in any log line or metric; and the document itself: every test it names exists, and
// every claim names one.

import Crypto
import Foundation
import JSON
import LoradClient
import Testing
@testable import Server
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SecurityTests {
    // MARK: The socket's directory

    @Test func socketDirectoryVerdicts() {
        typealias C = SocketDirectory.Component
        let me: uid_t = 1000
        func path(_ dirMode: mode_t, owner: uid_t = me, parent: mode_t = 0o040755, parentOwner: uid_t = 0) -> [C] {
            [C(path: "/run/lorad", owner: owner, mode: dirMode), C(path: "/run", owner: parentOwner, mode: parent), C(path: "/", owner: 0, mode: 0o040755)]
        }
        #expect(SocketDirectory.verdict(path(0o040755), user: me) == .safe)
        #expect(SocketDirectory.verdict(path(0o040755, owner: 0), user: me) == .safe, "root's directory")
        #expect(SocketDirectory.verdict(path(0o040770), user: me) == .safe, "group-writable is the group's business")
        guard case .unsafe(let e) = SocketDirectory.verdict(path(0o040777), user: me) else {
            Issue.record("a world-writable directory without the sticky bit was accepted")
            return
        }
        #expect(e == .unsafeSocketDirectory(directory: "/run/lorad", component: "/run/lorad", mode: 0o777))
        // The message names the directory, its mode and what to do.
        #expect(e.description.contains("/run/lorad") && e.description.contains("0777") && e.description.contains("chmod o-w /run/lorad"), "\(e)")
        guard case .sticky(let warning) = SocketDirectory.verdict(path(0o041777), user: me) else {
            Issue.record("a sticky world-writable directory was not allowed with a warning")
            return
        }
        #expect(warning.contains("/run/lorad") && warning.contains("1777"), "\(warning)")
        // A parent anyone may write lets anyone rename the directory away and put their own in its place.
        let parent = SocketDirectory.verdict(path(0o040755, parent: 0o040777), user: me)
        #expect(parent == .unsafe(.unsafeSocketDirectory(directory: "/run/lorad", component: "/run", mode: 0o777)))
        if case .unsafe(let e) = parent { #expect(e.description.contains("its parent /run has mode 0777"), "\(e)") }
        // ... unless its sticky bit keeps them from renaming what is not theirs (/tmp).
        #expect(SocketDirectory.verdict(path(0o040755, parent: 0o041777), user: me) == .safe)
        // Another user owning the directory or a parent could chmod it and do either.
        let owned = SocketDirectory.verdict(path(0o040700, owner: 1001), user: me)
        #expect(owned == .unsafe(.socketDirectoryOwner(directory: "/run/lorad", component: "/run/lorad", owner: 1001, user: me)))
        if case .unsafe(let e) = owned { #expect(e.description.contains("belongs to uid 1001") && e.description.contains("lorad's uid 1000"), "\(e)") }
        #expect(SocketDirectory.verdict(path(0o040755, parentOwner: 1001), user: me)
                == .unsafe(.socketDirectoryOwner(directory: "/run/lorad", component: "/run", owner: 1001, user: me)))
        #expect(SocketDirectory.directory(of: "lorad.sock") == "." && SocketDirectory.directory(of: "/run/lorad/lorad.sock") == "/run/lorad")
        // A missing directory is bind's to report (it names the path and the errno).
        #expect(SocketDirectory.check(socketPath: "/nonexistent-\(UUID().uuidString)/lorad.sock") == .safe)
    }

    /// The path is read as it is on disk: symbolic links resolved, every parent up to / with its owner.
    @Test func socketDirectoryComponentsAreTheResolvedPathUpToTheRoot() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-dir-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base.appendingPathComponent("real"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: base) }
        try FileManager.default.createSymbolicLink(atPath: base.appendingPathComponent("link").path, withDestinationPath: "real")
        let components = try #require(SocketDirectory.components(of: base.appendingPathComponent("link").path))
        let real = try resolved(base.appendingPathComponent("real").path)
        #expect(components.first?.path == real && components.last?.path == "/", "\(components.map(\.path))")
        #expect(components.map(\.path) == components.indices.map { i in
            i == components.count - 1 ? "/" : (real as NSString).pathComponents.dropLast(i).joined(separator: "/").replacingOccurrences(of: "//", with: "/")
        })
        #expect(components[0].owner == geteuid())
        // The same directory judged for a daemon running as another user: refused for its owner
        // (unless that owner is root, whose directories are always trusted).
        if geteuid() != 0 {
            #expect(SocketDirectory.check(socketPath: real + "/lorad.sock", user: geteuid() + 1)
                    == .unsafe(.socketDirectoryOwner(directory: real, component: real, owner: geteuid(), user: geteuid() + 1)))
        }
    }

    @Test func aWorldWritableSocketDirectoryIsRefusedAtStart() throws {
        let d = try LiveDaemon(waitForSocket: false, beforeStart: { dir in
            #expect(chmod(dir.path, 0o777) == 0)
        })
        #expect(secondsUntil(60) { d.logText.contains("refusing") } != nil, "\(d.logText)")
        let code = d.stop()   // reaps it: it has exited, or is exiting, on its own
        #expect(code != nil && code != 0, "\(d.logText)")
        #expect(d.logText.contains("refusing to create the socket in \(d.dir.path)") && d.logText.contains("0777"), "\(d.logText)")
        #expect(!FileManager.default.fileExists(atPath: d.socket))
    }

    @Test func aSocketDirectoryWithAWorldWritableParentIsRefusedAtStart() throws {
        let d = try LiveDaemon(waitForSocket: false, socketSubdirectory: "sock", beforeStart: { dir in
            #expect(chmod(dir.path, 0o777) == 0)
        })
        #expect(secondsUntil(60) { d.logText.contains("refusing") } != nil, "\(d.logText)")
        let code = d.stop()
        #expect(code != nil && code != 0, "\(d.logText)")
        #expect(d.logText.contains("its parent \(try resolved(d.dir.path)) has mode 0777"), "\(d.logText)")
        #expect(!FileManager.default.fileExists(atPath: d.socket))
    }

    /// Root may hand a directory to another user; so only as root is the live case possible (as any
    /// other user, socketDirectoryComponentsAreTheResolvedPathUpToTheRoot judges a real directory
    /// for a different daemon uid instead).
    @Test func aSocketDirectoryOwnedBySomeoneElseIsRefusedAtStart() throws {
        guard geteuid() == 0 else { return }
        let d = try LiveDaemon(waitForSocket: false, socketSubdirectory: "sock", beforeStart: { dir in
            #expect(chown(dir.appendingPathComponent("sock").path, 65534, 65534) == 0)
        })
        #expect(secondsUntil(60) { d.logText.contains("refusing") } != nil, "\(d.logText)")
        let code = d.stop()
        #expect(code != nil && code != 0, "\(d.logText)")
        #expect(d.logText.contains("belongs to uid 65534"), "\(d.logText)")
    }

    @Test func aStickySocketDirectoryIsAllowedWithAWarning() throws {
        let d = try LiveDaemon(beforeStart: { dir in
            #expect(chmod(dir.path, 0o1777) == 0)
        })
        #expect(try d.get("/healthz").status == 200)
        #expect(d.logText.contains("\(d.dir.path) (mode 1777) is writable by every user"), "\(d.logText)")
        #expect(d.stop() == 0)
    }

    /// systemd created the socket: its directory is not lorad's to judge.
    @Test func socketActivationIsExemptFromTheDirectoryCheck() throws {
        let open = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-open-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: open, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: open) }
        #expect(chmod(open.path, 0o777) == 0)
        let path = open.appendingPathComponent("activated.sock").path
        let listener = try RawSocket(path: path, type: Int32(SOCK_STREAM.rawValue), listen: true)
        let d = try LiveDaemon(passFD: listener.fd, waitForSocket: false, beforeStart: { dir in
            #expect(chmod(dir.path, 0o777) == 0)
        })
        let c = try DaemonClient(socket: path, timeoutSeconds: 60)
        try c.request(method: "GET", path: "/readyz")
        #expect(try c.readHead().status == 200, "\(d.logText)")
        #expect(d.stop() == 0, "\(d.logText)")
    }

    // MARK: Audit and metrics

    // Their last six letters are not hex digits, so they cannot turn up by chance in an id or a hash.
    static let tokens = (acme: "tok-acme-qzwxkv", beta: "tok-beta-vqrzjm", admin: "tok-admin-xkqpwz", nobody: "tok-nobody-zjvqxk")

    static func hash(_ token: String) -> String { SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined() }

    /// acme: alpha and the base, 30 tokens a minute; betaco: beta*, may publish; an admin token; no uid is admin.
    static func tenantDaemon() throws -> LiveDaemon {
        try LiveDaemon(adapterKeys: ["rescan_seconds = 0", "import_roots = [\"/\"]"],
                       admin: ["uids = []", "token_sha256 = \"\(hash(tokens.admin))\""], beforeStart: { dir in
            let config = dir.appendingPathComponent("lorad.toml")
            var toml = try String(contentsOf: config, encoding: .utf8)
            toml += """

            [[tenants]]
            name = "acme"
            token_sha256 = "\(hash(tokens.acme))"
            adapters = ["alpha"]
            base = true
            tokens_per_minute = 30

            [[tenants]]
            name = "betaco"
            token_sha256 = "\(hash(tokens.beta))"
            adapters = ["beta*"]
            may_publish = true

            """
            try toml.write(to: config, atomically: true, encoding: .utf8)
        })
    }

    /// Every refusal is one "refused:" line naming who, the peer uid, the route pattern and the
    /// outcome; every admin action one "admin:" line naming the caller as a tenant, uid or the admin
    /// token; lorad_tenant_* count requests, tokens and refusals by tenant; no token reaches the log
    /// or /metrics.
    @Test func refusalsAndAdminActionsAreAuditedAndCountedPerTenant() throws {
        let d = try Self.tenantDaemon()
        let uid = getuid(), root = d.dir.appendingPathComponent("adapters").path
        let t = Self.tokens
        // Refusals, one of each reason authorize gives, and a token-rate 429.
        #expect(try d.post("/v1/chat/completions", chatBody(model: "alpha", "hi", maxTokens: 2)).status == 401)
        #expect(try d.call("GET", "/v1/models", token: t.nobody).status == 401)
        #expect(try d.call("GET", "/v1/adapters", token: t.acme).status == 403)
        #expect(try d.call("POST", "/v1/adapters/alpha/versions", .object([("path", .string(root + "/beta.gguf"))]), token: t.beta).status == 403)
        #expect(try d.call("POST", "/v1/chat/completions", chatBody(model: "alpha", "hello there", maxTokens: 16), token: t.acme).status == 200)
        #expect(try d.call("POST", "/v1/chat/completions", chatBody(model: "alpha", "hello there", maxTokens: 16), token: t.acme).status == 429)
        // Admin actions by a tenant with may_publish and by the admin token.
        let upload: JSONValue = .object([("files", .object([
            ("adapter.gguf", .string(try Data(contentsOf: URL(fileURLWithPath: root + "/beta.gguf")).base64EncodedString())),
        ]))])
        #expect(try d.call("POST", "/v1/adapters/beta-two/versions", upload, token: t.beta).status == 200)
        #expect(try d.call("POST", "/v1/adapters/gamma/versions", .object([("path", .string(root + "/beta.gguf"))]), token: t.admin).status == 200)

        let log = d.logText
        for line in [
            "refused: no token, uid \(uid): POST /v1/chat/completions: 401 no_token",
            "refused: unknown token, uid \(uid): GET /v1/models: 401 unknown_token",
            "refused: tenant acme, uid \(uid): GET /v1/adapters: 403 forbidden",
            "refused: tenant betaco, uid \(uid): POST /v1/adapters/{name}/versions: 403 forbidden",
            "refused: tenant acme, uid \(uid): POST /v1/chat/completions: 429 token_rate",
            "admin: tenant betaco imported upload (",
            "admin: admin token imported \(root)/beta.gguf as gamma",
        ] {
            #expect(log.contains(line), "missing \(line.debugDescription) in\n\(log)")
        }
        #expect(log.components(separatedBy: "refused: ").count - 1 == 5, "one line per refusal:\n\(log)")

        let metrics = try d.call("GET", "/metrics", token: t.admin)
        #expect(metrics.status == 200)
        let e = Exposition(metrics.text)
        #expect(e.malformed == [])
        for (key, value) in [
            #"lorad_tenant_refusals_total{tenant="(none)",reason="no_token"}"#: 1.0,
            #"lorad_tenant_refusals_total{tenant="(unknown)",reason="unknown_token"}"#: 1,
            #"lorad_tenant_refusals_total{tenant="acme",reason="forbidden"}"#: 1,
            #"lorad_tenant_refusals_total{tenant="betaco",reason="forbidden"}"#: 1,
            #"lorad_tenant_refusals_total{tenant="acme",reason="token_rate"}"#: 1,
            #"lorad_tenant_requests_total{tenant="acme",class="2xx"}"#: 1,
            #"lorad_tenant_requests_total{tenant="acme",class="4xx"}"#: 2,
            #"lorad_tenant_requests_total{tenant="betaco",class="2xx"}"#: 1,
            #"lorad_tenant_requests_total{tenant="(unknown)",class="4xx"}"#: 1,
        ] {
            #expect(e.samples[key] == value, "\(key): \(String(describing: e.samples[key]))")
        }
        #expect((e.samples[#"lorad_tenant_prompt_tokens_total{tenant="acme"}"#] ?? 0) > 0)
        #expect((e.samples[#"lorad_tenant_generation_tokens_total{tenant="acme"}"#] ?? 0) > 0)
        // Bounded: every tenant label is a configured name or one of the two fixed words.
        let labels = Set(e.samples.keys.compactMap { $0.firstMatch(of: /tenant="([^"]*)"/).map { String($0.1) } })
        #expect(labels.isSubset(of: ["acme", "betaco", TenantLabel.none, TenantLabel.unknown]), "\(labels)")

        #expect(d.stop() == 0)
        // No token, nor its distinctive part, anywhere.
        let everything = d.logText + metrics.text
        for token in [t.acme, t.beta, t.admin, t.nobody] {
            #expect(!everything.contains(token) && !everything.contains(String(token.suffix(6))), "\(token) leaked")
        }
    }

    // MARK: docs/SECURITY.md

    static func securityDoc() throws -> String {
        try String(contentsOf: Readme.repositoryRoot.appendingPathComponent("docs/SECURITY.md"), encoding: .utf8)
    }

    /// `Type.method` references after "Test:" or "Tests:" in `text`.
    static func testReferences(_ text: String) -> [(type: String, method: String)] {
        var refs: [(String, String)] = []
        for line in text.split(separator: "\n") {
            guard let marker = line.range(of: "Test: ") ?? line.range(of: "Tests: ") else { continue }
            for m in line[marker.upperBound...].matches(of: /`([A-Z][A-Za-z0-9]*)\.([a-z][A-Za-z0-9]*)`/) {
                refs.append((String(m.1), String(m.2)))
            }
        }
        return refs
    }

    /// Each claim is a bullet ("- ", continued on indented lines) outside "Out of scope".
    static func claims(_ text: String) -> [String] {
        var claims: [String] = [], section = "", current: String?
        func close() {
            if let c = current, !section.lowercased().contains("out of scope") { claims.append(c) }
            current = nil
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") {
                close()
                section = String(line)
            } else if line.hasPrefix("- ") {
                close()
                current = String(line)
            } else if current != nil, line.hasPrefix("  ") {
                current! += " " + line.trimmingCharacters(in: .whitespaces)
            } else {
                close()
            }
        }
        close()
        return claims
    }

    @Test func everyTestTheSecurityDocNamesExists() throws {
        let doc = try Self.securityDoc()
        let refs = Self.testReferences(doc)
        #expect(refs.count >= 20, "SECURITY.md names \(refs.count) tests")
        let testsDir = Readme.repositoryRoot.appendingPathComponent("Tests")
        var sources: [String] = []
        let files = FileManager.default.enumerator(at: testsDir, includingPropertiesForKeys: nil)
        while let url = files?.nextObject() as? URL {
            if url.pathExtension == "swift", let text = try? String(contentsOf: url, encoding: .utf8) { sources.append(text) }
        }
        for (type, method) in refs {
            let declaration = try Regex("(struct|class|enum|extension) \(type)\\b")
            let found = sources.contains { $0.contains(declaration) && $0.contains("func \(method)(") }
            #expect(found, "SECURITY.md names \(type).\(method), which no test file declares")
        }
        let bare = Self.claims(doc).filter { Self.testReferences($0).isEmpty }
        #expect(bare.isEmpty, "claims without a test:\n\(bare.joined(separator: "\n"))")
    }
}

/// realpath(3), as the daemon resolves the socket's directory.
private func resolved(_ path: String) throws -> String {
    guard let p = realpath(path, nil) else { throw LiveError("realpath \(path): errno \(errno)") }
    defer { free(p) }
    return String(cString: p)
}

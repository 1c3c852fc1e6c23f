// A real `lorad serve` for the live tests: the built binary (LORAD_BIN, set by `make test`) started on
// a socket in a temporary directory with the tiny chat model and its adapters (Tests/Fixtures/tiny_chat,
// written by scripts/goldens/tiny_chat.py), plus a broken adapter and a badly named one that must be
// skipped. Requests go through DaemonClient (plain POSIX sockets), so the server is tested from the
// outside exactly as a client sees it.

import Foundation
import Testing
@testable import Server
import LoradClient
import JSON
#if canImport(Glibc)
import Glibc
#endif

struct LiveError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

enum LiveFixtures {
    /// The real SmolLM2 (LORAD_TEST_MODEL, set by `make test`), for tests that need generation to take
    /// a while; missing is a failure, never a skip.
    static func realModel() throws -> String {
        guard let p = ProcessInfo.processInfo.environment["LORAD_TEST_MODEL"], !p.isEmpty,
              FileManager.default.fileExists(atPath: p) else {
            Issue.record("LORAD_TEST_MODEL is not set or missing: run the suite with `make test`")
            throw LiveError("no LORAD_TEST_MODEL")
        }
        return p
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_chat")

    static func binary() throws -> String {
        if let p = ProcessInfo.processInfo.environment["LORAD_BIN"], !p.isEmpty, FileManager.default.isExecutableFile(atPath: p) {
            return p
        }
        let dir = Bundle.main.bundleURL.deletingLastPathComponent()
        for c in [dir.appendingPathComponent("lorad"), Bundle.main.bundleURL.appendingPathComponent("lorad")]
        where FileManager.default.isExecutableFile(atPath: c.path) {
            return c.path
        }
        Issue.record("cannot find the lorad binary: set LORAD_BIN or run `make test`")
        throw LiveError("no lorad binary")
    }
}

/// Spawns a program with `environment`, stdout/stderr to `log`, and optionally a descriptor passed
/// as fd 3 (socket activation).
func spawn(_ argv: [String], environment: [String: String], log: String, passFD: Int32? = nil) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    if let passFD { posix_spawn_file_actions_adddup2(&actions, passFD, 3) }
    let cArgs = argv.map { strdup($0) } + [nil]
    let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for p in cArgs { free(p) }
        for p in cEnv { free(p) }
    }
    // The test runner's threads may block signals, and the mask is inherited: start with none blocked.
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attr, &empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for s in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, s) }
    posix_spawnattr_setsigdefault(&attr, &defaults)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, argv[0], &actions, &attr, cArgs, cEnv)
    guard rc == 0 else { throw LiveError("posix_spawn \(argv[0]): \(String(cString: strerror(rc)))") }
    return pid
}

/// Waits for `pid` to exit, up to `timeout` seconds; its exit status, or nil on timeout.
func waitExit(_ pid: pid_t, timeout: Double) -> Int32? {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid {
            if status & 0x7f == 0 { return (status >> 8) & 0xff }
            return 128 + (status & 0x7f)
        }
        Thread.sleep(forTimeInterval: 0.02)
    }
    return nil
}

final class LiveDaemon {
    let dir: URL
    let socket: String
    let log: String
    private(set) var pid: pid_t = 0
    private var exited = false

    /// Starts a daemon. `engine`, `server`, `adapterKeys` and `admin` are extra TOML lines for those
    /// sections; `arguments` are extra flags after `serve --config FILE`. `socketSubdirectory`: the
    /// socket goes in that directory under the daemon's own (made here), instead of beside its files.
    init(model: String? = nil, engine: [String] = [], server: [String] = [], adapterKeys: [String] = [], admin: [String] = [],
         adapters: Bool = true,
         arguments: [String] = [], extraEnvironment: [String: String] = [:],
         passFD: Int32? = nil, waitForSocket: Bool = true, socketSubdirectory: String? = nil,
         beforeStart: ((URL) throws -> Void)? = nil) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-live-\(UUID().uuidString.prefix(8))")
        self.dir = dir
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let socketDir = socketSubdirectory.map { dir.appendingPathComponent($0) } ?? dir
        try FileManager.default.createDirectory(at: socketDir, withIntermediateDirectories: true)
        socket = socketDir.appendingPathComponent("lorad.sock").path
        log = dir.appendingPathComponent("daemon.log").path
        let adaptersDir = dir.appendingPathComponent("adapters")
        try FileManager.default.createDirectory(at: adaptersDir, withIntermediateDirectories: true)
        if adapters {
            let fm = FileManager.default
            try fm.copyItem(at: LiveFixtures.root.appendingPathComponent("adapters/alpha"), to: adaptersDir.appendingPathComponent("alpha"))
            try fm.copyItem(at: LiveFixtures.root.appendingPathComponent("adapters/beta.gguf"), to: adaptersDir.appendingPathComponent("beta.gguf"))
            // Skipped with a logged reason: an invalid config, and a name outside [a-z0-9._-].
            let broken = adaptersDir.appendingPathComponent("broken")
            try fm.createDirectory(at: broken, withIntermediateDirectories: true)
            try Data("{ not json".utf8).write(to: broken.appendingPathComponent("adapter_config.json"))
            try fm.copyItem(at: LiveFixtures.root.appendingPathComponent("adapters/beta.gguf"), to: adaptersDir.appendingPathComponent("Bad_Name.gguf"))
        }
        var toml = """
        [model]
        path = "\(model ?? LiveFixtures.root.appendingPathComponent("model.gguf").path)"
        threads = 1
        context = 256

        [adapters]
        dir = "\(adaptersDir.path)"
        \(adapterKeys.joined(separator: "\n"))

        [admin]
        \(admin.joined(separator: "\n"))

        [server]
        socket = "\(socket)"

        """
        toml += server.joined(separator: "\n") + "\n\n[engine]\n" + engine.joined(separator: "\n") + "\n\n[log]\nlevel = \"debug\"\n"
        let config = dir.appendingPathComponent("lorad.toml")
        try toml.write(to: config, atomically: true, encoding: .utf8)
        try beforeStart?(dir)
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = nil
        env["LISTEN_FDS"] = nil
        env["LISTEN_PID"] = nil
        for (k, v) in extraEnvironment { env[k] = v }
        let bin = try LiveFixtures.binary()
        if passFD != nil {
            // LISTEN_PID must be the daemon's own pid: let a shell export its pid and exec into lorad.
            pid = try spawn(["/bin/sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" serve --config \"$1\"", bin, config.path],
                            environment: env, log: log, passFD: passFD)
        } else {
            pid = try spawn([bin, "serve", "--config", config.path] + arguments, environment: env, log: log)
        }
        if waitForSocket { try self.waitForSocket() }
    }

    func waitForSocket(timeout: Double = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: socket), (try? get("/healthz").status) == 200 { return }
            if let code = waitExitNow() { throw LiveError("lorad exited with \(code) before serving:\n\(logText)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw LiveError("lorad did not serve within \(timeout) s:\n\(logText)")
    }

    private func waitExitNow() -> Int32? {
        guard !exited else { return -1 }
        if let c = waitExit(pid, timeout: 0) {
            exited = true
            return c
        }
        return nil
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    deinit {
        if !exited {
            kill(pid, SIGKILL)
            _ = waitExit(pid, timeout: 10)
        }
        try? FileManager.default.removeItem(at: dir)
    }

    /// Sends `signal` and waits for the exit status.
    func stop(_ signal: Int32 = SIGTERM, timeout: Double = 30) -> Int32? {
        kill(pid, signal)
        let code = waitExit(pid, timeout: timeout)
        if code != nil { exited = true }
        return code
    }

    struct Reply {
        let status: Int
        let head: DaemonClient.Head
        let body: [UInt8]
        var json: JSONValue? { try? JSONValue.parse(body) }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    func get(_ path: String) throws -> Reply {
        let c = try DaemonClient(socket: socket, timeoutSeconds: 30)
        try c.request(method: "GET", path: path)
        let h = try c.readHead()
        return Reply(status: h.status, head: h, body: try c.readBody())
    }

    /// Any method, with an optional JSON body.
    func send(_ method: String, _ path: String, _ body: JSONValue? = nil) throws -> Reply {
        let c = try DaemonClient(socket: socket, timeoutSeconds: 60)
        try c.request(method: method, path: path, body: body.map { Array($0.serialized().utf8) } ?? [])
        let h = try c.readHead()
        return Reply(status: h.status, head: h, body: try c.readBody())
    }

    func post(_ path: String, _ body: JSONValue) throws -> Reply {
        try post(path, raw: Array(body.serialized().utf8))
    }

    func post(_ path: String, raw: [UInt8]) throws -> Reply {
        let c = try DaemonClient(socket: socket, timeoutSeconds: 60)
        try c.request(method: "POST", path: path, body: raw)
        let h = try c.readHead()
        return Reply(status: h.status, head: h, body: try c.readBody())
    }

    /// A streamed request: the `data:` payloads in order (including "[DONE]").
    func stream(_ path: String, _ body: JSONValue, token: String? = nil,
                onEvent: ((String, DaemonClient) throws -> Bool)? = nil) throws -> (status: Int, events: [String]) {
        let c = try DaemonClient(socket: socket, timeoutSeconds: 60)
        try c.request(method: "POST", path: path, body: Array(body.serialized().utf8),
                      headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [])
        let h = try c.readHead()
        var events: [String] = []
        if h.status != 200 {
            return (h.status, [String(decoding: try c.readBody(), as: UTF8.self)])
        }
        struct Stop: Error {}
        do {
            try c.readEvents { data in
                events.append(data)
                if let onEvent, try !onEvent(data, c) { throw Stop() }
            }
        } catch is Stop {}
        return (h.status, events)
    }

    /// One sample of a metric from /metrics (the first line starting with `prefix`).
    func metric(_ prefix: String) throws -> Double? {
        let text = try get("/metrics").text
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            if let v = line.split(separator: " ").last.flatMap({ Double($0) }) { return v }
        }
        return nil
    }
}

func chatBody(model: String, _ content: String, maxTokens: Int = 8, stream: Bool = false, system: String? = nil,
              extra: [(String, JSONValue)] = []) -> JSONValue {
    var messages: [JSONValue] = []
    if let system { messages.append(.object([("role", .string("system")), ("content", .string(system))])) }
    messages.append(.object([("role", .string("user")), ("content", .string(content))]))
    return .object([("model", .string(model)), ("messages", .array(messages)), ("max_tokens", .int(maxTokens)),
                    ("temperature", .int(0)), ("stream", .bool(stream))] + extra)
}

extension LiveDaemon {
    /// The greedy chat answer of `model` to a fixed greeting (6 tokens), nil when the request fails.
    func answer(_ model: String) throws -> String? {
        let r = try post("/v1/chat/completions", chatBody(model: model, "hello there", maxTokens: 6))
        guard r.status == 200 else { return nil }
        return r.json?["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue
    }
}

/// Polls `condition` every 20 ms: the seconds it took to hold, or nil after `limit`.
func secondsUntil(_ limit: Double, _ condition: () throws -> Bool) rethrows -> Double? {
    let start = Date()
    while Date().timeIntervalSince(start) < limit {
        if try condition() { return Date().timeIntervalSince(start) }
        Thread.sleep(forTimeInterval: 0.02)
    }
    return try condition() ? Date().timeIntervalSince(start) : nil
}

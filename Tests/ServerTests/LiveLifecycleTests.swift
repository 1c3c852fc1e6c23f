// The daemon's life cycle from the outside: systemd's notify protocol (a fake NOTIFY_SOCKET),
// socket activation (a listening socket passed as fd 3 with LISTEN_FDS), stale and live socket
// files, SIGHUP rescanning the adapters, TCP on loopback, and `lorad ask`.

import Foundation
import Testing
@testable import Server
import LoradClient
import ModelFormats
#if canImport(Glibc)
import Glibc
#endif

/// A Unix socket made with plain POSIX calls: a datagram receiver (fake systemd) or a listener.
final class RawSocket {
    let fd: Int32
    let path: String

    init(path: String, type: Int32, listen: Bool = false) throws {
        self.path = path
        fd = socket(AF_UNIX, type, 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw LiveError("bind \(path): \(String(cString: strerror(errno)))") }
        if listen { Glibc.listen(fd, 16) }
    }

    deinit { close(fd) }

    /// Datagrams received within `timeout` seconds until `until` says stop.
    func receive(timeout: Double, until: (String) -> Bool) -> [String] {
        var out: [String] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buf, buf.count, 0)
            guard n > 0 else { continue }
            let s = String(decoding: buf[0..<n], as: UTF8.self)
            out.append(s)
            if until(s) { break }
        }
        return out
    }
}

@Suite(.serialized) struct LiveLifecycleTests {
    @Test func notifiesReadyAndStopping() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let notify = try RawSocket(path: tmp.appendingPathComponent("notify").path, type: Int32(SOCK_DGRAM.rawValue))
        let d = try LiveDaemon(extraEnvironment: ["NOTIFY_SOCKET": notify.path], waitForSocket: false)
        let ready = notify.receive(timeout: 60) { $0.contains("READY=1") }
        #expect(ready.contains { $0.contains("READY=1") }, "got \(ready)\n\(d.logText)")
        #expect(ready.joined().contains("STATUS="))
        // READY comes only once the socket answers.
        #expect(try d.get("/healthz").status == 200)
        kill(d.pid, SIGHUP)
        let reload = notify.receive(timeout: 20) { $0.contains("READY=1") }
        #expect(reload.contains { $0.contains("RELOADING=1") }, "got \(reload)")
        kill(d.pid, SIGTERM)
        let stopping = notify.receive(timeout: 20) { $0.contains("STOPPING=1") }
        #expect(stopping.contains { $0.contains("STOPPING=1") }, "got \(stopping)")
        #expect(d.stop() == 0)
    }

    @Test func servesAPassedListeningSocket() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-activation-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let path = tmp.appendingPathComponent("activated.sock").path
        let listener = try RawSocket(path: path, type: Int32(SOCK_STREAM.rawValue), listen: true)
        // A client may connect before the daemon runs: the kernel queues it, as with systemd.
        let early = try DaemonClient(socket: path)
        try early.request(method: "GET", path: "/readyz")
        let d = try LiveDaemon(passFD: listener.fd, waitForSocket: false)
        #expect(try early.readHead().status == 200, "\(d.logText)")
        let c = try DaemonClient(socket: path)
        try c.request(method: "GET", path: "/v1/models")
        #expect(try c.readHead().status == 200)
        // The configured socket was not created: the passed one replaces it.
        #expect(!FileManager.default.fileExists(atPath: d.socket))
        #expect(d.stop() == 0, "\(d.logText)")
        // systemd owns the socket file: the daemon leaves it in place.
        #expect(FileManager.default.fileExists(atPath: path))
    }

    @Test func staleSocketIsReplacedLiveOneIsAnError() throws {
        let d = try LiveDaemon(beforeStart: { dir in
            // A socket file left by a dead process: bound, never listened on, closed.
            _ = try RawSocket(path: dir.appendingPathComponent("lorad.sock").path, type: Int32(SOCK_STREAM.rawValue))
        })
        #expect(try d.get("/healthz").status == 200)
        // A second daemon on the same, live socket refuses to start and leaves the first alone.
        let log = d.dir.appendingPathComponent("second.log").path
        let cfg = d.dir.appendingPathComponent("lorad.toml").path
        let second = try spawn([try LiveFixtures.binary(), "serve", "--config", cfg], environment: ProcessInfo.processInfo.environment, log: log)
        let code = waitExit(second, timeout: 60)
        #expect(code != nil && code != 0)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("listening"), "message: \(text)")
        #expect(try d.get("/healthz").status == 200)
    }

    @Test func sighupRescansAdapters() throws {
        let d = try LiveDaemon()
        let ids = { () throws -> [String] in
            (try d.get("/v1/models").json?["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        }
        #expect(try ids() == ["base", "alpha", "beta"])
        let adapters = d.dir.appendingPathComponent("adapters")
        try FileManager.default.copyItem(at: adapters.appendingPathComponent("beta.gguf"), to: adapters.appendingPathComponent("gamma.gguf"))
        try FileManager.default.removeItem(at: adapters.appendingPathComponent("alpha"))
        kill(d.pid, SIGHUP)
        let deadline = Date().addingTimeInterval(20)
        while try ids() != ["base", "beta", "gamma"] && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(try ids() == ["base", "beta", "gamma"])
        let r = try d.post("/v1/chat/completions", chatBody(model: "gamma", "hi", maxTokens: 3))
        #expect(r.status == 200)
        #expect(try d.post("/v1/chat/completions", chatBody(model: "alpha", "hi", maxTokens: 3)).status == 404)
    }

    @Test func sighupAppliesLiveConfigKeysAndKeepsTheRestOnABadFile() throws {
        let d = try LiveDaemon()
        let config = d.dir.appendingPathComponent("lorad.toml")
        let other = d.dir.appendingPathComponent("other-adapters")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: LiveFixtures.root.appendingPathComponent("adapters/beta.gguf"),
                                         to: other.appendingPathComponent("delta.gguf"))
        var toml = try String(contentsOf: config, encoding: .utf8)
        toml = toml.replacingOccurrences(of: d.dir.appendingPathComponent("adapters").path, with: other.path)
            .replacingOccurrences(of: "context = 256", with: "context = 128")
        try toml.write(to: config, atomically: true, encoding: .utf8)
        kill(d.pid, SIGHUP)
        let ids = { () throws -> [String] in
            (try d.get("/v1/models").json?["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        }
        let deadline = Date().addingTimeInterval(20)
        while try ids() != ["base", "delta"] && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(try ids() == ["base", "delta"])
        #expect(d.logText.contains("need a restart"), "model.context changed: the log must say it waits for a restart")
        // A file that no longer parses changes nothing.
        try "[server]\nsockett = 1\n".write(to: config, atomically: true, encoding: .utf8)
        kill(d.pid, SIGHUP)
        let until = Date().addingTimeInterval(20)
        while !d.logText.contains("not reloaded") && Date() < until { Thread.sleep(forTimeInterval: 0.05) }
        #expect(d.logText.contains("not reloaded"))
        #expect(try ids() == ["base", "delta"])
        let deltaReply = try d.post("/v1/chat/completions", chatBody(model: "delta", "hi", maxTokens: 2))
        #expect(deltaReply.status == 200, "\(deltaReply.text) \(d.logText)")
    }

    /// A port the kernel just handed out (bind to port 0, read it back, close): free a moment ago, but
    /// another process may take it before the daemon binds, so a daemon that fails to start is
    /// retried on a new port (its log must then say the address was in use).
    @Test func tcpOnLoopback() throws {
        var started: (LiveDaemon, Int)?
        for _ in 0..<5 where started == nil {
            let port = try freeLoopbackPort()
            do {
                started = (try LiveDaemon(server: ["tcp = \"127.0.0.1:\(port)\""]), port)
            } catch let e as LiveError where e.description.contains("in use") {
                continue
            }
        }
        let (d, port) = try #require(started, "no free loopback port in five tries")
        let (fd, rc) = connectLoopback(port: port)
        defer { close(fd) }
        #expect(rc == 0, "\(d.logText)")
        let req = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
        _ = req.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var buf = [UInt8](repeating: 0, count: 1024)
        let n = read(fd, &buf, buf.count)
        #expect(n > 0 && String(decoding: buf[0..<max(0, n)], as: UTF8.self).hasPrefix("HTTP/1.1 200"))

        // The admin API is never served over TCP, whoever connects.
        let (admin, rc2) = connectLoopback(port: port)
        defer { close(admin) }
        #expect(rc2 == 0)
        let list = Array("GET /v1/adapters HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
        _ = list.withUnsafeBytes { write(admin, $0.baseAddress, $0.count) }
        let m = read(admin, &buf, buf.count)
        let answer = String(decoding: buf[0..<max(0, m)], as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 403") && answer.contains("served on the Unix socket"), "\(answer)")
    }

    @Test func askStreamsAnAnswer() throws {
        let d = try LiveDaemon()
        let log = d.dir.appendingPathComponent("ask.log").path
        let pid = try spawn([try LiveFixtures.binary(), "ask", "--socket", d.socket, "--model", "alpha", "--max-tokens", "6",
                             "--temperature", "0", "Hello?"], environment: ProcessInfo.processInfo.environment, log: log)
        #expect(waitExit(pid, timeout: 60) == 0)
        let answer = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let reference = try d.post("/v1/chat/completions", chatBody(model: "alpha", "Hello?", maxTokens: 6))
        let content = reference.json?["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue
        #expect(content != nil && answer == content! + "\n", "ask printed \(answer.debugDescription), expected \(String(describing: content))")
        // An unknown model: the daemon's message, exit 1.
        let pid2 = try spawn([try LiveFixtures.binary(), "ask", "--socket", d.socket, "--model", "nope", "Hello?"],
                             environment: ProcessInfo.processInfo.environment, log: log + "2")
        #expect(waitExit(pid2, timeout: 60) == 1)
        #expect(((try? String(contentsOfFile: log + "2", encoding: .utf8)) ?? "").contains("404"))
    }
}

/// A TCP socket connected (or not: `rc` is connect's result) to 127.0.0.1:`port`; the caller closes it.
func connectLoopback(port: Int) -> (fd: Int32, rc: Int32) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return (fd, rc)
}

/// A loopback TCP port that was free when asked (the kernel's choice for port 0).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw LiveError("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let rc = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
            guard bind(fd, p, len) == 0 else { return -1 }
            return getsockname(fd, p, &len)
        }
    }
    guard rc == 0 else { throw LiveError("bind/getsockname: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

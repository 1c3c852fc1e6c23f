// A small blocking HTTP/1.1 client over a Unix socket (or loopback TCP), for `lorad ask`, `lorad chat
// --socket` and the tests: one request per connection ("Connection: close"), responses with
// Content-Length, chunked encoding or read-to-close, and Server-Sent Events read line by line as they
// arrive. Its own target (LoradClient), so clients need not link the daemon. Its system calls go
// through SystemCalls' Posix, with one twist: reads and writes are `interruptible` (EINTR throws
// instead of being retried), so lorad chat's Ctrl-C, whose handler runs without SA_RESTART, stops a
// blocked read at once (DaemonChatBackend).

import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SystemCalls

package struct DaemonClientError: Error, CustomStringConvertible {
    package let message: String
    package var description: String { message }
}

package final class DaemonClient {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var eof = false

    /// Connects to the daemon's Unix socket at `path`.
    /// Sent as `Authorization: Bearer` with every request (a daemon with tenants wants one):
    /// `LORAD_TOKEN` from the environment by default, so `lorad ask` and `lorad chat` work as a
    /// tenant without a flag that would put the token in the process list.
    package var bearerToken: String? = ProcessInfo.processInfo.environment["LORAD_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }

    package init(socket path: String, timeoutSeconds: Int = 120) throws {
        // CLOEXEC (Posix.socket always adds it): a process this one starts (a test runner spawns
        // daemons) must not inherit the connection, or closing it here would not close it and the
        // daemon would never see the client go.
        do { fd = try Posix.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue)) } catch {
            throw DaemonClientError(message: "socket: \(error.reason)")
        }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            try? Posix.close(fd)
            throw DaemonClientError(message: "socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        // Direct: setsockopt with a valid option on a fresh socket neither fails nor sleeps (no EINTR),
        // and a missing timeout would only mean a read that waits longer.
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        do {
            try withUnsafePointer(to: &addr) { p throws(SystemCallError) in
                try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { a throws(SystemCallError) in
                    try Posix.connect(fd, to: a, length: socklen_t(MemoryLayout<sockaddr_un>.size), path: path)
                }
            }
        } catch {
            try? Posix.close(fd)
            throw DaemonClientError(message: "cannot connect to \(path): \(error.reason) (is `lorad serve` running? --socket PATH)")
        }
    }

    deinit { try? Posix.close(fd) }

    package func send(_ bytes: [UInt8]) throws {
        do { try Posix.writeAll(fd, bytes, interruptible: true) } catch {
            throw DaemonClientError(message: "write: \(error.reason)")
        }
    }

    /// Sends as much of `bytes` as the socket takes within `seconds` without blocking past that (for
    /// tests of a peer that stops reading); returns how many bytes went out.
    package func sendWhileAccepted(_ bytes: [UInt8], seconds: Double) -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        var off = 0
        while off < bytes.count && Date() < deadline {
            var p = [pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)]
            guard (try? Posix.poll(&p, timeout: 50)) == 1 else { continue }
            do {
                off += try bytes[off...].withUnsafeBytes { try Posix.send(fd, $0, flags: Int32(MSG_DONTWAIT)) }
            } catch let error as SystemCallError where error.errno == EAGAIN {
                continue
            } catch {
                break
            }
        }
        return off
    }

    /// Shuts down the sending side: the daemon sees EOF but can still answer (a half-close).
    package func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Sends a request with a JSON body (or none).
    package func request(method: String, path: String, body: [UInt8]? = nil, headers: [(String, String)] = []) throws {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: lorad\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if let bearerToken, !headers.contains(where: { $0.0.lowercased() == "authorization" }) {
            head += "Authorization: Bearer \(bearerToken)\r\n"
        }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        head += "\r\n"
        try send(Array(head.utf8) + (body ?? []))
    }

    private func fill() throws -> Bool {
        guard !eof else { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n: Int
        do {
            n = try chunk.withUnsafeMutableBytes { try Posix.read(fd, into: $0, interruptible: true) }
        } catch {
            // withUnsafeMutableBytes rethrows, so the error's type is lost on the way out.
            throw DaemonClientError(message: "read: \((error as? SystemCallError)?.reason ?? "\(error)")")
        }
        if n == 0 { eof = true; return false }
        buffer += chunk[0..<n]
        return true
    }

    private func readLine() throws -> String? {
        while true {
            if let i = buffer.firstIndex(of: 0x0a) {
                var line = Array(buffer[..<i])
                buffer.removeSubrange(...i)
                if line.last == 0x0d { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard try fill() else { return nil }
        }
    }

    private func readExactly(_ n: Int) throws -> [UInt8] {
        while buffer.count < n {
            guard try fill() else { throw DaemonClientError(message: "connection closed mid-body") }
        }
        let out = Array(buffer[..<n])
        buffer.removeSubrange(..<n)
        return out
    }

    package struct Head {
        package let status: Int
        package let headers: [(String, String)]
        package func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    private var head: Head?

    /// Reads the status line and headers (skipping 1xx interim responses).
    package func readHead() throws -> Head {
        while true {
            guard let status = try readLine() else { throw DaemonClientError(message: "connection closed before a response") }
            let parts = status.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, let code = Int(parts[1]) else { throw DaemonClientError(message: "bad status line: \(status)") }
            var headers: [(String, String)] = []
            while let line = try readLine(), !line.isEmpty {
                if let c = line.firstIndex(of: ":") {
                    headers.append((String(line[..<c]), line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)))
                }
            }
            if code >= 100 && code < 200 { continue }
            let h = Head(status: code, headers: headers)
            head = h
            return h
        }
    }

    /// Reads the body pieces as they arrive and passes each to `onBytes`.
    package func readBody(_ onBytes: ([UInt8]) throws -> Void) throws {
        guard let head else { throw DaemonClientError(message: "readHead first") }
        if head.header("Transfer-Encoding")?.lowercased() == "chunked" {
            while true {
                guard let sizeLine = try readLine(), let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else {
                    throw DaemonClientError(message: "bad chunk size line")
                }
                if size == 0 {
                    while let l = try readLine(), !l.isEmpty {}
                    return
                }
                try onBytes(try readExactly(size))
                _ = try readExactly(2)
            }
        } else if let n = head.header("Content-Length").flatMap(Int.init) {
            try onBytes(try readExactly(n))
        } else {
            if !buffer.isEmpty { try onBytes(buffer); buffer.removeAll() }
            while try fill() { try onBytes(buffer); buffer.removeAll() }
        }
    }

    /// The whole body.
    package func readBody() throws -> [UInt8] {
        var all: [UInt8] = []
        try readBody { all += $0 }
        return all
    }

    /// Reads a Server-Sent Events body, giving each event's data (joined lines) to `onData`.
    package func readEvents(_ onData: (String) throws -> Void) throws {
        var pending: [UInt8] = []
        var data: [String] = []
        try readBody { bytes in
            pending += bytes
            while let i = pending.firstIndex(of: 0x0a) {
                var line = Array(pending[..<i])
                pending.removeSubrange(...i)
                if line.last == 0x0d { line.removeLast() }
                let s = String(decoding: line, as: UTF8.self)
                if s.isEmpty {
                    if !data.isEmpty { try onData(data.joined(separator: "\n")) }
                    data.removeAll()
                } else if s.hasPrefix("data:") {
                    var v = s.dropFirst(5)
                    if v.first == " " { v = v.dropFirst() }
                    data.append(String(v))
                }
            }
        }
    }
}

// A small blocking HTTP/1.1 client over a Unix socket (or loopback TCP), for `lorad ask`, `lorad chat
// --socket` and the tests: one request per connection ("Connection: close"), responses with
// Content-Length, chunked encoding or read-to-close, and Server-Sent Events read line by line as they
// arrive. Its own target (LoradClient), so clients need not link the daemon.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

package struct DaemonClientError: Error, CustomStringConvertible {
    package let message: String
    package var description: String { message }
}

package final class DaemonClient {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var eof = false

    /// Connects to the daemon's Unix socket at `path`.
    package init(socket path: String, timeoutSeconds: Int = 120) throws {
        // CLOEXEC: a process this one starts (a test runner spawns daemons) must not inherit the
        // connection, or closing it here would not close it and the daemon would never see the client go.
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DaemonClientError(message: "socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw DaemonClientError(message: "socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw DaemonClientError(message: "cannot connect to \(path): \(reason) (is `lorad serve` running? --socket PATH)")
        }
    }

    deinit { close(fd) }

    package func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw DaemonClientError(message: "write: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    /// Sends as much of `bytes` as the socket takes within `seconds` without blocking past that (for
    /// tests of a peer that stops reading); returns how many bytes went out.
    package func sendWhileAccepted(_ bytes: [UInt8], seconds: Double) -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        var off = 0
        while off < bytes.count && Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&p, 1, 50) == 1 else { continue }
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { off += n } else if errno != EAGAIN && errno != EINTR { break }
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
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        head += "\r\n"
        try send(Array(head.utf8) + (body ?? []))
    }

    private func fill() throws -> Bool {
        guard !eof else { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw DaemonClientError(message: "read: \(String(cString: strerror(errno)))") }
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

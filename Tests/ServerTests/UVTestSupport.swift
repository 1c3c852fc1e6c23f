// Shared pieces of the libuv wrapper tests: a short temporary directory (Unix socket paths must fit
// in 107 bytes), a lock-protected box for results that cross threads, plain blocking POSIX clients
// with receive/send timeouts (so a broken server makes a test fail, never hang), and a harness that
// runs a UVLoop on the test's thread while a client runs on a thread of its own, under a watchdog.

import Foundation
import Testing
@testable import Server
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp, removed by `remove()`.
struct UVTestDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/uvtest.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw UVTestFailure("mkdtemp: errno \(errno)") }
        path = String(cString: made)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

struct UVTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A value shared between the loop thread and a client thread.
final class UVLocked<Value>: @unchecked Sendable {   // every access goes through `lock`
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }

    func update<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&stored) } }
}

/// Polls `condition` every millisecond for up to `seconds`; true if it became true.
func uvWait(seconds: Double = 5, until condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(1000)
    }
    return condition()
}

/// Runs `loop` on this thread until its handles stop it, or fails after `timeout` seconds.
func runUVLoop(_ loop: UVLoop, timeout: Double = 10) throws {
    UVLoop.ignoreSIGPIPE()
    let timedOut = UVLocked(false)
    let watchdog = try UVTimer(loop: loop)
    watchdog.start(after: UInt64(timeout * 1000)) { [weak loop] in
        timedOut.value = true
        loop?.stop()
    }
    loop.run()
    watchdog.close()
    if timedOut.value { throw UVTestFailure("the loop was still running after \(timeout) s") }
}

/// Runs `loop` on this thread while `client` runs on a thread of its own; the loop stops when the
/// client returns. Returns what the client returned (or rethrows what it threw); fails if the client
/// has not finished after `timeout` seconds.
func runUVLoop<T: Sendable>(_ loop: UVLoop, timeout: Double = 10,
                            client: @escaping @Sendable () throws -> T) throws -> T {
    let result = UVLocked<Result<T, any Error>?>(nil)
    let done = try UVAsync(loop: loop) { [weak loop] in
        if result.value != nil { loop?.stop() }
    }
    let thread = Thread {
        let outcome = Result { try client() }
        result.value = outcome
        done.send()
    }
    thread.start()
    do {
        try runUVLoop(loop, timeout: timeout)
    } catch {
        done.close()
        throw error
    }
    done.close()
    guard let outcome = result.value else { throw UVTestFailure("the client thread did not finish") }
    return try outcome.get()
}

/// Blocking POSIX clients, for client threads.
enum UVTestClient {
    static func connectUnix(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw UVTestFailure("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let status = withUnsafeBytes(of: address) {
            connect(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
        guard status == 0 else {
            let code = errno
            Glibc.close(fd)
            throw UVTestFailure("connect \(path): errno \(code)")
        }
        setTimeouts(fd)
        return fd
    }

    static func connectTCP(host: String = "127.0.0.1", port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw UVTestFailure("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(port).bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        let status = withUnsafeBytes(of: address) {
            connect(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
        guard status == 0 else {
            let code = errno
            Glibc.close(fd)
            throw UVTestFailure("connect \(host):\(port): errno \(code)")
        }
        setTimeouts(fd)
        return fd
    }

    /// Five-second receive and send timeouts: a test waiting on a broken server fails, not hangs.
    static func setTimeouts(_ fd: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard n > 0 else { throw UVTestFailure("send: errno \(errno) after \(offset) bytes") }
            offset += n
        }
    }

    /// Exactly `count` bytes; throws on EOF or timeout before that.
    static func receive(_ fd: Int32, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, count - offset, 0) }
            guard n > 0 else {
                throw UVTestFailure(n == 0 ? "EOF after \(offset) of \(count) bytes"
                                           : "recv: errno \(errno) after \(offset) of \(count) bytes")
            }
            offset += n
        }
        return bytes
    }

    /// Everything until the peer closes; throws on timeout.
    static func receiveToEOF(_ fd: Int32) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n == 0 { return bytes }
            guard n > 0 else { throw UVTestFailure("recv: errno \(errno) after \(bytes.count) bytes, no EOF") }
            bytes += chunk[0..<n]
        }
    }

    static func close(_ fd: Int32) { Glibc.close(fd) }
}

/// A recognisable byte pattern of any length (so a reordered or dropped chunk shows).
func uvTestPattern(_ count: Int, seed: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 31) ^ ($0 >> 8) ^ seed) }
}

/// Echoes everything each accepted connection sends.
func uvStartEcho(_ listener: UVListener) throws {
    listener.onConnection = { connection in
        connection.onRead = { [unowned connection] bytes in connection.write(bytes) }
        connection.startReading()
    }
    try listener.start()
}

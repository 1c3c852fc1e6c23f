// UVConnection: peer credentials, end-of-stream and reset handling, writes to a peer that has gone
// (no crash, completions false), the write queue's accounting (pendingWriteBytes grows while the
// peer does not read and returns to 0 when it has), and shutdownAndClose flushing before EOF.

import Foundation
import Testing
@testable import Server
#if canImport(Glibc)
import Glibc
#endif

@Suite struct UVConnectionTests {
    @Test func reportsThePeerCredentialsOfAUnixClient() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let path = dir.file("cred.sock")
        let listener = try UVListener.unix(loop: loop, path: path)
        let seen = UVLocked<[(pid: Int32, uid: UInt32, gid: UInt32)?]>([])
        let descriptions = UVLocked<[String]>([])
        listener.onConnection = { connection in
            seen.update { $0.append(connection.peerCredentials) }
            descriptions.update { $0.append(connection.description) }
            connection.close()
        }
        try listener.start()
        let rest = try runUVLoop(loop) {
            let fd = try UVTestClient.connectUnix(path)
            defer { UVTestClient.close(fd) }
            return try UVTestClient.receiveToEOF(fd)   // the server closes: EOF
        }
        #expect(rest.isEmpty)
        let credentials = try #require(seen.value.first ?? nil)
        #expect(seen.value.count == 1)
        #expect(credentials.pid == getpid())
        #expect(credentials.uid == getuid())
        #expect(credentials.gid == getgid())
        #expect(descriptions.value == ["unix peer pid \(getpid()) uid \(getuid())"])
    }

    @Test func endOfStreamCallsOnEOFThenCloses() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let path = dir.file("eof.sock")
        let listener = try UVListener.unix(loop: loop, path: path)
        let events = UVLocked<[String]>([])
        func record(_ event: String) { events.update { $0.append(event) } }
        listener.onConnection = { connection in
            connection.onRead = { bytes in record("read " + String(decoding: bytes, as: UTF8.self)) }
            connection.onEOF = { record("eof") }
            connection.onError = { message in record("error " + message) }
            connection.onClose = { record("close") }
            connection.startReading()
        }
        try listener.start()
        let finished = try runUVLoop(loop) {
            let fd = try UVTestClient.connectUnix(path)
            try UVTestClient.send(fd, Array("bye".utf8))
            UVTestClient.close(fd)
            return uvWait { events.value.last == "close" }
        }
        #expect(finished)
        #expect(events.value == ["read bye", "eof", "close"])
    }

    @Test func aResetCallsOnErrorThenCloses() throws {
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let listener = try UVListener.tcp(loop: loop, host: "127.0.0.1", port: 0)
        let port = try #require(listener.port)
        let events = UVLocked<[String]>([])
        listener.onConnection = { connection in
            events.update { $0.append("accepted") }
            connection.onEOF = { events.update { $0.append("eof") } }
            connection.onError = { message in events.update { $0.append("error \(message)") } }
            connection.onClose = { events.update { $0.append("close") } }
            connection.startReading()
        }
        try listener.start()
        let finished = try runUVLoop(loop) {
            let fd = try UVTestClient.connectTCP(port: port)
            // SO_LINGER with a zero timeout makes close() send a RST instead of a FIN.
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            // The RST must hit a connection the server has accepted and reads.
            guard uvWait(until: { events.value == ["accepted"] }) else { throw UVTestFailure("not accepted") }
            UVTestClient.close(fd)
            return uvWait { events.value.last == "close" }
        }
        #expect(finished)
        #expect(events.value == ["accepted", "error read: ECONNRESET (connection reset by peer)", "close"])
    }

    @Test func writingToAPeerThatHasGoneFailsWithoutCrashing() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let path = dir.file("gone.sock")
        let listener = try UVListener.unix(loop: loop, path: path)
        let completions = UVLocked<[Bool]>([])
        let errors = UVLocked<[String]>([])
        var accepted: UVConnection?
        listener.onConnection = { connection in
            accepted = connection
            connection.onError = { message in errors.update { $0.append(message) } }
            // 1 MiB: far more than the socket buffer, so most of it is still queued when the peer goes.
            let chunk = uvTestPattern(65536)
            for _ in 0..<16 {
                connection.write(chunk) { ok in completions.update { $0.append(ok) } }
            }
        }
        try listener.start()
        let finished = try runUVLoop(loop) {
            let fd = try UVTestClient.connectUnix(path)
            _ = try UVTestClient.receive(fd, count: 10)
            UVTestClient.close(fd)   // with unread data: the server's next write fails with EPIPE
            return uvWait { completions.value.count == 16 }
        }
        #expect(finished)
        #expect(completions.value.contains(false))
        #expect(errors.value.count == 1)
        #expect(errors.value.allSatisfy { $0.contains("EPIPE") || $0.contains("ECONNRESET") })
        let connection = try #require(accepted)
        #expect(connection.isClosed)
        #expect(connection.pendingWriteBytes == 0)
        var late: Bool?
        connection.write([1, 2, 3]) { late = $0 }
        #expect(late == false)
        connection.shutdownAndClose()   // also harmless once closed
        connection.startReading()
    }

    @Test func pendingWriteBytesGrowsWhileThePeerDoesNotReadAndDrains() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let path = dir.file("slow.sock")
        let listener = try UVListener.unix(loop: loop, path: path)
        let chunks = (0..<64).map { uvTestPattern(65536, seed: $0) }   // 4 MiB
        struct Accounting: Sendable {
            var before = -1
            var afterQueueing = -1
            var completions: [Bool] = []
            var atEnd = -1
        }
        let accounting = UVLocked(Accounting())
        listener.onConnection = { connection in
            accounting.update { $0.before = connection.pendingWriteBytes }
            for chunk in chunks {
                connection.write(chunk) { ok in
                    accounting.update { $0.completions.append(ok) }
                    if accounting.value.completions.count == chunks.count {
                        accounting.update { $0.atEnd = connection.pendingWriteBytes }
                    }
                }
            }
            accounting.update { $0.afterQueueing = connection.pendingWriteBytes }
        }
        try listener.start()
        let received = try runUVLoop(loop) {
            let fd = try UVTestClient.connectUnix(path)
            defer { UVTestClient.close(fd) }
            guard uvWait(until: { accounting.value.afterQueueing >= 0 }) else { throw UVTestFailure("nothing queued") }
            let bytes = try UVTestClient.receive(fd, count: 64 * 65536)
            guard uvWait(until: { accounting.value.atEnd >= 0 }) else { throw UVTestFailure("writes did not complete") }
            return bytes
        }
        #expect(received == Array(chunks.joined()))
        let result = accounting.value
        #expect(result.before == 0)
        // A Unix socket buffers a few hundred KiB at most; the rest waits in libuv's queue.
        #expect(result.afterQueueing > 2 * 1024 * 1024)
        #expect(result.afterQueueing <= 64 * 65536)
        #expect(result.completions == Array(repeating: true, count: 64))
        #expect(result.atEnd == 0)
    }

    @Test func shutdownAndCloseFlushesQueuedWritesBeforeEOF() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let path = dir.file("flush.sock")
        let listener = try UVListener.unix(loop: loop, path: path)
        let response = uvTestPattern(1_000_000, seed: 3)
        let closed = UVLocked(false)
        let completions = UVLocked<[Bool]>([])
        listener.onConnection = { connection in
            connection.onClose = { closed.value = true }
            connection.write(Array(response[..<500_000])) { ok in completions.update { $0.append(ok) } }
            connection.write([]) { ok in completions.update { $0.append(ok) } }
            connection.write(Array(response[500_000...])) { ok in completions.update { $0.append(ok) } }
            connection.shutdownAndClose()
            #expect(connection.isClosed)
            var refused: Bool?
            connection.write([0]) { refused = !$0 }
            #expect(refused == true)
        }
        try listener.start()
        let received = try runUVLoop(loop) {
            let fd = try UVTestClient.connectUnix(path)
            defer { UVTestClient.close(fd) }
            let bytes = try UVTestClient.receiveToEOF(fd)
            _ = uvWait { closed.value }
            return bytes
        }
        #expect(received == response)
        #expect(closed.value)
        #expect(completions.value == [true, true, true])
    }
}

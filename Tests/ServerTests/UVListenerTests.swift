// UVListener: echo over Unix and TCP sockets with real POSIX clients, the socket file's mode, group
// and removal, stale-socket replacement (and refusal to touch live sockets or other files), and
// adopting a listening descriptor as systemd would pass it.

import Foundation
import Testing
@testable import Server
#if canImport(Glibc)
import Glibc
#endif

@Suite struct UVListenerTests {
    @Test func echoesToSeveralUnixClients() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let path = dir.file("echo.sock")
        let listener = try UVListener.unix(loop: loop, path: path)
        try uvStartEcho(listener)
        #expect(listener.address == path)
        #expect(listener.description == "unix:\(path)")
        #expect(listener.port == nil)

        // Three connections at once, written before any is read, one far larger than a socket buffer.
        let payloads = [Array("hello".utf8), Array("a second client".utf8), uvTestPattern(300_000)]
        let echoed = try runUVLoop(loop) {
            let fds = try payloads.map { _ in try UVTestClient.connectUnix(path) }
            defer { fds.forEach(UVTestClient.close) }
            for (fd, payload) in zip(fds, payloads) { try UVTestClient.send(fd, payload) }
            return try zip(fds, payloads).map { fd, payload in try UVTestClient.receive(fd, count: payload.count) }
        }
        #expect(echoed == payloads)
    }

    @Test func echoesOverTCPOnAnEphemeralPort() throws {
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let listener = try UVListener.tcp(loop: loop, host: "127.0.0.1", port: 0)
        let port = try #require(listener.port)
        #expect(port > 0)
        #expect(listener.address == "127.0.0.1:\(port)")
        let credentials = UVLocked<[Bool]>([])
        listener.onConnection = { connection in
            credentials.update { $0.append(connection.peerCredentials == nil && !connection.isUnix) }
            connection.onRead = { [unowned connection] bytes in connection.write(bytes) }
            connection.startReading()
        }
        try listener.start()
        let payload = uvTestPattern(100_000, seed: 7)
        let echoed = try runUVLoop(loop) {
            let fd = try UVTestClient.connectTCP(port: port)
            defer { UVTestClient.close(fd) }
            try UVTestClient.send(fd, payload)
            return try UVTestClient.receive(fd, count: payload.count)
        }
        #expect(echoed == payload)
        #expect(credentials.value == [true])
    }

    @Test func rejectsHostNamesAndBadPorts() throws {
        let loop = try UVLoop()
        defer { loop.closeAll() }
        #expect(throws: UVError.self) { try UVListener.tcp(loop: loop, host: "localhost", port: 0) }
        #expect(throws: UVError.self) { try UVListener.tcp(loop: loop, host: "127.0.0.1", port: 70000) }
        do {
            _ = try UVListener.tcp(loop: loop, host: "localhost", port: 8080)
            Issue.record("a host name was accepted")
        } catch {
            #expect(error.name == "EINVAL")
            #expect(error.description.contains("IPv4 or IPv6 address literal"))
        }
    }

    @Test func socketFileHasTheModeAndGroupAskedForAndIsRemovedOnClose() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let loop = try UVLoop()
        defer { loop.closeAll() }
        for mode: mode_t in [0o660, 0o600] {
            let path = dir.file("mode-\(String(mode, radix: 8)).sock")
            let listener = try UVListener.unix(loop: loop, path: path, mode: mode, group: getgid())
            var info = stat()
            try #require(lstat(path, &info) == 0)
            #expect(info.st_mode & S_IFMT == S_IFSOCK)
            #expect(info.st_mode & 0o7777 == mode)
            #expect(info.st_gid == getgid())
            listener.close()
            #expect(lstat(path, &info) == -1 && errno == ENOENT)
            #expect(listener.isClosed)
        }
    }

    @Test func closeLeavesAFileThatReplacedItsSocketAlone() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let path = dir.file("moved.sock")
        let listener = try UVListener.unix(loop: loop, path: path)
        // Someone else's file now sits at the path (a successor daemon's socket, say).
        unlink(path)
        try Data("successor".utf8).write(to: URL(fileURLWithPath: path))
        listener.close()
        #expect(FileManager.default.contents(atPath: path) == Data("successor".utf8))
    }

    @Test func replacesAStaleSocketFile() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let path = dir.file("stale.sock")
        // A socket file left behind by a process that died without unlinking it.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafeBytes(of: address) {
            bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
        try #require(bound == 0)
        close(fd)
        var info = stat()
        try #require(lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK)

        let loop = try UVLoop()
        defer { loop.closeAll() }
        let listener = try UVListener.unix(loop: loop, path: path)
        try uvStartEcho(listener)
        let echoed = try runUVLoop(loop) {
            let client = try UVTestClient.connectUnix(path)
            defer { UVTestClient.close(client) }
            try UVTestClient.send(client, Array("ping".utf8))
            return try UVTestClient.receive(client, count: 4)
        }
        #expect(echoed == Array("ping".utf8))
    }

    @Test func refusesAPathWhereAnotherListenerIsLive() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let path = dir.file("live.sock")
        let first = try UVListener.unix(loop: loop, path: path)
        var before = stat()
        try #require(lstat(path, &before) == 0)
        do {
            _ = try UVListener.unix(loop: loop, path: path)
            Issue.record("a second listener bound over a live socket")
        } catch {
            #expect(error.name == "EADDRINUSE")
            #expect(error.description.contains("another process is listening on \(path)"))
        }
        var after = stat()
        try #require(lstat(path, &after) == 0)
        #expect(after.st_ino == before.st_ino)
        #expect(!first.isClosed)
    }

    @Test func neverRemovesSomethingThatIsNotASocket() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let path = dir.file("notes.txt")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try UVListener.unix(loop: loop, path: path)
            Issue.record("a listener replaced a regular file")
        } catch {
            #expect(error.name == "EEXIST")
            #expect(error.description.contains("is not a socket"))
        }
        #expect(FileManager.default.contents(atPath: path) == Data("keep me".utf8))
    }

    @Test func rejectsASocketPathThatIsTooLong() throws {
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let path = "/tmp/" + String(repeating: "x", count: 200) + ".sock"
        #expect(throws: UVError.self) { try UVListener.unix(loop: loop, path: path) }
    }

    @Test func adoptsAListeningUnixSocketAndLeavesItsFile() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let path = dir.file("activated.sock")
        // What systemd does for a ListenStream= unit: socket, bind, listen, then pass the descriptor.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafeBytes(of: address) {
            bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
        try #require(bound == 0 && listen(fd, 16) == 0)

        let loop = try UVLoop()
        defer { loop.closeAll() }
        let listener = try UVListener.adopt(loop: loop, fd: fd)
        #expect(listener.address == path)
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
        try uvStartEcho(listener)
        let echoed = try runUVLoop(loop) {
            let client = try UVTestClient.connectUnix(path)
            defer { UVTestClient.close(client) }
            try UVTestClient.send(client, Array("activated".utf8))
            return try UVTestClient.receive(client, count: 9)
        }
        #expect(echoed == Array("activated".utf8))
        listener.close()
        var info = stat()
        #expect(lstat(path, &info) == 0)   // the socket file belongs to whoever created it
    }

    @Test func adoptsAListeningTCPSocket() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(0x7f00_0001).bigEndian
        let bound = withUnsafeBytes(of: address) {
            bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
        try #require(bound == 0 && listen(fd, 16) == 0)
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let listener = try UVListener.adopt(loop: loop, fd: fd)
        let port = try #require(listener.port)
        #expect(listener.description == "tcp:127.0.0.1:\(port)")
        try uvStartEcho(listener)
        let echoed = try runUVLoop(loop) {
            let client = try UVTestClient.connectTCP(port: port)
            defer { UVTestClient.close(client) }
            try UVTestClient.send(client, [1, 2, 3])
            return try UVTestClient.receive(client, count: 3)
        }
        #expect(echoed == [1, 2, 3])
    }

    @Test func refusesToAdoptWhatIsNotAListeningStreamSocket() throws {
        let loop = try UVLoop()
        defer { loop.closeAll() }
        let unbound = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(unbound) }
        do {
            _ = try UVListener.adopt(loop: loop, fd: unbound)
            Issue.record("adopted a socket that is not listening")
        } catch {
            #expect(error.description.contains("not listening"))
        }
        var pipeEnds: [Int32] = [0, 0]
        try #require(pipe(&pipeEnds) == 0)
        defer { close(pipeEnds[0]); close(pipeEnds[1]) }
        #expect(throws: UVError.self) { try UVListener.adopt(loop: loop, fd: pipeEnds[0]) }
        // The caller's descriptor is left open on failure.
        #expect(fcntl(unbound, F_GETFD) != -1)
    }
}

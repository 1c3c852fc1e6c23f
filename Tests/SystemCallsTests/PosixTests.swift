// The system-call policy on real descriptors: errors name the call, path and errno; writeAll gets
// through a pipe smaller than its input; O_NONBLOCK keeps opening a FIFO from waiting for a writer;
// getgrnam_r finds root and not a made-up group. EINTR itself is hard to provoke and is not tested.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import SystemCalls

private func temporaryPath(_ name: String) -> String {
    NSTemporaryDirectory() + "systemcalls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(name)"
}

@Test func errorCarriesCallPathErrnoAndText() {
    let e = SystemCallError(call: "open", path: "/nowhere", errno: ENOENT, hint: "check the path")
    #expect(e.reason == "No such file or directory")
    #expect(e.description == "open /nowhere: No such file or directory (hint: check the path)")
    let f = SystemCallError(call: "write", fd: 7, errno: EBADF)
    #expect(f.description == "write fd 7: Bad file descriptor")
}

@Test func openOfMissingFileNamesPathAndErrno() {
    let path = temporaryPath("missing")
    #expect(throws: SystemCallError(call: "open", path: path, errno: ENOENT)) {
        _ = try Posix.open(path, O_RDONLY)
    }
    #expect(throws: SystemCallError(call: "stat", path: path, errno: ENOENT)) { _ = try Posix.stat(path) }
    #expect(throws: SystemCallError(call: "lstat", path: path, errno: ENOENT)) { _ = try Posix.lstat(path) }
    #expect(throws: SystemCallError(call: "realpath", path: path, errno: ENOENT)) { _ = try Posix.realpath(path) }
    #expect(throws: SystemCallError(call: "unlink", path: path, errno: ENOENT)) { try Posix.unlink(path) }
}

@Test func openAddsCloseOnExec() throws {
    let fd = try Posix.open("/dev/null", O_RDONLY)
    defer { try? Posix.close(fd) }
    #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
}

@Test func writeAllThroughASmallPipeThenReadAll() throws {
    var fds: [CInt] = [0, 0]
    #expect(pipe(&fds) == 0)
    _ = fcntl(fds[1], 1031 /* F_SETPIPE_SZ */, 4096)   // far smaller than the input: writes come up short
    let input = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    nonisolated(unsafe) var received: [UInt8] = []
    let readFD = fds[0]
    let done = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        received = (try? Posix.readAll(readFD, upTo: 1 << 20)) ?? []
        done.signal()
    }
    try Posix.writeAll(fds[1], input)
    try Posix.close(fds[1])
    done.wait()
    try Posix.close(fds[0])
    #expect(received == input)
}

@Test func readAllStopsAtTheLimit() throws {
    let path = temporaryPath("limit")
    let fd = try Posix.open(path, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600)
    try Posix.writeAll(fd, [UInt8](repeating: 7, count: 100_000), path: path)
    try Posix.fsync(fd, path: path)
    try Posix.close(fd)
    defer { try? Posix.unlink(path) }
    let r = try Posix.open(path, O_RDONLY)
    defer { try? Posix.close(r) }
    #expect(try Posix.fstat(r, path: path).st_size == 100_000)
    #expect(try Posix.readAll(r, upTo: 70_001, expected: 10).count == 70_001)
    #expect(try Posix.readAll(r, upTo: 1 << 20).count == 29_999)
    #expect(try Posix.readAll(r, upTo: 10).isEmpty)
}

@Test func renameMkdirAndRealpath() throws {
    let dir = temporaryPath("dir")
    try Posix.mkdir(dir, mode: 0o700)
    #expect(throws: SystemCallError(call: "mkdir", path: dir, errno: EEXIST)) { try Posix.mkdir(dir) }
    let a = dir + "/a", b = dir + "/b"
    try Posix.close(try Posix.open(a, O_WRONLY | O_CREAT, mode: 0o600))
    try Posix.rename(a, to: b)
    #expect(try Posix.realpath(dir + "/./b").hasSuffix("/b"))
    #expect(throws: SystemCallError(call: "rename", path: a, errno: ENOENT)) { try Posix.rename(a, to: b) }
    try Posix.unlink(b)
    #expect(rmdir(dir) == 0)
}

@Test func openingAFIFOWithNonBlockDoesNotWait() throws {
    let path = temporaryPath("fifo")
    #expect(mkfifo(path, 0o600) == 0)
    defer { try? Posix.unlink(path) }
    let fd = try Posix.open(path, O_RDONLY | O_NONBLOCK)   // a plain open would wait for a writer
    defer { try? Posix.close(fd) }
    #expect(try Posix.fstat(fd).st_mode & S_IFMT == S_IFIFO)
}

@Test func closeOfABadDescriptorThrows() {
    #expect(throws: SystemCallError(call: "close", fd: -1, errno: EBADF)) { try Posix.close(-1) }
}

@Test func groupLookup() throws {
    #expect(try Posix.groupID(named: "root") == 0)
    #expect(try Posix.groupID(named: "no-such-group-\(getpid())") == nil)
}

@Test func signalMaskBlocksAndUnblocks() {
    Posix.signalMask(.block, [SIGUSR2])
    var current = sigset_t()
    pthread_sigmask(SIG_BLOCK, nil, &current)
    #expect(sigismember(&current, SIGUSR2) == 1)
    Posix.signalMask(.unblock, [SIGUSR2])
    pthread_sigmask(SIG_BLOCK, nil, &current)
    #expect(sigismember(&current, SIGUSR2) == 0)
}

@Test func descriptorAndStatusFlags() throws {
    let fd = try Posix.open("/dev/null", O_RDONLY)
    defer { try? Posix.close(fd) }
    #expect(try Posix.descriptorFlags(fd) & FD_CLOEXEC != 0)
    try Posix.setDescriptorFlags(fd, 0)
    #expect(try Posix.descriptorFlags(fd) & FD_CLOEXEC == 0)
    #expect(try Posix.statusFlags(fd) & O_NONBLOCK == 0)
    try Posix.setStatusFlags(fd, try Posix.statusFlags(fd) | O_NONBLOCK)
    #expect(try Posix.statusFlags(fd) & O_NONBLOCK != 0)
    #expect(throws: SystemCallError(call: "fcntl(F_GETFD)", fd: -1, errno: EBADF)) { _ = try Posix.descriptorFlags(-1) }
    #expect(throws: SystemCallError(call: "fcntl(F_SETFL)", fd: -1, errno: EBADF)) { try Posix.setStatusFlags(-1, 0) }
}

/// A non-blocking pipe: poll sees no data, then data; an empty read throws EAGAIN (interruptible or
/// not: only EINTR is treated differently), and a read after a write gets the bytes.
@Test func pollAndInterruptibleReadOnAPipe() throws {
    var fds: [CInt] = [0, 0]
    #expect(pipe(&fds) == 0)
    defer { try? Posix.close(fds[0]); try? Posix.close(fds[1]) }
    try Posix.setStatusFlags(fds[0], try Posix.statusFlags(fds[0]) | O_NONBLOCK)
    var p = [pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)]
    #expect(try Posix.poll(&p, timeout: 0) == 0)
    var buffer = [UInt8](repeating: 0, count: 8)
    #expect(throws: SystemCallError(call: "read", fd: fds[0], errno: EAGAIN)) {
        _ = try buffer.withUnsafeMutableBytes { try Posix.read(fds[0], into: $0, interruptible: true) }
    }
    try Posix.writeAll(fds[1], [1, 2, 3], interruptible: true)
    #expect(try Posix.poll(&p, timeout: 1000, interruptible: true) == 1)
    #expect(p[0].revents & Int16(POLLIN) != 0)
    #expect(try buffer.withUnsafeMutableBytes { try Posix.read(fds[0], into: $0, interruptible: true) } == 3)
    #expect(buffer[..<3] == [1, 2, 3])
}

@Test func socketConnectSendAndSendto() throws {
    let s = try Posix.socket(AF_UNIX, CInt(SOCK_STREAM.rawValue))
    defer { try? Posix.close(s) }
    #expect(try Posix.descriptorFlags(s) & FD_CLOEXEC != 0)
    // connect to a path nobody listens on: the error names the call, the path and errno.
    let path = temporaryPath("sock")
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in raw.copyBytes(from: Array(path.utf8)) }
    let length = socklen_t(MemoryLayout<sockaddr_un>.size)
    #expect(throws: SystemCallError(call: "connect", path: path, fd: s, errno: ENOENT)) {
        try withUnsafePointer(to: &addr) { p throws(SystemCallError) in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { a throws(SystemCallError) in
                try Posix.connect(s, to: a, length: length, path: path)
            }
        }
    }
    // send on a socket pair until the peer's buffer is full: EAGAIN throws with MSG_DONTWAIT.
    var pair: [CInt] = [0, 0]
    #expect(socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0, &pair) == 0)
    defer { try? Posix.close(pair[0]); try? Posix.close(pair[1]) }
    let chunk = [UInt8](repeating: 9, count: 65536)
    var sent = 0
    var failure: SystemCallError?
    while sent < 64 << 20 {
        do {
            sent += try chunk.withUnsafeBytes { try Posix.send(pair[0], $0, flags: CInt(MSG_DONTWAIT)) }
        } catch {
            failure = error as? SystemCallError
            break
        }
    }
    #expect(sent > 0)
    #expect(failure == SystemCallError(call: "send", fd: pair[0], errno: EAGAIN))
    // sendto: one datagram to a bound socket arrives whole.
    let receiver = try Posix.socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue))
    defer { try? Posix.close(receiver); try? Posix.unlink(path) }
    let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(receiver, $0, length) } }
    #expect(bound == 0)
    let sender = try Posix.socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue))
    defer { try? Posix.close(sender) }
    let message = Array("READY=1".utf8)
    let n = try message.withUnsafeBytes { b in
        try withUnsafePointer(to: &addr) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { try Posix.sendto(sender, b, flags: 0, to: $0, length: length) }
        }
    }
    #expect(n == message.count)
    var got = [UInt8](repeating: 0, count: 64)
    let r = try got.withUnsafeMutableBytes { try Posix.read(receiver, into: $0) }
    #expect(Array(got[..<r]) == message)
}

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

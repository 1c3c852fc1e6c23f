// SocketActivation.listenFDs as sd_listen_fds(3) specifies it: whose variables these are (LISTEN_PID),
// how many descriptors (LISTEN_FDS), their names (LISTEN_FDNAMES), FD_CLOEXEC on each, and errors
// for malformed values. Real listening sockets stand in for what systemd passes; they are
// duplicated to two consecutive high descriptors this test owns, because fd 3 in a test process
// belongs to someone else.

import Glibc
import Testing
@testable import Server

@Suite struct SystemdSocketActivationTests {
    let me = "\(getpid())"

    @Test func notActivatedMeansNoDescriptors() throws {
        #expect(try SocketActivation.listenFDs(environment: [:], unsetEnvironment: false).isEmpty)
        // Another process's variables, inherited: not ours, whatever they say.
        #expect(try SocketActivation.listenFDs(
            environment: ["LISTEN_PID": "1", "LISTEN_FDS": "garbage"], unsetEnvironment: false).isEmpty)
        #expect(try SocketActivation.listenFDs(environment: ["LISTEN_PID": me], unsetEnvironment: false).isEmpty)
    }

    @Test(arguments: [
        (["LISTEN_PID": "12ab", "LISTEN_FDS": "1"], "LISTEN_PID"),
        (["LISTEN_PID": "", "LISTEN_FDS": "1"], "LISTEN_PID"),
        (["LISTEN_PID": "-1", "LISTEN_FDS": "1"], "LISTEN_PID"),
        (["LISTEN_PID": "0", "LISTEN_FDS": "1"], "LISTEN_PID"),
        (["LISTEN_PID": "<me>", "LISTEN_FDS": "two"], "LISTEN_FDS"),
        (["LISTEN_PID": "<me>", "LISTEN_FDS": "0"], "LISTEN_FDS"),
        (["LISTEN_PID": "<me>", "LISTEN_FDS": "-1"], "LISTEN_FDS"),
        (["LISTEN_PID": "<me>", "LISTEN_FDS": "99999999999"], "LISTEN_FDS"),
        (["LISTEN_PID": "<me>", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "api"], "LISTEN_FDNAMES"),
        (["LISTEN_PID": "<me>", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "api:tcp"], "LISTEN_FDNAMES"),
    ])
    func malformedVariablesAreErrors(environment: [String: String], variable: String) throws {
        let env = environment.mapValues { $0 == "<me>" ? me : $0 }
        let error = try #require(throws: SocketActivationError.self) {
            try SocketActivation.listenFDs(environment: env, unsetEnvironment: false)
        }
        guard case .badVariable(let name, _, _) = error else {
            Issue.record("expected a bad variable, got \(error)")
            return
        }
        #expect(name == variable)
        #expect(error.description.contains(variable))
    }

    @Test func passedDescriptorsAreReturnedNamedAndCloseOnExec() throws {
        let dir = try OpsScratchDirectory()
        let unixSocket = try listeningUnixSocket(path: dir.path + "/api.sock")
        defer { close(unixSocket) }
        let tcpSocket = try listeningTCPSocket()
        defer { close(tcpSocket) }
        let (first, second) = try consecutiveDuplicates(unixSocket, tcpSocket)
        defer { close(first); close(second) }
        #expect(fcntl(first, F_GETFD) & FD_CLOEXEC == 0)

        let passed = try SocketActivation.listenFDs(
            environment: ["LISTEN_PID": me, "LISTEN_FDS": "2", "LISTEN_FDNAMES": "lorad.socket:tcp"],
            unsetEnvironment: false, firstFD: first, pid: getpid())
        #expect(passed.map(\.fd) == [first, second])
        #expect(passed.map(\.name) == ["lorad.socket", "tcp"])
        #expect(fcntl(first, F_GETFD) & FD_CLOEXEC != 0)
        #expect(fcntl(second, F_GETFD) & FD_CLOEXEC != 0)
        #expect(SocketActivation.kind(of: first) == .unix(path: dir.path + "/api.sock"))
        #expect(SocketActivation.kind(of: second) == .tcp)

        // Without LISTEN_FDNAMES the names are unknown.
        let unnamed = try SocketActivation.listenFDs(
            environment: ["LISTEN_PID": me, "LISTEN_FDS": "1"], unsetEnvironment: false, firstFD: first, pid: getpid())
        #expect(unnamed.count == 1 && unnamed[0].fd == first && unnamed[0].name == nil)
        // A pid that is not ours: nothing, even though the descriptors exist.
        let other = try SocketActivation.listenFDs(
            environment: ["LISTEN_PID": me, "LISTEN_FDS": "2"], unsetEnvironment: false, firstFD: first, pid: getpid() + 1)
        #expect(other.isEmpty)
    }

    @Test func aDescriptorThatIsNotOpenIsAnError() throws {
        let probe = try listeningTCPSocket()
        let (first, second) = try consecutiveDuplicates(probe, probe)
        close(probe)
        close(second)  // `first` stays open, `second` is now a hole
        defer { close(first) }
        let error = try #require(throws: SocketActivationError.self) {
            try SocketActivation.listenFDs(environment: ["LISTEN_PID": me, "LISTEN_FDS": "2"],
                                           unsetEnvironment: false, firstFD: first, pid: getpid())
        }
        #expect(error == .badDescriptor(fd: second, reason: "Bad file descriptor"))
    }

    @Test func kindRefusesWhatCannotAccept() throws {
        let datagram = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(datagram) }
        #expect(SocketActivation.kind(of: datagram) == .unsupported)
        let notListening = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(notListening) }
        #expect(SocketActivation.kind(of: notListening) == .unsupported)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        #expect(SocketActivation.kind(of: fds[0]) == .unsupported)
    }

    // MARK: - Helpers

    func listeningUnixSocket(path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && listen(fd, 8) == 0, "errno \(errno)")
        return fd
    }

    func listeningTCPSocket() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(fd, 8) == 0, "errno \(errno)")
        return fd
    }

    /// Duplicates `a` and `b` to two consecutive free descriptors (as systemd passes them), without
    /// FD_CLOEXEC (as passed descriptors arrive).
    func consecutiveDuplicates(_ a: Int32, _ b: Int32) throws -> (Int32, Int32) {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        let top = Int32(clamping: min(limit.rlim_cur, 1024))
        var base = top / 2
        while base < top - 1 {
            let first = fcntl(a, F_DUPFD, base)
            try #require(first >= 0)
            let second = fcntl(b, F_DUPFD, first + 1)
            try #require(second >= 0)
            if second == first + 1 { return (first, second) }
            close(first)
            close(second)
            base = second + 1
        }
        Issue.record("no two consecutive free descriptors below \(top)")
        throw CancellationError()
    }
}

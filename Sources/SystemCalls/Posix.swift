// One wrapper per POSIX call the daemon, the file formats, the client and the chat make, with one
// policy (as swift-nio's System.swift): EINTR is retried, an ordinary failure throws a SystemCallError
// naming the call, the path or descriptor and errno, and a failure that can only be our bug (a bad
// `how` for pthread_sigmask) traps. Every descriptor is opened with O_CLOEXEC (sockets with
// SOCK_CLOEXEC), so none leaks into a child.
//
// The one exception is opt-in: `interruptible: true` throws EINTR (errno EINTR) instead of retrying,
// for a caller whose signal handler runs without SA_RESTART so that a blocked call returns and the
// caller can look at the signal's flag (lorad chat's Ctrl-C, ChatREPL/Interrupt.swift).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// struct stat, named so that Posix.stat (the call) does not hide it.
package typealias FileStatus = stat

private func systemStat(_ path: String, _ st: inout FileStatus) -> CInt { stat(path, &st) }

package enum Posix {
    /// Runs `body` until it does not fail with EINTR; -1 with any other errno throws. With
    /// `interruptible`, EINTR throws too.
    @inline(__always)
    static func retrying<T: FixedWidthInteger>(
        _ call: String, path: String? = nil, fd: CInt? = nil, interruptible: Bool = false, _ body: () -> T
    ) throws(SystemCallError) -> T {
        while true {
            let r = body()
            if r != -1 { return r }
            let e = Glibc.errno
            if e == EINTR && !interruptible { continue }
            throw SystemCallError(call: call, path: path, fd: fd, errno: e)
        }
    }

    // MARK: descriptors

    /// open(2) with O_CLOEXEC always added; `mode` matters only with O_CREAT.
    package static func open(_ path: String, _ flags: CInt, mode: mode_t = 0) throws(SystemCallError) -> CInt {
        try retrying("open", path: path) { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    /// close(2). EINTR counts as closed: on Linux the descriptor is gone either way, and retrying
    /// could close a descriptor another thread has just been given.
    package static func close(_ fd: CInt) throws(SystemCallError) {
        if Glibc.close(fd) == 0 { return }
        let e = Glibc.errno
        if e == EINTR { return }
        throw SystemCallError(call: "close", fd: fd, errno: e)
    }

    /// One read(2) into `buffer`, retried on EINTR unless `interruptible`; 0 at the end of the file.
    package static func read(_ fd: CInt, into buffer: UnsafeMutableRawBufferPointer,
                            path: String? = nil, interruptible: Bool = false) throws(SystemCallError) -> Int {
        try retrying("read", path: path, fd: fd, interruptible: interruptible) {
            Glibc.read(fd, buffer.baseAddress, buffer.count)
        }
    }

    /// Reads until the end of the file or until `limit` bytes, whichever comes first. `expected`
    /// sizes the first buffer (a file's st_size), so a file of known size is read without copies.
    package static func readAll(_ fd: CInt, upTo limit: Int, expected: Int = 1 << 16,
                               path: String? = nil) throws(SystemCallError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: max(0, min(limit, expected)))
        var done = 0
        while true {
            if done == out.count {
                if out.count >= limit { break }
                out.append(contentsOf: repeatElement(0, count: min(max(out.count, 1 << 16), limit - out.count)))
            }
            let n = try retrying("read", path: path, fd: fd) {
                out.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            }
            if n == 0 { break }
            done += n
        }
        out.removeSubrange(done...)
        return out
    }

    /// One write(2), retried on EINTR unless `interruptible`; returns how many bytes went out.
    package static func write(_ fd: CInt, _ bytes: UnsafeRawBufferPointer,
                             path: String? = nil, interruptible: Bool = false) throws(SystemCallError) -> Int {
        try retrying("write", path: path, fd: fd, interruptible: interruptible) {
            Glibc.write(fd, bytes.baseAddress, bytes.count)
        }
    }

    /// Writes every byte of `bytes`, through short writes (a pipe or socket takes what fits) and,
    /// unless `interruptible`, EINTR. On a non-blocking descriptor EAGAIN throws like any other failure.
    package static func writeAll(_ fd: CInt, _ bytes: UnsafeRawBufferPointer,
                                path: String? = nil, interruptible: Bool = false) throws(SystemCallError) {
        var done = 0
        while done < bytes.count {
            done += try write(fd, UnsafeRawBufferPointer(rebasing: bytes[done...]), path: path,
                              interruptible: interruptible)
        }
    }

    package static func writeAll(_ fd: CInt, _ bytes: [UInt8], path: String? = nil,
                                interruptible: Bool = false) throws(SystemCallError) {
        var done = 0
        while done < bytes.count {
            done += try retrying("write", path: path, fd: fd, interruptible: interruptible) {
                bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            }
        }
    }

    /// fcntl(F_GETFD): the descriptor flags (FD_CLOEXEC).
    package static func descriptorFlags(_ fd: CInt) throws(SystemCallError) -> CInt {
        try retrying("fcntl(F_GETFD)", fd: fd) { fcntl(fd, F_GETFD) }
    }

    /// fcntl(F_SETFD).
    package static func setDescriptorFlags(_ fd: CInt, _ flags: CInt) throws(SystemCallError) {
        _ = try retrying("fcntl(F_SETFD)", fd: fd) { fcntl(fd, F_SETFD, flags) }
    }

    /// fcntl(F_GETFL): the file status flags (O_NONBLOCK, O_APPEND, the access mode).
    package static func statusFlags(_ fd: CInt) throws(SystemCallError) -> CInt {
        try retrying("fcntl(F_GETFL)", fd: fd) { fcntl(fd, F_GETFL) }
    }

    /// fcntl(F_SETFL).
    package static func setStatusFlags(_ fd: CInt, _ flags: CInt) throws(SystemCallError) {
        _ = try retrying("fcntl(F_SETFL)", fd: fd) { fcntl(fd, F_SETFL, flags) }
    }

    /// poll(2) on `fds` for up to `timeout` milliseconds (-1: no limit); returns how many have
    /// events. EINTR is retried (with the full timeout again) unless `interruptible`.
    package static func poll(_ fds: inout [pollfd], timeout: CInt,
                            interruptible: Bool = false) throws(SystemCallError) -> Int {
        let count = nfds_t(fds.count)
        return Int(try retrying("poll", interruptible: interruptible) {
            fds.withUnsafeMutableBufferPointer { Glibc.poll($0.baseAddress, count, timeout) }
        })
    }

    package static func fsync(_ fd: CInt, path: String? = nil) throws(SystemCallError) {
        _ = try retrying("fsync", path: path, fd: fd) { Glibc.fsync(fd) }
    }

    package static func fstat(_ fd: CInt, path: String? = nil) throws(SystemCallError) -> FileStatus {
        var st = FileStatus()
        _ = try retrying("fstat", path: path, fd: fd) { Glibc.fstat(fd, &st) }
        return st
    }

    // MARK: sockets

    /// socket(2) with SOCK_CLOEXEC always added to `type`.
    package static func socket(_ domain: CInt, _ type: CInt, _ proto: CInt = 0) throws(SystemCallError) -> CInt {
        try retrying("socket") { Glibc.socket(domain, type | CInt(SOCK_CLOEXEC.rawValue), proto) }
    }

    /// connect(2). EINTR is not retried: the connection then goes on in the background and a second
    /// connect fails with EALREADY, so an interrupted connect throws like any other failure.
    package static func connect(_ fd: CInt, to address: UnsafePointer<sockaddr>, length: socklen_t,
                               path: String? = nil) throws(SystemCallError) {
        _ = try retrying("connect", path: path, fd: fd, interruptible: true) { Glibc.connect(fd, address, length) }
    }

    /// One send(2) with `flags` (e.g. MSG_DONTWAIT), retried on EINTR; returns how many bytes went out.
    package static func send(_ fd: CInt, _ bytes: UnsafeRawBufferPointer, flags: CInt) throws(SystemCallError) -> Int {
        try retrying("send", fd: fd) { Glibc.send(fd, bytes.baseAddress, bytes.count, flags) }
    }

    /// One sendto(2) of a datagram to `address`, retried on EINTR; returns how many bytes went out.
    package static func sendto(_ fd: CInt, _ bytes: UnsafeRawBufferPointer, flags: CInt,
                              to address: UnsafePointer<sockaddr>, length: socklen_t) throws(SystemCallError) -> Int {
        try retrying("sendto", fd: fd) { Glibc.sendto(fd, bytes.baseAddress, bytes.count, flags, address, length) }
    }

    // MARK: paths

    /// stat(2): follows symbolic links.
    package static func stat(_ path: String) throws(SystemCallError) -> FileStatus {
        var st = FileStatus()
        _ = try retrying("stat", path: path) { systemStat(path, &st) }
        return st
    }

    /// lstat(2): describes a symbolic link itself.
    package static func lstat(_ path: String) throws(SystemCallError) -> FileStatus {
        var st = FileStatus()
        _ = try retrying("lstat", path: path) { Glibc.lstat(path, &st) }
        return st
    }

    package static func rename(_ from: String, to: String) throws(SystemCallError) {
        _ = try retrying("rename", path: from) { Glibc.rename(from, to) }
    }

    package static func unlink(_ path: String) throws(SystemCallError) {
        _ = try retrying("unlink", path: path) { Glibc.unlink(path) }
    }

    package static func mkdir(_ path: String, mode: mode_t = 0o755) throws(SystemCallError) {
        _ = try retrying("mkdir", path: path) { Glibc.mkdir(path, mode) }
    }

    /// The absolute path with every symbolic link, "." and ".." resolved.
    package static func realpath(_ path: String) throws(SystemCallError) -> String {
        guard let p = Glibc.realpath(path, nil) else {
            throw SystemCallError(call: "realpath", path: path, errno: Glibc.errno)
        }
        defer { free(p) }
        return String(cString: p)
    }

    // MARK: users and signals

    /// The group id of `name`, nil when there is no such group. getgrnam_r, not getgrnam, whose
    /// static result another thread could overwrite.
    package static func groupID(named name: String) throws(SystemCallError) -> gid_t? {
        var size = max(1024, Int(sysconf(CInt(_SC_GETGR_R_SIZE_MAX))))
        while true {
            var group = group()
            var result: UnsafeMutablePointer<group>? = nil
            var buffer = [CChar](repeating: 0, count: size)
            let rc = getgrnam_r(name, &group, &buffer, size, &result)
            if rc == ERANGE && size < 1 << 20 { size *= 2; continue }
            if rc == EINTR { continue }
            if rc != 0 { throw SystemCallError(call: "getgrnam_r", path: name, errno: rc) }
            return result == nil ? nil : group.gr_gid
        }
    }

    /// How a signal-mask change applies, as pthread_sigmask's `how`.
    package enum SignalMaskChange: Sendable {
        case block, unblock, set
        var how: CInt {
            switch self {
            case .block: SIG_BLOCK
            case .unblock: SIG_UNBLOCK
            case .set: SIG_SETMASK
            }
        }
    }

    /// Changes the calling thread's signal mask. pthread_sigmask only fails on a bad `how`, which
    /// the enum rules out: a failure is our bug and traps.
    package static func signalMask(_ change: SignalMaskChange, _ signals: [CInt]) {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        let rc = pthread_sigmask(change.how, &set, nil)
        precondition(rc == 0, "pthread_sigmask: \(String(cString: strerror(rc)))")
    }
}

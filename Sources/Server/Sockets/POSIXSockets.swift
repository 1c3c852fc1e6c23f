// POSIX socket helpers for UVListener: sockaddr construction and formatting, and the probe that
// tells a stale Unix socket file from a live one. Plain system calls, no libuv: the listener creates
// and binds its sockets itself (so it controls the file's mode from the first instant) and only then
// hands the listening descriptor to libuv. Their failures become UVError (libuv's codes, with hints),
// not SystemCallError, and none of these calls can wait (the probe's connect is non-blocking), so
// there is no EINTR to retry; descriptors are closed through Posix.close.
//
// Linux only (SOCK_CLOEXEC, SO_PEERCRED live here and in UVConnection), like the daemon.
//
// Threading: pure functions of their arguments; usable on any thread.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemCalls

enum POSIXSockets {
    static let stream = Int32(SOCK_STREAM.rawValue)
    static let cloexec = Int32(SOCK_CLOEXEC.rawValue)
    static let nonblock = Int32(SOCK_NONBLOCK.rawValue)

    /// The largest path a sockaddr_un holds (sun_path minus its terminating NUL).
    static var maxUnixPathLength: Int { MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1 }

    static func unixAddress(_ path: String) throws(UVError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maxUnixPathLength, !bytes.contains(0) else {
            throw UVError(errno: bytes.isEmpty || bytes.contains(0) ? EINVAL : ENAMETOOLONG,
                          operation: "bind \(path)",
                          hint: "a Unix socket path must be 1 to \(maxUnixPathLength) bytes without NUL; "
                              + "choose a shorter path (e.g. under /run)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { sunPath in
            sunPath.copyBytes(from: bytes)   // the rest stays zero, so the path is NUL-terminated
        }
        return address
    }

    /// Calls `body` with `address` as the generic sockaddr pointer and length the socket calls take.
    static func withSockaddr<A, R>(_ address: A, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: address) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
    }

    enum ProbeResult { case live, stale, gone }

    /// Connects to an existing socket file without blocking: a listener answers (or has a full
    /// backlog), a file left behind by a dead process refuses.
    static func probeUnix(_ path: String, address: sockaddr_un) throws(UVError) -> ProbeResult {
        let fd = socket(AF_UNIX, stream | cloexec | nonblock, 0)
        guard fd >= 0 else { throw UVError(errno: errno, operation: "socket (to probe \(path))") }
        defer { closeDescriptor(fd) }
        let status = withSockaddr(address) { connect(fd, $0, $1) }
        if status == 0 { return .live }
        switch errno {
        case EAGAIN, EINPROGRESS: return .live   // a listener whose backlog is full is still alive
        case ECONNREFUSED: return .stale
        case ENOENT: return .gone
        case let code:
            throw UVError(errno: code, operation: "connect \(path) (checking whether a daemon listens there)",
                          hint: "cannot tell whether the existing socket is in use; remove it by hand if it is stale")
        }
    }

    /// Parses an IPv4 or IPv6 literal ("127.0.0.1", "::1", "[::1]") and a port into a sockaddr.
    static func inetAddress(host: String, port: Int) throws(UVError) -> InetAddress {
        guard (0...65535).contains(port) else {
            throw UVError(errno: EINVAL, operation: "listen \(host):\(port)",
                          hint: "the port must be 0...65535 (0 picks a free port)")
        }
        var literal = host
        if literal.hasPrefix("["), literal.hasSuffix("]") { literal = String(literal.dropFirst().dropLast()) }
        var v4 = sockaddr_in()
        if inet_pton(AF_INET, literal, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(port).bigEndian
            return .v4(v4)
        }
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET6, literal, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(port).bigEndian
            return .v6(v6)
        }
        throw UVError(errno: EINVAL, operation: "listen \(host):\(port)",
                      hint: "the host must be an IPv4 or IPv6 address literal such as 127.0.0.1 or ::1, not a name")
    }

    enum InetAddress {
        case v4(sockaddr_in)
        case v6(sockaddr_in6)

        var family: Int32 {
            switch self {
            case .v4: AF_INET
            case .v6: AF_INET6
            }
        }
    }

    /// The local address of a socket as storage, its length, and its family.
    static func localAddress(of fd: Int32) throws(UVError) -> (sockaddr_storage, socklen_t) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutableBytes(of: &storage) { raw in
            getsockname(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        guard status == 0 else { throw UVError(errno: errno, operation: "getsockname on descriptor \(fd)") }
        return (storage, length)
    }

    /// "127.0.0.1:8080", "[::1]:8080", or a Unix socket's path ("@name" for an abstract one).
    static func describe(_ storage: sockaddr_storage, length: socklen_t) -> String {
        var copy = storage
        return withUnsafeBytes(of: &copy) { raw -> String in
            switch Int32(storage.ss_family) {
            case AF_INET:
                let address = raw.load(as: sockaddr_in.self)
                return "\(ntop(AF_INET, address.sin_addr)):\(UInt16(bigEndian: address.sin_port))"
            case AF_INET6:
                let address = raw.load(as: sockaddr_in6.self)
                return "[\(ntop(AF_INET6, address.sin6_addr))]:\(UInt16(bigEndian: address.sin6_port))"
            case AF_UNIX:
                let offset = MemoryLayout<sa_family_t>.size
                let end = min(Int(length), MemoryLayout<sockaddr_un>.size)
                guard end > offset else { return "(unnamed)" }
                var path = Array(raw[offset..<end])
                let abstract = path.first == 0
                if abstract { path.removeFirst() }
                if let nul = path.firstIndex(of: 0) { path.removeSubrange(nul...) }
                return (abstract ? "@" : "") + String(decoding: path, as: UTF8.self)
            default:
                return "(address family \(storage.ss_family))"
            }
        }
    }

    private static func ntop<A>(_ family: Int32, _ address: A) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        _ = withUnsafeBytes(of: address) { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// close(2), reachable from types that have a close() method of their own.
    static func closeDescriptor(_ fd: Int32) {
        try? Posix.close(fd)
    }

    /// An integer socket option (SO_TYPE, SO_ACCEPTCONN, …), or nil when the call fails.
    static func intOption(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, level, name, &value, &length) == 0 ? value : nil
    }
}

extension POSIXSockets {
    /// The port of an IPv4 or IPv6 address; nil for other families.
    static func port(_ storage: sockaddr_storage) -> Int? {
        var copy = storage
        return withUnsafeBytes(of: &copy) { raw -> Int? in
            switch Int32(storage.ss_family) {
            case AF_INET: Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
            case AF_INET6: Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
            default: nil
            }
        }
    }
}

extension POSIXSockets {
    /// Linux's struct ucred (pid_t, uid_t, gid_t), which Glibc only declares under _GNU_SOURCE.
    private struct PeerCredentials {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// SO_PEERCRED of a connected Unix socket: the peer's pid, uid and gid at connect time.
    static func peerCredentials(of fd: Int32) -> (pid: Int32, uid: UInt32, gid: UInt32)? {
        guard fd >= 0 else { return nil }
        var credentials = PeerCredentials()
        var length = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else { return nil }
        return (credentials.pid, credentials.uid, credentials.gid)
    }

    /// The remote address of a connected socket, formatted like `describe`.
    static func peerAddress(of fd: Int32) -> String? {
        guard fd >= 0 else { return nil }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutableBytes(of: &storage) { raw in
            getpeername(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        return status == 0 ? describe(storage, length: length) : nil
    }

    /// Whether the peer of a connected socket is gone entirely rather than only done sending: after
    /// its EOF, a Unix socket whose peer closed reports POLLHUP (both directions are shut), while one
    /// whose peer called shutdown(SHUT_WR) reports only POLLRDHUP. For TCP the two look alike until
    /// a write fails, so this answers false there.
    static func peerHungUp(_ fd: Int32) -> Bool {
        guard fd >= 0 else { return false }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&p, 1, 0) == 1 else { return false }
        return p.revents & Int16(POLLHUP | POLLERR) != 0
    }
}

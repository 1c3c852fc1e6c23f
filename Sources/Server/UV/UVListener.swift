// UVListener: one listening socket (a Unix socket file, a TCP port, or a socket inherited from
// systemd), handing each accepted connection to `onConnection` as a UVConnection.
//
// The listener makes and binds its sockets itself and gives libuv the listening descriptor
// (uv_pipe_open / uv_tcp_open), rather than using uv_pipe_bind, because:
//   - the socket file's mode must be right from its first instant: the socket's inode is fchmod'ed
//     to the owner bits of `mode` before bind (Linux creates the file with the socket inode's mode
//     minus umask, without touching the process-wide umask other threads depend on), then the group
//     is set, then chmod sets the full `mode`. At no moment can anyone outside owner+group connect.
//   - uv_pipe_bind's handle unlinks its path on close unconditionally; ours unlinks the file only if
//     it is still the one we bound (same device and inode), so it never removes a successor's socket.
//   - listen(2) happens at creation, so clients that connect before start() wait in the backlog
//     instead of being refused, and a second daemon probing the path sees a live listener.
// Stale files: an existing socket file that refuses connections is left over from a dead process
// and is replaced; one that accepts means another daemon is running (error); a path that is not a
// socket is never removed (error).
// System calls: socket, bind, listen, fchmod/chmod, lstat and unlink are called directly, not through
// SystemCalls' Posix (docs/architecture.md: sockets stay where they are), because their failures
// become UVError with the listener's own hints, and none of them can wait, so none can see EINTR.
//
// Threading: loop thread only (see UVLoop).

internal import CLibUV
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

package final class UVListener: UVHandleOwner, CustomStringConvertible {
    /// The socket file this listener created, as it was right after bind.
    private struct SocketFile {
        let path: String
        let device: dev_t
        let inode: ino_t
    }

    /// A uv_pipe_t or uv_tcp_t; nil once closed.
    private var handle: UnsafeMutablePointer<uv_stream_t>?
    private let isUnix: Bool
    private let backlog: Int32
    private let socketFile: SocketFile?

    /// The socket path for a Unix listener, "host:port" ("[::1]:port") for TCP.
    package let address: String
    /// The bound TCP port (the real one when 0 was asked for); nil for Unix sockets.
    package let port: Int?
    /// "unix:/run/lorad/lorad.sock" or "tcp:127.0.0.1:8080", for logs.
    package let description: String

    /// Called with each accepted connection; when nil, connections are accepted and closed at once.
    package var onConnection: ((UVConnection) -> Void)?
    /// Called when accepting fails (e.g. EMFILE: out of file descriptors); the listener stays open.
    package var onError: ((UVError) -> Void)?
    package private(set) var isListening = false
    package private(set) var isClosed = false

    private init(handle: UnsafeMutablePointer<uv_stream_t>, isUnix: Bool, backlog: Int32,
                 address: String, port: Int?, socketFile: SocketFile?) {
        self.handle = handle
        self.isUnix = isUnix
        self.backlog = backlog
        self.address = address
        self.port = port
        self.description = (isUnix ? "unix:" : "tcp:") + address
        self.socketFile = socketFile
        UVHandles.adopt(uvCast(handle), by: self)
    }

    // MARK: Creating

    /// Creates the Unix socket `path` with `mode` (and `group`, when given), listening.
    package static func unix(loop: UVLoop, path: String, mode: Glibc.mode_t = 0o660, group: Glibc.gid_t? = nil,
                             backlog: Int32 = 128) throws(UVError) -> UVListener {
        try requireOpen(loop, "listen on \(path)")
        let address = try POSIXSockets.unixAddress(path)
        try removeStaleSocket(path, address)

        let fd = socket(AF_UNIX, POSIXSockets.stream | POSIXSockets.cloexec, 0)
        guard fd >= 0 else { throw UVError(errno: errno, operation: "socket for \(path)") }
        var bound = false
        func failure(_ operation: String, code: Int32 = errno, hint: String? = nil) -> UVError {
            if bound { unlink(path) }
            POSIXSockets.closeDescriptor(fd)
            return UVError(errno: code, operation: operation, hint: hint)
        }

        // Owner bits only until the group is right; see the header. If fchmod on a socket is not
        // supported the umask still applies, and chmod below narrows the mode right after bind.
        _ = fchmod(fd, mode & 0o700)
        guard POSIXSockets.withSockaddr(address, { bind(fd, $0, $1) }) == 0 else {
            let code = errno
            throw failure("bind \(path)", code: code,
                          hint: code == EADDRINUSE ? "another process created \(path) at the same moment"
                              : code == EACCES ? "the daemon's user cannot create files in that directory"
                              : nil)
        }
        bound = true
        var info = stat()
        guard lstat(path, &info) == 0 else { throw failure("stat \(path) after bind") }
        if let group, chown(path, uid_t.max, group) != 0 {
            throw failure("chown \(path) to group \(group)",
                          hint: "the daemon's user must be root or a member of group \(group)")
        }
        guard chmod(path, mode) == 0 else { throw failure("chmod \(path) to \(String(mode, radix: 8))") }
        guard listen(fd, backlog) == 0 else { throw failure("listen on \(path)") }

        let pipe = UVHandles.allocate(uv_pipe_t.self)
        uv_pipe_init(loop.raw, pipe, 0)
        let status = uv_pipe_open(pipe, fd)
        guard status == 0 else {
            UVHandles.discard(uvCast(pipe))
            unlink(path)
            POSIXSockets.closeDescriptor(fd)
            throw UVError(code: status, operation: "open \(path) in libuv")
        }
        return UVListener(handle: uvCast(pipe), isUnix: true, backlog: backlog, address: path, port: nil,
                          socketFile: SocketFile(path: path, device: info.st_dev, inode: info.st_ino))
    }

    /// A TCP listener on an IPv4 or IPv6 literal (`port` 0 picks a free port; see `port`). Whether
    /// to expose anything beyond loopback is the caller's decision.
    package static func tcp(loop: UVLoop, host: String, port: Int, backlog: Int32 = 128) throws(UVError) -> UVListener {
        try requireOpen(loop, "listen on \(host):\(port)")
        let inet = try POSIXSockets.inetAddress(host: host, port: port)
        let fd = socket(inet.family, POSIXSockets.stream | POSIXSockets.cloexec, 0)
        guard fd >= 0 else { throw UVError(errno: errno, operation: "socket for \(host):\(port)") }
        func failure(_ operation: String, hint: (Int32) -> String? = { _ in nil }) -> UVError {
            let code = errno
            POSIXSockets.closeDescriptor(fd)
            return UVError(errno: code, operation: operation, hint: hint(code))
        }
        // A restarted daemon must be able to bind while old connections sit in TIME_WAIT.
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let status: Int32 = switch inet {
        case .v4(let address): POSIXSockets.withSockaddr(address) { bind(fd, $0, $1) }
        case .v6(let address): POSIXSockets.withSockaddr(address) { bind(fd, $0, $1) }
        }
        guard status == 0 else {
            throw failure("bind \(host):\(port)") { code in
                code == EADDRINUSE ? "another process listens on that port; stop it or choose another" : nil
            }
        }
        guard listen(fd, backlog) == 0 else { throw failure("listen on \(host):\(port)") }
        let local: (sockaddr_storage, socklen_t)
        do { local = try POSIXSockets.localAddress(of: fd) } catch { POSIXSockets.closeDescriptor(fd); throw error }
        return try open(loop: loop, fd: fd, family: inet.family, local: local, backlog: backlog,
                        closeOnFailure: true)
    }

    /// Takes over a socket that is already bound and listening, such as one systemd passes with
    /// LISTEN_FDS (a Unix or TCP stream socket). Nothing is unlinked on close: the socket file
    /// belongs to whoever created it. On failure the descriptor is left open and unchanged.
    /// `backlog` is passed to listen(2) again by start(); the default keeps the kernel's maximum
    /// rather than shrinking the Backlog= that systemd set.
    package static func adopt(loop: UVLoop, fd: Int32, backlog: Int32 = Int32(SOMAXCONN)) throws(UVError) -> UVListener {
        try requireOpen(loop, "adopt descriptor \(fd)")
        let local = try POSIXSockets.localAddress(of: fd)
        guard POSIXSockets.intOption(fd, SOL_SOCKET, SO_TYPE) == POSIXSockets.stream else {
            throw UVError(errno: EINVAL, operation: "adopt descriptor \(fd)",
                          hint: "it is not a stream socket; the systemd socket unit must use ListenStream=")
        }
        guard POSIXSockets.intOption(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1 else {
            throw UVError(errno: EINVAL, operation: "adopt descriptor \(fd)",
                          hint: "it is not listening; the systemd socket unit must not set Accept=yes")
        }
        let family = Int32(local.0.ss_family)
        guard family == AF_UNIX || family == AF_INET || family == AF_INET6 else {
            throw UVError(errno: EAFNOSUPPORT, operation: "adopt descriptor \(fd)",
                          hint: "only Unix, IPv4 and IPv6 stream sockets can be served")
        }
        let listener = try open(loop: loop, fd: fd, family: family, local: local, backlog: backlog,
                                closeOnFailure: false)
        // Inherited descriptors lack close-on-exec; nothing we spawn should hold our socket.
        _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC)
        return listener
    }

    /// Wraps a listening descriptor in a pipe or TCP handle (no socket file to remove on close).
    private static func open(loop: UVLoop, fd: Int32, family: Int32, local: (sockaddr_storage, socklen_t),
                             backlog: Int32, closeOnFailure: Bool) throws(UVError) -> UVListener {
        let address = POSIXSockets.describe(local.0, length: local.1)
        let handle: UnsafeMutablePointer<uv_stream_t>
        let status: Int32
        if family == AF_UNIX {
            let pipe = UVHandles.allocate(uv_pipe_t.self)
            uv_pipe_init(loop.raw, pipe, 0)
            status = uv_pipe_open(pipe, fd)
            handle = uvCast(pipe)
        } else {
            let tcp = UVHandles.allocate(uv_tcp_t.self)
            uv_tcp_init(loop.raw, tcp)
            status = uv_tcp_open(tcp, fd)
            handle = uvCast(tcp)
        }
        guard status == 0 else {
            UVHandles.discard(uvCast(handle))
            if closeOnFailure { POSIXSockets.closeDescriptor(fd) }
            throw UVError(code: status, operation: "open \(address) in libuv")
        }
        return UVListener(handle: handle, isUnix: family == AF_UNIX, backlog: backlog, address: address,
                          port: family == AF_UNIX ? nil : POSIXSockets.port(local.0), socketFile: nil)
    }

    private static func requireOpen(_ loop: UVLoop, _ operation: String) throws(UVError) {
        if loop.isClosed { throw UVError(errno: EINVAL, operation: operation, hint: "the event loop is already closed") }
    }

    /// Makes room for a new socket at `path`: removes a stale socket file, refuses anything else.
    private static func removeStaleSocket(_ path: String, _ address: sockaddr_un) throws(UVError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw UVError(errno: errno, operation: "stat \(path)")
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw UVError(errno: EEXIST, operation: "bind \(path)",
                          hint: "\(path) exists and is not a socket; it was left alone: move it away or choose another socket path")
        }
        switch try POSIXSockets.probeUnix(path, address: address) {
        case .live:
            throw UVError(errno: EADDRINUSE, operation: "bind \(path)",
                          hint: "another process is listening on \(path); stop it first or choose another socket path")
        case .gone:
            return
        case .stale:
            guard unlink(path) == 0 || errno == ENOENT else {
                throw UVError(errno: errno, operation: "unlink stale socket \(path)")
            }
        }
    }

    // MARK: Serving

    /// Starts handing connections to `onConnection`. Throws if the listener is closed.
    package func start() throws(UVError) {
        guard let handle, !isClosed else {
            throw UVError(errno: EINVAL, operation: "listen on \(description)", hint: "the listener is closed")
        }
        guard !isListening else { return }
        let status = uv_listen(handle, backlog) { server, status in
            guard let server, let listener = UVHandles.owner(of: uvCast(server)) as? UVListener else { return }
            listener.acceptOne(status: status)
        }
        try UVError.check(status, "listen on \(description)")
        isListening = true
    }

    private func acceptOne(status: Int32) {
        guard let handle, !isClosed else { return }
        guard status == 0 else {
            onError?(UVError(code: status, operation: "accept on \(description)"))
            return
        }
        let client: UnsafeMutablePointer<uv_stream_t>
        if isUnix {
            let pipe = UVHandles.allocate(uv_pipe_t.self)
            uv_pipe_init(handle.pointee.loop, pipe, 0)
            client = uvCast(pipe)
        } else {
            let tcp = UVHandles.allocate(uv_tcp_t.self)
            uv_tcp_init(handle.pointee.loop, tcp)
            client = uvCast(tcp)
        }
        let accepted = uv_accept(handle, client)
        guard accepted == 0 else {
            UVHandles.discard(uvCast(client))
            onError?(UVError(code: accepted, operation: "accept on \(description)"))
            return
        }
        // Token events are small and latency-bound: do not let Nagle hold them back.
        if !isUnix { uv_tcp_nodelay(uvCast(client), 1) }
        let connection = UVConnection(accepted: client, isUnix: isUnix)
        if let onConnection { onConnection(connection) } else { connection.close() }
    }

    /// Stops listening, removes the socket file if it is still the one this listener created, and
    /// closes the socket (asynchronously; connections already accepted stay open).
    package func close() {
        guard !isClosed else { return }
        isClosed = true
        isListening = false
        if let file = socketFile {
            var info = stat()
            if lstat(file.path, &info) == 0, info.st_dev == file.device, info.st_ino == file.inode {
                unlink(file.path)
            }
        }
        if let handle { UVHandles.close(uvCast(handle)) }
    }

    func handleDidClose() {
        handle = nil
        isClosed = true
        isListening = false
        onConnection = nil
        onError = nil
    }
}

// Socket activation as sd_listen_fds(3) defines it, without libsystemd. lorad.socket owns the
// listening socket: systemd creates /run/lorad/lorad.sock with the unit's mode and group, and
// passes it to lorad as fd 3 (LISTEN_FDS=1, LISTEN_PID=<our pid>). Because the socket outlives the
// service, a restart or crash of lorad loses no connection attempt: clients queue in the backlog
// until the new process accepts. The variables are checked exactly as libsystemd checks them, so a
// child that inherited them (LISTEN_PID not ours) takes no fds that are not meant for it.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemCalls

public enum SocketActivation {
    /// SD_LISTEN_FDS_START: passed descriptors are numbered from here on.
    public static let firstPassedFD: Int32 = 3

    /// The descriptors systemd passed to this process, with their names (FileDescriptorName= in the
    /// socket unit; nil when LISTEN_FDNAMES is unset). Empty when this process was not socket
    /// activated: LISTEN_PID unset or another process's id. Each fd gets FD_CLOEXEC, so the sockets do
    /// not leak into programs lorad might start. With `unsetEnvironment`, LISTEN_PID, LISTEN_FDS and
    /// LISTEN_FDNAMES are removed from the process environment (unsetenv) whatever the outcome, so
    /// no child inherits them. Throws for malformed variables or a descriptor that is not open.
    public static func listenFDs(environment: [String: String], unsetEnvironment: Bool = true)
        throws(SocketActivationError) -> [(fd: Int32, name: String?)]
    {
        try listenFDs(environment: environment, unsetEnvironment: unsetEnvironment,
                      firstFD: firstPassedFD, pid: getpid())
    }

    /// The same, with the first descriptor and our pid as parameters: tests pass descriptors they
    /// own instead of fd 3, which in a test process belongs to someone else.
    static func listenFDs(environment: [String: String], unsetEnvironment: Bool, firstFD: Int32, pid: pid_t)
        throws(SocketActivationError) -> [(fd: Int32, name: String?)]
    {
        defer {
            if unsetEnvironment {
                unsetenv("LISTEN_PID")
                unsetenv("LISTEN_FDS")
                unsetenv("LISTEN_FDNAMES")
            }
        }
        guard let pidText = environment["LISTEN_PID"] else { return [] }
        guard let listenPID = SystemdNotifier.parseDecimal(pidText), listenPID > 0, listenPID <= UInt64(Int32.max) else {
            throw .badVariable(name: "LISTEN_PID", value: pidText, expected: "a process id")
        }
        guard listenPID == UInt64(pid) else { return [] }
        guard let countText = environment["LISTEN_FDS"] else { return [] }
        // As libsystemd: 0 is an error too (a socket unit always passes at least one).
        guard let count = SystemdNotifier.parseDecimal(countText), count > 0, count <= UInt64(Int32.max - firstFD) else {
            throw .badVariable(name: "LISTEN_FDS", value: countText, expected: "a positive number of descriptors")
        }
        var names: [String?] = Array(repeating: nil, count: Int(count))
        if let namesText = environment["LISTEN_FDNAMES"] {
            let split = namesText.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard split.count == Int(count) else {
                throw .badVariable(name: "LISTEN_FDNAMES", value: namesText,
                                   expected: "\(count) colon-separated names, one per descriptor (LISTEN_FDS=\(count))")
            }
            names = split
        }
        var result: [(fd: Int32, name: String?)] = []
        for (i, name) in names.enumerated() {
            let fd = firstFD + Int32(i)
            do throws(SystemCallError) {
                let flags = try Posix.descriptorFlags(fd)
                if flags & FD_CLOEXEC == 0 { try Posix.setDescriptorFlags(fd, flags | FD_CLOEXEC) }
            } catch {
                throw .badDescriptor(fd: fd, reason: error.reason)
            }
            result.append((fd, name))
        }
        return result
    }

    /// What a passed descriptor is, so the server can tell the API's Unix socket from an extra TCP
    /// listener a drop-in added to lorad.socket, and refuse anything it cannot accept on.
    public enum SocketKind: Sendable, Equatable {
        /// A listening AF_UNIX stream socket, with its path ("" for an unnamed or abstract one).
        case unix(path: String)
        /// A listening TCP socket.
        case tcp
        /// Not a listening stream socket (a datagram socket, a FIFO, a file): unusable for HTTP.
        case unsupported
    }

    public static func kind(of fd: Int32) -> SocketKind {
        var type: Int32 = 0
        var listening: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) == 0, type == Int32(SOCK_STREAM.rawValue) else {
            return .unsupported
        }
        size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0, listening == 1 else {
            return .unsupported
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return .unsupported }
        switch Int32(storage.ss_family) {
        case AF_UNIX:
            let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
            let pathLength = max(0, Int(length) - pathOffset)
            let path = withUnsafeBytes(of: &storage) { raw -> String in
                let bytes = raw[pathOffset..<pathOffset + pathLength]
                // Abstract sockets start with NUL; filesystem paths end at their first NUL.
                guard let first = bytes.first, first != 0 else { return "" }
                return String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            return .unix(path: path)
        case AF_INET, AF_INET6:
            return .tcp
        default:
            return .unsupported
        }
    }
}

public enum SocketActivationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A LISTEN_* variable is present but malformed: systemd never sets it so, something else did.
    case badVariable(name: String, value: String, expected: String)
    /// LISTEN_FDS promises a descriptor that is not open in this process.
    case badDescriptor(fd: Int32, reason: String)

    public var description: String {
        switch self {
        case .badVariable(let name, let value, let expected):
            return "socket activation: \(name) is \"\(value)\", expected \(expected); "
                + "unset LISTEN_PID and LISTEN_FDS unless systemd starts lorad"
        case .badDescriptor(let fd, let reason):
            return "socket activation: passed descriptor \(fd) is not usable (\(reason)); "
                + "is the process started with LISTEN_FDS by something other than systemd?"
        }
    }
}

// The sd_notify(3) protocol without libsystemd: one AF_UNIX datagram of "KEY=value" lines to the
// socket named by $NOTIFY_SOCKET. lorad.service is Type=notify, so systemd considers the daemon
// started only at READY=1 (after the model and adapters load), shows STATUS= in `systemctl status`,
// restarts it if WATCHDOG=1 pings stop for WatchdogSec, and knows a stop is under way at STOPPING=1.
// Plain system calls (Posix.socket, Posix.sendto), no libuv: a notification is one non-blocking
// syscall, and the watchdog ping must not depend on the loop it watches more than it has to.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemCalls

public struct SystemdNotifier: Sendable {
    /// The socket address: a path, or an abstract name (leading NUL, written "@" in the variable).
    let address: [UInt8]
    let isAbstract: Bool

    /// Nil when NOTIFY_SOCKET is unset or empty (not started by systemd, or not Type=notify), or
    /// names something other than a path ("/...") or an abstract socket ("@..."), or is too long
    /// for sockaddr_un.
    public init?(environment: [String: String]) {
        guard let value = environment["NOTIFY_SOCKET"], let first = value.utf8.first else { return nil }
        var bytes = Array(value.utf8)
        switch first {
        case UInt8(ascii: "/"):
            isAbstract = false
        case UInt8(ascii: "@"):
            bytes[0] = 0
            isAbstract = true
        default:
            return nil  // vsock: and other forms systemd may use in VMs; lorad does not run there.
        }
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        // A path needs room for its terminating NUL; an abstract name does not have one.
        guard bytes.count + (isAbstract ? 0 : 1) <= capacity, !bytes.dropFirst().contains(0) else { return nil }
        address = bytes
    }

    /// Sends `state` (newline-separated assignments, e.g. "READY=1\nSTATUS=serving") as one
    /// datagram. False if it could not be sent; systemd then never sees it, which the caller can
    /// only log.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        // Non-blocking: the loop thread sends these and must never stall on them. systemd's notify
        // socket has a large receive buffer, so EAGAIN would mean PID 1 is wedged anyway.
        guard let fd = try? Posix.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)) else {
            return false
        }
        defer { try? Posix.close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: address)  // the rest of sun_path is already zero
        }
        // Abstract names are exactly as long as their bytes; paths include their NUL.
        let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + address.count + (isAbstract ? 0 : 1)
        let bytes = Array(state.utf8)
        let sent: Int? = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try? Posix.sendto(fd, buffer, flags: Int32(MSG_NOSIGNAL), to: $0, length: socklen_t(length))
                }
            }
        }
        return sent == bytes.count
    }

    /// Start-up finished: systemd marks the unit active and starts units ordered after it.
    @discardableResult
    public func ready(status: String? = nil) -> Bool {
        notify("READY=1" + (status.map { "\nSTATUS=" + Self.oneLine($0) } ?? ""))
    }

    /// Free text for `systemctl status`.
    @discardableResult
    public func status(_ text: String) -> Bool {
        notify("STATUS=" + Self.oneLine(text))
    }

    /// A reload (SIGHUP) began; send `ready()` when it is done. MONOTONIC_USEC is what
    /// Type=notify-reload (systemd 253+) requires; older systemd ignores it.
    @discardableResult
    public func reloading() -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        return notify("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }

    /// Shutdown began (SIGTERM): systemd shows "deactivating" and waits up to TimeoutStopSec.
    @discardableResult
    public func stopping(status: String? = nil) -> Bool {
        notify("STOPPING=1" + (status.map { "\nSTATUS=" + Self.oneLine($0) } ?? ""))
    }

    /// Still alive: send at least every `watchdogPingInterval`.
    @discardableResult
    public func watchdog() -> Bool {
        notify("WATCHDOG=1")
    }

    /// Asks for more time to start or stop than TimeoutStartSec/TimeoutStopSec allow, counted from now.
    @discardableResult
    public func extendTimeout(_ duration: Duration) -> Bool {
        let (seconds, attoseconds) = duration.components
        let usec = max(0, seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
        return notify("EXTEND_TIMEOUT_USEC=\(usec)")
    }

    /// WatchdogSec as systemd passed it: WATCHDOG_USEC, provided WATCHDOG_PID is unset or this
    /// process (a child that inherited the variables must not ping for its parent). Nil when the
    /// watchdog is off or the values are malformed, as sd_watchdog_enabled(3) treats them.
    public static func watchdogInterval(environment: [String: String]) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = parseDecimal(text), usec > 0 else { return nil }
        if let pidText = environment["WATCHDOG_PID"] {
            guard let pid = parseDecimal(pidText), pid == UInt64(getpid()) else { return nil }
        }
        return .microseconds(Int64(clamping: usec))
    }

    /// How often to ping: half the interval, as sd_watchdog_enabled(3) recommends, so one late
    /// ping does not cost a restart.
    public static func watchdogPingInterval(environment: [String: String]) -> Duration? {
        watchdogInterval(environment: environment).map { $0 / 2 }
    }

    /// Digits only, as systemd's safe_atou64 (no sign, no spaces), fitting UInt64.
    static func parseDecimal(_ text: String) -> UInt64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(text)
    }

    /// A STATUS= value ends at the line break, so newlines become spaces.
    static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\n" || $0 == "\r" || $0 == "\r\n" ? " " : $0 })
    }
}

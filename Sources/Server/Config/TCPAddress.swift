// The optional TCP listener's address, "HOST:PORT". HOST is an IP literal (IPv6 in brackets, as in
// URLs: "[::1]:8080") or "localhost"; names are not resolved, because what a name resolves to can
// change under a running daemon and the loopback check below must hold for what is actually bound.
// The check exists because the API has no TLS and its tenant tokens travel in clear: listening
// beyond loopback has to be asked for explicitly (server.tcp_allow_remote).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct TCPAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Family: Sendable, Equatable { case ipv4, ipv6 }

    /// An IP literal, without brackets; "localhost" is stored as "127.0.0.1".
    public var host: String
    /// 0 lets the kernel pick a free port (useful in tests).
    public var port: UInt16
    public var family: Family

    /// "127.0.0.1:8080", "[::1]:8080".
    public var description: String {
        family == .ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// What `parse` accepts, for error messages.
    static let expected =
        "\"HOST:PORT\" with HOST an IP address or localhost (IPv6 in brackets, e.g. \"[::1]:8080\") and PORT from 0 to 65535"

    /// Nil for anything that is not exactly HOST:PORT as described above.
    public static func parse(_ text: String) -> TCPAddress? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        guard !portText.isEmpty, portText.count <= 5,
              portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let port = UInt16(portText) else { return nil }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return nil }
            host = String(host.dropFirst().dropLast())
            guard isIP(host, family: AF_INET6) else { return nil }
            return TCPAddress(host: host, port: port, family: .ipv6)
        }
        if host == "localhost" { host = "127.0.0.1" }
        guard isIP(host, family: AF_INET) else { return nil }
        return TCPAddress(host: host, port: port, family: .ipv4)
    }

    /// 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.x.x.x).
    public var isLoopback: Bool {
        switch family {
        case .ipv4:
            var addr = in_addr()
            guard inet_pton(AF_INET, host, &addr) == 1 else { return false }
            return UInt32(bigEndian: addr.s_addr) >> 24 == 127
        case .ipv6:
            var addr = in6_addr()
            guard inet_pton(AF_INET6, host, &addr) == 1 else { return false }
            let bytes = withUnsafeBytes(of: addr) { Array($0) }
            if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
            let mapped = bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF
            return mapped && bytes[12] == 127
        }
    }

    private static func isIP(_ host: String, family: Int32) -> Bool {
        var buffer = in6_addr()  // large enough for either family
        return !host.isEmpty && inet_pton(family, host, &buffer) == 1
    }
}

// Adapter names and references. A name is [a-z0-9][a-z0-9._-]{0,63}: no slash, no "..", nothing a
// file system would read as a path, so a name taken from a request or a file can be joined to the
// registry root without leading anywhere else. A reference is a name, meaning the active version, or
// `name@vN` pinning version N.

public enum AdapterName {
    public static let rule = "[a-z0-9][a-z0-9._-]{0,63}"

    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count) else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) }
        guard alnum(bytes[0]) else { return false }
        return bytes.dropFirst().allSatisfy { alnum($0) || $0 == 0x2e || $0 == 0x5f || $0 == 0x2d }
    }
}

public struct AdapterReference: Sendable, Equatable, Hashable, CustomStringConvertible {
    public let name: String
    /// nil: the active version.
    public let version: Int?

    public init(name: String, version: Int? = nil) {
        self.name = name
        self.version = version
    }

    /// Parses `name` or `name@vN` (N a positive decimal without leading zeros); nil when the text is
    /// neither, so that a caller can say what it expected.
    public init?(_ text: String) {
        guard let at = text.firstIndex(of: "@") else {
            guard AdapterName.isValid(text) else { return nil }
            self.init(name: text)
            return
        }
        let name = String(text[..<at])
        guard AdapterName.isValid(name), let v = Self.parseVersion(String(text[text.index(after: at)...])) else { return nil }
        self.init(name: name, version: v)
    }

    /// `vN` or `N` (a positive integer, at most 9 digits, no leading zero).
    public static func parseVersion(_ text: String) -> Int? {
        let digits = text.hasPrefix("v") ? text.dropFirst() : Substring(text)
        guard (1...9).contains(digits.count), digits.first != "0",
              digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits)
    }

    public var description: String { version.map { "\(name)@v\($0)" } ?? name }
}

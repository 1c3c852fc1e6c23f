// Byte classes of the HTTP grammar (RFC 9110 §5.6.2 token, §5.5 field values, RFC 3986 for
// request-targets) and a printable rendering of offending bytes for error messages. Plain switches:
// the compiler turns them into range tests, and the parser asks them once per byte.

enum ByteClass {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let sp: UInt8 = 0x20
    static let ht: UInt8 = 0x09

    /// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
    ///       / DIGIT / ALPHA
    static func isTchar(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }

    /// SP or HTAB: the OWS/BWS of RFC 9110 §5.6.3.
    static func isWhitespace(_ b: UInt8) -> Bool { b == sp || b == ht }

    /// field-vchar / SP / HTAB, where field-vchar includes obs-text (0x80-0xFF).
    static func isFieldValueByte(_ b: UInt8) -> Bool { b == ht || (b >= 0x20 && b != 0x7F) }

    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    static func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }

    static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }

    /// Whether `bytes` spells `lowercase` ignoring ASCII case (`lowercase` must be lower case).
    static func equalsIgnoringCase<C: Collection>(_ bytes: C, _ lowercase: String) -> Bool where C.Element == UInt8 {
        bytes.elementsEqual(lowercase.utf8) { lower($0) == $1 }
    }

    /// `bytes` without leading and trailing SP/HTAB.
    static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var lo = bytes.startIndex, hi = bytes.endIndex
        while lo < hi && isWhitespace(bytes[lo]) { lo += 1 }
        while hi > lo && isWhitespace(bytes[hi - 1]) { hi -= 1 }
        return bytes[lo..<hi]
    }

    /// The elements of a comma-separated list (RFC 9110 §5.6.1), each trimmed of OWS; empty elements
    /// are kept so callers can decide whether to ignore them.
    static func listElements(_ bytes: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        bytes.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map(trimmed)
    }

    /// `bytes` quoted for a message: printable ASCII as is, the rest escaped, cut after `limit` bytes.
    static func describe<C: Collection>(_ bytes: C, limit: Int = 40) -> String where C.Element == UInt8 {
        var s = "\""
        for b in bytes.prefix(limit) { s += describe(byte: b, quoted: false) }
        if bytes.count > limit { s += "…" }
        return s + "\""
    }

    /// One byte for a message: `'@'`, `SP`, `CR`, `byte 0x16`; or, inside a quoted string, `@`, `\r`, `\x16`.
    static func describe(byte b: UInt8, quoted: Bool = true) -> String {
        let hex = (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
        if quoted {
            switch b {
            case cr: return "CR"
            case lf: return "LF"
            case ht: return "HTAB"
            case sp: return "SP"
            case 0x21...0x7E: return "'\(Character(Unicode.Scalar(b)))'"
            default: return "byte 0x" + hex
            }
        }
        switch b {
        case cr: return "\\r"
        case lf: return "\\n"
        case ht: return "\\t"
        case 0x22: return "\\\""
        case 0x5C: return "\\\\"
        case 0x20...0x7E: return String(Character(Unicode.Scalar(b)))
        default: return "\\x" + hex
        }
    }
}

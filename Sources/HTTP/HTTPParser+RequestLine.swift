// The request line (RFC 9112 §3): `method SP request-target SP HTTP-version`, with exactly one SP
// between the parts. The version is checked before the target so that the HTTP/2 connection preface
// ("PRI * HTTP/2.0") gets 505 rather than a complaint about its asterisk. Target forms (§3.2):
// origin-form "/path?query" for every method but CONNECT, absolute-form "scheme://authority/path?query",
// asterisk-form "*" only for OPTIONS, authority-form "host:port" only (and always) for CONNECT.

extension RequestHead {
    mutating func parseRequestLine(_ line: [UInt8]) throws(HTTPParseError) {
        let shape = "expected a request line 'METHOD SP request-target SP HTTP/1.1'"
        guard let s1 = line.firstIndex(of: ByteClass.sp),
              let s2 = line[(s1 + 1)...].firstIndex(of: ByteClass.sp) else {
            throw .badRequest("\(shape), found fewer than two SP in \(ByteClass.describe(line))")
        }
        if line[(s2 + 1)...].contains(ByteClass.sp) {
            throw .badRequest("\(shape) with exactly two single SP, found more in \(ByteClass.describe(line)); spaces in the target must be percent-encoded as %20")
        }
        let methodBytes = line[..<s1], targetBytes = line[(s1 + 1)..<s2], versionBytes = line[(s2 + 1)...]
        if methodBytes.isEmpty { throw .badRequest("\(shape), found a line starting with SP") }
        if targetBytes.isEmpty { throw .badRequest("\(shape), found an empty request-target (two SP in a row)") }

        version = try Self.parseVersion(versionBytes, method: methodBytes)
        if let bad = methodBytes.first(where: { !ByteClass.isTchar($0) }) {
            throw .badRequest("the method must be a token, found \(ByteClass.describe(byte: bad)) in \(ByteClass.describe(methodBytes))")
        }
        method = String(decoding: methodBytes, as: UTF8.self)
        try checkTargetBytes(targetBytes)
        target = String(decoding: targetBytes, as: UTF8.self)
        try splitTarget(targetBytes)
    }

    static func parseVersion(_ v: ArraySlice<UInt8>, method: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPVersion {
        let b = Array(v)
        guard b.count == 8, b[0..<5].elementsEqual("HTTP/".utf8), ByteClass.isDigit(b[5]), b[6] == UInt8(ascii: "."),
              ByteClass.isDigit(b[7]) else {
            throw .badRequest("expected HTTP-version 'HTTP/1.1' or 'HTTP/1.0' at the end of the request line, found \(ByteClass.describe(v))")
        }
        switch (b[5], b[7]) {
        case (UInt8(ascii: "1"), UInt8(ascii: "1")): return .http11
        case (UInt8(ascii: "1"), UInt8(ascii: "0")): return .http10
        default:
            var message = "\(ByteClass.describe(v)) is not supported; this server speaks HTTP/1.1 and HTTP/1.0"
            if method.elementsEqual("PRI".utf8) && b[5] == UInt8(ascii: "2") {
                message += " (this is the HTTP/2 connection preface: connect with HTTP/1.1, no prior-knowledge h2c)"
            }
            throw HTTPParseError(status: 505, message: message)
        }
    }

    /// Visible ASCII only, no fragment, and every '%' followed by two hex digits.
    func checkTargetBytes(_ t: ArraySlice<UInt8>) throws(HTTPParseError) {
        var k = t.startIndex
        while k < t.endIndex {
            let b = t[k]
            if b <= 0x20 || b >= 0x7F {
                throw .badRequest("the request-target may hold only visible ASCII, found \(ByteClass.describe(byte: b)) at byte \(k - t.startIndex) of \(ByteClass.describe(t)); percent-encode it")
            }
            if b == UInt8(ascii: "#") {
                throw .badRequest("the request-target cannot carry a fragment, found '#' in \(ByteClass.describe(t)); drop the fragment or encode it as %23")
            }
            if b == UInt8(ascii: "%") {
                guard k + 2 < t.endIndex, ByteClass.hexValue(t[k + 1]) != nil, ByteClass.hexValue(t[k + 2]) != nil else {
                    throw .badRequest("expected two hex digits after '%' in the request-target \(ByteClass.describe(t)); encode a literal '%' as %25")
                }
                k += 2
            }
            k += 1
        }
    }

    /// Finds the target's form and sets `path` and `query`.
    mutating func splitTarget(_ t: ArraySlice<UInt8>) throws(HTTPParseError) {
        if method == "CONNECT" {
            guard Self.isValidAuthority(t, requirePort: true) else {
                throw .badRequest("CONNECT needs an authority-form target 'host:port', found \(ByteClass.describe(t))")
            }
            path = target
            return
        }
        if t.count == 1 && t.first == UInt8(ascii: "*") {
            guard method == "OPTIONS" else {
                throw .badRequest("the asterisk-form target '*' is only for OPTIONS, found it with \(method); use an origin-form target such as '/'")
            }
            path = "*"
            return
        }
        var pathStart = t.startIndex
        if t.first != UInt8(ascii: "/") {
            guard let authorityStart = Self.absoluteFormAuthorityStart(t) else {
                throw .badRequest("expected a request-target in origin-form ('/path?query') or absolute-form ('http://host/path'), found \(ByteClass.describe(t))")
            }
            pathStart = t[authorityStart...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? t.endIndex
            guard pathStart > authorityStart else {
                throw .badRequest("the absolute-form target \(ByteClass.describe(t)) has an empty authority; expected 'scheme://host/path'")
            }
        }
        let question = t[pathStart...].firstIndex(of: UInt8(ascii: "?")) ?? t.endIndex
        path = pathStart == question ? "/" : String(decoding: t[pathStart..<question], as: UTF8.self)
        query = question == t.endIndex ? nil : String(decoding: t[(question + 1)...], as: UTF8.self)
    }

    /// For "scheme://..." (scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )) the index after "//".
    static func absoluteFormAuthorityStart(_ t: ArraySlice<UInt8>) -> Int? {
        guard let first = t.first, ByteClass.isAlpha(first),
              let colon = t.firstIndex(of: UInt8(ascii: ":")),
              t[t.startIndex..<colon].allSatisfy({ ByteClass.isAlpha($0) || ByteClass.isDigit($0) || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }),
              t[(colon + 1)...].starts(with: "//".utf8) else { return nil }
        return colon + 3
    }

    /// uri-host [ ":" port ] (RFC 3986 §3.2): a bracketed IP literal or a reg-name / IPv4 address,
    /// then optional digits. With `requirePort` (CONNECT) the port must be there.
    static func isValidAuthority(_ a: ArraySlice<UInt8>, requirePort: Bool) -> Bool {
        var hostEnd = a.endIndex
        if a.first == UInt8(ascii: "[") {
            guard let close = a.firstIndex(of: UInt8(ascii: "]")), close > a.startIndex + 1,
                  a[(a.startIndex + 1)..<close].allSatisfy({ ByteClass.hexValue($0) != nil || ByteClass.isAlpha($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "~") })
            else { return false }
            hostEnd = close + 1
            guard hostEnd == a.endIndex || a[hostEnd] == UInt8(ascii: ":") else { return false }
        } else {
            hostEnd = a.firstIndex(of: UInt8(ascii: ":")) ?? a.endIndex
            guard a[a.startIndex..<hostEnd].allSatisfy(isRegNameByte) else { return false }
            if requirePort && hostEnd == a.startIndex { return false }
        }
        if hostEnd == a.endIndex { return !requirePort }
        let port = a[(hostEnd + 1)...]
        if requirePort && port.isEmpty { return false }
        return port.count <= 5 && port.allSatisfy(ByteClass.isDigit)
    }

    /// unreserved / pct-encoded / sub-delims (RFC 3986 §3.2.2 reg-name).
    static func isRegNameByte(_ b: UInt8) -> Bool {
        if ByteClass.isAlpha(b) || ByteClass.isDigit(b) { return true }
        switch b {
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"),
             UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
             UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
             UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }
}

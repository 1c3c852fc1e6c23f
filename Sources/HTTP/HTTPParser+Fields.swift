// Header fields (RFC 9112 §5, RFC 9110 §5) and what the header section decides once it is complete:
// the Host check, the body's framing (§6.3, strictly: any ambiguity that could let two parsers see
// different message boundaries is refused), persistence (§9.3) and expectations (RFC 9110 §10.1.1).
// The values of the fields that decide these are kept as raw bytes while the section streams in.

/// The request being parsed, from its request line to the end of its header section.
struct RequestHead: Sendable {
    var method = ""
    var target = ""
    var path = ""
    var query: String?
    var version = HTTPVersion.http11
    var headers = HTTPHeaders()

    var hostValues: [[UInt8]] = []
    var contentLengthValues: [[UInt8]] = []
    var transferEncodingValues: [[UInt8]] = []
    var connectionValues: [[UInt8]] = []
    var expectValues: [[UInt8]] = []

    /// Set by `decideFraming`.
    var keepAlive = true
    var expectsContinue = false

    enum Framing: Equatable { case none, length(Int), chunked }

    /// Splits a field line into a token name and a value trimmed of OWS, refusing what RFC 9112 §5
    /// refuses: whitespace before the colon, a name that is no token, control characters in the value.
    static func parseField(_ line: [UInt8], what: String) throws(HTTPParseError) -> (name: ArraySlice<UInt8>, value: ArraySlice<UInt8>) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            throw .badRequest("expected a \(what) field 'name: value', found no colon in \(ByteClass.describe(line))")
        }
        let name = line[..<colon]
        if name.isEmpty {
            throw .badRequest("expected a \(what) field name before the colon, found none in \(ByteClass.describe(line))")
        }
        if let last = name.last, ByteClass.isWhitespace(last) {
            throw .badRequest("whitespace between a \(what) field name and its colon is not allowed (RFC 9112 §5.1), found \(ByteClass.describe(line))")
        }
        if let bad = name.first(where: { !ByteClass.isTchar($0) }) {
            throw .badRequest("a \(what) field name must be a token, found \(ByteClass.describe(byte: bad)) in \(ByteClass.describe(name))")
        }
        let value = ByteClass.trimmed(line[(colon + 1)...])
        if let bad = value.first(where: { !ByteClass.isFieldValueByte($0) }) {
            throw .badRequest("the value of the \(what) field \(ByteClass.describe(name)) contains \(ByteClass.describe(byte: bad)); control characters are not allowed in field values")
        }
        return (name, value)
    }

    mutating func addField(name: ArraySlice<UInt8>, value: ArraySlice<UInt8>) {
        // Values are decoded as UTF-8 (invalid sequences become U+FFFD); the raw bytes of the fields
        // that decide framing are kept as they came.
        headers.add(String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
        switch name.count {
        case 4 where ByteClass.equalsIgnoringCase(name, "host"): hostValues.append(Array(value))
        case 6 where ByteClass.equalsIgnoringCase(name, "expect"): expectValues.append(Array(value))
        case 10 where ByteClass.equalsIgnoringCase(name, "connection"): connectionValues.append(Array(value))
        case 14 where ByteClass.equalsIgnoringCase(name, "content-length"): contentLengthValues.append(Array(value))
        case 17 where ByteClass.equalsIgnoringCase(name, "transfer-encoding"): transferEncodingValues.append(Array(value))
        default: break
        }
    }

    /// Checks the header section as a whole and decides how the body is framed. Sets `keepAlive` and
    /// `expectsContinue`. The length is checked against the request's body limit by the caller,
    /// which decides that limit only for a request that has a body.
    mutating func decideFraming() throws(HTTPParseError) -> Framing {
        if hostValues.count > 1 {
            throw .badRequest("found \(hostValues.count) Host fields; send exactly one")
        }
        if version == .http11 && hostValues.isEmpty {
            throw .badRequest("an HTTP/1.1 request must carry a Host field (RFC 9112 §3.2), found none; send e.g. 'Host: localhost'")
        }
        if let host = hostValues.first, !host.isEmpty, !Self.isValidAuthority(host[...], requirePort: false) {
            throw .badRequest("expected a Host value 'host[:port]', found \(ByteClass.describe(host))")
        }

        let framing: Framing
        if !transferEncodingValues.isEmpty {
            if !contentLengthValues.isEmpty {
                throw .badRequest("found both Transfer-Encoding and Content-Length, which request smuggling exploits (RFC 9112 §6.3); send only one")
            }
            if version == .http10 {
                throw .badRequest("found Transfer-Encoding in an HTTP/1.0 request, which has no chunked encoding; send Content-Length")
            }
            let codings = transferEncodingValues.flatMap { ByteClass.listElements($0[...]) }.filter { !$0.isEmpty }
            if codings.isEmpty {
                throw .badRequest("expected a transfer coding in Transfer-Encoding, found an empty value")
            }
            guard codings.count == 1, ByteClass.equalsIgnoringCase(codings[0], "chunked") else {
                let all = transferEncodingValues.map { ByteClass.describe($0) }.joined(separator: ", ")
                throw HTTPParseError(status: 501, message: "unsupported Transfer-Encoding \(all); only 'chunked' alone is implemented")
            }
            framing = .chunked
        } else if !contentLengthValues.isEmpty {
            let length = try Self.contentLength(contentLengthValues)
            framing = length == 0 ? .none : .length(length)
        } else {
            framing = .none
        }

        var close = false, keep = false
        for element in connectionValues.flatMap({ ByteClass.listElements($0[...]) }) {
            if ByteClass.equalsIgnoringCase(element, "close") { close = true }
            if ByteClass.equalsIgnoringCase(element, "keep-alive") { keep = true }
        }
        keepAlive = version == .http11 ? !close : keep && !close

        var wantsContinue = false
        for element in expectValues.flatMap({ ByteClass.listElements($0[...]) }) where !element.isEmpty {
            guard ByteClass.equalsIgnoringCase(element, "100-continue") else {
                throw HTTPParseError(status: 417, message: "unsupported expectation \(ByteClass.describe(element)) in Expect; only '100-continue' is supported")
            }
            wantsContinue = true
        }
        // RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored.
        expectsContinue = wantsContinue && version == .http11 && framing != .none
        return framing
    }

    /// The one length the Content-Length fields give. Each field may be a list (RFC 9110 §8.6);
    /// identical values are merged, differing ones refused. Saturates at Int.max (refused by the
    /// body limit anyway).
    static func contentLength(_ fields: [[UInt8]]) throws(HTTPParseError) -> Int {
        var length: Int?
        for field in fields {
            for element in ByteClass.listElements(field[...]) {
                guard !element.isEmpty, element.allSatisfy(ByteClass.isDigit) else {
                    throw .badRequest("Content-Length must be digits only, found \(ByteClass.describe(field))")
                }
                var n = 0
                for d in element {
                    let digit = Int(d - 0x30)
                    n = n > (Int.max - digit) / 10 ? Int.max : n * 10 + digit
                }
                if let length, length != n {
                    throw .badRequest("found differing Content-Length values \(length) and \(n == Int.max ? ByteClass.describe(element) : String(n)); send one length")
                }
                length = n
            }
        }
        return length ?? 0
    }

    func request(body: [UInt8]) -> HTTPRequest {
        HTTPRequest(method: method, target: target, path: path, query: query, version: version,
                    headers: headers, body: body, keepAlive: keepAlive)
    }
}

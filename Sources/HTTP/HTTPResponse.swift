// Writing responses (RFC 9112 §4, §6): a status line, the caller's fields, then the framing fields,
// which the writer owns: Content-Length for a complete body, Transfer-Encoding: chunked for a stream,
// Connection: close when the connection ends after this response (and Connection: keep-alive for an
// HTTP/1.0 client that keeps it). Framing fields the caller put in `headers` are dropped so that the
// framing is never stated twice. Field names and values are cleaned of bytes that could split the
// response (CR, LF, NUL), so a value that came from outside cannot inject fields.

public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders = .init(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// "HTTP/1.1 100 Continue\r\n\r\n", the interim answer to "Expect: 100-continue".
    public static let continueBytes: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// The whole response with a Content-Length. Statuses that cannot have content (1xx, 204, 304)
    /// get neither Content-Length nor body. `requestVersion` .http10 with `keepAlive` adds
    /// "Connection: keep-alive", which HTTP/1.0 clients need to keep the connection.
    public func serialized(keepAlive: Bool, requestVersion: HTTPVersion = .http11) -> [UInt8] {
        let hasContent = !((100...199).contains(status) || status == 204 || status == 304)
        var out = Self.head(status: status, headers: headers, framing: hasContent ? "Content-Length: \(body.count)" : nil,
                            keepAlive: keepAlive, requestVersion: requestVersion, extra: body.count)
        if hasContent { out += body }
        return out
    }

    /// The status line and fields of a response whose body follows in pieces. With `chunked`, the
    /// body must be sent as `ChunkedEncoding.chunk(...)` pieces ending with `ChunkedEncoding.last`.
    /// Without it (e.g. for an HTTP/1.0 client, which knows no chunked encoding), the body runs until
    /// the connection closes unless `headers` carries a Content-Length, so pass `keepAlive: false`.
    public static func head(status: Int, headers: HTTPHeaders, chunked: Bool, keepAlive: Bool,
                            requestVersion: HTTPVersion = .http11) -> [UInt8] {
        var headers = headers
        var framing: String?
        if chunked {
            headers.remove("Content-Length")
            framing = "Transfer-Encoding: chunked"
        } else if let length = headers["Content-Length"] {
            headers.remove("Content-Length")
            framing = "Content-Length: \(length)"
        }
        return head(status: status, headers: headers, framing: framing, keepAlive: keepAlive,
                    requestVersion: requestVersion, extra: 0)
    }

    static func head(status: Int, headers: HTTPHeaders, framing: String?, keepAlive: Bool,
                     requestVersion: HTTPVersion, extra: Int) -> [UInt8] {
        // A status outside 100...999 cannot be written as three digits: our own bug, not input.
        precondition((100...999).contains(status), "HTTP status \(status) is not three digits")
        var out: [UInt8] = []
        out.reserveCapacity(128 + extra + headers.count * 32)
        out += "HTTP/1.1 \(status) \(reasonPhrase(status))\r\n".utf8
        for (name, value) in headers {
            if isFramingField(name) { continue }
            out += name.utf8.map { ByteClass.isTchar($0) ? $0 : UInt8(ascii: "-") }
            out += ": ".utf8
            out += value.utf8.map(cleanValueByte)
            out += "\r\n".utf8
        }
        if let framing { out += framing.utf8.map(cleanValueByte); out += "\r\n".utf8 }
        if !keepAlive {
            out += "Connection: close\r\n".utf8
        } else if requestVersion == .http10 {
            out += "Connection: keep-alive\r\n".utf8
        }
        out += "\r\n".utf8
        return out
    }

    static func cleanValueByte(_ b: UInt8) -> UInt8 {
        b == ByteClass.cr || b == ByteClass.lf || b == 0 ? ByteClass.sp : b
    }

    static func isFramingField(_ name: String) -> Bool {
        HTTPHeaders.namesEqual(name, "Content-Length") || HTTPHeaders.namesEqual(name, "Transfer-Encoding")
            || HTTPHeaders.namesEqual(name, "Connection")
    }

    /// The reason phrase for a status (RFC 9110 §15), or "" for one without a registered phrase.
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 203: "Non-Authoritative Information"
        case 204: "No Content"
        case 205: "Reset Content"
        case 206: "Partial Content"
        case 300: "Multiple Choices"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 402: "Payment Required"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 407: "Proxy Authentication Required"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 421: "Misdirected Request"
        case 422: "Unprocessable Content"
        case 425: "Too Early"
        case 426: "Upgrade Required"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        case 507: "Insufficient Storage"
        default: ""
        }
    }
}

// multipart/form-data bodies (RFC 7578 over RFC 2046 §5.1), as `curl -F name=@file` and browsers
// send them: a strict parser over a whole body already in memory (the HTTP parser bounded its size).
//
//   body     = dash-boundary padding CRLF part *( CRLF dash-boundary padding CRLF part )
//              CRLF dash-boundary "--" padding [ CRLF ]
//   part     = *( field CRLF ) CRLF content        (content never contains CRLF dash-boundary)
//   padding  = *( SP / HTAB )                      (RFC 2046's transport-padding)
//
// Where RFC 2046 leaves room, this parser refuses rather than guesses, as the request parser does:
// no preamble before the first boundary and no epilogue after the closing one (beyond one CRLF):
// no client we serve sends them, and bytes nobody reads are where two parsers disagree; lines end
// in CRLF; every part carries `Content-Disposition: form-data; name="..."`; a name appears once;
// at most `maxParts` parts, each with at most `maxPartHeaderBytes` of fields. A body cut short (no
// closing boundary) is refused, never taken as complete. Part contents are slices of the body: no
// copy however large they are.

/// One part of a multipart/form-data body.
public struct MultipartPart: Sendable, Equatable {
    /// The `name` parameter of its Content-Disposition: the form field it fills.
    public var name: String
    /// The `filename` parameter, when the part is a file (`curl -F name=@path` sends the path's last
    /// component).
    public var filename: String?
    /// Its fields (Content-Disposition, Content-Type, ...), as sent.
    public var headers: HTTPHeaders
    /// Its content: a slice of the body it came from.
    public var content: ArraySlice<UInt8>
}

/// Why a multipart body was refused: what was expected and what was found.
public struct MultipartError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

public enum Multipart {
    /// Most parts a body may have unless the caller says otherwise.
    public static let defaultMaxParts = 16
    /// Longest field section of one part (its lines with their CRLFs).
    public static let maxPartHeaderBytes = 8 << 10

    /// The boundary of a `Content-Type: multipart/form-data; boundary=...` value; nil when the value
    /// is another media type. A multipart/form-data type without a valid boundary throws.
    public static func boundary(contentType: String) throws(MultipartError) -> String? {
        let pieces = contentType.split(separator: ";", omittingEmptySubsequences: false).map { $0.trimmingWhitespace() }
        guard let type = pieces.first, type.lowercased() == "multipart/form-data" else { return nil }
        var boundary: String?
        for p in pieces.dropFirst() where !p.isEmpty {
            guard let eq = p.firstIndex(of: "=") else { continue }
            guard p[..<eq].trimmingWhitespace().lowercased() == "boundary" else { continue }
            var value = Substring(p[p.index(after: eq)...].trimmingWhitespace())
            if value.hasPrefix("\"") {
                guard value.count >= 2, value.hasSuffix("\"") else {
                    throw MultipartError("the boundary parameter of Content-Type opens a quote it does not close: \(contentType)")
                }
                value = value.dropFirst().dropLast()
            }
            boundary = String(value)
        }
        guard let boundary else {
            throw MultipartError("Content-Type multipart/form-data needs a boundary parameter (multipart/form-data; boundary=...), found \(contentType)")
        }
        try checkBoundary(boundary)
        return boundary
    }

    /// RFC 2046 §5.1.1: 1 to 70 characters from a small set; a space, but not at the end.
    static func checkBoundary(_ b: String) throws(MultipartError) {
        let allowed = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ".utf8)
        guard (1...70).contains(b.utf8.count), b.utf8.allSatisfy(allowed.contains), b.utf8.last != UInt8(ascii: " ") else {
            throw MultipartError("the multipart boundary must be 1 to 70 letters, digits or '()+_,-./:=? (not ending in a space), found \"\(b)\"")
        }
    }

    /// The parts of `body`, in order. Throws at the first thing that is not strict
    /// multipart/form-data, with where it was found.
    public static func parse(_ body: [UInt8], boundary: String, maxParts: Int = defaultMaxParts) throws(MultipartError) -> [MultipartPart] {
        try checkBoundary(boundary)
        let dash = Array(("--" + boundary).utf8)
        // Every boundary after the first is preceded by the CRLF that ends the content before it.
        let delimiter = [ByteClass.cr, ByteClass.lf] + dash
        guard body.starts(with: dash) else {
            throw MultipartError("expected the body to start with the boundary line --\(boundary), found \(ByteClass.describe(Array(body.prefix(32)))); a preamble is not accepted")
        }
        var i = dash.count
        var parts: [MultipartPart] = []
        var names = Set<String>()
        while true {
            // After a boundary: "--" closes the body; otherwise padding, CRLF, and a part.
            if body[i...].starts(with: [UInt8(ascii: "-"), UInt8(ascii: "-")]) {
                i += 2
                skipPadding(body, &i)
                if i == body.count || (i + 2 == body.count && body[i] == ByteClass.cr && body[i + 1] == ByteClass.lf) { return parts }
                throw MultipartError("expected the end of the body after the closing boundary --\(boundary)--, found \(ByteClass.describe(Array(body[i...].prefix(32)))) at byte \(i); an epilogue is not accepted")
            }
            skipPadding(body, &i)
            guard i + 2 <= body.count, body[i] == ByteClass.cr, body[i + 1] == ByteClass.lf else {
                throw MultipartError(i >= body.count
                    ? "the body ends right after a boundary line; the closing boundary --\(boundary)-- is missing (was the upload cut short?)"
                    : "expected CRLF after the boundary --\(boundary), found \(ByteClass.describe(Array(body[i...].prefix(16)))) at byte \(i)")
            }
            i += 2
            if parts.count == maxParts {
                throw MultipartError("more than \(maxParts) parts in the multipart body; send only the fields this endpoint takes")
            }
            let headers = try partHeaders(body, &i)
            let (name, filename) = try disposition(headers)
            guard names.insert(name).inserted else {
                throw MultipartError("the part \"\(name)\" appears twice in the multipart body; send each field once")
            }
            guard let end = find(delimiter, in: body, from: i) else {
                throw MultipartError("the part \"\(name)\" never ends: the body stops before the boundary after it (--\(boundary), and the closing boundary --\(boundary)-- at the end); was the upload cut short?")
            }
            parts.append(MultipartPart(name: name, filename: filename, headers: headers, content: body[i..<end]))
            i = end + delimiter.count
        }
    }

    static func skipPadding(_ body: [UInt8], _ i: inout Int) {
        while i < body.count && (body[i] == ByteClass.sp || body[i] == ByteClass.ht) { i += 1 }
    }

    /// The field lines of a part up to the empty line; `i` ends after that line.
    static func partHeaders(_ body: [UInt8], _ i: inout Int) throws(MultipartError) -> HTTPHeaders {
        var headers = HTTPHeaders()
        let start = i
        while true {
            guard let eol = find([ByteClass.cr, ByteClass.lf], in: body, from: i, limit: start + maxPartHeaderBytes) else {
                throw MultipartError(body.count - start >= maxPartHeaderBytes
                    ? "a part's fields are longer than \(maxPartHeaderBytes) bytes (or never end in an empty line)"
                    : "the body ends inside a part's fields; the closing boundary is missing (was the upload cut short?)")
            }
            let line = Array(body[i..<eol])
            i = eol + 2
            if line.isEmpty { return headers }
            if let bad = line.first(where: { $0 == ByteClass.lf || $0 == ByteClass.cr }) {
                throw MultipartError("a part's field line contains \(ByteClass.describe(byte: bad)); lines end in CRLF")
            }
            do {
                let (name, value) = try RequestHead.parseField(line, what: "part")
                headers.add(String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
            } catch {
                throw MultipartError(error.message)
            }
        }
    }

    /// The `name` and `filename` of a part's `Content-Disposition: form-data; name="..."`.
    static func disposition(_ headers: HTTPHeaders) throws(MultipartError) -> (name: String, filename: String?) {
        let values = headers.values("Content-Disposition")
        guard values.count == 1, let value = values.first else {
            throw MultipartError("every part needs one Content-Disposition field (form-data; name=\"...\"), found \(values.count)")
        }
        var rest = Substring(value)
        let rawType = rest.prefix { $0 != ";" }
        guard rawType.trimmingWhitespace().lowercased() == "form-data" else {
            throw MultipartError("expected Content-Disposition: form-data; name=\"...\", found \(value)")
        }
        rest = rest.dropFirst(rawType.count)
        var params: [String: String] = [:]
        while !rest.isEmpty {
            guard rest.first == ";" else { throw MultipartError("expected ';' between Content-Disposition parameters, found \(value)") }
            rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" }
            let key = rest.prefix { $0 != "=" && $0 != ";" }.trimmingWhitespace().lowercased()
            rest = rest.dropFirst(rest.prefix { $0 != "=" && $0 != ";" }.count)
            guard rest.first == "=" else { throw MultipartError("expected key=value parameters in Content-Disposition, found \(value)") }
            rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" }
            var v = ""
            if rest.first == "\"" {
                // A quoted-string; a backslash quotes the next character.
                rest = rest.dropFirst()
                var closed = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if c == "\"" { closed = true; break }
                    if c == "\\", let next = rest.first { v.append(next); rest = rest.dropFirst() } else { v.append(c) }
                }
                guard closed else { throw MultipartError("a quoted Content-Disposition parameter is not closed in \(value)") }
            } else {
                v = String(rest.prefix { $0 != ";" }).trimmingWhitespace()
                rest = rest.dropFirst(rest.prefix { $0 != ";" }.count)
            }
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard params.updateValue(v, forKey: key) == nil else {
                throw MultipartError("the Content-Disposition parameter \(key) appears twice in \(value)")
            }
        }
        guard let name = params["name"] else {
            throw MultipartError("expected a name parameter in Content-Disposition (form-data; name=\"...\"), found \(value)")
        }
        return (name, params["filename"])
    }

    /// The offset of the first `needle` in `hay[from..<limit]`.
    static func find(_ needle: [UInt8], in hay: [UInt8], from: Int, limit: Int = .max) -> Int? {
        let end = min(hay.count, limit) - needle.count
        guard let first = needle.first, from <= end else { return nil }
        return hay.withUnsafeBufferPointer { h -> Int? in
            needle.withUnsafeBufferPointer { n -> Int? in
                var k = from
                while k <= end {
                    // Skip to the next candidate first byte, then compare the rest.
                    guard h[k] == first else { k += 1; continue }
                    var j = 1
                    while j < n.count && h[k + j] == n[j] { j += 1 }
                    if j == n.count { return k }
                    k += 1
                }
                return nil
            }
        }
    }
}

private extension StringProtocol {
    func trimmingWhitespace() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

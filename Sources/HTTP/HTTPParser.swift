// The HTTP/1.1 request parser (RFC 9112): a state machine over bytes that the server feeds as they
// arrive, in pieces of any size, and that answers with complete requests in arrival order (several
// per feed when the client pipelines), a "send 100 Continue now" signal, or one fatal error.
//
// Why a hand-written state machine: the server runs on one event loop thread and must never block or
// buffer without bound. Every byte is looked at once: line states copy runs of bytes up to the next
// CR or LF into `line` (bounded by the limit of the line's kind, checked before copying, so an
// over-long line fails as it streams in), body states copy whole runs into `body`. The outcome
// depends only on the bytes, never on how they were split into feeds; the tests check this for every
// split point.
//
// Decisions where the RFC leaves a choice:
// - Lines must end in CRLF. A bare LF (which RFC 9112 §2.2 lets a recipient accept) or a bare CR is
//   rejected with 400: accepting them is a classic source of request-smuggling disagreements.
// - Up to `maxLeadingEmptyLines` empty lines before a request line are skipped (§2.2).
// - After a request that does not keep the connection alive, later bytes are ignored (§9.6: the
//   server MUST NOT process further requests on that connection); `isFinished` tells.
// - The request line is checked in two steps: the method's bytes as they arrive (so binary garbage,
//   say a TLS handshake, is refused at its first byte rather than after 8 KiB), the rest once the
//   line is complete.
// - The body limit is decided per request, after its header section and before any body byte is
//   read: the caller's `bodyLimit` closure sees the head (a route may take larger bodies from some
//   callers) and the parser enforces what it answers, on Content-Length at once and on a chunked
//   body as it grows. The parser knows nothing of routes or callers.

public enum HTTPParserEvent: Sendable, Equatable {
    /// A complete request. Requests come in arrival order; one feed may complete several.
    case request(HTTPRequest)
    /// The header section asked for "Expect: 100-continue" (HTTP/1.1) and a body follows: write
    /// `HTTPResponse.continueBytes` now. Comes once per such request, right after its header section
    /// and before its `.request` (which may follow in the same feed if the client did not wait).
    case continueNeeded
    /// Fatal: answer with `error.status` and close the connection. Nothing follows it.
    case error(HTTPParseError)
}

public struct HTTPParser: Sendable {
    /// Empty lines tolerated (and skipped) before a request line, per RFC 9112 §2.2.
    public static let maxLeadingEmptyLines = 4

    public let limits: HTTPLimits

    enum State: Sendable {
        case requestLine
        case headerLines
        /// Content-Length body; `remaining` bytes to come.
        case fixedBody
        case chunkSizeLine
        /// Chunk data; `remaining` bytes to come.
        case chunkData
        /// The CRLF after chunk data; `sawCR` says whether its CR has been seen.
        case chunkDataEnd
        case trailerLines
        /// A request closed the connection; bytes are ignored.
        case finished
        case failed
    }

    var state = State.requestLine
    /// The current line without its terminator. Bounded by the limit of the state's line kind.
    var line: [UInt8] = []
    /// The line's CR has been seen and its LF has not (the CR was the last byte of a feed).
    var sawCR = false
    /// Empty lines skipped before the current request line.
    var emptyLinesSkipped = 0
    /// Request line: a SP has been seen, so the method's bytes have all been checked.
    var methodEnded = false
    /// The request being parsed: its request line, fields and framing.
    var head = RequestHead()
    /// Bytes of the header section so far (field lines with CRLF, then trailers).
    var headerBytes = 0
    var headerCount = 0
    var body: [UInt8] = []
    /// Body or chunk-data bytes still to come.
    var remaining = 0
    /// The body limit of the request being parsed (decided at the end of its header section).
    var bodyLimit: HTTPBodyLimit

    public init(limits: HTTPLimits = .init()) {
        self.limits = limits
        bodyLimit = limits.defaultBodyLimit
    }

    /// True between requests with nothing of the next one buffered: a timeout now should close the
    /// connection silently. Also true once `isFinished` (there is no next request).
    public var isIdle: Bool {
        switch state {
        case .requestLine: return line.isEmpty && !sawCR
        case .finished: return true
        default: return false
        }
    }

    /// A fatal error has been reported; the parser ignores everything from now on.
    public var hasFailed: Bool {
        if case .failed = state { return true }
        return false
    }

    /// The last request did not keep the connection alive; later bytes are ignored. Close the
    /// connection after writing that request's response.
    public var isFinished: Bool {
        if case .finished = state { return true }
        return false
    }

    /// The error to answer when a read times out in the middle of a request: 408.
    public static func timeoutError() -> HTTPParseError {
        HTTPParseError(status: 408, message: "the request did not arrive in time; send it whole without pausing")
    }

    /// A read timeout: nil when idle (close silently), otherwise the 408 to answer, after which the
    /// parser counts as failed.
    public mutating func timeout() -> HTTPParseError? {
        if isIdle || hasFailed { return nil }
        state = .failed
        return Self.timeoutError()
    }

    public mutating func feed(_ bytes: [UInt8]) -> [HTTPParserEvent] {
        bytes.withUnsafeBytes { feed($0) }
    }

    /// Parses with `limits.maxBodyBytes` as every request's body limit.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [HTTPParserEvent] {
        feed(bytes, bodyLimit: { _ in nil })
    }

    /// Parses, asking `bodyLimit` for the body limit of each request that has a body, once its header
    /// section is complete and checked and before any of its body is read. The request it sees has
    /// an empty body; nil keeps `limits.maxBodyBytes`. A body past the answer gets 413 naming its
    /// `setting`; for a Content-Length, before any body byte is read.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, bodyLimit decide: (HTTPRequest) -> HTTPBodyLimit?) -> [HTTPParserEvent] {
        var events: [HTTPParserEvent] = []
        var i = 0
        do throws(HTTPParseError) {
            while i < bytes.count {
                switch state {
                case .failed, .finished:
                    return events
                case .requestLine:
                    if try takeLine(bytes, &i, .requestLine) { try endRequestLine() }
                case .headerLines:
                    if try takeLine(bytes, &i, .field) { try endFieldLine(trailer: false, &events, decide) }
                case .trailerLines:
                    if try takeLine(bytes, &i, .field) { try endFieldLine(trailer: true, &events, decide) }
                case .chunkSizeLine:
                    if try takeLine(bytes, &i, .chunkSize) { try endChunkSizeLine() }
                case .fixedBody, .chunkData:
                    let n = min(remaining, bytes.count - i)
                    body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + n)]))
                    i += n
                    remaining -= n
                    if remaining == 0 {
                        if case .fixedBody = state { finishRequest(&events) } else { state = .chunkDataEnd }
                    }
                case .chunkDataEnd:
                    let b = bytes[i]
                    guard b == (sawCR ? ByteClass.lf : ByteClass.cr) else {
                        throw .badRequest("expected CRLF after the chunk data (the chunk size said how long it is), found \(ByteClass.describe(byte: b))")
                    }
                    i += 1
                    if sawCR { sawCR = false; state = .chunkSizeLine } else { sawCR = true }
                }
            }
        } catch {
            state = .failed
            events.append(.error(error))
        }
        return events
    }

    enum LineKind { case requestLine, field, chunkSize }

    /// Moves the bytes of the current line from `p[i...]` into `line`, and returns true when the line
    /// is complete (its CRLF consumed, `i` after it). A line longer than its kind allows fails here,
    /// before its bytes are copied.
    mutating func takeLine(_ p: UnsafeRawBufferPointer, _ i: inout Int, _ kind: LineKind) throws(HTTPParseError) -> Bool {
        if sawCR {
            guard p[i] == ByteClass.lf else { throw bareCR(found: p[i]) }
            i += 1
            sawCR = false
            return true
        }
        let start = i
        var j = i
        while j < p.count {
            let b = p[j]
            if b == ByteClass.cr || b == ByteClass.lf { break }
            j += 1
        }
        let room = roomLeft(kind)
        if kind == .requestLine && !methodEnded {
            try checkMethodBytes(p, from: start, to: start + max(0, min(j - start, room)))
        }
        if j - start > room { throw tooLong(kind) }
        line.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[start..<j]))
        i = j
        if j == p.count { return false }
        if p[j] == ByteClass.lf {
            throw .badRequest("a line ended in a bare LF; HTTP/1.1 lines must end in CRLF (\\r\\n)")
        }
        i += 1
        if i == p.count { sawCR = true; return false }
        guard p[i] == ByteClass.lf else { throw bareCR(found: p[i]) }
        i += 1
        return true
    }

    /// How many more bytes the current line may take before it breaks its limit (may be negative).
    func roomLeft(_ kind: LineKind) -> Int {
        switch kind {
        case .requestLine: return limits.maxRequestLineBytes - line.count
        // The CRLF this line will end with counts too.
        case .field: return limits.maxHeaderBytes - headerBytes - 2 - line.count
        case .chunkSize: return limits.maxChunkLineBytes - line.count
        }
    }

    func tooLong(_ kind: LineKind) -> HTTPParseError {
        switch kind {
        case .requestLine:
            return HTTPParseError(status: 414, message: "the request line is longer than \(limits.maxRequestLineBytes) bytes (maxRequestLineBytes); shorten the URL or send data in the body")
        case .field:
            return HTTPParseError(status: 431, message: "the header section is longer than \(limits.maxHeaderBytes) bytes (maxHeaderBytes, trailers included); send fewer or shorter fields")
        case .chunkSize:
            return .badRequest("a chunk-size line is longer than \(limits.maxChunkLineBytes) bytes (maxChunkLineBytes); chunk extensions that long are refused")
        }
    }

    func bareCR(found b: UInt8) -> HTTPParseError {
        .badRequest("expected LF after CR, found \(ByteClass.describe(byte: b)); a CR may only appear as part of a CRLF line ending")
    }

    /// Checks the method's bytes of the request line as they stream in: token characters up to the
    /// first SP. `from..<to` are the bytes of this feed that fit in the line.
    mutating func checkMethodBytes(_ p: UnsafeRawBufferPointer, from: Int, to: Int) throws(HTTPParseError) {
        var k = from
        while k < to {
            let b = p[k]
            if b == ByteClass.sp { methodEnded = true; return }
            if !ByteClass.isTchar(b) {
                let offset = line.count + k - from
                var message = "expected a request line 'METHOD SP request-target SP HTTP/1.1'; the method must be a token, found \(ByteClass.describe(byte: b)) at byte \(offset)"
                if offset == 0 && b == 0x16 { message += " (this looks like a TLS handshake: connect without TLS)" }
                throw .badRequest(message)
            }
            k += 1
        }
    }

    mutating func endRequestLine() throws(HTTPParseError) {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            emptyLinesSkipped += 1
            if emptyLinesSkipped > Self.maxLeadingEmptyLines {
                throw .badRequest("expected a request line, found more than \(Self.maxLeadingEmptyLines) empty lines")
            }
            return
        }
        head = RequestHead()
        try head.parseRequestLine(line)
        state = .headerLines
    }

    mutating func endFieldLine(trailer: Bool, _ events: inout [HTTPParserEvent],
                               _ decide: (HTTPRequest) -> HTTPBodyLimit?) throws(HTTPParseError) {
        defer { line.removeAll(keepingCapacity: true) }
        headerBytes += line.count + 2
        if line.isEmpty {
            if trailer { finishRequest(&events) } else { try endHead(&events, decide) }
            return
        }
        let what = trailer ? "trailer" : "header"
        if ByteClass.isWhitespace(line[0]) {
            throw .badRequest("a \(what) line starts with whitespace (obsolete line folding or whitespace before the first field); put each field on one line")
        }
        headerCount += 1
        if headerCount > limits.maxHeaderCount {
            throw HTTPParseError(status: 431, message: "more than \(limits.maxHeaderCount) header fields (maxHeaderCount, trailers included); send fewer fields")
        }
        let (name, value) = try RequestHead.parseField(line, what: what)
        if !trailer { head.addField(name: name, value: value) }
    }

    /// The header section is complete: decide framing and the body limit, then wait for the body or
    /// finish.
    mutating func endHead(_ events: inout [HTTPParserEvent], _ decide: (HTTPRequest) -> HTTPBodyLimit?) throws(HTTPParseError) {
        let framing = try head.decideFraming()
        bodyLimit = framing == .none ? limits.defaultBodyLimit : decide(head.request(body: [])) ?? limits.defaultBodyLimit
        if case .length(let n) = framing, n > bodyLimit.bytes {
            // Refused before the 100 Continue and before any body byte is read.
            throw HTTPParseError(status: 413, message: "Content-Length \(n == Int.max ? "beyond \(Int.max)" : String(n)) exceeds the body limit of \(bodyLimit.bytes) bytes (\(bodyLimit.setting)); send a smaller body")
        }
        if head.expectsContinue { events.append(.continueNeeded) }
        switch framing {
        case .none:
            finishRequest(&events)
        case .length(let n):
            remaining = n
            // Grow as bytes come rather than trusting the announced length with memory up front.
            body.reserveCapacity(min(n, 64 << 10))
            state = .fixedBody
        case .chunked:
            state = .chunkSizeLine
        }
    }

    mutating func endChunkSizeLine() throws(HTTPParseError) {
        defer { line.removeAll(keepingCapacity: true) }
        let size = try Self.parseChunkSizeLine(line)
        if size == 0 {
            state = .trailerLines
            return
        }
        let room = bodyLimit.bytes - body.count
        if size > UInt64(max(0, room)) {
            throw HTTPParseError(status: 413, message: "the chunked body grows past \(bodyLimit.bytes) bytes (\(bodyLimit.setting)): \(body.count) bytes so far and a chunk of \(size); send a smaller body")
        }
        remaining = Int(size)
        state = .chunkData
    }

    mutating func finishRequest(_ events: inout [HTTPParserEvent]) {
        let request = head.request(body: body)
        events.append(.request(request))
        body = []
        head = RequestHead()
        headerBytes = 0
        headerCount = 0
        emptyLinesSkipped = 0
        methodEnded = false
        bodyLimit = limits.defaultBodyLimit
        state = request.keepAlive ? .requestLine : .finished
    }
}

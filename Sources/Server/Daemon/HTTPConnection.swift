// One client connection on the loop thread: bytes in through the strict HTTP parser, requests
// answered one at a time in arrival order (pipelining), responses out, with the timeouts and limits
// that keep a bad or slow client from holding resources:
//
// - idle keep-alive connection: closed quietly after `idleTimeout`;
// - a request that starts but does not finish within `readTimeout`: 408 and close;
// - a parse error: the status the parser chose (400, 413, 414, 431, 501, 505), then close;
// - pipelined requests beyond a small backlog: reading stops until the backlog drains;
// - a streaming response whose reader falls behind: the write buffer is bounded; past it the
//   sequence is paused in the engine, and a reader still stuck after `slowReaderTimeout` is cut off.

import Foundation
import HTTP

final class HTTPConnection {
    let id: UInt64
    let stream: UVConnection
    unowned let daemon: Daemon
    private var parser: HTTPParser
    private var backlog: [HTTPRequest] = []
    /// A parse error to answer once the requests before it have been answered.
    private var pendingError: HTTPParseError?
    private let timer: UVTimer
    private var slowTimer: UVTimer?
    /// The request being answered has not been fully written yet (e.g. a stream).
    private(set) var busy = false
    /// The engine request whose events stream to this connection, if any.
    var generationID: UInt64?
    private var closing = false
    /// The version of the request being answered: an HTTP/1.0 client gets no chunked encoding (a
    /// stream then ends by closing) and "Connection: keep-alive" when it asked for it.
    private var version = HTTPVersion.http11
    private var streamChunked = true
    private static let maxBacklog = 8

    init(id: UInt64, stream: UVConnection, daemon: Daemon) throws {
        self.id = id
        self.stream = stream
        self.daemon = daemon
        parser = HTTPParser(limits: daemon.httpLimits)
        timer = try UVTimer(loop: daemon.loop)
    }

    var isClosed: Bool { stream.isClosed }

    func start() {
        stream.onRead = { [unowned self] bytes in received(bytes) }
        stream.onEOF = { [unowned self] in peerClosed() }
        stream.onError = { [unowned self] _ in peerClosed() }
        stream.onClose = { [unowned self] in didClose() }
        stream.startReading()
        armTimer()
    }

    // MARK: Reading

    private func received(_ bytes: [UInt8]) {
        guard !closing else { return }
        for event in parser.feed(bytes) {
            switch event {
            case .request(let r):
                backlog.append(r)
            case .continueNeeded:
                // Only when this request is next: otherwise the client waits, as RFC 9110 allows.
                if !busy && backlog.isEmpty { stream.write(HTTPResponse.continueBytes) }
            case .error(let e):
                pendingError = e
            }
        }
        if backlog.count >= Self.maxBacklog || pendingError != nil { stream.stopReading() }
        armTimer()
        processNext()
    }

    private func peerClosed() {
        // The client went away: stop its generation (the engine frees the sequence) and close.
        closing = true
        daemon.connectionLost(self)
        stream.close()
    }

    private func didClose() {
        timer.close()
        slowTimer?.close()
        daemon.connectionClosed(self)
    }

    private func armTimer() {
        guard !closing else { return }
        let timeout = parser.isIdle && backlog.isEmpty && !busy ? daemon.idleTimeoutMS : daemon.readTimeoutMS
        timer.start(after: timeout) { [unowned self] in timedOut() }
    }

    private func timedOut() {
        if busy {          // answering: a stream may legitimately run long
            armTimer()
            return
        }
        if parser.isIdle && backlog.isEmpty {
            closing = true
            stream.close()
        } else {
            let error = parser.timeout() ?? HTTPParser.timeoutError()
            daemon.log(.info, "connection \(id): \(error)")
            send(error: error)
        }
    }

    // MARK: Answering

    private func processNext() {
        while !busy && !closing {
            if !backlog.isEmpty {
                let request = backlog.removeFirst()
                version = request.version
                busy = true
                daemon.handle(request, on: self)
            } else if let e = pendingError {
                pendingError = nil
                send(error: e)
            } else {
                if !stream.isClosed && !closing { stream.startReading() }
                break
            }
        }
        armTimer()
    }

    private func send(error e: HTTPParseError) {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        let body = OpenAIError(status: e.status, message: e.message, type: "invalid_request_error").body()
        daemon.metrics.requestFinished(endpoint: "(parse error)", status: e.status, adapter: "")
        busy = true
        finish(HTTPResponse(status: e.status, headers: h, body: body), keepAlive: false)
    }

    /// Writes a whole response and moves on to the next request (or closes).
    func finish(_ response: HTTPResponse, keepAlive: Bool) {
        guard !stream.isClosed else { return }
        stream.write(response.serialized(keepAlive: keepAlive && !closing, requestVersion: version))
        completeResponse(keepAlive: keepAlive)
    }

    /// Starts a streamed response (chunked transfer encoding).
    func startStream(status: Int, headers: HTTPHeaders, keepAlive: Bool) {
        streamChunked = version == .http11
        stream.write(HTTPResponse.head(status: status, headers: headers, chunked: streamChunked,
                                       keepAlive: keepAlive && streamChunked, requestVersion: version))
    }

    /// Writes one chunk of a streamed response; returns false once the connection is gone.
    @discardableResult
    func writeChunk(_ bytes: [UInt8]) -> Bool {
        guard !stream.isClosed, !bytes.isEmpty else { return !stream.isClosed }
        stream.write(streamChunked ? ChunkedEncoding.chunk(bytes) : bytes) { [weak self] _ in self?.wroteChunk() }
        checkBackPressure()
        return true
    }

    func endStream(keepAlive: Bool) {
        guard !stream.isClosed else { return }
        if streamChunked { stream.write(ChunkedEncoding.last) }
        completeResponse(keepAlive: keepAlive && streamChunked)
    }

    private func completeResponse(keepAlive: Bool) {
        busy = false
        generationID = nil
        stopSlowTimer()
        if !keepAlive || closing {
            closing = true
            stream.shutdownAndClose()
            return
        }
        processNext()
    }

    // MARK: Slow readers

    private var paused = false

    private func checkBackPressure() {
        guard !paused, stream.pendingWriteBytes > daemon.writeBufferBytes, let gid = generationID else { return }
        paused = true
        daemon.engine.setPaused(gid, true)
        if slowTimer == nil { slowTimer = try? UVTimer(loop: daemon.loop) }
        slowTimer?.start(after: daemon.slowReaderTimeoutMS) { [unowned self] in
            daemon.log(.notice, "connection \(id): reader stuck for \(daemon.slowReaderTimeoutMS) ms with \(stream.pendingWriteBytes) bytes unread; disconnecting")
            peerClosed()
        }
    }

    private func wroteChunk() {
        guard paused, stream.pendingWriteBytes <= daemon.writeBufferBytes / 2 else { return }
        paused = false
        stopSlowTimer()
        if let gid = generationID { daemon.engine.setPaused(gid, false) }
    }

    private func stopSlowTimer() {
        slowTimer?.stop()
        paused = false
    }

    /// Closes at once (shutdown past its deadline).
    func abort() {
        closing = true
        stream.close()
    }
}

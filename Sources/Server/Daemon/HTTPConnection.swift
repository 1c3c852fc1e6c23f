// One client connection on the loop thread: bytes in through the strict HTTP parser, requests
// answered one at a time in arrival order (pipelining), responses out, with the timeouts and limits
// that keep a bad or slow client from holding resources:
//
// - idle keep-alive connection: closed quietly after `idleTimeout`;
// - a request whose head and body have not all arrived `readTimeout` after its first byte: 408 and
//   close (the clock is not restarted by each byte, so a byte-a-second client is cut off too);
// - a parse error: the status the parser chose (400, 413, 414, 431, 501, 505), then close;
// - a body past its limit: 413 before it is read. The limit is `server.max_body_bytes` unless the
//   router says the request's route takes more from this caller (`Router.bodyLimit`, e.g. admin
//   uploads up to `admin.max_upload_bytes`); the read deadline covers such bodies too;
// - pipelined requests: at most `maxBacklog` wait (plus what one `feedSlice` of input holds); the
//   rest of the input stays unparsed and reading stops until the backlog drains;
// - output the client does not read: once more than `writeBufferBytes` of any responses are
//   unwritten, no further request is answered (and nothing more is read) until the client catches
//   up; a streaming generation is paused (its `ResponseProducer`); a reader still stuck after
//   `slowReaderTimeout` is cut off;
// - a half-close (the client shuts down its sending side after a complete request, as `nc -N`,
//   socat and some proxies do): the requests already received are answered, then the connection
//   closes. A client that closed entirely (on a Unix socket the kernel tells the two apart; on TCP a
//   write fails) has its generation cancelled.

import Foundation
import HTTP

/// A response produced over time (a generation): the connection asks it to wait while the client
/// reads slowly, and stops it when the client leaves. The connection knows nothing of the engine.
protocol ResponseProducer: AnyObject {
    func pause()
    func resume()
    func cancel()
}

final class HTTPConnection {
    let id: UInt64
    let stream: UVConnection
    unowned let daemon: Daemon
    private var parser: HTTPParser
    private var backlog: [HTTPRequest] = []
    /// Input not yet given to the parser because the backlog was full.
    private var unfed: [UInt8] = []
    /// A parse error to answer once the requests before it have been answered.
    private var pendingError: HTTPParseError?
    private let timer: UVTimer
    private var slowTimer: UVTimer?
    /// The request being answered has not been fully written yet (e.g. a stream).
    private(set) var busy = false
    /// What produces the response being answered, while it runs.
    weak var producer: ResponseProducer?
    private var closing = false
    /// The client sent EOF: nothing more will arrive, but it may still read (half-close).
    private var inputEnded = false
    /// When the request now partly in the parser must be complete (monotonic milliseconds).
    private var requestDeadline: UInt64?
    /// More than `writeBufferBytes` of responses are unwritten: answering waits for the reader.
    private var waitingForReader = false
    /// The version of the request being answered: an HTTP/1.0 client gets no chunked encoding (a
    /// stream then ends by closing) and "Connection: keep-alive" when it asked for it.
    private var version = HTTPVersion.http11
    private var streamChunked = true
    static let maxBacklog = 8
    /// Input is parsed this much at a time, so a burst of pipelined requests stops at the backlog limit.
    static let feedSlice = 4096

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
        stream.onEOF = { [unowned self] in endOfInput() }
        stream.onError = { [unowned self] _ in peerClosed() }
        stream.onClose = { [unowned self] in didClose() }
        stream.startReading()
        armTimer()
    }

    private static func monotonicMS() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1000 + UInt64(t.tv_nsec) / 1_000_000
    }

    // MARK: Reading

    private func received(_ bytes: [UInt8]) {
        guard !closing else { return }
        feed(bytes)
        processNext()
    }

    /// Parses `bytes` (after any unfed input) slice by slice until the backlog is full; keeps the rest.
    private func feed(_ bytes: [UInt8]) {
        var input = unfed.isEmpty ? bytes : unfed + bytes
        unfed = []
        var offset = 0
        while offset < input.count {
            if parser.hasFailed || parser.isFinished || pendingError != nil {
                offset = input.count   // nothing after a fatal error or a closing request is read
                break
            }
            if backlog.count >= Self.maxBacklog { break }
            let end = min(offset + Self.feedSlice, input.count)
            // Each request's body limit is the router's to decide (a route may take larger uploads
            // from admitted callers), once its head is in and before its body is read.
            let events = input.withUnsafeBytes {
                parser.feed(UnsafeRawBufferPointer(rebasing: $0[offset..<end])) { head in
                    daemon.router.bodyLimit(for: head, on: self)
                }
            }
            offset = end
            for event in events {
                switch event {
                case .request(let r):
                    backlog.append(r)
                    requestDeadline = nil   // the next request's clock starts below
                case .continueNeeded:
                    // Only when this request is next: otherwise the client waits, as RFC 9110 allows.
                    if !busy && backlog.isEmpty { stream.write(HTTPResponse.continueBytes) }
                case .error(let e):
                    pendingError = e
                }
            }
        }
        if offset < input.count {
            input.removeFirst(offset)
            unfed = input
        }
        if parser.isIdle {
            requestDeadline = nil
        } else if requestDeadline == nil {
            requestDeadline = Self.monotonicMS() + daemon.readTimeoutMS
        }
        if !unfed.isEmpty || backlog.count >= Self.maxBacklog || pendingError != nil { stream.stopReading() }
    }

    /// EOF from the client. Requests already received are still answered (a half-close); a client
    /// that is gone entirely, or that left nothing complete to answer, is closed now.
    private func endOfInput() {
        inputEnded = true
        let somethingToAnswer = busy || !backlog.isEmpty || !unfed.isEmpty || pendingError != nil
        if !somethingToAnswer || stream.peerHungUp {
            peerClosed()
            return
        }
        stream.closeOnEOF = false
        // What is left of a request cut off by the EOF will never complete: answer the rest, then close.
        if !unfed.isEmpty { feed([]) }
        requestDeadline = nil
        processNext()
    }

    private func peerClosed() {
        // The client went away: stop its generation (the engine frees the sequence) and close.
        closing = true
        cancelProducer()
        stream.close()
    }

    private func didClose() {
        timer.close()
        slowTimer?.close()
        cancelProducer()
        daemon.connectionClosed(self)
    }

    private func cancelProducer() {
        let p = producer
        producer = nil
        p?.cancel()
    }

    private func armTimer() {
        guard !closing else { return }
        if let deadline = requestDeadline, !inputEnded {
            let now = Self.monotonicMS()
            timer.start(after: deadline > now ? deadline - now : 0) { [unowned self] in timedOut() }
        } else if !busy && backlog.isEmpty && unfed.isEmpty && !waitingForReader && parser.isIdle {
            timer.start(after: daemon.idleTimeoutMS) { [unowned self] in timedOut() }
        } else {
            timer.stop()   // answering: the slow-reader timer watches the writes
        }
    }

    private func timedOut() {
        guard !closing else { return }
        if requestDeadline != nil, let error = parser.timeout() {
            requestDeadline = nil
            daemon.log(.info, "connection \(id): \(error)")
            if busy || !backlog.isEmpty {
                // Answer the 408 after the responses due before it; read nothing more.
                pendingError = error
                unfed = []
                stream.stopReading()
                armTimer()
            } else {
                send(error: error)
            }
        } else if !busy && backlog.isEmpty && parser.isIdle {
            closing = true
            stream.close()
        } else {
            armTimer()
        }
    }

    // MARK: Answering

    private func processNext() {
        while !busy && !closing {
            if waitingForReader { break }
            if stream.pendingWriteBytes > daemon.writeBufferBytes {
                waitForReader()
                break
            }
            if !backlog.isEmpty {
                let request = backlog.removeFirst()
                version = request.version
                busy = true
                daemon.router.dispatch(request, on: self)
            } else if !unfed.isEmpty {
                feed([])
            } else if let e = pendingError {
                pendingError = nil
                send(error: e)
            } else if inputEnded {
                // Everything received is answered and nothing more will come.
                closing = true
                stream.shutdownAndClose()
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
        daemon.metrics.requestFinished(endpoint: "(parse error)", status: e.status, adapter: "", tenant: TenantLabel.none)
        busy = true
        finish(HTTPResponse(status: e.status, headers: h, body: body), keepAlive: false)
    }

    /// Writes a whole response and moves on to the next request (or closes).
    func finish(_ response: HTTPResponse, keepAlive: Bool) {
        guard !stream.isClosed else { return }
        stream.write(response.serialized(keepAlive: keepAlive && !closing && !inputEnded, requestVersion: version)) {
            [weak self] _ in self?.wroteSome()
        }
        completeResponse(keepAlive: keepAlive)
    }

    /// Starts a streamed response (chunked transfer encoding).
    func startStream(status: Int, headers: HTTPHeaders, keepAlive: Bool) {
        streamChunked = version == .http11
        stream.write(HTTPResponse.head(status: status, headers: headers, chunked: streamChunked,
                                       keepAlive: keepAlive && streamChunked && !inputEnded, requestVersion: version))
    }

    /// Writes one chunk of a streamed response; returns false once the connection is gone.
    @discardableResult
    func writeChunk(_ bytes: [UInt8]) -> Bool {
        guard !stream.isClosed, !bytes.isEmpty else { return !stream.isClosed }
        stream.write(streamChunked ? ChunkedEncoding.chunk(bytes) : bytes) { [weak self] _ in self?.wroteSome() }
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
        producer = nil
        paused = false
        if !waitingForReader { slowTimer?.stop() }
        if !keepAlive || closing {
            closing = true
            stream.shutdownAndClose()
            return
        }
        processNext()
    }

    // MARK: Slow readers

    /// A streaming generation is paused in the engine because its output is not being read.
    private var paused = false

    private func checkBackPressure() {
        guard !paused, stream.pendingWriteBytes > daemon.writeBufferBytes, let producer else { return }
        paused = true
        producer.pause()
        startSlowTimer()
    }

    /// Output is piling up between responses: answer nothing more until the client reads.
    private func waitForReader() {
        waitingForReader = true
        stream.stopReading()
        startSlowTimer()
    }

    private func startSlowTimer() {
        if slowTimer == nil { slowTimer = try? UVTimer(loop: daemon.loop) }
        slowTimer?.start(after: daemon.slowReaderTimeoutMS) { [unowned self] in
            daemon.log(.notice, "connection \(id): reader stuck for \(daemon.slowReaderTimeoutMS) ms with \(stream.pendingWriteBytes) bytes unread; disconnecting")
            peerClosed()
        }
    }

    /// A write reached the kernel: resume what back-pressure stopped once half the buffer is free.
    private func wroteSome() {
        guard paused || waitingForReader, !closing, stream.pendingWriteBytes <= daemon.writeBufferBytes / 2 else { return }
        slowTimer?.stop()
        if paused {
            paused = false
            producer?.resume()
        }
        if waitingForReader {
            waitingForReader = false
            processNext()
        }
    }

    /// Closes at once (shutdown past its deadline).
    func abort() {
        closing = true
        stream.close()
    }
}

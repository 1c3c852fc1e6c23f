// The writing side, byte for byte: a small complete response, framing fields owned by the writer,
// streaming heads, chunk framing, Server-Sent Events framing (multi-line data, comments, [DONE]).
// The responses are also read back by a tiny chunked decoder to show the framing is self-consistent.

import HTTP
import Testing

@Suite struct ResponseTests {
    func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    @Test func smallResponse() {
        let response = HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: bytes("hi\n"))
        #expect(text(response.serialized(keepAlive: true))
            == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nhi\n")
        #expect(text(response.serialized(keepAlive: false))
            == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nhi\n")
        #expect(text(response.serialized(keepAlive: true, requestVersion: .http10))
            == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nhi\n")
        #expect(text(HTTPResponse(status: 404).serialized(keepAlive: true)) == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func writerOwnsFramingFields() {
        let response = HTTPResponse(status: 413, headers: ["content-length": "99", "Connection": "keep-alive",
                                                           "Transfer-Encoding": "gzip", "X": "y"], body: bytes("no"))
        #expect(text(response.serialized(keepAlive: false))
            == "HTTP/1.1 413 Content Too Large\r\nX: y\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno")
    }

    @Test func statusesWithoutContent() {
        #expect(text(HTTPResponse(status: 204, body: bytes("x")).serialized(keepAlive: true)) == "HTTP/1.1 204 No Content\r\n\r\n")
        #expect(text(HTTPResponse(status: 304).serialized(keepAlive: true)) == "HTTP/1.1 304 Not Modified\r\n\r\n")
        #expect(text(HTTPResponse.continueBytes) == "HTTP/1.1 100 Continue\r\n\r\n")
    }

    @Test func fieldsCannotSplitTheResponse() {
        let response = HTTPResponse(status: 200, headers: HTTPHeaders([("X-Bad\r\nName", "a\r\nSet-Cookie: x\u{0}")]))
        #expect(text(response.serialized(keepAlive: true))
            == "HTTP/1.1 200 OK\r\nX-Bad--Name: a  Set-Cookie: x \r\nContent-Length: 0\r\n\r\n")
    }

    @Test func reasonPhrases() {
        let expected: [Int: String] = [200: "OK", 400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large",
                                       414: "URI Too Long", 417: "Expectation Failed",
                                       431: "Request Header Fields Too Large", 501: "Not Implemented",
                                       505: "HTTP Version Not Supported", 429: "Too Many Requests", 599: ""]
        for (status, phrase) in expected { #expect(HTTPResponse.reasonPhrase(status) == phrase) }
        #expect(text(HTTPResponse(status: 599).serialized(keepAlive: true)) == "HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n")
        let error = HTTPParseError(status: 431, message: "m")
        #expect(error.description == "431 Request Header Fields Too Large: m")
    }

    @Test func streamingHeads() {
        let sse: HTTPHeaders = ["Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Content-Length": "5"]
        #expect(text(HTTPResponse.head(status: 200, headers: sse, chunked: true, keepAlive: true))
            == "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(text(HTTPResponse.head(status: 200, headers: ["A": "b"], chunked: false, keepAlive: false, requestVersion: .http10))
            == "HTTP/1.1 200 OK\r\nA: b\r\nConnection: close\r\n\r\n")
        #expect(text(HTTPResponse.head(status: 200, headers: ["content-length": "5"], chunked: false, keepAlive: true))
            == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        #expect(text(HTTPResponse.head(status: 200, headers: ["Content-Length": "5\r\nX: y"], chunked: false, keepAlive: true))
            == "HTTP/1.1 200 OK\r\nContent-Length: 5  X: y\r\n\r\n")
    }

    @Test func chunkFraming() {
        #expect(text(ChunkedEncoding.chunk(bytes("hello"))) == "5\r\nhello\r\n")
        #expect(text(ChunkedEncoding.chunk([UInt8](repeating: 0x61, count: 26))) == "1a\r\n" + String(repeating: "a", count: 26) + "\r\n")
        #expect(ChunkedEncoding.chunk([]) == [])
        #expect(text(ChunkedEncoding.last) == "0\r\n\r\n")
    }

    @Test func chunkedStreamReadsBackThroughTheParser() {
        // Our own request parser decodes chunked bodies, so a response stream framed by the writer can
        // be checked by wrapping it in a request head.
        let pieces = [bytes("a"), [], [UInt8](repeating: 7, count: 300), bytes("xyz")]
        let stream = pieces.flatMap(ChunkedEncoding.chunk) + ChunkedEncoding.last
        let input = bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n") + stream
        guard case .request(let request)? = parseAllWays(input).events.first else {
            Issue.record("the stream did not decode")
            return
        }
        #expect(request.body == pieces.flatMap { $0 })
    }

    @Test func serverSentEvents() {
        #expect(text(ServerSentEvents.event(data: "{\"a\":1}")) == "data: {\"a\":1}\n\n")
        #expect(text(ServerSentEvents.event(data: "[DONE]")) == "data: [DONE]\n\n")
        #expect(ServerSentEvents.done == bytes("data: [DONE]\n\n"))
        #expect(text(ServerSentEvents.event(data: "one\ntwo\r\nthree\rfour")) == "data: one\ndata: two\ndata: three\ndata: four\n\n")
        #expect(text(ServerSentEvents.event(data: "a\n")) == "data: a\ndata: \n\n")
        #expect(text(ServerSentEvents.event(data: "")) == "data: \n\n")
        #expect(text(ServerSentEvents.event(data: "x", event: "progress", id: "7"))
            == "event: progress\nid: 7\ndata: x\n\n")
        #expect(text(ServerSentEvents.event(data: "x", event: "a\nb", id: "1\r2")) == "event: a b\nid: 1 2\ndata: x\n\n")
        #expect(text(ServerSentEvents.event(data: "é ✓")) == "data: é ✓\n\n")
    }

    @Test func serverSentEventComments() {
        #expect(text(ServerSentEvents.comment("keep-alive")) == ": keep-alive\n\n")
        #expect(text(ServerSentEvents.comment("a\nb")) == ": a\n: b\n\n")
    }
}

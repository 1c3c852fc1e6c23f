// The connection-level behaviour: persistence rules for HTTP/1.0 and 1.1 (RFC 9112 §9.3), pipelined
// requests returned in order, nothing processed after a closing request, Expect: 100-continue, the
// idle state that decides between a silent close and a 408, and errors that end everything.

import HTTP
import Testing

@Suite struct ConnectionTests {
    @Test func keepAliveRules() {
        let cases: [(String, String, Bool)] = [
            ("HTTP/1.1", "", true),
            ("HTTP/1.1", "Connection: close\r\n", false),
            ("HTTP/1.1", "Connection: CLOSE\r\n", false),
            ("HTTP/1.1", "Connection: keep-alive\r\n", true),
            ("HTTP/1.1", "Connection: keep-alive, Upgrade\r\n", true),
            ("HTTP/1.1", "Connection: Upgrade, close\r\n", false),
            ("HTTP/1.1", "Connection: upgrade\r\nConnection: close\r\n", false),
            ("HTTP/1.1", "Connection: closed\r\n", true),
            ("HTTP/1.1", "Connection: ,, close ,\r\n", false),
            ("HTTP/1.0", "", false),
            ("HTTP/1.0", "Connection: keep-alive\r\n", true),
            ("HTTP/1.0", "Connection: Keep-Alive, Upgrade\r\n", true),
            ("HTTP/1.0", "Connection: keep-alive, close\r\n", false),
            ("HTTP/1.0", "Connection: close\r\n", false),
            ("HTTP/1.0", "Keep-Alive: timeout=5\r\n", false),
        ]
        for (version, fields, keepAlive) in cases {
            let input = "GET / \(version)\r\nHost: h\r\n\(fields)\r\n"
            let summary = parseAllWays(bytes(input))
            guard case .request(let request)? = summary.events.first, summary.events.count == 1 else {
                Issue.record("\(input): \(summary)")
                continue
            }
            #expect(request.keepAlive == keepAlive, "\(version) \(fields)")
            #expect(summary.isFinished == !keepAlive)
            #expect(summary.isIdle)
        }
    }

    @Test func pipelinedRequestsComeInOrder() {
        let input = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /b?x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
            + "DELETE /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        let expected: [HTTPParserEvent] = [
            .request(HTTPRequest(method: "GET", target: "/a", path: "/a", headers: ["Host": "h"])),
            .request(HTTPRequest(method: "POST", target: "/b?x", path: "/b", query: "x",
                                 headers: ["Host": "h", "Content-Length": "5"], body: bytes("hello"))),
            .request(HTTPRequest(method: "DELETE", target: "/c", path: "/c",
                                 headers: ["Host": "h", "Transfer-Encoding": "chunked"], body: bytes("ok"))),
        ]
        expectEvents(input, expected)
        // Fed as three separate pieces, the same three in order.
        var parser = HTTPParser()
        var got: [HTTPParserEvent] = []
        for piece in [String(input.prefix(30)), String(input.dropFirst(30).prefix(50)), String(input.dropFirst(80))] {
            got += parser.feed(bytes(piece))
        }
        #expect(got == expected)
        #expect(parser.isIdle)
    }

    @Test func pipelinedRequestThenAnError() {
        let input = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n"
        let all = events(input)
        #expect(all.count == 2)
        #expect(all.first == .request(HTTPRequest(method: "GET", target: "/a", path: "/a", headers: ["Host": "h"])))
        guard case .error(let e)? = all.last else {
            Issue.record("\(all)")
            return
        }
        #expect(e.status == 400)
    }

    @Test func nothingIsProcessedAfterAClosingRequest() {
        let input = "GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\ngarbage\r\n"
        let summary = parseAllWays(bytes(input))
        #expect(summary.events.count == 1)
        #expect(summary.isFinished)
        #expect(!summary.hasFailed)
        var parser = HTTPParser()
        _ = parser.feed(bytes(input))
        #expect(parser.feed(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")).isEmpty)
        #expect(parser.timeout() == nil)
    }

    @Test func expectContinueComesBeforeTheBody() {
        let head = "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
        var parser = HTTPParser()
        #expect(parser.feed(bytes(head)) == [.continueNeeded])
        #expect(!parser.isIdle)
        let expected = HTTPRequest(method: "POST", target: "/", path: "/",
                                   headers: ["Host": "h", "Expect": "100-continue", "Content-Length": "3"],
                                   body: bytes("abc"))
        #expect(parser.feed(bytes("abc")) == [.request(expected)])
        // Whole or split, exactly once and before its request.
        expectEvents(head + "abc", [.continueNeeded, .request(expected)])
        expectEvents(head + "abc" + head + "abc", [.continueNeeded, .request(expected), .continueNeeded, .request(expected)])
    }

    @Test func expectContinueWithChunkedBody() {
        let input = "PUT / HTTP/1.1\r\nHost: h\r\nexpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"
        let all = events(input)
        #expect(all.count == 2)
        #expect(all.first == .continueNeeded)
    }

    @Test func expectContinueWithoutBodyOrOnHTTP10IsIgnored() {
        #expect(events("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n").count == 1)
        #expect(events("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n").count == 1)
        let old = events("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
        #expect(old.count == 1)
        #expect(old.first != .continueNeeded)
    }

    @Test func otherExpectationsAre417() {
        let message = expectError("POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", status: 417)
        #expect(message.contains("200-ok"))
        expectError("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, foo\r\n\r\n", status: 417)
        expectError("GET / HTTP/1.0\r\nExpect: bar\r\n\r\n", status: 417)
        // A body over the limit is refused with 413 before the expectation matters.
        expectError("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n", status: 413,
                    limits: HTTPLimits(maxBodyBytes: 10))
    }

    @Test func idleAndTimeouts() {
        var parser = HTTPParser()
        #expect(parser.isIdle)
        #expect(parser.timeout() == nil)
        #expect(!parser.hasFailed)
        _ = parser.feed(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(parser.isIdle)
        _ = parser.feed(bytes("\r"))
        #expect(!parser.isIdle)
        _ = parser.feed(bytes("\n"))
        #expect(parser.isIdle)  // a skipped empty line leaves nothing buffered
        _ = parser.feed(bytes("G"))
        #expect(!parser.isIdle)
        let error = parser.timeout()
        #expect(error == HTTPParser.timeoutError())
        #expect(error?.status == 408)
        #expect(parser.hasFailed)
        #expect(parser.feed(bytes("ET / HTTP/1.1\r\nHost: h\r\n\r\n")).isEmpty)
        #expect(parser.timeout() == nil)
    }

    @Test func errorsAreFinal() {
        var parser = HTTPParser()
        let first = parser.feed(bytes("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n"))
        #expect(first.count == 1)
        #expect(parser.hasFailed)
        #expect(!parser.isIdle)
        #expect(parser.feed(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")).isEmpty)
        #expect(parser.feed([]).isEmpty)
    }

    @Test func emptyFeedsChangeNothing() {
        var parser = HTTPParser()
        #expect(parser.feed([]).isEmpty)
        #expect(parser.isIdle)
        _ = parser.feed(bytes("GET / HTTP/1.1\r\nHost: h\r\n"))
        #expect(parser.feed([]).isEmpty)
        #expect(parser.feed(bytes("\r\n")).count == 1)
    }
}

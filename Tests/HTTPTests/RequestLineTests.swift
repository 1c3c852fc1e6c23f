// The request line: the accepted target forms and versions, each malformed shape with its status
// (400, 414, 505), the leading empty lines RFC 9112 §2.2 allows, and the line-ending rule (CRLF only).

import HTTP
import Testing

@Suite struct RequestLineTests {
    @Test func originFormGet() {
        let request = onlyRequest("GET /v1/models?limit=2&x=%20y HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(request == HTTPRequest(method: "GET", target: "/v1/models?limit=2&x=%20y", path: "/v1/models",
                                       query: "limit=2&x=%20y", version: .http11,
                                       headers: ["Host": "localhost"], body: [], keepAlive: true))
    }

    @Test func emptyQueryIsNotNoQuery() {
        #expect(onlyRequest("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n")?.query == "")
        #expect(onlyRequest("GET /a HTTP/1.1\r\nHost: h\r\n\r\n")?.query == nil)
        let request = onlyRequest("GET //a/?b?c HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(request?.path == "//a/")
        #expect(request?.query == "b?c")
    }

    @Test func absoluteForm() {
        let request = onlyRequest("GET http://example.com:8080/v1/x?y=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n")
        #expect(request?.target == "http://example.com:8080/v1/x?y=1")
        #expect(request?.path == "/v1/x")
        #expect(request?.query == "y=1")
        let bare = onlyRequest("GET https://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n")
        #expect(bare?.path == "/")
        #expect(bare?.query == nil)
        let queryOnly = onlyRequest("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(queryOnly?.path == "/")
        #expect(queryOnly?.query == "q")
        expectError("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("GET http:x HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
    }

    @Test func asteriskFormOnlyForOptions() {
        let request = onlyRequest("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(request?.path == "*")
        #expect(request?.method == "OPTIONS")
        let message = expectError("GET * HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        #expect(message.contains("only for OPTIONS"))
    }

    @Test func authorityFormOnlyForConnect() {
        let request = onlyRequest("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        #expect(request?.path == "example.com:443")
        #expect(onlyRequest("CONNECT [::1]:443 HTTP/1.1\r\nHost: h\r\n\r\n")?.target == "[::1]:443")
        expectError("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("CONNECT example.com: HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("GET example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
    }

    @Test func methodsAreCaseSensitiveTokensKeptAsSent() {
        #expect(onlyRequest("get / HTTP/1.1\r\nHost: h\r\n\r\n")?.method == "get")
        #expect(onlyRequest("M-SEARCH / HTTP/1.1\r\nHost: h\r\n\r\n")?.method == "M-SEARCH")
        let message = expectError("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        #expect(message.contains("'('"))
        expectError("G\u{7F}T / HTTP/1.1\r\n\r\n", status: 400)
    }

    @Test func garbageIsRefusedAtItsFirstByte() {
        // A TLS ClientHello starts 0x16 0x03 0x01: refused without waiting for a line end.
        let summary = parseInPieces([0x16, 0x03, 0x01, 0x02, 0x00], cuts: [], limits: .init())
        guard case .error(let e) = summary.events.first else {
            Issue.record("expected an error, got \(summary.events)")
            return
        }
        #expect(e.status == 400)
        #expect(e.message.contains("TLS"))
        expectError([0x16, 0x03, 0x01, 0x02, 0x00], status: 400)
        expectError([0x47, 0x45, 0x00], status: 400)
    }

    @Test func spacesMustBeSingle() {
        expectError("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", status: 400)
        expectError(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("GET /\tHTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        let message = expectError("GET /\r\nHost: h\r\n\r\n", status: 400)
        #expect(message.contains("fewer than two SP"))
        expectError("GET\r\n\r\n", status: 400)
    }

    @Test func targetBytes() {
        expectError("GET /a\u{1}b HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("GET /a\u{7F}b HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("GET /é HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("GET /a%2 HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        #expect(onlyRequest("GET /a%2fb%C3%A9 HTTP/1.1\r\nHost: h\r\n\r\n")?.path == "/a%2fb%C3%A9")
    }

    @Test func versions() {
        let old = onlyRequest("GET / HTTP/1.0\r\n\r\n")
        #expect(old?.version == .http10)
        #expect(old?.keepAlive == false)
        for v in ["HTTP/1.2", "HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/9.9"] {
            let message = expectError("GET / \(v)\r\nHost: h\r\n\r\n", status: 505)
            #expect(message.contains(v))
        }
        for v in ["HTTP/1.1x", "http/1.1", "HTTP/11", "HTTP/1", "HTTP/1.x", "HTTP/10.0", "HTTP/1,1", "HTTPS/1.1", "H"] {
            let message = expectError("GET / \(v)\r\nHost: h\r\n\r\n", status: 400)
            #expect(message.contains("HTTP-version"))
        }
    }

    @Test func http2PrefaceGets505() {
        let message = expectError("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: 505)
        #expect(message.contains("HTTP/2 connection preface"))
    }

    @Test func leadingEmptyLinesAreSkippedUpToFour() {
        let four = String(repeating: "\r\n", count: 4)
        #expect(onlyRequest(four + "GET / HTTP/1.1\r\nHost: h\r\n\r\n")?.path == "/")
        let message = expectError(four + "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        #expect(message.contains("empty lines"))
        // The count starts again for each request.
        let pipelined = events("\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n" + four + "GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(pipelined.count == 2)
    }

    @Test func bareLineEndingsAreRefused() {
        let message = expectError("GET / HTTP/1.1\nHost: h\r\n\r\n", status: 400)
        #expect(message.contains("bare LF"))
        expectError("GET / HTTP/1.1\r\nHost: h\n\r\n", status: 400)
        expectError("GET / HTTP/1.1\r\nHost: h\r\n\n", status: 400)
        expectError("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        let cr = expectError("GET / HTTP/1.1\rHost: h\r\n\r\n", status: 400)
        #expect(cr.contains("expected LF after CR"))
        expectError("GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        expectError("\r\r\n", status: 400)
    }

    @Test func requestLineLimitIs414() {
        let limits = HTTPLimits(maxRequestLineBytes: 32)
        let exact = "GET /" + String(repeating: "a", count: 32 - 14) + " HTTP/1.1"
        #expect(exact.utf8.count == 32)
        #expect(onlyRequest(exact + "\r\nHost: h\r\n\r\n", limits: limits) != nil)
        let over = "GET /" + String(repeating: "a", count: 33 - 14) + " HTTP/1.1"
        let message = expectError(over + "\r\nHost: h\r\n\r\n", status: 414, limits: limits)
        #expect(message.contains("32"))
        // A long method counts the same way.
        expectError(String(repeating: "G", count: 40), status: 414, limits: limits)
        // Whichever comes first in the bytes wins, however they are split: a bad method byte past
        // the limit is never looked at, one before it is.
        let eight = HTTPLimits(maxRequestLineBytes: 8)
        expectError("GETGETGET@ / HTTP/1.1\r\n\r\n", status: 414, limits: eight)
        expectError("GETGETG@ / HTTP/1.1\r\n\r\n", status: 400, limits: eight)
    }

    @Test func requestLineLimitHitsWhileStreaming() {
        // No line end ever arrives: the 414 comes as soon as the 33rd byte does.
        let limits = HTTPLimits(maxRequestLineBytes: 32)
        let prefix = bytes("GET /" + String(repeating: "a", count: 27))
        #expect(prefix.count == 32)
        var parser = HTTPParser(limits: limits)
        #expect(parser.feed(prefix).isEmpty)
        #expect(!parser.isIdle)
        let events = parser.feed([UInt8(ascii: "a")])
        #expect(events.count == 1)
        if case .error(let e) = events.first { #expect(e.status == 414) } else { Issue.record("no 414: \(events)") }
        expectError(prefix + [UInt8(ascii: "a")], status: 414, limits: limits)
        #expect(parser.feed(bytes(" HTTP/1.1\r\n\r\n")).isEmpty)
    }

    @Test func defaultRequestLineLimit() {
        let limits = HTTPLimits()
        #expect(limits.maxRequestLineBytes == 8192)
        // Split at every boundary around the limit (and whole, and byte at a time), not at all 8 KiB
        // of them, which would take seconds in a debug build.
        let path = "/" + String(repeating: "p", count: 8192 - 14)
        let input = bytes("GET \(path) HTTP/1.1\r\nHost: h\r\n\r\n")
        let summary = parseAllWays(input, splitsIn: 8100...input.count)
        guard case .request(let request)? = summary.events.first else {
            Issue.record("\(summary)")
            return
        }
        #expect(request.path == path)
        expectError(bytes("GET \(path)p HTTP/1.1\r\nHost: h\r\n\r\n"), status: 414, splitsIn: 8100...8220)
    }
}

// Header fields: kept in order as received, looked up case-insensitively, values trimmed of OWS; every
// malformed field line refused with 400; Host required once on HTTP/1.1; the section's size and count
// limits (431), exact at the boundary and detected while streaming.

import HTTP
import Testing

@Suite struct HeaderTests {
    @Test func fieldsKeptInOrderAndLookedUpIgnoringCase() {
        let request = onlyRequest("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a:2\r\nAccept:\t text/plain \t\r\nEmpty:\r\nSpaces:   \r\n\r\n")
        let expected: HTTPHeaders = ["Host": "h", "X-A": "1", "x-a": "2", "Accept": "text/plain", "Empty": "", "Spaces": ""]
        #expect(request?.headers == expected)
        #expect(request?.headers["X-a"] == "1")
        #expect(request?.headers["HOST"] == "h")
        #expect(request?.headers.values("x-A") == ["1", "2"])
        #expect(request?.headers["missing"] == nil)
        #expect(request?.headers.values("missing") == [])
        #expect(Array(request?.headers.map(\.name) ?? []) == ["Host", "X-A", "x-a", "Accept", "Empty", "Spaces"])
    }

    @Test func valueKeepsInnerWhitespaceAndObsText() {
        let request = onlyRequest("GET / HTTP/1.1\r\nHost: h\r\nUser-Agent:  a  b\tc \r\nX-Name: caf\u{E9}\r\n\r\n")
        #expect(request?.headers["user-agent"] == "a  b\tc")
        #expect(request?.headers["x-name"] == "café")
    }

    @Test func headersValueType() {
        var h = HTTPHeaders()
        h.add("Content-Type", "a")
        h.add("X", "1")
        h.add("content-type", "b")
        #expect(h.count == 3)
        #expect(h.contains("CONTENT-TYPE"))
        h.set("Content-type", "c")
        #expect(h == HTTPHeaders([("Content-Type", "c"), ("X", "1")]))
        h.remove("x")
        #expect(h == ["Content-Type": "c"])
        #expect(h != ["content-type": "c"])  // equality is exact, lookup is not
        h.set("New", "n")
        #expect(h.values("new") == ["n"])
    }

    @Test func obsFoldIsRefused() {
        let message = expectError("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  b\r\n\r\n", status: 400)
        #expect(message.contains("folding"))
        expectError("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", status: 400)
        // Whitespace between the request line and the first field (RFC 9112 §2.2).
        expectError("GET / HTTP/1.1\r\n Host: h\r\n\r\n", status: 400)
    }

    @Test func malformedFieldLines() {
        let colon = expectError("GET / HTTP/1.1\r\nHost : h\r\n\r\n", status: 400)
        #expect(colon.contains("whitespace between"))
        expectError("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", status: 400)
        let none = expectError("GET / HTTP/1.1\r\nHost h\r\n\r\n", status: 400)
        #expect(none.contains("no colon"))
        expectError("GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n", status: 400)
        let token = expectError("GET / HTTP/1.1\r\nHost: h\r\nX(y): z\r\n\r\n", status: 400)
        #expect(token.contains("token"))
        expectError("GET / HTTP/1.1\r\nHost: h\r\nX y: z\r\n\r\n", status: 400)
        expectError("GET / HTTP/1.1\r\nHost: h\r\nX\u{E9}: z\r\n\r\n", status: 400)
    }

    @Test func controlCharactersInValues() {
        let nul = expectError("GET / HTTP/1.1\r\nHost: h\r\nX: a\u{0}b\r\n\r\n", status: 400)
        #expect(nul.contains("byte 0x00"))
        expectError("GET / HTTP/1.1\r\nHost: h\r\nX: a\u{1}b\r\n\r\n", status: 400)
        expectError("GET / HTTP/1.1\r\nHost: h\r\nX: a\u{7F}b\r\n\r\n", status: 400)
        expectError("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", status: 400)
        expectError("GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n", status: 400)
    }

    @Test func hostRules() {
        let missing = expectError("GET / HTTP/1.1\r\nX: y\r\n\r\n", status: 400)
        #expect(missing.contains("Host"))
        #expect(onlyRequest("GET / HTTP/1.0\r\n\r\n") != nil)
        let two = expectError("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", status: 400)
        #expect(two.contains("2 Host"))
        expectError("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", status: 400)
        expectError("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400)
        expectError("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", status: 400)
        expectError("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", status: 400)
        expectError("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", status: 400)
        // An empty Host is allowed when the target has no authority (RFC 9112 §3.2).
        #expect(onlyRequest("GET / HTTP/1.1\r\nHost:\r\n\r\n")?.headers["host"] == "")
        #expect(onlyRequest("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n") != nil)
        #expect(onlyRequest("GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n") != nil)
    }

    /// A request whose header section (fields, their CRLFs and the final CRLF) is exactly `size` bytes.
    func request(headerSection size: Int) -> String {
        let fixed = "Host: h\r\nX: \r\n\r\n".utf8.count
        return "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "v", count: size - fixed) + "\r\n\r\n"
    }

    @Test func headerSectionLimitIs431() {
        let limits = HTTPLimits(maxHeaderBytes: 64)
        #expect(onlyRequest(request(headerSection: 64), limits: limits) != nil)
        let message = expectError(request(headerSection: 65), status: 431, limits: limits)
        #expect(message.contains("64"))
        // Many short fields add up the same way.
        let many = "GET / HTTP/1.1\r\nHost: h\r\n" + String(repeating: "A: b\r\n", count: 10) + "\r\n"
        expectError(many, status: 431, limits: HTTPLimits(maxHeaderBytes: 60))
        #expect(onlyRequest(many, limits: HTTPLimits(maxHeaderBytes: 71)) != nil)
    }

    @Test func headerSectionLimitHitsWhileStreaming() {
        // One endless field line: refused once it cannot fit, without waiting for its end.
        let limits = HTTPLimits(maxHeaderBytes: 64)
        var parser = HTTPParser(limits: limits)
        #expect(parser.feed(bytes("GET / HTTP/1.1\r\nX: ")).isEmpty)
        // 64 bytes hold the field line's 62 bytes and its CRLF.
        #expect(parser.feed([UInt8](repeating: 0x61, count: 62 - 3)).isEmpty)
        let events = parser.feed([0x61])
        #expect(events == [.error(HTTPParseError(status: 431, message: "the header section is longer than 64 bytes (maxHeaderBytes, trailers included); send fewer or shorter fields"))])
        expectError("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 200), status: 431, limits: limits)
    }

    @Test func headerCountLimitIs431() {
        let limits = HTTPLimits(maxHeaderCount: 5)
        let five = "GET / HTTP/1.1\r\nHost: h\r\n" + String(repeating: "A: b\r\n", count: 4) + "\r\n"
        #expect(onlyRequest(five, limits: limits)?.headers.count == 5)
        let six = "GET / HTTP/1.1\r\nHost: h\r\n" + String(repeating: "A: b\r\n", count: 5) + "\r\n"
        let message = expectError(six, status: 431, limits: limits)
        #expect(message.contains("more than 5 header fields"))
    }

    @Test func defaultHeaderLimits() {
        let limits = HTTPLimits()
        #expect(limits.maxHeaderBytes == 32768)
        #expect(limits.maxHeaderCount == 100)
        let hundred = "GET / HTTP/1.1\r\nHost: h\r\n" + String(repeating: "A: b\r\n", count: 99) + "\r\n"
        #expect(onlyRequest(hundred)?.headers.count == 100)
        expectError("GET / HTTP/1.1\r\nHost: h\r\n" + String(repeating: "A: b\r\n", count: 100) + "\r\n", status: 431)
        // 32 KiB inputs: split at every boundary of the last 200 bytes (where the limit bites), whole
        // and byte at a time; every boundary everywhere would parse a billion bytes.
        let big = bytes(request(headerSection: 32768))
        #expect(parseAllWays(big, splitsIn: (big.count - 200)...big.count).events.count == 1)
        expectError(bytes(request(headerSection: 32769)), status: 431, splitsIn: 32600...32800)
    }
}

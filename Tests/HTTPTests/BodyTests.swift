// Request bodies: Content-Length (strict digits, merged identical duplicates, differing ones refused),
// the refusal of Transfer-Encoding with Content-Length (smuggling) and of codings other than chunked
// (501), chunked decoding with extensions and trailers, every malformed chunk, and the body limit (413)
// both from Content-Length and while decoding chunks.

import HTTP
import Testing

@Suite struct BodyTests {
    @Test func postWithContentLength() {
        let input = "POST /v1/completions HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"prompt\":\"\"}"
        let request = onlyRequest(input)
        #expect(request == HTTPRequest(method: "POST", target: "/v1/completions", path: "/v1/completions", query: nil,
                                       version: .http11,
                                       headers: ["Host": "h", "Content-Type": "application/json", "Content-Length": "13"],
                                       body: bytes("{\"prompt\":\"\"}"), keepAlive: true))
    }

    @Test func bodyBytesAreNotInterpreted() {
        let body: [UInt8] = [0, 13, 10, 13, 10, 255, 0x47]
        let input = bytes("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\n") + body
        guard case .request(let request)? = parseAllWays(input).events.first else {
            Issue.record("no request")
            return
        }
        #expect(request.body == body)
    }

    @Test func getWithBodyIsAllowed() {
        #expect(onlyRequest("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")?.body == bytes("abc"))
    }

    @Test func zeroAndMissingLengthMeanNoBody() {
        #expect(onlyRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")?.body == [])
        #expect(onlyRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 000\r\n\r\n")?.body == [])
        #expect(onlyRequest("POST / HTTP/1.1\r\nHost: h\r\n\r\n")?.body == [])
    }

    @Test func incompleteBodyWaits() {
        let summary = parseAllWays(bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabc"))
        #expect(summary.events.isEmpty)
        #expect(!summary.isIdle)
    }

    @Test func identicalContentLengthsAreMerged() {
        #expect(onlyRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc")?.body == bytes("abc"))
        #expect(onlyRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc")?.body == bytes("abc"))
        #expect(onlyRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3,03\r\n\r\nabc")?.body == bytes("abc"))
    }

    @Test func differingContentLengthsAre400() {
        let message = expectError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", status: 400)
        #expect(message.contains("differing Content-Length values 3 and 4"))
        expectError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd", status: 400)
    }

    @Test func contentLengthIsDigitsOnly() {
        for value in ["", " ", "+3", "-3", "3a", "0x3", "3 3", "3;", "3,", ",3", "3.0", "٣"] {
            let message = expectError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \(value)\r\n\r\nabc", status: 400)
            #expect(message.contains("digits only"), "\(value)")
        }
    }

    @Test func contentLengthOverTheLimitIs413BeforeTheBody() {
        let limits = HTTPLimits(maxBodyBytes: 10)
        #expect(onlyRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", limits: limits)?.body.count == 10)
        // The head alone is enough for the 413: no body byte needs to arrive.
        let message = expectError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", status: 413, limits: limits)
        #expect(message.contains("Content-Length 11 exceeds the body limit of 10 bytes"))
        expectError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999999999\r\n\r\n", status: 413)
        expectError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 8388609\r\n\r\n", status: 413)
    }

    @Test func transferEncodingWithContentLengthIs400() {
        let message = expectError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", status: 400)
        #expect(message.contains("smuggling"))
        expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", status: 400)
    }

    @Test func transferCodingsOtherThanChunkedAre501() {
        for value in ["gzip", "gzip, chunked", "chunked, chunked", "identity", "chunked;q=1", "chunkedx"] {
            let message = expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \(value)\r\n\r\n", status: 501)
            #expect(message.contains("only 'chunked'"), "\(value)")
        }
        expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", status: 501)
        expectError("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", status: 400)
        // HTTP/1.0 has no transfer codings: the framing is faulty.
        expectError("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400)
    }

    @Test func chunkedWithExtensionsAndTrailers() {
        let input = "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
            + "5;name=value;flag\r\nhello\r\n"
            + "1 ; q=\"a \\\" b\"\r\n,\r\n"
            + "00006\r\n world\r\n"
            + "0;last\r\nX-Checksum: 1234\r\nX-Other:  two \r\n\r\n"
        let request = onlyRequest(input)
        #expect(request == HTTPRequest(method: "POST", target: "/upload", path: "/upload", query: nil, version: .http11,
                                       headers: ["Host": "h", "Transfer-Encoding": "Chunked"],
                                       body: bytes("hello, world"), keepAlive: true))
    }

    @Test func chunkedHexSizes() {
        let body = String(repeating: "x", count: 0x1a)
        #expect(onlyRequest("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\n\(body)\r\n0\r\n\r\n")?.body.count == 26)
        #expect(onlyRequest("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1A\r\n\(body)\r\n0\r\n\r\n")?.body.count == 26)
        #expect(onlyRequest("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")?.body == [])
        #expect(onlyRequest("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n000000000000001a\r\n\(body)\r\n0\r\n\r\n")?.body.count == 26)
    }

    static let chunkedHead = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"

    @Test func malformedChunkSizes() {
        let empty = expectError(Self.chunkedHead + "\r\nabc\r\n0\r\n\r\n", status: 400)
        #expect(empty.contains("hex chunk size"))
        expectError(Self.chunkedHead + ";ext\r\n0\r\n\r\n", status: 400)
        expectError(Self.chunkedHead + "g\r\n0\r\n\r\n", status: 400)
        expectError(Self.chunkedHead + "-1\r\n0\r\n\r\n", status: 400)
        expectError(Self.chunkedHead + "0x3\r\nabc\r\n0\r\n\r\n", status: 400)
        expectError(Self.chunkedHead + " 3\r\nabc\r\n0\r\n\r\n", status: 400)
        expectError(Self.chunkedHead + "3 \r\nabc\r\n0\r\n\r\n", status: 400)
        let long = expectError(Self.chunkedHead + "00000000000000001\r\na\r\n0\r\n\r\n", status: 400)
        #expect(long.contains("more than 16 hex digits"))
        // 16 digits fit 64 bits; the size is then refused by the body limit, not wrapped.
        expectError(Self.chunkedHead + "ffffffffffffffff\r\na\r\n", status: 413)
        expectError(Self.chunkedHead + "10000000000000000\r\na\r\n", status: 400)
    }

    @Test func malformedChunkExtensions() {
        for ext in [";", "; ", ";=v", ";a=", ";a=\"x", ";a=\"x\\", ";a b", "x", ";a=b c", ";a=(b)", ";a\u{1}", ";a=\"\u{1}\""] {
            expectError(Self.chunkedHead + "1\(ext)\r\nx\r\n0\r\n\r\n", status: 400)
        }
        for ext in [";a", " ;a", "\t; a = b", ";a=\"\"", ";a=\"b;c=d\";e", ";a=b;c=\"\\\\\""] {
            #expect(onlyRequest(Self.chunkedHead + "1\(ext)\r\nx\r\n0\r\n\r\n")?.body == [UInt8(ascii: "x")], "\(ext)")
        }
    }

    @Test func chunkLineLimit() {
        let limits = HTTPLimits(maxChunkLineBytes: 16)
        #expect(onlyRequest(Self.chunkedHead + "1;abcdefghijklmn\r\nx\r\n0\r\n\r\n", limits: limits) != nil)
        let message = expectError(Self.chunkedHead + "1;abcdefghijklmno\r\nx\r\n0\r\n\r\n", status: 400, limits: limits)
        #expect(message.contains("maxChunkLineBytes"))
        expectError(Self.chunkedHead + "1;" + String(repeating: "a", count: 100), status: 400, limits: limits)
    }

    @Test func missingCRLFAfterChunkData() {
        let message = expectError(Self.chunkedHead + "3\r\nabcd\r\n0\r\n\r\n", status: 400)
        #expect(message.contains("expected CRLF after the chunk data"))
        expectError(Self.chunkedHead + "3\r\nabc\r0\r\n\r\n", status: 400)
        expectError(Self.chunkedHead + "3\r\nabc\n0\r\n\r\n", status: 400)
        expectError(Self.chunkedHead + "3\r\nab\r\n0\r\n\r\n", status: 400)
    }

    @Test func chunkedBodyOverTheLimitIs413WhileDecoding() {
        let limits = HTTPLimits(maxBodyBytes: 10)
        #expect(onlyRequest(Self.chunkedHead + "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n", limits: limits)?.body.count == 10)
        // The size of the third chunk is enough for the 413: its data never needs to arrive.
        let message = expectError(Self.chunkedHead + "5\r\n01234\r\n5\r\n56789\r\n1\r\n", status: 413, limits: limits)
        #expect(message.contains("10 bytes so far and a chunk of 1"))
        expectError(Self.chunkedHead + "b\r\n", status: 413, limits: limits)
    }

    @Test func trailersAreCheckedAndCountAgainstTheHeaderLimits() {
        expectError(Self.chunkedHead + "0\r\nX: a\r\n b\r\n\r\n", status: 400)
        expectError(Self.chunkedHead + "0\r\nX : a\r\n\r\n", status: 400)
        expectError(Self.chunkedHead + "0\r\nX: a\u{0}\r\n\r\n", status: 400)
        expectError(Self.chunkedHead + "0\r\nno colon\r\n\r\n", status: 400)
        expectError(Self.chunkedHead + "0\r\nX: a\n\r\n", status: 400)
        // The head has 39 bytes of header section ("Host: h\r\n" to the empty line); trailers add to it.
        let head = Self.chunkedHead.utf8.count - "POST / HTTP/1.1\r\n".utf8.count
        #expect(head == 39)
        let trailer = "X: 12345\r\n"  // 10 bytes, plus the final CRLF: 12
        #expect(onlyRequest(Self.chunkedHead + "0\r\n" + trailer + "\r\n", limits: HTTPLimits(maxHeaderBytes: 51)) != nil)
        expectError(Self.chunkedHead + "0\r\n" + trailer + "\r\n", status: 431, limits: HTTPLimits(maxHeaderBytes: 50))
        expectError(Self.chunkedHead + "0\r\nA: 1\r\nB: 2\r\n\r\n", status: 431, limits: HTTPLimits(maxHeaderCount: 3))
        #expect(onlyRequest(Self.chunkedHead + "0\r\nA: 1\r\nB: 2\r\n\r\n", limits: HTTPLimits(maxHeaderCount: 4)) != nil)
    }
}

// The per-request body limit: `feed(_:bodyLimit:)` asks once a request's head is complete, before
// any body byte is read; its answer replaces `maxBodyBytes` for that request only (Content-Length
// and chunked alike), the 413 names the setting it gave, and the next request starts again from the
// default. Every case is parsed whole, split at every byte and byte by byte, as the server feeds.

import HTTP
import Testing

@Suite struct HTTPParserBodyLimitTests {
    static let limits = HTTPLimits(maxBodyBytes: 10, maxBodyBytesSetting: "server.max_body_bytes")
    static let upload = HTTPBodyLimit(bytes: 100, setting: "admin.max_upload_bytes")

    /// Raises the limit for POST /upload only, and records the heads it was asked about.
    final class Decider {
        var asked: [HTTPRequest] = []
        func decide(_ head: HTTPRequest) -> HTTPBodyLimit? {
            asked.append(head)
            return head.method == "POST" && head.path == "/upload" ? HTTPParserBodyLimitTests.upload : nil
        }
    }

    /// The events for `input` parsed in pieces cut at `cuts`, and the heads the decider saw.
    static func parse(_ input: [UInt8], cuts: [Int]) -> (events: [HTTPParserEvent], asked: [HTTPRequest], failed: Bool) {
        var parser = HTTPParser(limits: limits)
        let decider = Decider()
        var events: [HTTPParserEvent] = []
        input.withUnsafeBytes { all in
            var start = 0
            for end in cuts + [all.count] {
                events += parser.feed(UnsafeRawBufferPointer(rebasing: all[start..<end])) { decider.decide($0) }
                start = end
            }
        }
        return (events, decider.asked, parser.hasFailed)
    }

    /// Parses `input` whole, split at every offset and byte by byte; all must agree. The whole result.
    static func parseAllWays(_ input: String, sourceLocation: SourceLocation = #_sourceLocation)
        -> (events: [HTTPParserEvent], asked: [HTTPRequest], failed: Bool) {
        let bytes = Array(input.utf8)
        let whole = parse(bytes, cuts: [])
        for cuts in (0...bytes.count).map({ [$0] }) + [Array(1..<max(1, bytes.count))] {
            let split = parse(bytes, cuts: cuts)
            if split.events != whole.events || split.asked != whole.asked {
                Issue.record("cuts \(cuts.count == 1 ? "at \(cuts[0])" : "every byte") give \(split.events), whole gives \(whole.events)",
                             sourceLocation: sourceLocation)
                break
            }
        }
        return whole
    }

    static func error(_ events: [HTTPParserEvent]) -> HTTPParseError? {
        if case .error(let e)? = events.last { return e }
        return nil
    }

    @Test func aRaisedLimitTakesALargerBody() {
        let body = String(repeating: "u", count: 60)
        let r = Self.parseAllWays("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 60\r\n\r\n\(body)")
        guard case .request(let request)? = r.events.first, r.events.count == 1 else {
            Issue.record("expected one request, got \(r.events)")
            return
        }
        #expect(request.body == Array(body.utf8))
        // The decider saw the head, with its fields and no body yet.
        #expect(r.asked.count == 1 && r.asked[0].path == "/upload" && r.asked[0].headers["Content-Length"] == "60" && r.asked[0].body.isEmpty)
    }

    @Test func pastTheRaisedLimitIs413NamingItsSettingBeforeTheBody() {
        // Only the head is sent: the refusal cannot wait for body bytes.
        let r = Self.parseAllWays("POST /upload HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 101\r\n\r\n")
        let e = Self.error(r.events)
        #expect(e?.status == 413 && e?.message.contains("100 bytes (admin.max_upload_bytes)") == true, "\(r.events)")
        #expect(r.events.count == 1, "no 100 Continue before the refusal: \(r.events)")
        #expect(r.failed)
    }

    @Test func otherRequestsKeepTheDefaultAndNameItsSetting() {
        let r = Self.parseAllWays("POST /other HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n")
        let e = Self.error(r.events)
        #expect(e?.status == 413 && e?.message.contains("10 bytes (server.max_body_bytes)") == true, "\(r.events)")
        // Without a decider, `maxBodyBytes` and its setting as before.
        var plain = HTTPParser(limits: Self.limits)
        #expect(Self.error(plain.feed(Array("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n".utf8)))?.status == 413)
    }

    @Test func theLimitIsDecidedPerRequest() {
        // A raised limit does not carry over to the next pipelined request on the connection.
        let big = String(repeating: "a", count: 50)
        let r = Self.parseAllWays("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 50\r\n\r\n\(big)"
                                  + "POST /other HTTP/1.1\r\nHost: h\r\nContent-Length: 50\r\n\r\n\(big)")
        #expect(r.events.count == 2, "\(r.events)")
        if case .request(let first)? = r.events.first { #expect(first.body.count == 50) } else { Issue.record("\(r.events)") }
        #expect(Self.error(r.events)?.message.contains("server.max_body_bytes") == true, "\(r.events)")
        #expect(r.asked.map(\.path) == ["/upload", "/other"])
    }

    @Test func requestsWithoutABodyAreNotAsked() {
        let r = Self.parseAllWays("GET /upload HTTP/1.1\r\nHost: h\r\n\r\nPOST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
        #expect(r.events.count == 2 && r.asked.isEmpty, "\(r.events) \(r.asked)")
    }

    @Test func chunkedBodiesFollowTheDecidedLimit() {
        let chunk = String(repeating: "c", count: 40)
        // 80 bytes in two chunks: within the raised limit.
        var r = Self.parseAllWays("POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n\(chunk)\r\n28\r\n\(chunk)\r\n0\r\n\r\n")
        guard case .request(let request)? = r.events.first, r.events.count == 1 else {
            Issue.record("expected one request, got \(r.events)")
            return
        }
        #expect(request.body.count == 80)
        // A third chunk passes 100: 413 naming the raised limit's setting.
        r = Self.parseAllWays("POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n\(chunk)\r\n28\r\n\(chunk)\r\n28\r\n")
        #expect(Self.error(r.events)?.status == 413 && Self.error(r.events)?.message.contains("admin.max_upload_bytes") == true, "\(r.events)")
        // The same chunks to another path stop at the default.
        r = Self.parseAllWays("POST /other HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n")
        #expect(Self.error(r.events)?.message.contains("grows past 10 bytes (server.max_body_bytes)") == true, "\(r.events)")
    }
}

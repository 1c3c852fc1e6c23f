// Seeded random fuzzing of the request parser: 20,000 mutations of valid request streams (byte
// changes, insertions of the bytes the grammar cares about, deletions, duplicated spans, truncations),
// each fed in random pieces and with random small limits. The parser must never trap, must give
// requests followed by at most one error, must agree with a single whole feed, and must honour its
// limits. A failure prints its iteration; the seed makes it replayable.

import HTTP
import Testing

@Suite struct FuzzTests {
    static let seeds: [String] = [
        "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
        "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"model\":\"base\"}\n",
        "PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n4;ext=\"v\"\r\nabcd\r\n1\r\ne\r\n0\r\nT: 1\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n\r\nPOST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok",
        "\r\nGET http://h:80/x?y HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nOPTIONS * HTTP/1.0\r\n\r\n",
        "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nConnection: close\r\n\r\n",
    ]

    /// Bytes the grammar treats specially, inserted more often than random ones.
    static let interesting: [UInt8] = [13, 10, 32, 9, 0, 0x7F, 0x80, 0xFF] + Array(":;,=\"\\%?#/*0fF9-".utf8)

    static let statuses: Set<Int> = [400, 413, 414, 417, 431, 501, 505]

    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let at = Int.random(in: 0...b.count, using: &rng)
            switch Int.random(in: 0..<7, using: &rng) {
            case 0 where at < b.count: b[at] = UInt8.random(in: 0...255, using: &rng)
            case 1 where at < b.count: b[at] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            case 2: b.insert(interesting.randomElement(using: &rng)!, at: at)
            case 3 where at < b.count: b.remove(at: at)
            case 4:
                let end = min(b.count, at + Int.random(in: 1...12, using: &rng))
                b.insert(contentsOf: b[at..<end], at: at)
            case 5: b.removeSubrange(at...)
            default: b.insert(UInt8.random(in: 0...255, using: &rng), at: at)
            }
        }
        return b
    }

    @Test func mutatedRequestsNeverTrapAndEndInAtMostOneError() {
        var rng = SplitMix64(seed: 0x1_07AD_4777)
        let seeds = Self.seeds.map { Array($0.utf8) }
        var requests = 0, errors = 0, statusesSeen = Set<Int>()
        for iteration in 0..<20_000 {
            let input = Self.mutate(seeds.randomElement(using: &rng)!, &rng)
            let limits = Int.random(in: 0..<4, using: &rng) == 0
                ? HTTPLimits(maxRequestLineBytes: Int.random(in: 0...60, using: &rng),
                             maxHeaderBytes: Int.random(in: 0...120, using: &rng),
                             maxHeaderCount: Int.random(in: 0...4, using: &rng),
                             maxBodyBytes: Int.random(in: 0...20, using: &rng),
                             maxChunkLineBytes: Int.random(in: 0...12, using: &rng))
                : HTTPLimits()
            let cuts = (0..<Int.random(in: 0...4, using: &rng)).map { _ in Int.random(in: 0...input.count, using: &rng) }.sorted()
            let split = parseInPieces(input, cuts: cuts, limits: limits)
            let whole = parseInPieces(input, cuts: [], limits: limits)
            guard split == whole else {
                Issue.record("iteration \(iteration): cuts \(cuts) give \(split), whole gives \(whole); input \(input)")
                return
            }
            var sawError = false
            for (k, event) in whole.events.enumerated() {
                switch event {
                case .request(let r):
                    requests += 1
                    #expect(r.body.count <= limits.maxBodyBytes)
                    #expect(r.headers.count <= limits.maxHeaderCount)
                    #expect(!r.method.isEmpty && !r.target.isEmpty)
                case .continueNeeded:
                    break
                case .error(let e):
                    errors += 1
                    statusesSeen.insert(e.status)
                    sawError = true
                    #expect(Self.statuses.contains(e.status), "iteration \(iteration): \(e)")
                    #expect(!e.message.isEmpty)
                    if k != whole.events.count - 1 {
                        Issue.record("iteration \(iteration): events after an error: \(whole.events)")
                        return
                    }
                }
            }
            #expect(whole.hasFailed == sawError)
        }
        // The fuzzer must reach both outcomes and several statuses, or it tests little.
        #expect(requests > 2_000)
        #expect(errors > 2_000)
        #expect(statusesSeen.isSuperset(of: [400, 413, 414, 431, 501, 505]), "\(statusesSeen)")
    }

    @Test func everyPrefixOfAValidStreamIsErrorFree() {
        // Errors depend only on the bytes so far, so a truncated valid stream is never an error:
        // it gives the requests it completed and waits for the rest.
        for seed in Self.seeds.map({ Array($0.utf8) }) {
            let complete = parseInPieces(seed, cuts: [], limits: .init())
            #expect(!complete.hasFailed)
            let requestCount = complete.events.filter { if case .request = $0 { true } else { false } }.count
            #expect(requestCount >= 1)
            for length in 0..<seed.count {
                let prefix = parseAllWays(Array(seed[..<length]))
                #expect(!prefix.hasFailed, "prefix \(length): \(prefix)")
                #expect(prefix.events == Array(complete.events.prefix(prefix.events.count)))
            }
        }
    }
}

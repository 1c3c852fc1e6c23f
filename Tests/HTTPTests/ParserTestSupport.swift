// Helpers shared by the parser tests. `parseAllWays` is the heart of them: every input is parsed whole,
// split in two at every byte boundary, and one byte at a time, and all must give the same events and
// end in the same state, because the server feeds bytes in whatever pieces the socket delivers.

import HTTP
import Testing

/// The bytes of `s`, which spells line endings explicitly ("\r\n").
func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// What a parser reports about itself after some feeds; compared across splits.
struct ParserSummary: Equatable, CustomStringConvertible {
    var events: [HTTPParserEvent]
    var isIdle: Bool
    var hasFailed: Bool
    var isFinished: Bool

    init(_ events: [HTTPParserEvent], _ parser: HTTPParser) {
        self.events = events
        isIdle = parser.isIdle
        hasFailed = parser.hasFailed
        isFinished = parser.isFinished
    }

    var description: String { "idle \(isIdle) failed \(hasFailed) finished \(isFinished) events \(events)" }
}

/// Parses `input` in pieces cut at `cuts` (increasing offsets).
func parseInPieces(_ input: [UInt8], cuts: [Int], limits: HTTPLimits) -> ParserSummary {
    var parser = HTTPParser(limits: limits)
    var events: [HTTPParserEvent] = []
    input.withUnsafeBytes { all in
        var start = 0
        for end in cuts + [all.count] {
            events += parser.feed(UnsafeRawBufferPointer(rebasing: all[start..<end]))
            start = end
        }
    }
    return ParserSummary(events, parser)
}

/// Parses `input` whole, in two pieces split at every offset (or every offset in `splitsIn`, for the
/// few inputs of many kilobytes), and one byte at a time; records an issue when any of them differs
/// from the whole; returns the summary of the whole.
@discardableResult
func parseAllWays(_ input: [UInt8], limits: HTTPLimits = .init(), splitsIn: ClosedRange<Int>? = nil,
                  sourceLocation: SourceLocation = #_sourceLocation) -> ParserSummary {
    let whole = parseInPieces(input, cuts: [], limits: limits)
    for cut in (splitsIn ?? 0...input.count).clamped(to: 0...input.count) {
        let split = parseInPieces(input, cuts: [cut], limits: limits)
        if split != whole {
            Issue.record("split at byte \(cut) of \(input.count) gives \(split), whole gives \(whole)",
                         sourceLocation: sourceLocation)
            break
        }
    }
    if input.count > 1 {
        let single = parseInPieces(input, cuts: Array(1..<input.count), limits: limits)
        if single != whole {
            Issue.record("byte at a time gives \(single), whole gives \(whole)", sourceLocation: sourceLocation)
        }
    }
    return whole
}

/// The events for `input` (checked all ways).
func events(_ input: String, limits: HTTPLimits = .init(),
            sourceLocation: SourceLocation = #_sourceLocation) -> [HTTPParserEvent] {
    parseAllWays(bytes(input), limits: limits, sourceLocation: sourceLocation).events
}

/// Expects `input` to end in exactly one error with `status`, after zero or more requests, and the
/// parser to count as failed; returns the error's message ("" when there was none).
@discardableResult
func expectError(_ input: [UInt8], status: Int, limits: HTTPLimits = .init(), splitsIn: ClosedRange<Int>? = nil,
                 sourceLocation: SourceLocation = #_sourceLocation) -> String {
    let summary = parseAllWays(input, limits: limits, splitsIn: splitsIn, sourceLocation: sourceLocation)
    let errors = summary.events.compactMap { event -> HTTPParseError? in
        if case .error(let e) = event { return e }
        return nil
    }
    guard errors.count == 1, case .error(let error) = summary.events.last else {
        Issue.record("expected one error \(status) at the end, got \(summary.events)", sourceLocation: sourceLocation)
        return ""
    }
    #expect(error.status == status, "\(error)", sourceLocation: sourceLocation)
    #expect(summary.hasFailed, sourceLocation: sourceLocation)
    #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
    return error.message
}

@discardableResult
func expectError(_ input: String, status: Int, limits: HTTPLimits = .init(),
                 sourceLocation: SourceLocation = #_sourceLocation) -> String {
    expectError(bytes(input), status: status, limits: limits, sourceLocation: sourceLocation)
}

/// Expects `input` to give exactly `expected` (requests and continue signals), no error.
func expectEvents(_ input: String, _ expected: [HTTPParserEvent], limits: HTTPLimits = .init(),
                  sourceLocation: SourceLocation = #_sourceLocation) {
    let summary = parseAllWays(bytes(input), limits: limits, sourceLocation: sourceLocation)
    #expect(summary.events == expected, sourceLocation: sourceLocation)
    #expect(!summary.hasFailed, sourceLocation: sourceLocation)
}

/// The one request `input` gives, or nil (with an issue) when it gives anything else.
func onlyRequest(_ input: String, limits: HTTPLimits = .init(),
                 sourceLocation: SourceLocation = #_sourceLocation) -> HTTPRequest? {
    let summary = parseAllWays(bytes(input), limits: limits, sourceLocation: sourceLocation)
    guard summary.events.count == 1, case .request(let request) = summary.events[0] else {
        Issue.record("expected one request, got \(summary.events)", sourceLocation: sourceLocation)
        return nil
    }
    return request
}

/// A small deterministic generator (SplitMix64), so fuzz failures can be replayed from the seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

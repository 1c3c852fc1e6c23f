// Stop strings over streamed text: what may be sent now, what must be held back, where to cut.
//
// Semantics follow llama-server (tools/server/server-context.cpp `process_token` and
// `find_stopping_strings`, llama-cpp-python 0.3.36) and the OpenAI API (FORMATS.md §7.2-7.3): after
// each chunk, if any stop string occurs in the unsent text, the output ends right before the
// earliest occurrence and the stop string is not returned; otherwise text that could still be the
// beginning of a stop string is held back until later chunks decide it. Matching is on UTF-8 bytes,
// as in llama.cpp (no Unicode normalization). A held-back suffix always starts at the first byte of
// a character, because it equals the start of a stop string, so emitted text is always whole
// characters as long as the chunks are (the detokenizer holds back partial UTF-8 sequences).

/// Finds stop strings in a stream of text chunks. One per sequence; feed chunks in order.
public struct StopMatcher: Sendable {
    /// What one `feed` produced.
    public struct Output: Sendable, Equatable {
        /// Text that can be sent to the client now.
        public var text: String
        /// The stop string that ended the output, if one matched in this chunk. After a match the
        /// matcher is finished: further chunks produce nothing.
        public var stoppedBy: String?

        public init(text: String, stoppedBy: String? = nil) {
            self.text = text
            self.stoppedBy = stoppedBy
        }
    }

    public let stopStrings: [String]
    private let stops: [[UInt8]]
    private var pending: [UInt8] = []   // received but not yet released
    public private(set) var isFinished = false

    /// Empty strings are ignored (they would match everywhere; `SamplingParameters.validate`
    /// rejects them before they get here).
    public init(stopStrings: [String]) {
        self.stopStrings = stopStrings.filter { !$0.isEmpty }
        self.stops = self.stopStrings.map { Array($0.utf8) }
    }

    /// Adds a chunk of generated text and returns what is safe to send now.
    public mutating func feed(_ chunk: String) -> Output {
        guard !isFinished else { return Output(text: "") }
        pending.append(contentsOf: chunk.utf8)
        if stops.isEmpty { return Output(text: release(count: pending.count)) }

        // `pending` is only the held-back prefix plus this chunk, so a full scan is cheap.
        if let (start, which) = earliestMatch() {
            let text = release(count: start)
            pending.removeAll()
            isFinished = true
            return Output(text: text, stoppedBy: stopStrings[which])
        }
        return Output(text: release(count: pending.count - heldBackLength()))
    }

    /// End of generation (EOG token, length limit): releases whatever was held back.
    public mutating func flush() -> String {
        guard !isFinished else { return "" }
        isFinished = true
        return release(count: pending.count)
    }

    /// The earliest start of any complete stop string in `pending`; on equal starts the one listed
    /// first wins (llama-server does the same; the output is identical either way).
    private func earliestMatch() -> (start: Int, index: Int)? {
        var found: (start: Int, index: Int)?
        for (index, stop) in stops.enumerated() where stop.count <= pending.count {
            let limit = min(pending.count - stop.count, (found?.start ?? Int.max) - 1)
            if limit < 0 { continue }
            var s = 0
            while s <= limit {
                if pending[s] == stop[0] && matches(stop, at: s) {
                    found = (s, index)
                    break
                }
                s += 1
            }
        }
        return found
    }

    private func matches(_ stop: [UInt8], at start: Int) -> Bool {
        for j in 0..<stop.count where pending[start + j] != stop[j] { return false }
        return true
    }

    /// Length of the longest suffix of `pending` that is a proper prefix of some stop string.
    /// Holding back the longest one also holds back every shorter candidate inside it.
    private func heldBackLength() -> Int {
        var longest = 0
        for stop in stops {
            var len = min(stop.count - 1, pending.count)
            while len > longest {
                if suffix(of: len, equalsPrefixOf: stop) { longest = len; break }
                len -= 1
            }
        }
        return longest
    }

    private func suffix(of len: Int, equalsPrefixOf stop: [UInt8]) -> Bool {
        let base = pending.count - len
        for j in 0..<len where pending[base + j] != stop[j] { return false }
        return true
    }

    private mutating func release(count: Int) -> String {
        guard count > 0 else { return "" }
        let text = String(decoding: pending[0..<count], as: UTF8.self)
        pending.removeFirst(count)
        return text
    }
}

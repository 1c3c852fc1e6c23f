// RegexNode → a Thompson NFA over bytes. Each scalar set becomes the alternation of its UTF-8
// byte-range sequences (UTF8Sequences), so the automaton reads UTF-8 and a token that ends inside a
// character is still a valid prefix. Built backwards, each node compiled with its continuation
// already known, so no fragment patching is needed.

struct ByteNFA: Sendable {
    enum Node: Sendable {
        /// Read one byte in `low...high`, go to `next`.
        case byteRange(low: UInt8, high: UInt8, next: Int32)
        /// Go to every target without reading (an empty list is a dead end).
        case split([Int32])
        /// Read a whole sentence of automaton `rule` (a grammar's recursive rule), go to `next`.
        case call(rule: Int32, next: Int32)
        case accept
    }

    private(set) var nodes: [Node] = []
    private(set) var start: Int32 = 0
    /// Nodes a pattern may compile to; `{1000}` of `.` is about 10^4, so this leaves ample room.
    static let defaultNodeLimit = 1_000_000
    let nodeLimit: Int

    init(_ regex: RegexNode, nodeLimit: Int = ByteNFA.defaultNodeLimit) throws(RegexError) {
        self.nodeLimit = nodeLimit
        let accept = try add(.accept)
        start = try compile(regex, next: accept)
    }

    private mutating func add(_ node: Node) throws(RegexError) -> Int32 {
        guard nodes.count < nodeLimit else { throw .tooLarge(nfaStates: nodes.count, limit: nodeLimit) }
        nodes.append(node)
        return Int32(nodes.count - 1)
    }

    private mutating func compile(_ node: RegexNode, next: Int32) throws(RegexError) -> Int32 {
        switch node {
        case .empty:
            return next
        case .set(let set):
            // Sequences share their common suffixes (RE2's and Rust regex's UTF-8 suffix cache):
            // E1-EC [80-BF] [80-BF] and EE-EF [80-BF] [80-BF] end in the same two nodes, so the DFA
            // has one state per "continuation bytes left" instead of one per lead-byte range. A
            // counted repetition of a large class ({0,200} of a JSON string character) is thereby
            // about half as many DFA states.
            var suffixes: [UInt64: Int32] = [:]  // (low, high, next) → node
            var starts: [Int32] = []
            for range in set.ranges {
                for sequence in UTF8Sequences.sequences(range) {
                    var target = next
                    for r in sequence.reversed() {
                        let key = UInt64(r.lowerBound) << 40 | UInt64(r.upperBound) << 32 | UInt64(UInt32(bitPattern: target))
                        if let shared = suffixes[key] {
                            target = shared
                        } else {
                            target = try add(.byteRange(low: r.lowerBound, high: r.upperBound, next: target))
                            suffixes[key] = target
                        }
                    }
                    starts.append(target)
                }
            }
            return starts.count == 1 ? starts[0] : try add(.split(starts))
        case .concatenation(let items):
            var target = next
            for item in items.reversed() { target = try compile(item, next: target) }
            return target
        case .alternation(let branches):
            var starts: [Int32] = []
            for branch in branches { starts.append(try compile(branch, next: next)) }
            return try add(.split(starts))
        case .repetition(let inner, let min, let max):
            var target = next
            if let max {
                // (x(x(x)?)?)? for the optional copies: each may stop at once.
                for _ in 0..<(max - min) {
                    let body = try compile(inner, next: target)
                    target = try add(.split([body, next]))
                }
            } else {
                // A loop: the split is created first and given its targets once the body exists.
                let loop = try add(.split([]))
                let body = try compile(inner, next: loop)
                nodes[Int(loop)] = .split([body, next])
                target = loop
            }
            for _ in 0..<min { target = try compile(inner, next: target) }
            return target
        case .nonterminal(let rule):
            return try add(.call(rule: Int32(rule), next: next))
        }
    }
}

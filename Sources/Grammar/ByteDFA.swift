// ByteNFA → a dense DFA over bytes, determinised eagerly by subset construction, with dead states
// folded into one. Bytes are first grouped into equivalence classes (bytes that no NFA range tells
// apart share a column, as in RE2 and Rust regex), so a row is `classCount` entries, not 256.
//
// An automaton of a context-free grammar's rule (ContextFreeGrammar) also has call transitions: in
// a state, "a whole sentence of rule R" leads to another state. They are kept per state beside the
// byte table; a pattern's DFA has none.
//
// State 0 is the dead state: every byte leads back to it and it never accepts. Every other state is
// live: some continuation (bytes and calls; every rule called can finish) reaches an accepting state. States that cannot reach acceptance are
// mapped to 0 after construction, which is what lets a token walk stop at the first byte that
// makes a match impossible, and what makes "the DFA is not dead" mean "this is a valid prefix".

public struct ByteDFA: Sendable {
    public static let dead: UInt32 = 0
    /// States a pattern may determinise to before `RegexError.tooManyStates`.
    public static let defaultStateLimit = 10_000

    /// The equivalence class of each byte.
    let classOf: [UInt8]
    /// How many columns a row has (byte classes: at most 256, a few dozen for typical patterns).
    public let classCount: Int
    /// Row-major: `transitions[state * classCount + class]`.
    let transitions: [UInt32]
    /// The same table with every target already multiplied by `classCount` (the offset of its row),
    /// so a walk over many bytes saves a multiply per byte, as Rust regex-automata's dense DFAs do.
    let premultiplied: [UInt32]
    let accepting: [Bool]
    /// Call transitions of state s: `calls[callStart[s]..<callStart[s + 1]]`, (rule, target) pairs
    /// with distinct rules. Empty for a pattern.
    let callStart: [UInt32]
    let calls: [(rule: Int32, target: UInt32)]
    /// The start state (0 when the pattern matches nothing).
    public let start: UInt32

    public var stateCount: Int { accepting.count }

    /// Parses and compiles `pattern` (whole-match semantics).
    public init(pattern: String, stateLimit: Int = ByteDFA.defaultStateLimit) throws(RegexError) {
        let regex = try RegexParser.parse(pattern)
        try self.init(nfa: ByteNFA(regex), stateLimit: stateLimit)
    }

    init(nfa: ByteNFA, stateLimit: Int) throws(RegexError) {
        // Byte classes: a boundary before every range's first byte and after its last.
        var boundary = [Bool](repeating: false, count: 257)
        for node in nfa.nodes {
            if case .byteRange(let low, let high, _) = node {
                boundary[Int(low)] = true
                boundary[Int(high) + 1] = true
            }
        }
        var classOf = [UInt8](repeating: 0, count: 256)
        var representative: [UInt8] = [0]
        var current = 0
        for byte in 1..<256 {
            if boundary[byte] { current += 1; representative.append(UInt8(byte)) }
            classOf[byte] = UInt8(current)
        }
        let classCount = current + 1

        var builder = SubsetBuilder(nfa: nfa)
        var ids: [[Int32]: UInt32] = [[]: 0]
        var sets: [[Int32]] = [[]]
        var transitions = [UInt32](repeating: 0, count: classCount)  // the dead state's row
        let startSet = builder.closure(of: [nfa.start])
        var start: UInt32 = 0
        if !startSet.isEmpty {
            ids[startSet] = 1
            sets.append(startSet)
            start = 1
        }
        var callsOf: [[(rule: Int32, target: UInt32)]] = [[]]
        func id(_ targets: [Int32]) throws(RegexError) -> UInt32 {
            if let known = ids[targets] { return known }
            guard sets.count < stateLimit else { throw .tooManyStates(limit: stateLimit) }
            let target = UInt32(sets.count)
            ids[targets] = target
            sets.append(targets)
            return target
        }
        var s = 1
        while s < sets.count {
            let set = sets[s]
            for c in 0..<classCount {
                transitions.append(try id(builder.step(set, byte: representative[c])))
            }
            var stateCalls: [(rule: Int32, target: UInt32)] = []
            for rule in builder.calledRules(set) {
                stateCalls.append((rule, try id(builder.call(set, rule: rule))))
            }
            callsOf.append(stateCalls)
            s += 1
        }
        let accepting = sets.map { set in set.contains { if case .accept = nfa.nodes[Int($0)] { true } else { false } } }

        // Liveness: reverse reachability from the accepting states.
        let n = sets.count
        var predecessors = [[UInt32]](repeating: [], count: n)
        for state in 1..<max(n, 1) {
            for c in 0..<classCount {
                let t = Int(transitions[state * classCount + c])
                if t != 0 { predecessors[t].append(UInt32(state)) }
            }
            for call in callsOf[state] where call.target != 0 { predecessors[Int(call.target)].append(UInt32(state)) }
        }
        var live = accepting
        var queue = (0..<n).filter { accepting[$0] }
        while let t = queue.popLast() {
            for p in predecessors[t] where !live[Int(p)] {
                live[Int(p)] = true
                queue.append(Int(p))
            }
        }

        // Renumber the live states 1...; every other state becomes the dead state 0.
        var newID = [UInt32](repeating: 0, count: n)
        var liveStates: [Int] = []
        for state in 1..<max(n, 1) where live[state] {
            liveStates.append(state)
            newID[state] = UInt32(liveStates.count)
        }
        var table = [UInt32](repeating: 0, count: (liveStates.count + 1) * classCount)
        var accepts = [false]
        var callStart: [UInt32] = [0, 0]
        var calls: [(rule: Int32, target: UInt32)] = []
        for (index, state) in liveStates.enumerated() {
            let row = (index + 1) * classCount
            for c in 0..<classCount { table[row + c] = newID[Int(transitions[state * classCount + c])] }
            accepts.append(accepting[state])
            for call in callsOf[state] where newID[Int(call.target)] != 0 { calls.append((call.rule, newID[Int(call.target)])) }
            callStart.append(UInt32(calls.count))
        }
        self.classOf = classOf
        self.classCount = classCount
        self.transitions = table
        self.premultiplied = table.map { $0 * UInt32(classCount) }
        self.accepting = accepts
        self.callStart = callStart
        self.calls = calls
        self.start = start == 0 ? 0 : newID[Int(start)]
    }

    /// The call transitions of `state`, (rule, target) with distinct rules.
    public func calls(from state: UInt32) -> ArraySlice<(rule: Int32, target: UInt32)> {
        calls[Int(callStart[Int(state)])..<Int(callStart[Int(state) + 1])]
    }

    /// Whether the automaton has no call transitions (a pattern's DFA, or a rule that calls nothing).
    public var isRegular: Bool { calls.isEmpty }

    /// Whether any byte leads from `state` to a live state.
    public func hasByteTransition(_ state: UInt32) -> Bool {
        let row = Int(state) * classCount
        return transitions[row..<(row + classCount)].contains { $0 != ByteDFA.dead }
    }

    @inline(__always)
    public func next(_ state: UInt32, _ byte: UInt8) -> UInt32 {
        transitions[Int(state) * classCount + Int(classOf[Int(byte)])]
    }

    public func isAccepting(_ state: UInt32) -> Bool { accepting[Int(state)] }

    /// The state after `bytes` from `state` (0 as soon as no match can follow).
    public func run<S: Sequence<UInt8>>(_ bytes: S, from state: UInt32) -> UInt32 {
        var s = state
        for b in bytes {
            s = next(s, b)
            if s == ByteDFA.dead { return s }
        }
        return s
    }

    /// Whether the whole of `bytes` matches the pattern.
    public func matches<S: Sequence<UInt8>>(_ bytes: S) -> Bool { isAccepting(run(bytes, from: start)) }
}

/// Epsilon closures and byte steps over NFA node sets, with a visited stamp per node so a closure
/// costs its size, not the NFA's.
private struct SubsetBuilder {
    let nfa: ByteNFA
    var stamp: [UInt32]
    var generation: UInt32 = 0
    var stack: [Int32] = []

    init(nfa: ByteNFA) {
        self.nfa = nfa
        stamp = [UInt32](repeating: 0, count: nfa.nodes.count)
    }

    /// The sorted byte-reading and accepting nodes reachable from `roots` without reading.
    mutating func closure(of roots: [Int32]) -> [Int32] {
        generation += 1
        var result: [Int32] = []
        stack.removeAll(keepingCapacity: true)
        for r in roots where stamp[Int(r)] != generation {
            stamp[Int(r)] = generation
            stack.append(r)
        }
        while let n = stack.popLast() {
            switch nfa.nodes[Int(n)] {
            case .split(let targets):
                for t in targets where stamp[Int(t)] != generation {
                    stamp[Int(t)] = generation
                    stack.append(t)
                }
            case .byteRange, .accept, .call:
                result.append(n)
            }
        }
        result.sort()
        return result
    }

    mutating func step(_ set: [Int32], byte: UInt8) -> [Int32] {
        var next: [Int32] = []
        for n in set {
            if case .byteRange(let low, let high, let target) = nfa.nodes[Int(n)], low <= byte, byte <= high {
                next.append(target)
            }
        }
        return next.isEmpty ? [] : closure(of: next)
    }

    /// The rules some node of `set` calls, ascending.
    func calledRules(_ set: [Int32]) -> [Int32] {
        var rules: [Int32] = []
        for n in set { if case .call(let rule, _) = nfa.nodes[Int(n)] { rules.append(rule) } }
        return Array(Set(rules)).sorted()
    }

    mutating func call(_ set: [Int32], rule: Int32) -> [Int32] {
        var next: [Int32] = []
        for n in set { if case .call(let r, let target) = nfa.nodes[Int(n)], r == rule { next.append(target) } }
        return closure(of: next)
    }
}

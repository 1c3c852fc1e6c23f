// A context-free grammar over Unicode scalars: named rules whose bodies are regular expressions
// (RegexNode) that may refer to other rules (`.nonterminal`). GBNF text (GBNF.parse) and recursive
// JSON Schemas (JSONSchemaCompiler.grammar) compile to it; GrammarMatcher runs it over tokens.
//
// `automata()` turns it into a recursive transition network, the shape llguidance and XGrammar use
// to keep the regular parts fast: every rule that is not recursive is inlined where it is used, so
// what remains is the root and the rules on a cycle, each one byte DFA (ByteDFA) whose call
// transitions stand for "a whole sentence of that rule". A JSON grammar thereby becomes three or four
// automata (value, object, array) whose strings, numbers and whitespace are plain DFA states.
//
// Grammars the matcher could not run are refused here, with the rule named: a rule that can reach
// itself without reading a byte (left recursion: the matcher's stack would grow forever, llama.cpp
// refuses it too), and a root that matches nothing. Rules that match nothing are dropped wherever
// they are used, so no state ever waits for one.

public struct ContextFreeGrammar: Sendable, Equatable {
    /// Rule names, for messages (a JSON Schema's rules are named by their `$ref`).
    public var names: [String]
    /// Rule bodies; `.nonterminal(i)` refers to `rules[i]`.
    public var rules: [RegexNode]
    public var root: Int

    public init(names: [String], rules: [RegexNode], root: Int) {
        precondition(names.count == rules.count && rules.indices.contains(root), "a grammar's root must be one of its rules")
        self.names = names
        self.rules = rules
        self.root = root
    }

    /// A grammar of one rule: the language of a pattern.
    public init(regex: RegexNode) { self.init(names: ["root"], rules: [regex], root: 0) }

    /// Rules allowed after inlining before a grammar counts as too large (each is a DFA).
    public static let automatonLimit = 512
    /// Rules a grammar may have, and how deep inlining may nest rules in one another: the
    /// analyses and the inlining recurse along rule references, so a hostile chain
    /// (`a1 ::= "x" a2`, `a2 ::= "x" a3`, ...) must not overflow a thread's stack.
    public static let ruleLimit = 1000
    public static let inliningDepthLimit = 200

    /// The automata: index 0 is the root's body, which only ever sits at the bottom of a stack;
    /// the others are the recursive rules, called from anywhere.
    public func automata(stateLimit: Int = ByteDFA.defaultStateLimit) throws(GrammarError) -> [ByteDFA] {
        let n = rules.count
        guard n <= ContextFreeGrammar.ruleLimit else {
            throw .tooLarge(message: "\(n) rules (at most \(ContextFreeGrammar.ruleLimit))")
        }
        var references = [[Int]](repeating: [], count: n)
        for (i, body) in rules.enumerated() {
            var refs: [Int] = []
            collectReferences(body, into: &refs)
            for r in refs where !rules.indices.contains(r) {
                throw .undefinedRule(name: "#\(r)", line: 0, column: 0)
            }
            references[i] = refs
        }

        // Productive rules (some sentence exists): a least fixpoint.
        var productive = [Bool](repeating: false, count: n)
        var changed = true
        while changed {
            changed = false
            for i in 0..<n where !productive[i] && isProductive(rules[i], productive) {
                productive[i] = true
                changed = true
            }
        }
        guard productive[root] else { throw .matchesNothing(rule: names[root]) }

        // Left recursion: a cycle of rules each called before any byte is read.
        var nullable = [Bool](repeating: false, count: n)
        changed = true
        while changed {
            changed = false
            for i in 0..<n where !nullable[i] && isNullable(rules[i], nullable) {
                nullable[i] = true
                changed = true
            }
        }
        var leftCalls = [[Int]](repeating: [], count: n)
        for i in 0..<n {
            var firsts: [Int] = []
            _ = leadingReferences(rules[i], nullable: nullable, productive: productive, into: &firsts)
            leftCalls[i] = firsts
        }
        if let cycle = findCycle(leftCalls) {
            throw .leftRecursion(rules: cycle.map { names[$0] })
        }

        // Recursive rules: those on a cycle of the reference graph (Tarjan's strongly connected components).
        let recursive = recursiveRules(references.map { $0.filter { productive[$0] } })

        // Automaton indices: the root body is 0, each recursive rule reachable from it gets one.
        var automatonOf = [Int](repeating: -1, count: n)
        var order: [Int] = []
        var inlined = [RegexNode?](repeating: nil, count: n)
        var inlining = 0
        func body(_ node: RegexNode) throws(GrammarError) -> RegexNode {
            switch node {
            case .empty, .set: return node
            case .concatenation(let xs):
                var out: [RegexNode] = []
                for x in xs { out.append(try body(x)) }
                return .concatenation(out)
            case .alternation(let xs):
                var out: [RegexNode] = []
                for x in xs { out.append(try body(x)) }
                return .alternation(out)
            case .repetition(let x, let lo, let hi): return .repetition(try body(x), min: lo, max: hi)
            case .nonterminal(let r):
                guard productive[r] else { return .set(ScalarSet()) }
                if recursive[r] {
                    if automatonOf[r] < 0 {
                        guard order.count < ContextFreeGrammar.automatonLimit else {
                            throw .tooLarge(message: "more than \(ContextFreeGrammar.automatonLimit) recursive rules")
                        }
                        automatonOf[r] = order.count + 1
                        order.append(r)
                    }
                    return .nonterminal(automatonOf[r])
                }
                // Non-recursive rules form a DAG: inline (and remember) the expansion.
                if let done = inlined[r] { return done }
                inlining += 1
                defer { inlining -= 1 }
                guard inlining <= ContextFreeGrammar.inliningDepthLimit else {
                    throw .tooLarge(message: "rules nested more than \(ContextFreeGrammar.inliningDepthLimit) deep in one another (at '\(names[r])')")
                }
                let expanded = try body(rules[r])
                inlined[r] = expanded
                return expanded
            }
        }
        var bodies: [RegexNode] = [try body(recursive[root] ? .nonterminal(root) : rules[root])]
        var next = 0
        while next < order.count {
            bodies.append(try body(rules[order[next]]))
            next += 1
        }
        let ruleNames = [names[root]] + order.map { names[$0] }
        var automata: [ByteDFA] = []
        for (i, b) in bodies.enumerated() {
            do {
                automata.append(try ByteDFA(nfa: ByteNFA(b), stateLimit: stateLimit))
            } catch {
                throw .automaton(rule: ruleNames[i], error)
            }
        }
        return automata
    }
}

// MARK: analyses over rule bodies

private func collectReferences(_ node: RegexNode, into refs: inout [Int]) {
    switch node {
    case .empty, .set: break
    case .concatenation(let xs), .alternation(let xs): for x in xs { collectReferences(x, into: &refs) }
    case .repetition(let x, _, _): collectReferences(x, into: &refs)
    case .nonterminal(let r): refs.append(r)
    }
}

private func isProductive(_ node: RegexNode, _ productive: [Bool]) -> Bool {
    switch node {
    case .empty: return true
    case .set(let s): return !s.isEmpty
    case .concatenation(let xs): return xs.allSatisfy { isProductive($0, productive) }
    case .alternation(let xs): return xs.contains { isProductive($0, productive) }
    case .repetition(let x, let lo, _): return lo == 0 || isProductive(x, productive)
    case .nonterminal(let r): return productive[r]
    }
}

private func isNullable(_ node: RegexNode, _ nullable: [Bool]) -> Bool {
    switch node {
    case .empty: return true
    case .set: return false
    case .concatenation(let xs): return xs.allSatisfy { isNullable($0, nullable) }
    case .alternation(let xs): return xs.contains { isNullable($0, nullable) }
    case .repetition(let x, let lo, _): return lo == 0 || isNullable(x, nullable)
    case .nonterminal(let r): return nullable[r]
    }
}

/// Appends the rules `node` may call before reading a byte; returns whether `node` is nullable.
private func leadingReferences(_ node: RegexNode, nullable: [Bool], productive: [Bool], into refs: inout [Int]) -> Bool {
    switch node {
    case .empty: return true
    case .set: return false
    case .concatenation(let xs):
        for x in xs where !leadingReferences(x, nullable: nullable, productive: productive, into: &refs) { return false }
        return true
    case .alternation(let xs):
        var any = false
        for x in xs where leadingReferences(x, nullable: nullable, productive: productive, into: &refs) { any = true }
        return any
    case .repetition(let x, let lo, let hi):
        if hi == 0 { return true }
        return leadingReferences(x, nullable: nullable, productive: productive, into: &refs) || lo == 0
    case .nonterminal(let r):
        if productive[r] { refs.append(r) }
        return nullable[r]
    }
}

/// A cycle in the graph, as the rules on it in order, or nil.
private func findCycle(_ edges: [[Int]]) -> [Int]? {
    var color = [UInt8](repeating: 0, count: edges.count)  // 0 new, 1 on the path, 2 done
    var path: [Int] = []
    func visit(_ v: Int) -> [Int]? {
        color[v] = 1
        path.append(v)
        for w in edges[v] {
            if color[w] == 1, let at = path.firstIndex(of: w) { return Array(path[at...]) + [w] }
            if color[w] == 0, let cycle = visit(w) { return cycle }
        }
        path.removeLast()
        color[v] = 2
        return nil
    }
    for v in edges.indices where color[v] == 0 {
        if let cycle = visit(v) { return cycle }
    }
    return nil
}

/// Whether each rule lies on a cycle (a component of more than one rule, or a rule calling itself).
private func recursiveRules(_ edges: [[Int]]) -> [Bool] {
    let n = edges.count
    var index = [Int](repeating: -1, count: n), low = [Int](repeating: 0, count: n)
    var onStack = [Bool](repeating: false, count: n)
    var stack: [Int] = []
    var counter = 0
    var result = [Bool](repeating: false, count: n)
    func connect(_ v: Int) {
        index[v] = counter; low[v] = counter; counter += 1
        stack.append(v); onStack[v] = true
        for w in edges[v] {
            if index[w] < 0 { connect(w); low[v] = min(low[v], low[w]) } else if onStack[w] { low[v] = min(low[v], index[w]) }
        }
        if low[v] == index[v] {
            var component: [Int] = []
            while true {
                let w = stack.removeLast()
                onStack[w] = false
                component.append(w)
                if w == v { break }
            }
            let cyclic = component.count > 1 || edges[v].contains(v)
            for w in component { result[w] = cyclic }
        }
    }
    for v in 0..<n where index[v] < 0 { connect(v) }
    return result
}

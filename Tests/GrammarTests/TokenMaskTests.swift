// The trie walk's masks equal the definition (each token's bytes fed through the DFA one by one),
// on every state of each pattern's DFA and on states reached by random token walks, for a synthetic
// vocabulary that needs no model and for SmolLM2's real one; and a constrained generation can never
// get stuck: from every reachable live state some token keeps the DFA alive, or the output may end.
import Dispatch
import Grammar
import Synchronization
import Testing

struct TokenMaskTests {
    static let patterns = [
        #"\d{3}-\d{4}"#,
        "(yes|no|maybe)",
        #"[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}"#,
        "[A-Z][a-z]+( [A-Z][a-z]+)*",
        #""([^"\\]|\\.)*""#,
        "[à-ÿ]+( 日本)?",
        #"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?"#,
    ]

    /// Checks the trie's mask, the lexer's cached mask and `advance` against brute force on `states`.
    func checkMasks(_ lexer: RegexLexer, tokens: [[UInt8]], excluded: Set<Int>, states: [UInt32],
                    pattern: String) {
        for s in states {
            let expected = bruteForceMask(lexer.dfa, state: s, tokens: tokens, excluded: excluded)
            let state = LexerState(index: s)
            let walked = lexer.computeMask(state: state)
            let differing = Set(walked.allowedIDs).symmetricDifference(expected.allowedIDs).sorted().prefix(5)
            #expect(walked == expected, "\(pattern) state \(s): walk allows \(walked.allowedCount), brute force \(expected.allowedCount); first differing ids \(Array(differing))")
            #expect(lexer.mask(state: state) == expected)
            #expect(lexer.mask(state: state) == expected, "the cached mask differs from the computed one")
            // advance agrees with the mask: allowed tokens lead to a live state, the rest to dead.
            for id in stride(from: 0, to: tokens.count, by: 37) {
                #expect(lexer.advance(state, token: id).isDead == !expected.contains(id))
            }
        }
    }

    /// States reached by sampling allowed tokens from the start, restarting now and then.
    func randomWalkStates(_ lexer: RegexLexer, steps: Int, seed: UInt64) -> [UInt32] {
        var rng = SeededRandom(seed: seed)
        var states: Set<UInt32> = []
        var state = lexer.start
        for _ in 0..<steps {
            states.insert(state.index)
            let allowed = lexer.mask(state: state).allowedIDs
            if allowed.isEmpty || rng.next() % 8 == 0 { state = lexer.start; continue }
            state = lexer.advance(state, token: allowed.randomElement(using: &rng)!)
        }
        return states.sorted()
    }

    @Test(arguments: Array(patterns.indices))
    func syntheticVocabularyMasksEqualBruteForce(_ index: Int) throws {
        let pattern = Self.patterns[index]
        let (trie, tokens, excluded) = try SyntheticVocabulary.make()
        let lexer = try RegexLexer(pattern: pattern, trie: trie)
        let states = Set(reachableStates(lexer.dfa) + randomWalkStates(lexer, steps: 300, seed: UInt64(index)))
        #expect(states.count == lexer.dfa.stateCount - 1, "every live state should be reachable")
        checkMasks(lexer, tokens: tokens, excluded: excluded, states: states.sorted() + [ByteDFA.dead], pattern: pattern)
    }

    @Test(arguments: Array(patterns.indices))
    func realVocabularyMasksEqualBruteForce(_ index: Int) throws {
        let pattern = Self.patterns[index]
        let trie = try RealVocabulary.trie()
        let tokens = (0..<trie.vocabularySize).map { Array(trie.bytes(of: $0)) }
        let excluded = Set((0..<trie.vocabularySize).filter { !trie.isIncluded($0) })
        #expect(trie.vocabularySize == 49_152)
        let lexer = try RegexLexer(pattern: pattern, trie: trie)
        let walked = randomWalkStates(lexer, steps: 400, seed: UInt64(index) + 100)
        // Random token walks, then every other state (each is byte-reachable, and SmolLM2 has a
        // token for every byte, so each is token-reachable too).
        let states = walked + reachableStates(lexer.dfa).filter { !walked.contains($0) }
        checkMasks(lexer, tokens: tokens, excluded: excluded, states: states, pattern: pattern)
    }

    /// From every state reachable by tokens: if the output may not end, some token continues it,
    /// and every token the mask allows leads to a state that is live.
    func checkNoDeadEnds(_ lexer: RegexLexer, pattern: String) {
        var seen: Set<LexerState> = [lexer.start]
        var queue = [lexer.start]
        var deadEnds: [UInt32] = []
        var killers: [(state: UInt32, token: Int)] = []
        while let state = queue.popLast() {
            let mask = lexer.mask(state: state)
            if !lexer.accepts(state) && mask.isEmpty { deadEnds.append(state.index) }
            for id in mask.allowedIDs {
                let next = lexer.advance(state, token: id)
                if next.isDead { killers.append((state.index, id)); continue }
                if seen.insert(next).inserted { queue.append(next) }
            }
        }
        #expect(deadEnds.isEmpty, "\(pattern): states \(deadEnds.prefix(10)) neither accept nor allow a token")
        #expect(killers.isEmpty, "\(pattern): \(killers.count) allowed tokens kill the DFA, e.g. \(killers.prefix(5))")
        #expect(seen.count == lexer.dfa.stateCount - 1, "\(pattern): \(seen.count) states reached by tokens of \(lexer.dfa.stateCount - 1) live")
    }

    @Test(arguments: Array(patterns.indices))
    func syntheticVocabularyNeverDeadEnds(_ index: Int) throws {
        let lexer = try RegexLexer(pattern: Self.patterns[index], trie: SyntheticVocabulary.make().trie)
        checkNoDeadEnds(lexer, pattern: Self.patterns[index])
    }

    @Test(arguments: Array(patterns.indices))
    func realVocabularyNeverDeadEnds(_ index: Int) throws {
        let lexer = try RegexLexer(pattern: Self.patterns[index], trie: RealVocabulary.trie())
        checkNoDeadEnds(lexer, pattern: Self.patterns[index])
    }

    @Test func acceptsAndAdvanceFollowTheText() throws {
        let tokens = ["1", "23", "4-", "56", "789", "0", "-", "12345678", "x"].map { Array($0.utf8) }
        let lexer = try RegexLexer(pattern: #"\d{3}-\d{4}"#, trie: TokenTrie(tokenBytes: tokens))
        var state = lexer.start
        #expect(!lexer.accepts(state))
        #expect(lexer.mask(state: state).allowedIDs == [0, 1, 3, 4, 5])  // not "4-": '-' after one digit
        for id in [0, 1, 6, 3, 1] { state = lexer.advance(state, token: id) }  // 1 23 - 56 23
        #expect(!state.isDead)
        #expect(lexer.accepts(state))
        #expect(lexer.mask(state: state).isEmpty)
        #expect(lexer.advance(lexer.start, token: 8).isDead)
        #expect(lexer.advance(lexer.start, token: 7).isDead)  // too long: 8 digits before the '-'
    }

    @Test func concurrentCallersShareOneCache() throws {
        // Threads asking for masks of the same states at once get the same masks as one thread alone.
        let (trie, _, _) = try SyntheticVocabulary.make()
        let pattern = #""([^"\\]|\\.)*""#
        let reference = try RegexLexer(pattern: pattern, trie: trie)
        let shared = try RegexLexer(pattern: pattern, trie: trie)
        let states = reachableStates(shared.dfa).map { LexerState(index: $0) }
        let results = Mutex([[TokenMask]](repeating: [], count: 4))
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            let masks = states.map { shared.mask(state: $0) }
            results.withLock { $0[worker] = masks }
        }
        let expected = states.map { reference.computeMask(state: $0) }
        for worker in 0..<4 { #expect(results.withLock { $0[worker] } == expected) }
    }
}

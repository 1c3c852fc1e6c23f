// One compiled pattern over one vocabulary: the per-token questions a constrained sampler asks.
// `mask(state:)` is which tokens may come next, `advance` moves past the token sampled, `accepts` is
// whether the generation may end here. A DFA state carries no history, so the mask of a state is
// the same whoever reaches it: masks are computed once per state and kept (a pattern has at most
// `ByteDFA.defaultStateLimit` states, each mask vocabularySize/8 bytes: 6 KiB for SmolLM2).
//
// Used by Sampling's TokenConstraint for every regular constraint: patterns, and schemas or grammars whose
// automata are one DFA without calls (GrammarMatcher runs the rest).

import Synchronization

/// A lexer position: a live state of the pattern's DFA, or the dead state.
public struct LexerState: Hashable, Sendable {
    public let index: UInt32
    public init(index: UInt32) { self.index = index }
    public var isDead: Bool { index == ByteDFA.dead }
}

public final class RegexLexer: Sendable {
    public let dfa: ByteDFA
    public let trie: TokenTrie
    /// Masks computed so far, by state. Shared by every thread that constrains with this pattern.
    private let cache: Mutex<[TokenMask?]>

    public init(dfa: ByteDFA, trie: TokenTrie) {
        self.dfa = dfa
        self.trie = trie
        cache = Mutex([TokenMask?](repeating: nil, count: dfa.stateCount))
    }

    public convenience init(pattern: String, trie: TokenTrie, stateLimit: Int = ByteDFA.defaultStateLimit) throws(RegexError) {
        self.init(dfa: try ByteDFA(pattern: pattern, stateLimit: stateLimit), trie: trie)
    }

    public var start: LexerState { LexerState(index: dfa.start) }

    /// Whether the output so far is a whole match, so end of generation may be sampled.
    public func accepts(_ state: LexerState) -> Bool { dfa.isAccepting(state.index) }

    /// The state after token `id`, dead when the token cannot continue a match (or is excluded).
    public func advance(_ state: LexerState, token id: Int) -> LexerState {
        guard trie.isIncluded(id) else { return LexerState(index: ByteDFA.dead) }
        return LexerState(index: dfa.run(trie.bytes(of: id), from: state.index))
    }

    /// The tokens allowed after `state`, from the cache or computed once and cached.
    public func mask(state: LexerState) -> TokenMask {
        if let cached = cache.withLock({ $0[Int(state.index)] }) { return cached }
        let mask = computeMask(state: state)
        cache.withLock { $0[Int(state.index)] = mask }
        return mask
    }

    /// The tokens allowed after `state`, computed afresh (the cache is neither read nor filled).
    public func computeMask(state: LexerState) -> TokenMask {
        trie.allowedTokens(dfa, from: state.index)
    }
}

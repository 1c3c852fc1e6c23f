// Constrained decoding (issue 20: regular expressions, JSON Schemas and GBNF grammars): which tokens
// a sequence may sample next so that its output stays a prefix of a sentence of the constraint's
// language, and when it may end.
//
// Three layers, shared to per sequence:
// - `ConstraintCompiler`: one per model vocabulary. Builds the vocabulary's `TokenTrie` once (on
//   first use: control and user-defined tokens are never constrained text, so they are left out)
//   and keeps compiled patterns in a bounded least-recently-used cache keyed by the pattern text
//   (a JSON Schema by its compact serialization, in a namespace of its own).
// - `TokenConstraint`: one compiled constraint (a `RegexLexer` for a regular language, a
//   `GrammarMatcher` for a context-free one; each immutable apart from its own locked mask cache)
//   and the vocabulary's end-of-generation tokens. Shared by every sequence that asks for the same
//   constraint; it travels in `SamplingParameters.constraint`. A JSON Schema without recursion or
//   free-form values compiles to one DFA and runs on a RegexLexer; otherwise on a GrammarMatcher.
// - `ConstraintState`: one sequence's position (a DFA state or a set of parse stacks), kept in
//   `SequenceSampling`.
//
// The rule per step (`SequenceSampling.sample`): the allowed set is the lexer's mask for the state,
// plus the end-of-generation tokens exactly when the lexer accepts the state. A state that accepts
// and that no token can continue therefore allows only end of generation. The sampler applies the
// set to the logits before anything else in its chain (bias, penalties, top-k, top-p, min-p,
// temperature, and greedy's argmax), so disallowed tokens are never drawn. After the token is
// accepted the state advances by its bytes.

import Grammar
import JSON
import Synchronization
import Tokenizer

/// What a constraint is compiled from: a pattern, a JSON Schema (OpenAI strict mode's compact
/// output: JSONSchemaCompiler) with its compact serialization, which keys the compiled cache, or
/// GBNF text (llama.cpp's grammar format).
public enum ConstraintSource: Sendable, Equatable {
    case regex(String)
    case jsonSchema(JSONValue, serialized: String)
    case grammar(String)

    public static func jsonSchema(_ schema: JSONValue) -> ConstraintSource {
        .jsonSchema(schema, serialized: schema.serialized())
    }

    /// The compiled cache's key: a regex and a schema never share one, whatever their text.
    var cacheKey: String {
        switch self {
        case .regex(let pattern): "r" + pattern
        case .jsonSchema(_, let serialized): "s" + serialized
        case .grammar(let text): "g" + text
        }
    }
}

/// The automaton a constraint runs on.
public enum ConstraintAutomaton: Sendable {
    case regular(RegexLexer)
    case contextFree(GrammarMatcher)
}

/// A compiled constraint over one vocabulary, shared by every sequence that uses it.
public final class TokenConstraint: Sendable, CustomStringConvertible {
    /// What the client sent, for logs: the pattern (a `guided_choice` becomes its alternation of
    /// literals), or "json_schema ..." / "grammar ...".
    public let pattern: String
    public let automaton: ConstraintAutomaton
    /// The vocabulary's end-of-generation tokens (EOS, EOT, `<|im_end|>`), ascending.
    public let endOfGeneration: [Int32]

    public init(pattern: String, automaton: ConstraintAutomaton, endOfGeneration: [Int32]) {
        self.pattern = pattern
        self.automaton = automaton
        self.endOfGeneration = endOfGeneration.sorted()
    }

    public var description: String { pattern }

    /// A fresh sequence's state: the start of the language.
    public func makeState() -> ConstraintState {
        switch automaton {
        case .regular(let lexer): ConstraintState(constraint: self, position: .regular(lexer, lexer.start))
        case .contextFree(let matcher): ConstraintState(constraint: self, position: .contextFree(matcher, matcher.start))
        }
    }

    /// The regex that matches exactly one of `choices` (vLLM's `guided_choice`): an alternation of
    /// the literals, each character that means something in a pattern escaped.
    public static func choicePattern(_ choices: [String]) -> String {
        choices.map(escapeLiteral).joined(separator: "|")
    }

    /// `text` as a pattern that matches exactly it.
    public static func escapeLiteral(_ text: String) -> String {
        var out = ""
        for c in text.unicodeScalars {
            if c.isASCII, c.value < 0x20 || c.value == 0x7F {
                out += "\\x" + (c.value < 16 ? "0" : "") + String(c.value, radix: 16)
            } else if c.isASCII, !c.properties.isAlphabetic, !("0"..."9").contains(c), c != " " {
                out += "\\" + String(c)
            } else {
                out.unicodeScalars.append(c)
            }
        }
        return out
    }
}

/// The allowed set of one step: the lexer's mask, and the end-of-generation tokens when `allowEnd`.
public struct AllowedTokens: Sendable {
    public let mask: TokenMask
    public let endOfGeneration: [Int32]
    public let allowEnd: Bool

    /// Whether `id` may be sampled.
    public func contains(_ id: Int32) -> Bool {
        mask.contains(Int(id)) || (allowEnd && endOfGeneration.contains(id))
    }
}

/// One sequence's position in its constraint.
public struct ConstraintState: Sendable {
    /// The automaton with the position in it, together, so the two can never disagree.
    public enum Position: Sendable {
        case regular(RegexLexer, LexerState)
        case contextFree(GrammarMatcher, GrammarState)
    }
    public let constraint: TokenConstraint
    public private(set) var position: Position

    init(constraint: TokenConstraint, position: Position) {
        self.constraint = constraint
        self.position = position
    }

    /// Whether the output so far is a whole sentence.
    public var accepts: Bool {
        switch position {
        case .regular(let lexer, let s): lexer.accepts(s)
        case .contextFree(let matcher, let s): matcher.accepts(s)
        }
    }

    /// No sentence starts with the output so far (a token was forced past the mask).
    public var isDead: Bool {
        switch position {
        case .regular(_, let s): s.isDead
        case .contextFree(_, let s): s.isDead
        }
    }

    /// The tokens that may continue the output (end of generation aside).
    public func mask() -> TokenMask {
        switch position {
        case .regular(let lexer, let s): lexer.mask(state: s)
        case .contextFree(let matcher, let s): matcher.mask(state: s)
        }
    }

    /// What may come next. A state from which no token continues and that does not accept cannot
    /// arise from a byte-level vocabulary (every byte is a token); should it arise anyway (a token
    /// forced past the mask), end of generation is allowed so the sequence ends instead of looping.
    public func allowed() -> AllowedTokens {
        let mask = mask()
        let end = accepts || mask.isEmpty
        return AllowedTokens(mask: mask, endOfGeneration: constraint.endOfGeneration, allowEnd: end)
    }

    /// Moves past a sampled token (not an end-of-generation token: that ends the sequence).
    public mutating func advance(_ token: Int32) {
        switch position {
        case .regular(let lexer, let s): position = .regular(lexer, lexer.advance(s, token: Int(token)))
        case .contextFree(let matcher, let s): position = .contextFree(matcher, matcher.advance(s, token: Int(token)))
        }
    }
}

/// Compiles patterns over one vocabulary and keeps the most recently used ones.
public final class ConstraintCompiler: Sendable {
    /// How many compiled patterns are kept (each holds its DFA and the masks computed so far).
    public let capacity: Int
    private let tokenizer: Tokenizer
    private let trie: Mutex<TokenTrie?>
    private let cache: Mutex<LRU>

    private struct LRU {
        var entries: [String: (constraint: TokenConstraint, used: UInt64)] = [:]
        var clock: UInt64 = 0
    }

    public init(tokenizer: Tokenizer, capacity: Int = 64) {
        self.tokenizer = tokenizer
        self.capacity = max(1, capacity)
        trie = Mutex(nil)
        cache = Mutex(LRU())
    }

    /// The vocabulary's token trie, built on first use (tens of milliseconds) and kept.
    public func tokenTrie() throws(TokenTrieError) -> TokenTrie {
        if let t = trie.withLock({ $0 }) { return t }
        let n = tokenizer.vocabularySize
        let pieces = (0..<n).map { tokenizer.piece(Int32($0), renderSpecial: true) }
        let excluded = Set((0..<n).filter { id in
            let a = tokenizer.vocabulary.attributes[id]
            return a.contains(.control) || a.contains(.userDefined)
        })
        let built = try TokenTrie(tokenBytes: pieces, excluded: excluded)
        return trie.withLock { stored in
            if let stored { return stored }
            stored = built
            return built
        }
    }

    /// The compiled constraint if it is in the cache (cheap: no compiling, no trie), else nil.
    public func cached(_ source: ConstraintSource) -> TokenConstraint? {
        let key = source.cacheKey
        return cache.withLock { lru in
            guard let hit = lru.entries[key] else { return nil }
            lru.clock += 1
            lru.entries[key]!.used = lru.clock
            return hit.constraint
        }
    }

    /// The compiled constraint, from the cache or compiled now (DFAs of up to
    /// `ByteDFA.defaultStateLimit` states: can take long for a large pattern, schema or grammar,
    /// so not on a thread that must stay responsive). Throws the pattern's `RegexError`, the
    /// schema's `JSONSchemaError` or the grammar's `GrammarError`.
    public func compile(_ source: ConstraintSource) throws -> TokenConstraint {
        if let hit = cached(source) { return hit }
        return store(source.cacheKey, try compileUncached(source))
    }

    /// A fresh compile that neither reads nor fills the cache (its masks start empty): for
    /// measuring compile and mask costs.
    public func compileUncached(_ source: ConstraintSource) throws -> TokenConstraint {
        let automaton: ConstraintAutomaton, shown: String
        switch source {
        case .regex(let pattern):
            automaton = .regular(try RegexLexer(pattern: pattern, trie: tokenTrie()))
            shown = pattern
        case .jsonSchema(let schema, let serialized):
            automaton = try Self.automaton(try JSONSchemaCompiler.automata(for: schema), trie: tokenTrie())
            shown = "json_schema " + serialized
        case .grammar(let text):
            automaton = try Self.automaton(try GBNF.parse(text).automata(), trie: tokenTrie())
            shown = "grammar " + text
        }
        return TokenConstraint(pattern: shown, automaton: automaton, endOfGeneration: Array(tokenizer.eogTokens))
    }

    /// One automaton without calls is a regular language: the DFA walk, without stacks.
    static func automaton(_ automata: [ByteDFA], trie: TokenTrie) throws(GrammarError) -> ConstraintAutomaton {
        if automata.count == 1, automata[0].isRegular { return .regular(RegexLexer(dfa: automata[0], trie: trie)) }
        return .contextFree(try GrammarMatcher(automata: automata, trie: trie))
    }

    /// `compile(.regex(pattern))`.
    public func compile(_ pattern: String) throws -> TokenConstraint { try compile(.regex(pattern)) }

    private func store(_ key: String, _ compiled: TokenConstraint) -> TokenConstraint {
        cache.withLock { lru in
            lru.clock += 1
            if let raced = lru.entries[key] {
                lru.entries[key]!.used = lru.clock
                return raced.constraint
            }
            if lru.entries.count >= capacity, let oldest = lru.entries.min(by: { $0.value.used < $1.value.used })?.key {
                lru.entries[oldest] = nil
            }
            lru.entries[key] = (compiled, lru.clock)
            return compiled
        }
    }

    /// How many compiled patterns the cache holds now.
    public var cachedCount: Int { cache.withLock { $0.entries.count } }
}

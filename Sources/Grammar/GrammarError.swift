// What can stop a pattern from compiling or a vocabulary from becoming a token trie, each case with
// what was expected, what was found and what to try. Offsets count Unicode scalars from the start
// of the pattern (0-based), which for an ASCII pattern is the character position.

public enum RegexError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Syntax the compiler understands but refuses, because no DFA over bytes can express it
    /// (backreferences, lookaround, word boundaries, anchors inside the pattern) or because lorad
    /// has not implemented it (inline flags, Unicode properties, class set operations).
    case unsupported(construct: String, offset: Int, hint: String)
    /// Malformed pattern text.
    case syntax(message: String, offset: Int)
    /// A character range written high to low, e.g. `[z-a]`.
    case invalidRange(low: String, high: String, offset: Int)
    /// `{m,n}` with n < m, or a count beyond `limit`.
    case invalidRepetition(message: String, offset: Int, limit: Int)
    /// The byte NFA would exceed `limit` states (large counted repetitions of large classes).
    case tooLarge(nfaStates: Int, limit: Int)
    /// Determinisation reached `limit` DFA states.
    case tooManyStates(limit: Int)

    public var description: String {
        switch self {
        case .unsupported(let construct, let offset, let hint):
            return "regex: \(construct) at offset \(offset) is not supported (hint: \(hint))"
        case .syntax(let message, let offset):
            return "regex: \(message) at offset \(offset)"
        case .invalidRange(let low, let high, let offset):
            return "regex: character range \(low)-\(high) at offset \(offset) runs backwards; "
                + "expected the low end first (hint: write \(high)-\(low), or escape '-' to mean a hyphen)"
        case .invalidRepetition(let message, let offset, let limit):
            return "regex: \(message) at offset \(offset); counts may be at most \(limit) "
                + "(hint: use * or + for an unbounded repetition)"
        case .tooLarge(let states, let limit):
            return "regex: the pattern compiles to more than \(limit) NFA states (\(states) so far) "
                + "(hint: reduce counted repetitions such as {1000} of large classes)"
        case .tooManyStates(let limit):
            return "regex: the pattern needs more than \(limit) DFA states "
                + "(hint: patterns like (a|b)*a(a|b){20} grow exponentially; shorten the counted part after an unbounded one)"
        }
    }
}

public enum TokenTrieError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A token longer than the trie's depth counter can hold.
    case tokenTooLong(id: Int, length: Int, limit: Int)
    /// More tokens than a 32-bit id (the mask's index) can name.
    case tooManyTokens(count: Int)

    public var description: String {
        switch self {
        case .tokenTooLong(let id, let length, let limit):
            return "token \(id) is \(length) bytes long; a token trie holds tokens of at most \(limit) bytes "
                + "(hint: exclude it as the caller excludes control tokens)"
        case .tooManyTokens(let count):
            return "a vocabulary of \(count) tokens is larger than a token trie can index (at most 2^31 - 1)"
        }
    }
}

/// What can stop a context-free grammar (GBNF text, or a recursive JSON Schema's rules) from
/// compiling. Lines and columns are 1-based and count Unicode scalars.
public enum GrammarError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Malformed GBNF text.
    case syntax(message: String, line: Int, column: Int)
    /// GBNF syntax lorad does not implement (e.g. token references `<[id]>`).
    case unsupported(construct: String, line: Int, column: Int, hint: String)
    /// A rule referred to but never defined, or defined twice.
    case undefinedRule(name: String, line: Int, column: Int)
    case duplicateRule(name: String, line: Int, column: Int)
    /// No rule named as the root.
    case missingRoot(name: String)
    /// The rules can call each other forever without reading a byte.
    case leftRecursion(rules: [String])
    /// The root derives no sentence at all.
    case matchesNothing(rule: String)
    /// A rule's automaton outgrew its limits (a `RegexError` such as tooManyStates).
    case automaton(rule: String, RegexError)
    case tooLarge(message: String)

    public var description: String {
        switch self {
        case .syntax(let message, let line, let column):
            return "grammar: \(message) at line \(line), column \(column)"
        case .unsupported(let construct, let line, let column, let hint):
            return "grammar: \(construct) at line \(line), column \(column) is not supported (hint: \(hint))"
        case .undefinedRule(let name, let line, let column):
            return "grammar: rule '\(name)' is used at line \(line), column \(column) but never defined "
                + "(hint: add a line '\(name) ::= ...')"
        case .duplicateRule(let name, let line, let column):
            return "grammar: rule '\(name)' is defined again at line \(line), column \(column) "
                + "(hint: join the definitions with '|')"
        case .missingRoot(let name):
            return "grammar: no rule named '\(name)'; generation starts from it (hint: add '\(name) ::= ...')"
        case .leftRecursion(let rules):
            return "grammar: left recursion through \(rules.joined(separator: " -> ")): a rule can reach itself "
                + "without reading a character (hint: rewrite 'a ::= a x | y' as 'a ::= y x*')"
        case .matchesNothing(let rule):
            return "grammar: rule '\(rule)' matches no string at all, so nothing could be generated"
        case .automaton(let rule, let error):
            return "grammar: rule '\(rule)': \(error)"
        case .tooLarge(let message):
            return "grammar: too large: \(message)"
        }
    }
}

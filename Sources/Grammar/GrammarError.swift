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

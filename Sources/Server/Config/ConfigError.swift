// What can be wrong with a configuration: an unreadable file, a TOML syntax error (with its line and
// column), unknown keys (with a did-you-mean) and bad values (with the key's full name, what was
// expected and what was found). Every problem in a file is collected, not just the first, so an
// operator fixes them in one go; the daemon refuses to start while any remains.

public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Where the configuration came from: a file path, or "command line" for flags.
    public var source: String
    /// At least one.
    public var problems: [ConfigProblem]

    public init(source: String, problems: [ConfigProblem]) {
        self.source = source
        self.problems = problems
    }

    /// One line per problem, each prefixed with the source, as compilers do.
    public var description: String {
        problems.map { "\(source): \($0)" }.joined(separator: "\n")
    }

    /// The key paths the problems name, in order (nil entries dropped).
    public var keys: [String] { problems.compactMap(\.key) }
}

public enum ConfigProblem: Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read.
    case unreadable(reason: String)
    /// Not valid TOML. Line and column are 1-based.
    case syntax(line: Int, column: Int, message: String)
    /// A key lorad does not know. `key` is the full path ("server.sockett"); `known` lists the
    /// keys of its section (or the sections, for a top-level key); `suggestion` is the closest
    /// known path, if one is close.
    case unknownKey(key: String, known: [String], suggestion: String?)
    /// A known key with a value of the wrong type or out of range. `found` is the value as written
    /// in TOML ("\"many\"", "0", "a table").
    case badValue(key: String, expected: String, found: String)
    /// A value that is fine on its own but not with the rest of the configuration.
    case conflict(key: String, message: String)

    public var key: String? {
        switch self {
        case .unreadable, .syntax: nil
        case .unknownKey(let key, _, _), .badValue(let key, _, _), .conflict(let key, _): key
        }
    }

    public var description: String {
        switch self {
        case .unreadable(let reason):
            return "cannot read the configuration: \(reason)"
        case .syntax(let line, let column, let message):
            return "line \(line), column \(column): TOML syntax error: \(message)"
        case .unknownKey(let key, let known, let suggestion):
            let hint = suggestion.map { "did you mean \($0)? " } ?? ""
            let dot = key.lastIndex(of: ".")
            let scope = dot.map { "in [\(key[..<$0])]" } ?? "at the top level"
            let what = dot == nil ? "sections" : "keys"
            return "unknown key \(key) (\(hint)known \(what) \(scope): \(known.joined(separator: ", ")))"
        case .badValue(let key, let expected, let found):
            return "\(key): expected \(expected), found \(found)"
        case .conflict(let key, let message):
            return "\(key): \(message)"
        }
    }
}

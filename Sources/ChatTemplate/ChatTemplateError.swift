// The one error type of the chat-template layer: Jinja syntax errors, constructs outside lorad's
// Jinja subset, render-time errors (type errors, undefined values) and `raise_exception(...)`
// calls made by the template itself. Every template error carries the 1-based line and column
// of the construct that failed, counted in Unicode scalars after newlines are normalized to "\n".

/// Where a construct starts in the template source (1-based; columns count Unicode scalars).
public struct TemplateLocation: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "line \(line), column \(column)" }
}

public enum ChatTemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The source is not valid Jinja (what jinja2 would also reject at compile time).
    case syntax(message: String, at: TemplateLocation)
    /// Valid Jinja that lorad's subset does not implement; never rendered approximately.
    case unsupported(construct: String, at: TemplateLocation)
    /// Rendering failed: a type error, an undefined value used where jinja2 fails too, or a
    /// value lorad cannot reproduce exactly.
    case render(message: String, at: TemplateLocation)
    /// The template called `raise_exception(message)` (transformers' helper), usually because the
    /// conversation breaks one of its rules (for example roles that do not alternate).
    case raised(message: String, at: TemplateLocation)
    /// `--chat-template NAME` named no built-in template and no readable file.
    case unknownTemplate(name: String, reason: String)

    public var description: String {
        switch self {
        case .syntax(let message, let at):
            return "chat template syntax error at \(at): \(message)"
        case .unsupported(let construct, let at):
            return "chat template uses \(construct) at \(at), which lorad's Jinja subset does not "
                + "implement (it renders only what it can reproduce exactly, as jinja2 would); "
                + "rewrite the template without it or choose another with --chat-template "
                + "(built in: \(ChatTemplate.builtinNames.joined(separator: ", ")))"
        case .render(let message, let at):
            return "chat template failed at \(at): \(message)"
        case .raised(let message, let at):
            return "chat template rejected the conversation (raise_exception at \(at)): \(message)"
        case .unknownTemplate(let name, let reason):
            return "chat template '\(name)' is neither a built-in template "
                + "(\(ChatTemplate.builtinNames.joined(separator: ", "))) nor a readable file: \(reason)"
        }
    }

    /// The message without the location, for tests and for clients that show it elsewhere.
    public var message: String {
        switch self {
        case .syntax(let m, _), .render(let m, _), .raised(let m, _): return m
        case .unsupported(let c, _): return c
        case .unknownTemplate(_, let reason): return reason
        }
    }

    public var location: TemplateLocation? {
        switch self {
        case .syntax(_, let at), .unsupported(_, let at), .render(_, let at), .raised(_, let at): return at
        case .unknownTemplate: return nil
        }
    }
}

// What can stop a JSON Schema from compiling to a DFA (issue 20's 400 for an unsupported schema).
// Every case carries the JSON pointer (RFC 6901) of the place in the schema it is about, e.g.
// `/properties/age/multipleOf`, so the API can name it to the caller.

import JSON

public enum JSONSchemaError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A keyword (or a value of a keyword, e.g. `format: "hostname"`) the compiler does not implement.
    /// `pointer` points at the keyword itself.
    case unsupported(keyword: String, pointer: String, hint: String)
    /// A schema that is not well formed (a keyword with a value of the wrong kind).
    case invalid(message: String, pointer: String)
    /// A `$ref` that does not resolve inside the document (only local `#...` references are followed).
    case unresolvedReference(ref: String, pointer: String)
    /// A `$ref` reached again while it is being expanded: the schema is recursive, which a regular
    /// expression cannot express; it needs the grammar (context-free) layer, not built yet.
    case recursiveReference(ref: String, pointer: String)
    /// A `pattern` that does not compile, or the whole schema's DFA outgrowing its limits.
    case regex(RegexError, pointer: String)

    public var pointer: String {
        switch self {
        case .unsupported(_, let p, _), .invalid(_, let p), .unresolvedReference(_, let p),
             .recursiveReference(_, let p), .regex(_, let p):
            return p
        }
    }

    public var description: String {
        func at(_ p: String) -> String { p.isEmpty ? "the schema's root" : "'\(p)'" }
        switch self {
        case .unsupported(let keyword, let pointer, let hint):
            return "JSON Schema: '\(keyword)' at \(at(pointer)) is not supported (hint: \(hint))"
        case .invalid(let message, let pointer):
            return "JSON Schema: \(message) at \(at(pointer))"
        case .unresolvedReference(let ref, let pointer):
            return "JSON Schema: $ref '\(ref)' at \(at(pointer)) does not resolve "
                + "(hint: only references inside the schema are followed, e.g. '#/$defs/Name' or '#/definitions/Name')"
        case .recursiveReference(let ref, let pointer):
            return "JSON Schema: $ref '\(ref)' at \(at(pointer)) is recursive; recursive schemas need the grammar layer, "
                + "which is not built yet (hint: unroll the recursion to a fixed depth in $defs)"
        case .regex(.tooManyStates(let limit), let pointer):
            return "JSON Schema at \(at(pointer)): the schema needs more than \(limit) DFA states "
                + "(hint: each character a maxLength counts costs about 12 states and each level of free-form "
                + "nesting about 4x; lower large maxLength values (or drop them) and give free-form values a schema)"
        case .regex(let error, let pointer):
            return "JSON Schema at \(at(pointer)): \(error)"
        }
    }
}

// JSON Schema → RegexNode → ByteDFA, for schemas without recursion (the approach Outlines takes):
// every JSON text the DFA accepts is an instance of the schema, and the compact serialization of
// most instances is accepted (the exceptions are listed in docs/architecture.md's Grammar section).
//
// Shape of the output (OpenAI strict mode by default):
// - `Whitespace.compact`: no whitespace anywhere, as Python's json.dumps(separators=(",", ":")).
//   `.flexible(maxRun:)`: 0...maxRun of [ \t\n\r] after `{` `[` `,` `:` and before `}` `]` `,` `:`
//   (bounded so a model cannot emit whitespace forever; the default 8 fits indent 2 to depth 3).
// - Objects: the declared properties in the schema's order, required ones always present, optional
//   ones may be left out; nothing else (additionalProperties: false is implied; `true` or a schema
//   is accepted but no extra property is ever generated, which is still valid). An object schema
//   without `properties` is `{}` (additionalProperties: false), any key to the additionalProperties
//   schema, or else any object. Keys of such free objects may repeat: a regex cannot forbid it.
// - Strings: any scalar but `"` `\` and controls, as UTF-8, or an escape (\" \\ \/ \b \f \n \r \t,
//   \u00XX for the controls only); each counts as one character for min/maxLength, as JSON Schema
//   counts code points. `pattern` is matched whole (an instance matching it whole
//   also matches it unanchored, so outputs validate; unanchored matches inside longer strings are
//   not generated); its characters are written as JSON would write them (`"` as \", controls escaped).
// - Integers: exact decimal ranges from minimum/maximum/exclusiveMinimum/exclusiveMaximum.
//   Numbers: decimal bounds (any of the four; at most 18 fraction digits), then without an exponent.
// - enum/const: the compact serializations of the values. anyOf/oneOf: alternation (oneOf's
//   "exactly one" is not enforced). `type` arrays: alternation. `$ref` to `#...` (e.g.
//   `#/$defs/X`, `#/definitions/X`) inlined by `regex(for:)`, where recursion is a typed error;
//   `grammar(for:)` makes each reference a rule of a ContextFreeGrammar instead, so recursive
//   schemas (trees, threads of replies) compile too.
// - `{}` / `true`: any JSON value nested at most `anyValueDepth` levels; with `anyValueDepth` nil
//   (`grammar(for:)` only), any JSON value at all, through a recursive rule.

import JSON

public struct JSONSchemaOptions: Sendable, Equatable {
    public enum Whitespace: Sendable, Equatable {
        case compact
        case flexible(maxRun: Int)
    }
    public var whitespace: Whitespace
    /// How deep arrays and objects may nest inside a value the schema leaves free (`{}`, `true`,
    /// arrays without `items`, objects without `properties`): 0 = scalars only; nil = without
    /// limit, which needs a grammar (`grammar(for:)`; `regex(for:)` takes nil as 3).
    public var anyValueDepth: Int?

    public init(whitespace: Whitespace = .compact, anyValueDepth: Int? = 3) {
        self.whitespace = whitespace
        self.anyValueDepth = anyValueDepth
    }

    public static let flexibleWhitespace = Whitespace.flexible(maxRun: 8)
}

public enum JSONSchemaCompiler {
    /// The schema as a regular expression over Unicode scalars (whole-match semantics).
    public static func regex(for schema: JSONValue, options: JSONSchemaOptions = JSONSchemaOptions()) throws(JSONSchemaError) -> RegexNode {
        var compiler = Compiler(root: schema, options: options)
        return try compiler.compile(schema, pointer: "")
    }

    /// The schema as a context-free grammar: each `$ref` target is a rule (so recursion is allowed),
    /// and free values are a recursive rule when `options.anyValueDepth` is nil. Rule names are the
    /// references (`#/$defs/node`), so a rule's error can point into the schema.
    public static func grammar(for schema: JSONValue, options: JSONSchemaOptions = JSONSchemaOptions(anyValueDepth: nil)) throws(JSONSchemaError) -> ContextFreeGrammar {
        var compiler = Compiler(root: schema, options: options)
        compiler.grammarMode = true
        compiler.ruleOf["#"] = 0
        compiler.rules = [.empty]
        compiler.ruleNames = ["#"]
        if options.anyValueDepth == nil {
            compiler.anyValueRule = 1
            compiler.rules.append(.empty)
            compiler.ruleNames.append("(any JSON value)")
            compiler.rules[1] = compiler.anyValueBody()
        }
        compiler.rules[0] = try compiler.compile(schema, pointer: "")
        return ContextFreeGrammar(names: compiler.ruleNames, rules: compiler.rules, root: 0)
    }

    /// `grammar(for:)` as automata for GrammarMatcher (one automaton without calls when nothing
    /// recurses: then RegexLexer runs it faster). A schema that admits no value is refused.
    public static func automata(for schema: JSONValue, options: JSONSchemaOptions = JSONSchemaOptions(anyValueDepth: nil),
                                stateLimit: Int = ByteDFA.defaultStateLimit) throws(JSONSchemaError) -> [ByteDFA] {
        let g = try grammar(for: schema, options: options)
        do {
            return try g.automata(stateLimit: stateLimit)
        } catch {
            switch error {
            case .automaton(let rule, let e): throw .regex(e, pointer: rule == "#" || rule.hasPrefix("(") ? "" : String(rule.dropFirst()))
            case .matchesNothing: throw .invalid(message: "the schema admits no value, so nothing could be generated", pointer: "")
            case .leftRecursion(let rules):
                throw .recursiveReference(ref: rules.first ?? "#", pointer: "")
            default: throw .invalid(message: "\(error)", pointer: "")
            }
        }
    }

    /// The schema compiled to a byte DFA for `RegexLexer`.
    public static func dfa(for schema: JSONValue, options: JSONSchemaOptions = JSONSchemaOptions(),
                           stateLimit: Int = ByteDFA.defaultStateLimit) throws(JSONSchemaError) -> ByteDFA {
        let node = try regex(for: schema, options: options)
        do {
            return try ByteDFA(nfa: ByteNFA(node), stateLimit: stateLimit)
        } catch {
            throw .regex(error, pointer: "")
        }
    }
}

/// Keywords that describe and never constrain: ignored wherever they appear.
private let annotationKeywords: Set<String> = [
    "title", "description", "$comment", "examples", "default", "$schema", "$id", "$defs", "definitions",
    "deprecated", "readOnly", "writeOnly",
    // OpenAPI's hint beside oneOf (pydantic writes it for tagged unions); exclusivity is checked anyway.
    "discriminator",
]

private let typeKeywords: [String: Set<String>] = [
    "object": ["properties", "required", "additionalProperties"],
    "array": ["items", "minItems", "maxItems"],
    "string": ["minLength", "maxLength", "pattern", "format"],
    "integer": ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"],
    "number": ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"],
    "boolean": [],
    "null": [],
]
private let allTypes = ["object", "array", "string", "integer", "number", "boolean", "null"]

/// A property name as one JSON pointer token (RFC 6901: `~` as ~0, `/` as ~1).
private func escapePointerToken(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "~": out += "~0"
        case "/": out += "~1"
        default: out.append(c)
        }
    }
    return out
}

private func unescapePointerToken(_ s: Substring) -> String {
    var out = ""
    var tilde = false
    for c in s {
        if tilde {
            out += c == "1" ? "/" : c == "0" ? "~" : "~\(c)"
            tilde = false
        } else if c == "~" {
            tilde = true
        } else {
            out.append(c)
        }
    }
    if tilde { out += "~" }
    return out
}

private func object(_ v: JSONValue) -> [(String, JSONValue)]? {
    if case .object(let kvs) = v { return kvs }
    return nil
}

private func member(_ kvs: [(String, JSONValue)], _ key: String) -> JSONValue? {
    kvs.first { $0.0 == key }?.1
}

struct Compiler {
    let root: JSONValue
    let options: JSONSchemaOptions
    /// `$ref`s being expanded, innermost last: meeting one again is recursion (`regex(for:)`).
    var expanding: [String] = []
    /// `grammar(for:)`: references become rules (by reference text) instead of being inlined.
    var grammarMode = false
    var rules: [RegexNode] = []
    var ruleNames: [String] = []
    var ruleOf: [String: Int] = [:]
    /// The rule for any JSON value (`anyValueDepth` nil).
    var anyValueRule: Int? = nil
    /// References being compiled inside one another.
    var referenceDepth = 0

    init(root: JSONValue, options: JSONSchemaOptions) {
        self.root = root
        self.options = options
    }

    var ws: RegexNode {
        switch options.whitespace {
        case .compact: return .empty
        case .flexible(let maxRun):
            return .repetition(.set(ScalarSet([0x09...0x0A, 0x0D...0x0D, 0x20...0x20])), min: 0, max: maxRun)
        }
    }

    /// `open` inner `close` with whitespace inside, when `inner` may be empty too: `[ ]` has one
    /// run of whitespace, not two, so no run is ever longer than maxRun.
    func bracketed(_ open: String, _ inner: RegexNode, _ close: String, mayBeEmpty: Bool) -> RegexNode {
        let filled = ws + inner + ws
        return lit(open) + (mayBeEmpty ? .alternation([filled, ws]) : filled) + lit(close)
    }

    /// A structural character with the whitespace allowed around it.
    func punct(_ c: String, before: Bool = true, after: Bool = true) -> RegexNode {
        seq([before ? ws : .empty, lit(c), after ? ws : .empty])
    }

    mutating func compile(_ schema: JSONValue, pointer: String) throws(JSONSchemaError) -> RegexNode {
        switch schema {
        case .bool(true): return anyValue(depth: options.anyValueDepth)
        case .bool(false): return .set(ScalarSet())  // matches nothing
        case .object(let kvs): return try compileObjectSchema(kvs, pointer: pointer)
        default:
            throw .invalid(message: "a schema must be an object or a boolean, found \(schema.serialized())", pointer: pointer)
        }
    }

    mutating func compileObjectSchema(_ kvs: [(String, JSONValue)], pointer: String) throws(JSONSchemaError) -> RegexNode {
        let known = Set(typeKeywords.values.flatMap { $0 }).union(annotationKeywords)
            .union(["type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref"])
        for (key, _) in kvs where !known.contains(key) {
            throw .unsupported(keyword: key, pointer: pointer + "/" + escapePointerToken(key), hint: hintFor(key))
        }
        let constraints = kvs.filter { !annotationKeywords.contains($0.0) }

        // Keywords that replace the whole schema: they allow annotation siblings only.
        for combinator in ["$ref", "anyOf", "oneOf", "allOf"] {
            guard let value = member(kvs, combinator) else { continue }
            if let other = constraints.first(where: { $0.0 != combinator }) {
                throw .unsupported(keyword: other.0, pointer: pointer + "/" + escapePointerToken(other.0),
                                   hint: "'\(other.0)' beside '\(combinator)' would need an intersection; move it into each alternative or the referenced schema")
            }
            let p = pointer + "/" + escapePointerToken(combinator)
            if combinator == "$ref" {
                guard case .string(let ref) = value else { throw .invalid(message: "$ref must be a string", pointer: p) }
                return try compileReference(ref, pointer: p)
            }
            guard case .array(let branches) = value, !branches.isEmpty else {
                throw .invalid(message: "\(combinator) must be a non-empty array of schemas", pointer: p)
            }
            if combinator == "allOf" {
                guard branches.count == 1 else {
                    throw .unsupported(keyword: "allOf", pointer: p,
                                       hint: "allOf with one schema is inlined; several need an intersection, which is not implemented; merge them into one schema")
                }
                return try compile(branches[0], pointer: p + "/0")
            }
            var nodes: [RegexNode] = []
            for (i, branch) in branches.enumerated() { nodes.append(try compile(branch, pointer: p + "/\(i)")) }
            if combinator == "oneOf" { try checkExclusive(branches, pointer: p) }
            return .alternation(nodes)
        }

        // The types this schema admits.
        let types = try generatedTypes(kvs, pointer: pointer)

        // enum / const: the listed values that have one of the admitted types.
        var values: [JSONValue]? = nil
        if let c = member(kvs, "const") { values = [c] }
        if let e = member(kvs, "enum") {
            guard case .array(let xs) = e else { throw .invalid(message: "enum must be an array", pointer: pointer + "/enum") }
            values = values.map { cs in cs.filter { c in xs.contains(c) } } ?? xs
        }
        if let values {
            let kept = values.filter { v in types.contains { valueHasType(v, $0) } }
            // Duplicates are harmless in an alternation; an empty enum matches nothing.
            return .alternation(kept.map(literal) + [.set(ScalarSet())])
        }

        if constraints.isEmpty && types.count == allTypes.count - 1 { return anyValue(depth: options.anyValueDepth) }
        var branches: [RegexNode] = []
        for type in types {
            switch type {
            case "object": branches.append(try compileObject(kvs, pointer: pointer))
            case "array": branches.append(try compileArray(kvs, pointer: pointer))
            case "string": branches.append(try compileString(kvs, pointer: pointer))
            case "integer": branches.append(try compileInteger(kvs, pointer: pointer))
            case "number": branches.append(try compileNumber(kvs, pointer: pointer))
            case "boolean": branches.append(.alternation([lit("true"), lit("false")]))
            default: branches.append(lit("null"))
            }
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    /// The types lorad generates for a schema object: its `type` (a name or a list), else the types
    /// whose keywords appear, else every type; an integer keyword also admits numbers, so
    /// "integer" is folded into "number" when both are there.
    func generatedTypes(_ kvs: [(String, JSONValue)], pointer: String) throws(JSONSchemaError) -> [String] {
        var types: [String]
        if let t = member(kvs, "type") {
            let p = pointer + "/type"
            switch t {
            case .string(let name): types = [name]
            case .array(let names):
                types = []
                for (i, n) in names.enumerated() {
                    guard case .string(let name) = n else { throw .invalid(message: "type names must be strings", pointer: p + "/\(i)") }
                    types.append(name)
                }
            default: throw .invalid(message: "type must be a string or an array of strings", pointer: p)
            }
            for name in types where typeKeywords[name] == nil {
                throw .invalid(message: "unknown type '\(name)'", pointer: p)
            }
        } else {
            // No type: the types whose keywords appear, or every type when none do.
            let present = Set(kvs.map { $0.0 }.filter { !annotationKeywords.contains($0) })
            types = allTypes.filter { !typeKeywords[$0]!.isDisjoint(with: present) }
            if types.isEmpty { types = allTypes }
        }
        if types.contains("number") { types.removeAll { $0 == "integer" } }
        return types
    }

    func hintFor(_ keyword: String) -> String {
        switch keyword {
        case "multipleOf": return "not expressible as a DFA in general; drop it and check the value after generation"
        case "patternProperties", "propertyNames", "dependentRequired", "dependentSchemas", "dependencies",
             "minProperties", "maxProperties", "unevaluatedProperties":
            return "list the properties under 'properties' instead"
        case "prefixItems", "contains", "minContains", "maxContains", "uniqueItems", "unevaluatedItems", "additionalItems":
            return "use 'items' with one schema for every element"
        case "not", "if", "then", "else":
            return "rewrite the condition as anyOf of the allowed shapes"
        case "$dynamicRef", "$recursiveRef", "$anchor", "$dynamicAnchor", "$recursiveAnchor":
            return "use $ref to '#/$defs/...' (recursion needs the grammar layer, not built yet)"
        case "nullable":
            return "write \"type\": [\"T\", \"null\"] (JSON Schema), not OpenAPI's nullable"
        default:
            return "supported: type, properties, required, additionalProperties, items, minItems, maxItems, minLength, maxLength, "
                + "pattern, format (date, date-time, email, uuid), minimum, maximum, exclusiveMinimum, exclusiveMaximum, enum, const, "
                + "anyOf, oneOf, allOf with one schema, $ref, $defs"
        }
    }

    mutating func compileReference(_ ref: String, pointer: String) throws(JSONSchemaError) -> RegexNode {
        guard ref.hasPrefix("#") else { throw .unresolvedReference(ref: ref, pointer: pointer) }
        if grammarMode, let rule = ruleOf[ref] { return .nonterminal(rule) }
        if expanding.contains(ref) { throw .recursiveReference(ref: ref, pointer: pointer) }
        let target = try target(of: ref, pointer: pointer)
        let path = percentDecoded(String(ref.dropFirst()))
        // Compiling a target recurses into its references: a hostile chain of $defs must not
        // overflow a thread's stack (JSON nesting is bounded by the reader already).
        guard referenceDepth < 64 else {
            throw .unsupported(keyword: "$ref", pointer: pointer, hint: "references nested more than 64 deep; flatten the $defs")
        }
        referenceDepth += 1
        defer { referenceDepth -= 1 }
        if grammarMode {
            let rule = rules.count
            rules.append(.empty)
            ruleNames.append(ref)
            ruleOf[ref] = rule
            rules[rule] = try compile(target, pointer: String(path))
            return .nonterminal(rule)
        }
        // The root itself counts as being expanded from the start.
        if path.isEmpty && expanding.isEmpty { throw .recursiveReference(ref: ref, pointer: pointer) }
        expanding.append(ref)
        defer { expanding.removeLast() }
        return try compile(target, pointer: String(path))
    }

    /// The schema a local reference (`#`, `#/$defs/X`, percent-encoded as URI fragments are)
    /// points at in the root.
    func target(of ref: String, pointer: String) throws(JSONSchemaError) -> JSONValue {
        guard ref.hasPrefix("#") else { throw .unresolvedReference(ref: ref, pointer: pointer) }
        var target = root
        let path = percentDecoded(String(ref.dropFirst()))
        if !path.isEmpty {
            guard path.hasPrefix("/") else { throw .unresolvedReference(ref: ref, pointer: pointer) }
            for raw in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
                let token = unescapePointerToken(Substring(raw))
                switch target {
                case .object(let kvs):
                    guard let next = member(kvs, token) else { throw .unresolvedReference(ref: ref, pointer: pointer) }
                    target = next
                case .array(let xs):
                    guard let i = Int(token), xs.indices.contains(i) else { throw .unresolvedReference(ref: ref, pointer: pointer) }
                    target = xs[i]
                default:
                    throw .unresolvedReference(ref: ref, pointer: pointer)
                }
            }
        }
        return target
    }

    /// oneOf compiles to an alternation, which is exact only when no instance is valid under two
    /// branches (JSON Schema's "exactly one"). An output of one branch must therefore be invalid
    /// under every other branch's schema, not merely outside its compiled language (an object
    /// schema allows undeclared properties that lorad never writes). lorad proves that from the
    /// schemas, pair by pair, by one of four rules, and refuses the schema otherwise:
    /// - their types are disjoint (`type`, or the types of their `const`/`enum` values);
    /// - both are closed lists of values (`const`/`enum`) with no value in common;
    /// - both generate only objects, and one requires a property the other forbids;
    /// - both generate only objects and require a property whose `const`/`enum` values differ (a
    ///   discriminator, as pydantic's tagged unions have).
    func checkExclusive(_ branches: [JSONValue], pointer: String) throws(JSONSchemaError) {
        for i in branches.indices {
            for j in branches.indices where j > i {
                if try !exclusive(branches[i], branches[j]) {
                    throw .unsupported(keyword: "oneOf", pointer: pointer,
                                       hint: "lorad follows oneOf only when no value can be valid under two branches, and cannot show that for branches \(i) and \(j); "
                                           + "use anyOf, or tell the branches apart by type, by const/enum values, or by a required property with different const values")
                }
            }
        }
    }

    /// The schema a `$ref` chain ends at (annotation-only wrappers included), or the schema itself.
    func resolved(_ schema: JSONValue) throws(JSONSchemaError) -> JSONValue {
        var current = schema
        for _ in 0..<32 {
            guard case .object(let kvs) = current, case .string(let ref)? = member(kvs, "$ref") else { return current }
            current = try target(of: ref, pointer: "")
        }
        return current
    }

    /// The types a schema admits, or nil when it may admit any.
    func admittedTypes(_ kvs: [(String, JSONValue)]) -> Set<String>? {
        var types: Set<String>? = nil
        if let t = member(kvs, "type") {
            switch t {
            case .string(let name): types = [name]
            case .array(let names): types = Set(names.compactMap { if case .string(let n) = $0 { n } else { nil } })
            default: break
            }
        }
        if let values = closedValues(kvs) {
            let valueTypes = Set(values.map { v in allTypes.first { valueHasType(v, $0) && $0 != "integer" } ?? "null" })
            types = types.map { $0.intersection(valueTypes.union(valueTypes.contains("number") ? ["integer"] : [])) } ?? valueTypes
        }
        // An integer is a number: widen so the disjointness test sees them overlap.
        if let t = types, t.contains("integer") { types = t.union(["number"]) }
        if let t = types, t.contains("number") { types = t.union(["integer"]) }
        return types
    }

    /// Whether lorad generates only objects for the schema (`generatedTypes`); without `type`, a
    /// `const`/`enum` beside object keywords could be any value, so it does not count.
    func generatesOnlyObjects(_ kvs: [(String, JSONValue)]) -> Bool {
        guard (try? generatedTypes(kvs, pointer: "")) == ["object"] else { return false }
        return member(kvs, "type") != nil || (member(kvs, "const") == nil && member(kvs, "enum") == nil)
    }

    /// The values of `const`/`enum`, or nil when the schema is not a closed list.
    func closedValues(_ kvs: [(String, JSONValue)]) -> [JSONValue]? {
        if let c = member(kvs, "const") { return [c] }
        if case .array(let xs)? = member(kvs, "enum") { return xs }
        return nil
    }

    /// Whether both schemas are closed lists of values and no value is in both.
    func disjointValues(_ a: [(String, JSONValue)], _ b: [(String, JSONValue)]) -> Bool {
        guard let va = closedValues(a), let vb = closedValues(b) else { return false }
        return !va.contains { x in vb.contains { sameJSON(x, $0) } }
    }

    func exclusive(_ a: JSONValue, _ b: JSONValue) throws(JSONSchemaError) -> Bool {
        let ra = try resolved(a), rb = try resolved(b)
        if case .bool(false) = ra { return true }
        if case .bool(false) = rb { return true }
        guard case .object(let ka) = ra, case .object(let kb) = rb else { return false }
        if let ta = admittedTypes(ka), let tb = admittedTypes(kb), ta.isDisjoint(with: tb) { return true }
        if disjointValues(ka, kb) { return true }
        // The rest is about objects: both branches must generate nothing else.
        guard generatesOnlyObjects(ka), generatesOnlyObjects(kb),
              let pa = member(ka, "properties").flatMap(object), let pb = member(kb, "properties").flatMap(object) else { return false }
        let reqA = member(ka, "required")?.arrayValue ?? [], reqB = member(kb, "required")?.arrayValue ?? []
        // One requires a property the other forbids (additionalProperties false, not declared).
        func forbids(_ kvs: [(String, JSONValue)], _ props: [(String, JSONValue)], _ name: String) -> Bool {
            member(kvs, "additionalProperties") == .bool(false) && !props.contains { $0.0 == name }
        }
        for case .string(let name) in reqA where forbids(kb, pb, name) { return true }
        for case .string(let name) in reqB where forbids(ka, pa, name) { return true }
        // A discriminator: a property both require, with closed value lists that do not meet.
        for case .string(let name) in reqA where reqB.contains(.string(name)) {
            guard let sa = member(pa, name), let sb = member(pb, name) else { continue }
            if case .object(let xa) = try resolved(sa), case .object(let xb) = try resolved(sb), disjointValues(xa, xb) {
                return true
            }
        }
        return false
    }

    // MARK: objects and arrays

    mutating func compileObject(_ kvs: [(String, JSONValue)], pointer: String) throws(JSONSchemaError) -> RegexNode {
        // additionalProperties: with `properties`, never generated (see the header), though a schema
        // there must still compile; without, `false` is {}, a schema is a map from any key to it.
        var extraValues: RegexNode? = nil
        if let extra = member(kvs, "additionalProperties") {
            switch extra {
            case .bool, .object: break
            default: throw .invalid(message: "additionalProperties must be a boolean or a schema", pointer: pointer + "/additionalProperties")
            }
            extraValues = try compile(extra, pointer: pointer + "/additionalProperties")
        }
        guard let propertiesValue = member(kvs, "properties") else {
            if member(kvs, "required") != nil {
                throw .unsupported(keyword: "required", pointer: pointer + "/required",
                                   hint: "declare the required properties under 'properties'")
            }
            if case .bool(false)? = member(kvs, "additionalProperties") { return bracketed("{", .set(ScalarSet()), "}", mayBeEmpty: true) }
            guard let extraValues, case .object(let extra)? = member(kvs, "additionalProperties"), !extra.isEmpty else {
                return anyObject(depth: options.anyValueDepth)
            }
            let entry = stringNode() + punct(":") + extraValues
            return bracketed("{", entry + .repetition(punct(",") + entry, min: 0, max: nil), "}", mayBeEmpty: true)
        }
        guard let properties = object(propertiesValue) else {
            throw .invalid(message: "properties must be an object", pointer: pointer + "/properties")
        }
        var required: Set<String> = []
        if let r = member(kvs, "required") {
            guard case .array(let names) = r else { throw .invalid(message: "required must be an array", pointer: pointer + "/required") }
            for (i, n) in names.enumerated() {
                guard case .string(let name) = n else { throw .invalid(message: "required names must be strings", pointer: pointer + "/required/\(i)") }
                guard properties.contains(where: { $0.0 == name }) else {
                    throw .unsupported(keyword: "required", pointer: pointer + "/required/\(i)",
                                       hint: "'\(name)' is required but not declared under 'properties'; declare it with its schema")
                }
                required.insert(name)
            }
        }
        var items: [(node: RegexNode, required: Bool)] = []
        for (name, schema) in properties {
            let value = try compile(schema, pointer: pointer + "/properties/" + escapePointerToken(name))
            items.append((lit(JSONValue.quoted(name)) + punct(":") + value, required.contains(name)))
        }
        // after(i): properties i... once one has been written (each preceded by a comma).
        // first(i): properties i... when none has been written yet.
        let comma = punct(",")
        var after: [RegexNode] = Array(repeating: .empty, count: items.count + 1)
        for i in stride(from: items.count - 1, through: 0, by: -1) {
            let one = comma + items[i].node
            after[i] = (items[i].required ? one : .repetition(one, min: 0, max: 1)) + after[i + 1]
        }
        // first(i) without the empty choice; the object may be empty when nothing is required.
        var first: RegexNode = .set(ScalarSet())
        for i in stride(from: items.count - 1, through: 0, by: -1) {
            let starting = items[i].node + after[i + 1]
            first = items[i].required ? starting : .alternation([starting, first])
        }
        return bracketed("{", first, "}", mayBeEmpty: required.isEmpty)
    }

    mutating func compileArray(_ kvs: [(String, JSONValue)], pointer: String) throws(JSONSchemaError) -> RegexNode {
        let element: RegexNode
        if let items = member(kvs, "items") {
            if case .array = items {
                throw .unsupported(keyword: "items", pointer: pointer + "/items",
                                   hint: "items as an array (draft 4 tuples) is not supported; give one schema for every element")
            }
            element = try compile(items, pointer: pointer + "/items")
        } else {
            element = anyValue(depth: options.anyValueDepth.map { $0 - 1 })
        }
        let minItems = try count(kvs, "minItems", pointer: pointer) ?? 0
        let maxItems = try count(kvs, "maxItems", pointer: pointer)
        if let maxItems, maxItems < minItems { return .set(ScalarSet()) }
        let limit = RegexParser.repetitionLimit
        if minItems > limit || (maxItems ?? 0) > limit {
            throw .unsupported(keyword: minItems > limit ? "minItems" : "maxItems",
                               pointer: pointer + (minItems > limit ? "/minItems" : "/maxItems"),
                               hint: "counts above \(limit) are not supported")
        }
        if maxItems == 0 { return bracketed("[", .set(ScalarSet()), "]", mayBeEmpty: true) }
        let body = element + .repetition(punct(",") + element, min: max(minItems - 1, 0), max: maxItems.map { $0 - 1 })
        return bracketed("[", body, "]", mayBeEmpty: minItems == 0)
    }

    func count(_ kvs: [(String, JSONValue)], _ key: String, pointer: String) throws(JSONSchemaError) -> Int? {
        guard let v = member(kvs, key) else { return nil }
        switch v {
        case .int(let n) where n >= 0: return n
        case .double(let d) where d >= 0 && d == d.rounded() && d < 1e9: return Int(d)
        default: throw .invalid(message: "\(key) must be a non-negative integer", pointer: pointer + "/" + key)
        }
    }

    /// An enum or const value: its compact serialization (keys in their order, strings escaped as
    /// `JSONValue.quoted` does, non-ASCII as it is), with the whitespace option between tokens.
    func literal(_ value: JSONValue) -> RegexNode {
        switch value {
        case .array(let xs):
            var parts: [RegexNode] = [lit("["), ws]
            for (i, x) in xs.enumerated() { parts += [i > 0 ? punct(",") : .empty, literal(x)] }
            return seq(parts + [ws, lit("]")])
        case .object(let kvs):
            var parts: [RegexNode] = [lit("{"), ws]
            for (i, (k, v)) in kvs.enumerated() {
                parts += [i > 0 ? punct(",") : .empty, lit(JSONValue.quoted(k)), punct(":"), literal(v)]
            }
            return seq(parts + [ws, lit("}")])
        default:
            return lit(value.serialized())
        }
    }

    // MARK: any value

    /// Any JSON value with arrays and objects nested at most `depth` levels (scalars at depth 0);
    /// nil: without limit (the any-value rule in a grammar, else 3).
    func anyValue(depth: Int?) -> RegexNode {
        guard let depth else {
            if let anyValueRule { return .nonterminal(anyValueRule) }
            return anyValue(depth: 3)
        }
        var branches = [lit("null"), lit("true"), lit("false"), numberNode(), stringNode()]
        if depth > 0 {
            branches.append(anyObject(depth: depth))
            let inner = anyValue(depth: depth - 1)
            branches.append(bracketed("[", inner + .repetition(punct(",") + inner, min: 0, max: nil), "]", mayBeEmpty: true))
        }
        return .alternation(branches)
    }

    /// The any-value rule's body: scalars, and arrays and objects of the rule itself.
    func anyValueBody() -> RegexNode {
        let value = RegexNode.nonterminal(anyValueRule!)
        let member = stringNode() + punct(":") + value
        return .alternation([lit("null"), lit("true"), lit("false"), numberNode(), stringNode(),
                             bracketed("{", member + .repetition(punct(",") + member, min: 0, max: nil), "}", mayBeEmpty: true),
                             bracketed("[", value + .repetition(punct(",") + value, min: 0, max: nil), "]", mayBeEmpty: true)])
    }

    func anyObject(depth: Int?) -> RegexNode {
        guard let depth else {
            guard let anyValueRule else { return anyObject(depth: 3) }
            let member = stringNode() + punct(":") + .nonterminal(anyValueRule)
            return bracketed("{", member + .repetition(punct(",") + member, min: 0, max: nil), "}", mayBeEmpty: true)
        }
        let inner = anyValue(depth: max(depth - 1, 0))
        let member = stringNode() + punct(":") + inner
        return bracketed("{", member + .repetition(punct(",") + member, min: 0, max: nil), "}", mayBeEmpty: true)
    }
}

// MARK: RegexNode building

func lit(_ s: String) -> RegexNode {
    let parts = s.unicodeScalars.map { RegexNode.set(.scalar($0.value)) }
    return parts.count == 1 ? parts[0] : .concatenation(parts)
}

func seq(_ parts: [RegexNode]) -> RegexNode {
    var flat: [RegexNode] = []
    for p in parts {
        switch p {
        case .empty: continue
        case .concatenation(let xs): flat += xs
        default: flat.append(p)
        }
    }
    switch flat.count {
    case 0: return .empty
    case 1: return flat[0]
    default: return .concatenation(flat)
    }
}

func + (a: RegexNode, b: RegexNode) -> RegexNode { seq([a, b]) }

/// JSON equality as JSON Schema has it: 1 and 1.0 are the same number.
func sameJSON(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
    case (.array(let xs), .array(let ys)): return xs.count == ys.count && zip(xs, ys).allSatisfy { sameJSON($0, $1) }
    case (.object(let xs), .object(let ys)):
        return xs.count == ys.count && xs.allSatisfy { k, v in ys.contains { $0.0 == k && sameJSON($0.1, v) } }
    default: return a == b
    }
}

/// A URI fragment's percent escapes (%25 → %, %22 → ") decoded as UTF-8; a malformed escape is kept.
func percentDecoded(_ s: String) -> String {
    guard s.contains("%") else { return s }
    var bytes: [UInt8] = []
    let utf8 = Array(s.utf8)
    var i = 0
    while i < utf8.count {
        if utf8[i] == UInt8(ascii: "%"), i + 2 < utf8.count,
           let v = UInt8(String(decoding: utf8[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
            bytes.append(v)
            i += 3
        } else {
            bytes.append(utf8[i])
            i += 1
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

func valueHasType(_ v: JSONValue, _ type: String) -> Bool {
    switch (v, type) {
    case (.null, "null"), (.bool, "boolean"), (.string, "string"), (.array, "array"), (.object, "object"),
         (.int, "integer"), (.int, "number"), (.double, "number"):
        return true
    case (.double(let d), "integer"): return d == d.rounded()
    default: return false
    }
}

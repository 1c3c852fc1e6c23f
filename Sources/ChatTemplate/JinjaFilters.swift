// Filters (`x | name(args)`) and tests (`x is name(args)`): the subset of jinja2 3.1's
// filters.py and tests.py that chat templates use, each with jinja2's argument names and
// defaults and its behaviour on odd input (Undefined prints as "", has length 0 and iterates
// as empty; select/map/items/reverse return one-shot iterators that have no length).
// `tojson` is transformers' replacement (json.dumps with ensure_ascii=False), see JinjaJSON.swift.
// Names jinja2 knows but lorad does not implement are rejected when the template is parsed.

enum JinjaFilters {
    static let supportedFilters: Set<String> = [
        "abs", "capitalize", "count", "d", "default", "first", "float", "indent", "int", "items", "join",
        "last", "length", "list", "lower", "map", "reject", "rejectattr", "replace", "reverse", "select",
        "selectattr", "string", "title", "tojson", "trim", "upper",
    ]
    /// jinja2 3.1's FILTERS.
    static let jinjaFilters: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "join", "last",
        "length", "list", "lower", "items", "map", "min", "max", "pprint", "random", "reject", "rejectattr",
        "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags",
        "sum", "title", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap",
        "xmlattr", "tojson",
    ]
    static let supportedTests: Set<String> = [
        "odd", "even", "divisibleby", "defined", "undefined", "filter", "test", "none", "boolean", "false", "true",
        "integer", "float", "lower", "upper", "string", "mapping", "number", "sequence", "iterable", "callable",
        "sameas", "escaped", "in", "==", "eq", "equalto", "!=", "ne", ">", "gt", "greaterthan", "ge", ">=", "<",
        "lt", "lessthan", "<=", "le",
    ]

    static func checkFilterName(_ name: String, at: TemplateLocation) throws {
        if supportedFilters.contains(name) { return }
        if jinjaFilters.contains(name) {
            throw ChatTemplateError.unsupported(construct: "the filter '\(name)'", at: at)
        }
        throw ChatTemplateError.syntax(message: "no filter named '\(name)'", at: at)
    }

    static func checkTestName(_ name: String, at: TemplateLocation) throws {
        if supportedTests.contains(name) { return }
        throw ChatTemplateError.syntax(message: "no test named '\(name)'", at: at)
    }
}

extension JinjaRenderer {
    // MARK: - Filters

    func applyFilter(_ name: String, _ value: JinjaValue, _ args: JinjaCallArguments) throws -> JinjaValue {
        func bind(_ parameters: [String], required: Int = 0) throws -> [JinjaValue?] {
            try args.bind(name, parameters, required: required)
        }
        switch name {
        case "abs":
            _ = try bind([])
            guard let n = value.number else {
                throw JinjaFailure.render("bad operand type for abs(): '\(value.typeName)'")
            }
            switch n {
            case .int(let i):
                guard i != Int.min else { throw JinjaRenderer.overflow }
                return .int(abs(i))
            case .float(let f): return .float(abs(f))
            }
        case "capitalize":
            _ = try bind([])
            return .string(PythonText.capitalize(try str(value)))
        case "count", "length":
            _ = try bind([])
            return .int(try JinjaRenderer.length(value))
        case "d", "default":
            let a = try bind(["default_value", "boolean"])
            let boolean = a[1]?.truthy ?? false
            if value.isUndefined || (boolean && !value.truthy) { return a[0] ?? .string("") }
            return value
        case "first":
            _ = try bind([])
            if case .iterator(let it) = value {
                return it.next() ?? .undefined("No first item, sequence was empty.")
            }
            return try JinjaRenderer.iterate(value).first ?? .undefined("No first item, sequence was empty.")
        case "last":
            _ = try bind([])
            if case .iterator(let it) = value {
                throw JinjaFailure.render("'\(it.typeName)' object is not reversible")
            }
            return try JinjaRenderer.iterate(value).last ?? .undefined("No last item, sequence was empty.")
        case "float":
            let a = try bind(["default"])
            return try JinjaRenderer.toFloat(value).map { .float($0) } ?? a[0] ?? .float(0)
        case "int":
            let a = try bind(["default", "base"])
            let base = a[1]?.index ?? 10
            return try JinjaRenderer.toInt(value, base: base).map { .int($0) } ?? a[0] ?? .int(0)
        case "indent":
            let a = try bind(["width", "first", "blank"])
            return .string(try indent(value, width: a[0], first: a[1]?.truthy ?? false, blank: a[2]?.truthy ?? false))
        case "items":
            _ = try bind([])
            switch value {
            case .undefined: return .iterator(JinjaIterator("generator", []))
            case .dict(let d): return .iterator(JinjaIterator("generator", d.entries.map { .tuple([$0.key, $0.value]) }))
            default: throw JinjaFailure.render("Can only get item pairs from a mapping.")
            }
        case "join":
            let a = try bind(["d", "attribute"])
            var items = try JinjaRenderer.iterate(value)
            if let attribute = a[1], !isNone(attribute) {
                let getter = try attributeGetter(attribute, default: nil)
                items = try items.map(getter)
            }
            let separator = try str(a[0] ?? .string(""))
            return .string(try items.map { try str($0) }.joined(separator: separator))
        case "list":
            _ = try bind([])
            return .list(try JinjaRenderer.iterate(value))
        case "lower":
            _ = try bind([])
            return .string(PythonText.lower(try str(value)))
        case "upper":
            _ = try bind([])
            return .string(PythonText.upper(try str(value)))
        case "map":
            return try mapFilter(value, args)
        case "select", "reject", "selectattr", "rejectattr":
            return try selectFilter(name, value, args)
        case "replace":
            let a = try bind(["old", "new", "count"], required: 2)
            var count = -1
            if let c = a[2], !isNone(c) {
                guard let i = c.index else {
                    throw JinjaFailure.render("'\(c.typeName)' object cannot be interpreted as an integer")
                }
                count = i
            }
            return .string(PythonText.replace(try str(value), try str(a[0]!), try str(a[1]!), count: count))
        case "reverse":
            _ = try bind([])
            switch value {
            case .string(let s): return .string(PythonText.string(PythonText.scalars(s).reversed()))
            case .iterator(let it): return .list(it.drain().reversed())  // not reversible: list(value), reversed
            default:
                let items = try JinjaRenderer.iterate(value)
                let typeName: String
                switch value {
                case .dict: typeName = "dict_reversekeyiterator"
                case .tuple: typeName = "reversed"
                default: typeName = "list_reverseiterator"
                }
                return .iterator(JinjaIterator(typeName, items.reversed()))
            }
        case "string":
            _ = try bind([])
            return .string(try str(value))
        case "title":
            _ = try bind([])
            return .string(JinjaRenderer.titleFilter(try str(value)))
        case "tojson":
            let a = try bind(["ensure_ascii", "indent", "separators", "sort_keys"])
            return .string(try JinjaJSON.dumps(value, ensureASCII: a[0]?.truthy ?? false, indent: a[1],
                                               separators: a[2], sortKeys: a[3]?.truthy ?? false))
        case "trim":
            let a = try bind(["chars"])
            var chars: String? = nil
            if let c = a[0], !isNone(c) {
                guard case .string(let s) = c else {
                    throw JinjaFailure.render("strip arg must be None or str, not \(c.typeName)")
                }
                chars = s
            }
            return .string(PythonText.strip(try str(value), chars: chars))
        default:
            // Names are checked at parse time, so this is our own inconsistency.
            throw JinjaFailure.unsupported("the filter '\(name)'")
        }
    }

    private func isNone(_ v: JinjaValue) -> Bool {
        if case .none = v { return true }
        return false
    }

    /// soft_str / str(): what a filter sees when it wants text.
    func str(_ v: JinjaValue) throws -> String {
        do {
            return try v.pyStr()
        } catch {
            throw JinjaFailure.render("cannot convert a \(v.typeName) object to a string: Python would use its "
                                      + "memory address (convert it first, e.g. with '| list')")
        }
    }

    /// Python's len().
    static func length(_ value: JinjaValue) throws -> Int {
        switch value {
        case .undefined: return 0
        case .string(let s): return s.unicodeScalars.count
        case .list(let xs), .tuple(let xs), .view(_, let xs): return xs.count
        case .dict(let d): return d.count
        case .loop(let l): return l.length
        default: throw JinjaFailure.render("object of type '\(value.typeName)' has no len()")
        }
    }

    /// jinja2's title filter: split before runs of `-`, whitespace, `(`, `{`, `[`, `<`; uppercase the
    /// first code point of each piece and lowercase the rest.
    static func titleFilter(_ s: String) -> String {
        func isBoundary(_ c: Unicode.Scalar) -> Bool { PythonText.isSpace(c) || "-({[<".unicodeScalars.contains(c) }
        let sc = PythonText.scalars(s)
        var out = ""
        var i = 0
        while i < sc.count {
            var j = i
            let boundary = isBoundary(sc[i])
            while j < sc.count, isBoundary(sc[j]) == boundary { j += 1 }
            let piece = PythonText.string(sc[i..<j])
            if boundary {
                out += piece
            } else {
                out += PythonText.upper(String(sc[i])) + PythonText.lower(PythonText.string(sc[(i + 1)..<j]))
            }
            i = j
        }
        return out
    }

    private func indent(_ value: JinjaValue, width: JinjaValue?, first: Bool, blank: Bool) throws -> String {
        guard case .string(var s) = value else {
            if case .undefined(let u) = value { throw JinjaFailure.render(u.message) }
            throw JinjaFailure.render("indent expects a string, not \(value.typeName)")
        }
        let indention: String
        switch width {
        case nil: indention = "    "
        case .string(let w)?: indention = w
        case let w? where w.index != nil: indention = String(repeating: " ", count: max(0, w.index!))
        case let w?: throw JinjaFailure.render("can't multiply sequence by non-int of type '\(w.typeName)'")
        }
        s += "\n"  // jinja2's quirk for splitlines
        let lines = JinjaRenderer.splitLines(s)
        var rv: String
        if blank {
            rv = lines.joined(separator: "\n" + indention)
        } else {
            rv = lines.first ?? ""
            let rest = lines.dropFirst()
            if !rest.isEmpty {
                rv += "\n" + rest.map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n")
            }
        }
        if first { rv = indention + rv }
        return rv
    }

    /// str.splitlines() without keepends.
    static func splitLines(_ s: String) -> [String] {
        let sc = PythonText.scalars(s)
        var lines: [String] = []
        var start = 0
        var i = 0
        while i < sc.count {
            switch sc[i].value {
            case 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029:
                lines.append(PythonText.string(sc[start..<i]))
                if sc[i] == "\r", i + 1 < sc.count, sc[i + 1] == "\n" { i += 1 }
                start = i + 1
            default:
                break
            }
            i += 1
        }
        if start < sc.count { lines.append(PythonText.string(sc[start...])) }
        return lines
    }

    /// float(x) in Python, nil where it raises TypeError or ValueError (so the filter's default
    /// applies). Undefined's __float__ raises UndefinedError, which jinja2 lets through.
    static func toFloat(_ value: JinjaValue) throws -> Double? {
        switch value {
        case .undefined(let u): throw JinjaFailure.render(u.message)
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .float(let f): return f
        case .string(let s): return parsePythonFloat(PythonText.strip(s, chars: nil))
        default: return nil
        }
    }

    /// Python's float() syntax: sign, digits with single underscores between them, optional
    /// fraction and exponent, or inf/infinity/nan in any case. (Swift's Double(String) also
    /// accepts hexadecimal floats, which Python does not.)
    static func parsePythonFloat(_ text: String) -> Double? {
        var sc = PythonText.scalars(text)
        var sign = ""
        if let f = sc.first, f == "+" || f == "-" {
            sign = f == "-" ? "-" : ""
            sc.removeFirst()
        }
        let word = PythonText.lower(PythonText.string(sc))
        if word == "inf" || word == "infinity" { return sign == "-" ? -.infinity : .infinity }
        if word == "nan" { return .nan }
        var cleaned = sign
        var i = 0
        // Digits (any Unicode decimal digit, as Python accepts) with single underscores between.
        func digits() -> Bool {
            let start = i
            while i < sc.count {
                if let v = decimalDigit(sc[i]) {
                    cleaned += String(v)
                    i += 1
                } else if sc[i] == "_", i > start, i + 1 < sc.count, decimalDigit(sc[i + 1]) != nil {
                    i += 1
                } else {
                    break
                }
            }
            return i > start
        }
        let hasInt = digits()
        var hasFrac = false
        if i < sc.count, sc[i] == "." {
            cleaned += "."
            i += 1
            hasFrac = digits()
        }
        guard hasInt || hasFrac else { return nil }
        if i < sc.count, sc[i] == "e" || sc[i] == "E" {
            cleaned += "e"
            i += 1
            if i < sc.count, sc[i] == "+" || sc[i] == "-" {
                cleaned.unicodeScalars.append(sc[i])
                i += 1
            }
            guard digits() else { return nil }
        }
        guard i == sc.count else { return nil }
        return Double(cleaned)
    }

    private static func decimalDigit(_ c: Unicode.Scalar) -> Int? {
        guard c.properties.numericType == .decimal, let v = c.properties.numericValue else { return nil }
        return Int(exactly: v)
    }

    /// jinja2's int filter: int(x, base) for strings, int(x) otherwise, then int(float(x)).
    static func toInt(_ value: JinjaValue, base: Int) throws -> Int? {
        switch value {
        case .undefined(let u): throw JinjaFailure.render(u.message)  // __int__ fails, as in jinja2
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return i
        case .float(let f):
            guard f.isFinite else { return nil }
            guard let i = Int(exactly: f.rounded(.towardZero)) else { throw JinjaRenderer.overflow }
            return i
        case .string(let s):
            if let i = parsePythonInt(PythonText.strip(s, chars: nil), base: base) { return i }
            guard let f = parsePythonFloat(PythonText.strip(s, chars: nil)), f.isFinite else { return nil }
            guard let i = Int(exactly: f.rounded(.towardZero)) else { throw JinjaRenderer.overflow }
            return i
        default:
            return nil
        }
    }

    /// int(text, base) in Python (base 0 = from the prefix).
    static func parsePythonInt(_ text: String, base: Int) -> Int? {
        guard base == 0 || (2...36).contains(base) else { return nil }
        var sc = PythonText.scalars(PythonText.lower(text))
        var negative = false
        if let f = sc.first, f == "+" || f == "-" {
            negative = f == "-"
            sc.removeFirst()
        }
        var radix = base
        let prefixes: [(String, Int)] = [("0x", 16), ("0o", 8), ("0b", 2)]
        var allowLeadingUnderscore = false
        for (p, r) in prefixes where (base == 0 || base == r) && PythonText.hasPrefix(PythonText.string(sc), p) {
            radix = r
            sc.removeFirst(2)
            allowLeadingUnderscore = true
        }
        if radix == 0 {
            radix = 10
            // Python forbids leading zeros in base 0 ("010"), except for zero itself.
            let digitsOnly = sc.filter { $0 != "_" }
            if digitsOnly.count > 1, digitsOnly.first == "0", digitsOnly.contains(where: { $0 != "0" }) { return nil }
        }
        var digits = ""
        var previousUnderscore = !allowLeadingUnderscore
        for c in sc {
            if c == "_" {
                if previousUnderscore { return nil }
                previousUnderscore = true
                continue
            }
            previousUnderscore = false
            let letter = c.value >= 97 && c.value <= 122 ? Int(c.value) - 97 + 10 : nil
            guard let v = decimalDigit(c) ?? letter, v < radix else { return nil }
            digits += String(v, radix: radix)
        }
        if digits.isEmpty || previousUnderscore { return nil }
        guard let magnitude = Int(digits, radix: radix) else { return nil }
        return negative ? -magnitude : magnitude
    }

    // MARK: - map / select

    /// make_attrgetter: "a.b.0" looks up a, then b, then item 0 (digits become ints).
    func attributeGetter(_ attribute: JinjaValue, default defaultValue: JinjaValue?) throws -> (JinjaValue) throws -> JinjaValue {
        let parts: [JinjaValue]
        switch attribute {
        case .string(let s):
            parts = PythonText.split(s, separator: ".", maxSplit: -1).map { part in
                if !part.isEmpty, part.unicodeScalars.allSatisfy({ $0.properties.numericType == .decimal && $0.isASCII }),
                   let i = Int(part) {
                    return .int(i)
                }
                return .string(part)
            }
        case .int, .bool: parts = [attribute]
        case .none: parts = []
        default: throw JinjaFailure.render("attribute must be a string or an integer, not \(attribute.typeName)")
        }
        return { item in
            var current = item
            for part in parts {
                current = try self.getItem(current, part)
                if let defaultValue, current.isUndefined { current = defaultValue }
            }
            return current
        }
    }

    private func mapFilter(_ value: JinjaValue, _ args: JinjaCallArguments) throws -> JinjaValue {
        var transform: (JinjaValue) throws -> JinjaValue
        if args.positional.isEmpty, let attribute = args.keyword.first(where: { $0.name == "attribute" })?.value {
            var defaultValue: JinjaValue? = nil
            for (k, v) in args.keyword where k != "attribute" {
                guard k == "default" else { throw JinjaFailure.render("Unexpected keyword argument '\(k)'") }
                defaultValue = v
            }
            if let d = defaultValue, isNone(d) { defaultValue = nil }
            transform = try attributeGetter(attribute, default: defaultValue)
        } else {
            guard let first = args.positional.first else { throw JinjaFailure.render("map requires a filter argument") }
            guard case .string(let filterName) = first else {
                throw JinjaFailure.render("map: the filter name must be a string")
            }
            guard JinjaFilters.supportedFilters.contains(filterName) else {
                if JinjaFilters.jinjaFilters.contains(filterName) {
                    throw JinjaFailure.unsupported("the filter '\(filterName)'")
                }
                throw JinjaFailure.render("No filter named '\(filterName)'.")
            }
            let rest = JinjaCallArguments(positional: Array(args.positional.dropFirst()), keyword: args.keyword)
            transform = { try self.applyFilter(filterName, $0, rest) }
        }
        guard value.truthy else { return .iterator(JinjaIterator("generator", [])) }
        return .iterator(JinjaIterator("generator", try JinjaRenderer.iterate(value).map(transform)))
    }

    private func selectFilter(_ name: String, _ value: JinjaValue, _ args: JinjaCallArguments) throws -> JinjaValue {
        let lookupAttribute = name.hasSuffix("attr")
        let keep = name.hasPrefix("select")
        var positional = args.positional
        var transform: (JinjaValue) throws -> JinjaValue = { $0 }
        if lookupAttribute {
            guard !positional.isEmpty else { throw JinjaFailure.render("Missing parameter for attribute name") }
            transform = try attributeGetter(positional.removeFirst(), default: nil)
        }
        var predicate: (JinjaValue) throws -> Bool = { $0.truthy }
        if !positional.isEmpty {
            guard case .string(let testName) = positional.removeFirst() else {
                throw JinjaFailure.render("\(name): the test name must be a string")
            }
            guard JinjaFilters.supportedTests.contains(testName) else {
                throw JinjaFailure.render("No test named '\(testName)'.")
            }
            let rest = JinjaCallArguments(positional: positional, keyword: args.keyword)
            predicate = { try self.applyTest(testName, $0, rest) }
        }
        guard value.truthy else { return .iterator(JinjaIterator("generator", [])) }
        var kept: [JinjaValue] = []
        for item in try JinjaRenderer.iterate(value) where try predicate(try transform(item)) == keep {
            kept.append(item)
        }
        return .iterator(JinjaIterator("generator", kept))
    }

    // MARK: - Tests

    func applyTest(_ name: String, _ value: JinjaValue, _ args: JinjaCallArguments) throws -> Bool {
        func bind(_ parameters: [String], required: Int = 0) throws -> [JinjaValue?] {
            try args.bind(name, parameters, required: required)
        }
        func mod(_ divisor: JinjaValue) throws -> JinjaValue {
            try JinjaRenderer.binary(.modulo, value, divisor)
        }
        switch name {
        case "defined", "undefined":
            _ = try bind([])
            return value.isUndefined == (name == "undefined")
        case "none":
            _ = try bind([])
            return isNone(value)
        case "boolean", "true", "false":
            _ = try bind([])
            guard case .bool(let b) = value else { return false }
            return name == "boolean" || b == (name == "true")
        case "integer":
            _ = try bind([])
            if case .int = value { return true }
            return false
        case "float":
            _ = try bind([])
            if case .float = value { return true }
            return false
        case "number":
            _ = try bind([])
            return value.number != nil
        case "string":
            _ = try bind([])
            if case .string = value { return true }
            return false
        case "mapping":
            _ = try bind([])
            if case .dict = value { return true }
            return false
        case "sequence":
            // len() and __getitem__ both exist.
            _ = try bind([])
            switch value {
            case .string, .list, .tuple, .dict, .undefined, .view(.range(_, _, _), _): return true
            default: return false
            }
        case "iterable":
            _ = try bind([])
            switch value {
            case .string, .list, .tuple, .dict, .undefined, .view, .iterator, .loop: return true
            default: return false
            }
        case "callable":
            _ = try bind([])
            switch value {
            case .callable, .loop, .undefined: return true
            default: return false
            }
        case "escaped":
            _ = try bind([])
            return false  // lorad has no Markup values
        case "lower", "upper":
            _ = try bind([])
            let s = try str(value)
            return name == "lower" ? PythonText.isLower(s) : PythonText.isUpper(s)
        case "odd", "even":
            _ = try bind([])
            return JinjaValue.pyEqual(try mod(.int(2)), .int(name == "odd" ? 1 : 0))
        case "divisibleby":
            let a = try bind(["num"], required: 1)
            return JinjaValue.pyEqual(try mod(a[0]!), .int(0))
        case "filter":
            _ = try bind([])
            guard case .string(let s) = value else { return false }
            return JinjaFilters.jinjaFilters.contains(s)
        case "test":
            _ = try bind([])
            guard case .string(let s) = value else { return false }
            return JinjaFilters.supportedTests.contains(s)
        case "sameas":
            let a = try bind(["other"], required: 1)
            switch (value, a[0]!) {
            case (.none, .none): return true
            case (.bool(let x), .bool(let y)): return x == y
            case (.none, _), (_, .none), (.bool, _), (_, .bool): return false
            default: throw JinjaFailure.unsupported("'sameas' between values that are not none or booleans")
            }
        case "in":
            let a = try bind(["seq"], required: 1)
            return try JinjaRenderer.contains(a[0]!, value)
        case "==", "eq", "equalto":
            return try JinjaRenderer.compare(.equal, value, try bind(["b"], required: 1)[0]!)
        case "!=", "ne":
            return try JinjaRenderer.compare(.notEqual, value, try bind(["b"], required: 1)[0]!)
        case ">", "gt", "greaterthan":
            return try JinjaRenderer.compare(.greater, value, try bind(["b"], required: 1)[0]!)
        case ">=", "ge":
            return try JinjaRenderer.compare(.greaterOrEqual, value, try bind(["b"], required: 1)[0]!)
        case "<", "lt", "lessthan":
            return try JinjaRenderer.compare(.less, value, try bind(["b"], required: 1)[0]!)
        case "<=", "le":
            return try JinjaRenderer.compare(.lessOrEqual, value, try bind(["b"], required: 1)[0]!)
        default:
            throw JinjaFailure.unsupported("the test '\(name)'")
        }
    }
}

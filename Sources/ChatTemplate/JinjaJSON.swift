// The `tojson` filter as transformers defines it for chat templates:
//     json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
// (it replaces jinja2's HTML-escaping tojson). Reproduces CPython 3.11's json encoder:
// separators default to (", ", ": "), or (",", ": ") when indenting; strings escape `"`, `\`,
// \n \r \t \b \f and other control characters as \u00XX (lowercase hex); with ensure_ascii
// everything outside printable ASCII is escaped too (surrogate pairs above U+FFFF); floats use
// repr() and NaN/Infinity; dict keys that are numbers, booleans or None become strings. Python's
// string escaping is JSON's (JSONValue.writeString, with ensure_ascii as its escapingNonASCII); the
// separators, indentation, repr() floats and NaN are Python's own, so the rest is written here.

import JSON

enum JinjaJSON {
    static func dumps(_ value: JinjaValue, ensureASCII: Bool, indent: JinjaValue?, separators: JinjaValue?,
                      sortKeys: Bool) throws -> String {
        var indentUnit: String? = nil
        switch indent {
        case nil, .none?: break
        case .string(let s)?: indentUnit = s
        case let v? where v.index != nil: indentUnit = String(repeating: " ", count: max(0, v.index!))
        case let v?: throw JinjaFailure.render("tojson: indent must be an integer or a string, not \(v.typeName)")
        }
        var itemSeparator = indentUnit == nil ? ", " : ","
        var keySeparator = ": "
        switch separators {
        case nil, .none?: break
        case .list(let xs)?, .tuple(let xs)?:
            guard xs.count == 2, case .string(let a) = xs[0], case .string(let b) = xs[1] else {
                throw JinjaFailure.render("tojson: separators must be two strings")
            }
            itemSeparator = a
            keySeparator = b
        case let v?: throw JinjaFailure.render("tojson: separators must be a pair of strings, not \(v.typeName)")
        }
        var encoder = Encoder(ensureASCII: ensureASCII, indentUnit: indentUnit, itemSeparator: itemSeparator,
                              keySeparator: keySeparator, sortKeys: sortKeys)
        try encoder.encode(value, level: 0)
        return encoder.out
    }

    private struct Encoder {
        let ensureASCII: Bool
        let indentUnit: String?
        let itemSeparator: String
        let keySeparator: String
        let sortKeys: Bool
        var out = ""

        init(ensureASCII: Bool, indentUnit: String?, itemSeparator: String, keySeparator: String, sortKeys: Bool) {
            self.ensureASCII = ensureASCII
            self.indentUnit = indentUnit
            self.itemSeparator = itemSeparator
            self.keySeparator = keySeparator
            self.sortKeys = sortKeys
        }

        private func newline(_ level: Int) -> String {
            guard let indentUnit else { return "" }
            return "\n" + String(repeating: indentUnit, count: level)
        }

        mutating func encode(_ value: JinjaValue, level: Int) throws {
            switch value {
            case .none: out += "null"
            case .bool(let b): out += b ? "true" : "false"
            case .int(let i): out += String(i)
            case .float(let f): out += JinjaJSON.float(f)
            case .string(let s): JSONValue.writeString(s, to: &out, escapingNonASCII: ensureASCII)
            case .list(let xs), .tuple(let xs):
                if xs.isEmpty {
                    out += "[]"
                    return
                }
                out += "[" + newline(level + 1)
                for (i, x) in xs.enumerated() {
                    if i > 0 { out += itemSeparator + newline(level + 1) }
                    try encode(x, level: level + 1)
                }
                out += newline(level) + "]"
            case .dict(let d):
                if d.count == 0 {
                    out += "{}"
                    return
                }
                var entries: [(key: String, value: JinjaValue)] = []
                for e in d.entries { entries.append((try JinjaJSON.key(e.key), e.value)) }
                if sortKeys {
                    // Python sorts the original keys; for string keys that is code-point order.
                    guard d.entries.allSatisfy({ if case .string = $0.key { return true } else { return false } }) else {
                        throw JinjaFailure.unsupported("tojson(sort_keys=true) with non-string keys")
                    }
                    entries.sort { PythonText.less($0.key, $1.key) }
                }
                out += "{" + newline(level + 1)
                for (i, e) in entries.enumerated() {
                    if i > 0 { out += itemSeparator + newline(level + 1) }
                    JSONValue.writeString(e.key, to: &out, escapingNonASCII: ensureASCII)
                    out += keySeparator
                    try encode(e.value, level: level + 1)
                }
                out += newline(level) + "}"
            default:
                throw JinjaFailure.render("Object of type \(value.typeName) is not JSON serializable")
            }
        }
    }

    static func float(_ f: Double) -> String {
        if f.isNaN { return "NaN" }
        if f.isInfinite { return f < 0 ? "-Infinity" : "Infinity" }
        return PythonText.floatRepr(f)
    }

    /// A dict key as json.dumps converts it.
    static func key(_ k: JinjaValue) throws -> String {
        switch k {
        case .string(let s): return s
        case .float(let f): return float(f)
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .none: return "null"
        default: throw JinjaFailure.render("keys must be str, int, float, bool or None, not \(k.typeName)")
        }
    }
}

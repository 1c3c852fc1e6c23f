// A small JSON value with ordered objects and a correct serializer (RFC 8259 escaping,
// shortest round-trip numbers): what the strict reader (JSONParser.swift) returns and what every
// JSON lorad writes (OpenAI responses, safetensors headers, adapter_config.json, command output) is
// built from. `writeString` is the one JSON string escaper; chat templates' `tojson` uses it too.

public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    /// Keys keep their insertion order.
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.double(let x), .double(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public func serialized() -> String {
        var out = ""
        write(to: &out)
        return out
    }

    public func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            // JSON has no NaN or infinity; null is what JavaScript's JSON.stringify writes.
            if d.isFinite {
                if d == d.rounded(), abs(d) < 1e15 { out += String(Int64(d)) + ".0" } else { out += "\(d)" }
            } else {
                out += "null"
            }
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let xs):
            out += "["
            for (i, x) in xs.enumerated() {
                if i > 0 { out += "," }
                x.write(to: &out)
            }
            out += "]"
        case .object(let kvs):
            out += "{"
            for (i, (k, v)) in kvs.enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeString(k, to: &out)
                out += ":"
                v.write(to: &out)
            }
            out += "}"
        }
    }

    /// Appends `s` as a JSON string literal: `"` and `\` escaped, \n \r \t \b \f by name, other
    /// control characters as \u00xx (lowercase hex, as Python's json writes them), everything else
    /// as it is. With `escapingNonASCII`, every scalar outside printable ASCII (0x7F included) is
    /// written as \uxxxx too, above U+FFFF as a surrogate pair (Python's ensure_ascii=True).
    public static func writeString(_ s: String, to out: inout String, escapingNonASCII: Bool = false) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || (escapingNonASCII && scalar.value > 0x7E) {
                    if scalar.value > 0xFFFF {
                        let v = scalar.value - 0x10000
                        writeHexEscape(0xD800 | (v >> 10), to: &out)
                        writeHexEscape(0xDC00 | (v & 0x3FF), to: &out)
                    } else {
                        writeHexEscape(scalar.value, to: &out)
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// `s` as a JSON string literal (see `writeString`).
    public static func quoted(_ s: String, escapingNonASCII: Bool = false) -> String {
        var out = ""
        writeString(s, to: &out, escapingNonASCII: escapingNonASCII)
        return out
    }

    private static func writeHexEscape(_ v: UInt32, to out: inout String) {
        let hex = String(v, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}

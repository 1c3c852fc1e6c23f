// A TOML value as the configuration reader sees it, copied out of TOMLKit's tree right after
// parsing. TOMLKit's types are classes over toml++ nodes (not Sendable, not value types); copying
// keeps them out of everything else, and lets command-line flags go through the same key decoders
// as the file (a flag's value is a `.string` or `.integer`).

import TOMLKit

enum ConfigValue: Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([ConfigValue])
    /// Keys in the order toml++ gives them (sorted), so problems come out in a stable order.
    case table([Entry])
    /// A TOML date, time or date-time: never a valid lorad value, kept only to say what was found.
    case dateTime(String)

    struct Entry: Equatable {
        var key: String
        var value: ConfigValue
    }

    /// The value as it would be written in TOML, for "found ..." in messages.
    var rendered: String {
        switch self {
        case .string(let s): return ConfigValue.quoted(s)
        case .integer(let i): return String(i)
        case .float(let d): return String(d)
        case .boolean(let b): return b ? "true" : "false"
        case .array(let items): return items.isEmpty ? "an empty array" : "an array of \(items.count)"
        case .table: return "a table"
        case .dateTime(let text): return "a date/time (\(text))"
        }
    }

    /// A basic TOML string literal, with the escapes TOML defines, so a found value with quotes or
    /// control characters prints unambiguously on one line. (Not JSONValue.quoted: TOML's rules
    /// differ, DEL must be escaped there, and the user wrote TOML.)
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

extension ConfigValue {
    /// Copies a parsed TOMLKit table. Only two levels matter (sections, then their keys), three for
    /// the tables of an array of tables (`[[tenants]]`: the array, its tables, their keys); deeper
    /// tables are kept empty, so a document of thousands of nested tables costs no deep recursion.
    init(table: TOMLTable, depth: Int = 0) {
        guard depth < 3 else {
            self = .table([])
            return
        }
        var entries: [Entry] = []
        for key in table.keys {
            guard let node = table[key] else { continue }
            entries.append(Entry(key: key, value: ConfigValue(node: node, depth: depth + 1)))
        }
        self = .table(entries)
    }

    init(node: TOMLValueConvertible, depth: Int) {
        switch node.type {
        case .string: self = .string(node.string ?? "")
        case .int: self = .integer(node.int ?? 0)
        case .double: self = .float(node.double ?? 0)
        case .bool: self = .boolean(node.bool ?? false)
        case .array:
            var items: [ConfigValue] = []
            if let array = node.array {
                for i in 0..<array.count { items.append(ConfigValue(node: array[i], depth: depth + 1)) }
            }
            self = .array(items)
        case .table:
            if let table = node.table { self.init(table: table, depth: depth) } else { self = .table([]) }
        case .date, .time, .dateTime: self = .dateTime(node.debugDescription)
        }
    }
}

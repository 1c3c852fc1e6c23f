// Human and JSON descriptions of a GGUF file, for `lorad inspect`.

import JSON

extension GGUFValue {
    /// A one-line rendering; arrays longer than `arrayLimit` show their first elements and length.
    public func summary(arrayLimit: Int = 8) -> String {
        switch self {
        case .string(let s): return quoted(s, limit: 120)
        case .bool(let b): return b ? "true" : "false"
        case .float32(let f): return "\(f)"
        case .float64(let d): return "\(d)"
        case .array(let a):
            let items = a.jsonItems(limit: arrayLimit).map { item -> String in
                if case .string(let s) = item { return quoted(s, limit: 40) }
                return item.serialized()
            }
            let more = a.count > items.count ? ", ... (\(a.count) items)" : ""
            return "[" + items.joined(separator: ", ") + more + "]"
        default: return int.map(String.init) ?? "?"
        }
    }

    public func json(arrayLimit: Int?) -> JSONValue {
        switch self {
        case .string(let s): return .string(s)
        case .bool(let b): return .bool(b)
        case .float32(let f): return .double(Double(f))
        case .float64(let d): return .double(d)
        case .array(let a):
            var fields: [(String, JSONValue)] = [
                ("element_type", .string("\(a.elementType)")),
                ("length", .int(a.count)),
                ("values", .array(a.jsonItems(limit: arrayLimit))),
            ]
            if let limit = arrayLimit, a.count > limit { fields.append(("truncated", .bool(true))) }
            return .object(fields)
        case .uint64(let u): return Int(exactly: u).map { .int($0) } ?? .double(Double(u))
        default: return .int(int ?? 0)
        }
    }
}

extension GGUFArray {
    func jsonItems(limit: Int?) -> [JSONValue] {
        let n = Swift.min(count, limit ?? count)
        switch self {
        case .string(let xs): return xs.prefix(n).map { .string($0) }
        case .bool(let xs): return xs.prefix(n).map { .bool($0) }
        case .float32(let xs): return xs.prefix(n).map { .double(Double($0)) }
        case .float64(let xs): return xs.prefix(n).map { .double($0) }
        case .uint64(let xs): return xs.prefix(n).map { Int(exactly: $0).map { .int($0) } ?? .double(Double($0)) }
        default: return (ints ?? []).prefix(n).map { .int($0) }
        }
    }
}

private func quoted(_ s: String, limit: Int) -> String {
    var shown = s
    if s.count > limit { shown = String(s.prefix(limit)) + "…" }
    return JSONValue.string(shown).serialized() + (s.count > limit ? " (\(s.utf8.count) bytes)" : "")
}

extension GGUFFile {
    /// The metadata and tensor table as text.
    public func describe(arrayLimit: Int = 8) -> String {
        var out = ""
        let name = path ?? "(memory)"
        out += "\(name): GGUF v\(version), \(fileSize) bytes, \(metadata.count) metadata keys, "
        out += "\(tensors.count) tensors, alignment \(alignment), data at offset \(dataOffset)\n\n"
        out += "metadata:\n"
        let width = metadataKeys.map(\.count).max() ?? 0
        for key in metadataKeys {
            let v = metadata[key]!
            let type = v.array.map { "arr[\($0.elementType)]" } ?? "\(v.type)"
            out += "  " + rightPad(key, width)
            out += "  " + rightPad(type, 8)
            out += "  " + v.summary(arrayLimit: arrayLimit) + "\n"
        }
        out += "\ntensors:\n"
        let nameWidth = max(4, tensors.map(\.name.count).max() ?? 0)
        out += "  " + rightPad("name", nameWidth)
        out += "  type     shape                 offset        bytes\n"
        var counts: [String: Int] = [:]
        for t in tensors {
            counts[t.type.name, default: 0] += 1
            let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
            out += "  " + rightPad(t.name, nameWidth)
            out += "  " + rightPad(t.type.name, 7)
            out += "  " + rightPad(shape, 20)
            out += "  " + leftPad(String(dataOffset + t.offset), 12)
            out += "  " + leftPad(String(t.byteCount), 11) + "\n"
        }
        let total = tensors.reduce(0) { $0 + $1.byteCount }
        let elements = tensors.reduce(0) { $0 + $1.elementCount }
        let types = counts.sorted { $0.key < $1.key }.map { "\($0.value) × \($0.key)" }.joined(separator: ", ")
        out += "\n\(tensors.count) tensors (\(types)), \(elements) elements, \(total) bytes of data\n"
        return out
    }

    /// The metadata and tensor table as one JSON object; arrays cut to `arrayLimit` items (nil: all).
    public func describeJSON(arrayLimit: Int?) -> JSONValue {
        .object([
            ("path", path.map { .string($0) } ?? .null),
            ("version", .int(version)),
            ("file_size", .int(fileSize)),
            ("alignment", .int(alignment)),
            ("data_offset", .int(dataOffset)),
            ("metadata", .object(metadataKeys.map { ($0, metadata[$0]!.json(arrayLimit: arrayLimit)) })),
            ("tensors", .array(tensors.map { t in
                .object([
                    ("name", .string(t.name)),
                    ("type", .string(t.type.name)),
                    ("shape", .array(t.shape.map { .int($0) })),
                    ("offset", .int(dataOffset + t.offset)),
                    ("bytes", .int(t.byteCount)),
                ])
            })),
        ])
    }
}

private func leftPad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
}

private func rightPad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
}

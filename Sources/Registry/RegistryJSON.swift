// The registry as JSON, one shape for `lorad adapter list|show --json` and the admin API.

import JSON

extension Registry.Version {
    public var json: JSONValue {
        var m: [(String, JSONValue)] = [("version", .int(version)), ("path", .string(loadPath)), ("plain", .bool(isPlain))]
        if let manifest {
            m += [("digest", .string(manifest.digest)), ("source", .string(manifest.source.rawValue)),
                  ("parent", manifest.parent.map { .int($0) } ?? .null), ("created", .int(manifest.created)),
                  ("bytes", .int(manifest.files.reduce(0) { $0 + $1.bytes })), ("stats", .object(manifest.stats))]
        }
        return .object(m)
    }
}

extension Registry.Adapter {
    public var json: JSONValue {
        .object([
            ("name", .string(name)),
            ("active", active.map { .int($0) } ?? .null),
            ("versions", .array(versions.map(\.json))),
            ("problems", .array(problems.map(JSONValue.string))),
        ])
    }
}

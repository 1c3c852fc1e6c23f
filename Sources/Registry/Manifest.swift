// lorad.json, the manifest of one published version: what it is (name, version, where it came from,
// its parent), which files make it (each with its size and sha256), which base it was validated
// against, when, and free-form statistics (a trainer's eval loss). `digest` is the adapter's
// content identity: the sha256 over its files' names and digests, so two versions with the same
// bytes share it and a same-name republish with other weights never does. (What the daemon derives
// from loaded weights, prefix-cache KV, is keyed by LoRAAdapter.contentDigest, the same idea over
// the weights as loaded; never by the name.)

import Crypto
import LoRA
import JSON

public struct Manifest: Sendable, Equatable {
    public enum Source: String, Sendable, CaseIterable { case imported, trained, combined }

    public struct File: Sendable, Equatable {
        public var name: String
        public var bytes: Int
        public var sha256: String
    }

    public static let fileName = "lorad.json"
    public static let formatVersion = 1

    public var name: String
    public var version: Int
    public var source: Source
    public var parent: Int?
    /// Seconds since 1970.
    public var created: Int
    public var files: [File]
    public var base: BaseFingerprint
    /// Where an import came from (a path), for people; never read back as a path.
    public var origin: String?
    /// Free-form numbers and notes (eval loss, examples, epochs).
    public var stats: [(String, JSONValue)]
    /// Serve this version merged into the base weights (a daemon builds the merged copy when it
    /// serves it, as for `adapters.merge`). Written only when true.
    public var merge: Bool

    public var digest: String { Self.digest(files) }

    public static func digest(_ files: [File]) -> String {
        var h = SHA256()
        for f in files.sorted(by: { $0.name < $1.name }) {
            h.update(data: Array("\(f.name)\u{0}\(f.sha256)\n".utf8))
        }
        return hex(h.finalize())
    }

    static func hex<D: Sequence<UInt8>>(_ bytes: D) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func == (a: Manifest, b: Manifest) -> Bool {
        a.json == b.json
    }

    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("format", .int(Self.formatVersion)),
            ("name", .string(name)),
            ("version", .int(version)),
            ("source", .string(source.rawValue)),
            ("parent", parent.map { .int($0) } ?? .null),
            ("created", .int(created)),
            ("digest", .string(digest)),
            ("files", .array(files.map { .object([("name", .string($0.name)), ("bytes", .int($0.bytes)), ("sha256", .string($0.sha256))]) })),
            ("base", base.json),
        ]
        if let origin { members.append(("origin", .string(origin))) }
        if merge { members.append(("merge", .bool(true))) }
        members.append(("stats", .object(stats)))
        return .object(members)
    }

    public init(name: String, version: Int, source: Source, parent: Int?, created: Int, files: [File],
                base: BaseFingerprint, origin: String? = nil, stats: [(String, JSONValue)] = [], merge: Bool = false) {
        self.name = name
        self.version = version
        self.source = source
        self.parent = parent
        self.created = created
        self.files = files
        self.base = base
        self.origin = origin
        self.stats = stats
        self.merge = merge
    }

    /// Reads a manifest; `path` names it in errors.
    public init(json bytes: [UInt8], path: String) throws(RegistryError) {
        func bad(_ reason: String) -> RegistryError { .badManifest(path: path, reason: reason) }
        let v: JSONValue
        do { v = try JSONValue.parse(bytes) } catch { throw bad("not JSON: \(error)") }
        guard let format = v["format"]?.intValue else { throw bad("no integer 'format'") }
        guard format == Self.formatVersion else { throw bad("format \(format); this lorad reads format \(Self.formatVersion)") }
        guard let name = v["name"]?.stringValue, AdapterName.isValid(name) else { throw bad("'name' is missing or not an adapter name") }
        guard let version = v["version"]?.intValue, version >= 1 else { throw bad("'version' is missing or not a positive integer") }
        guard let s = v["source"]?.stringValue, let source = Source(rawValue: s) else {
            throw bad("'source' is not one of \(Source.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let parent: Int?
        switch v["parent"] {
        case nil, .null?: parent = nil
        case .int(let p)?: parent = p
        default: throw bad("'parent' is neither null nor an integer")
        }
        guard let created = v["created"]?.intValue else { throw bad("'created' is not an integer (seconds since 1970)") }
        guard let list = v["files"]?.arrayValue, !list.isEmpty else { throw bad("'files' is missing or empty") }
        var files: [File] = []
        for (i, f) in list.enumerated() {
            guard let n = f["name"]?.stringValue, Self.isPlainFileName(n),
                  let b = f["bytes"]?.intValue, b >= 0,
                  let h = f["sha256"]?.stringValue, h.utf8.count == 64, h.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
            else { throw bad("files[\(i)] needs a plain file name, 'bytes' and a lowercase hex 'sha256'") }
            files.append(File(name: n, bytes: b, sha256: h))
        }
        let merge: Bool
        switch v["merge"] {
        case nil: merge = false
        case .bool(let b)?: merge = b
        default: throw bad("'merge' is not true or false")
        }
        guard let baseValue = v["base"], let base = BaseFingerprint(json: baseValue) else { throw bad("'base' is missing or malformed") }
        self.init(name: name, version: version, source: source, parent: parent, created: created, files: files, base: base,
                  origin: v["origin"]?.stringValue, stats: v["stats"]?.objectMembers ?? [], merge: merge)
        if let d = v["digest"]?.stringValue, d != digest { throw bad("'digest' \(d) does not match its files (\(digest))") }
    }

    /// A file name inside a version directory: no separator, not "." or "..", not hidden.
    static func isPlainFileName(_ n: String) -> Bool {
        !n.isEmpty && n.utf8.count <= 128 && !n.contains("/") && !n.hasPrefix(".") && !n.contains("\u{0}")
    }
}

/// The base model a version was validated against: its shapes (which decide whether it loads) and
/// its name (which decides whether it was meant for this base).
public struct BaseFingerprint: Sendable, Equatable, CustomStringConvertible {
    public var architecture: String
    public var layers: Int
    public var embedding: Int
    public var feedForward: Int
    public var heads: Int
    public var kvHeads: Int
    public var name: String?

    public init(_ info: BaseModelInfo) {
        architecture = info.architecture
        layers = info.layerCount
        embedding = info.embeddingLength
        feedForward = info.feedForwardLength
        heads = info.headCount
        kvHeads = info.headCountKV
        let id = info.identity
        let words = [id.basename, id.sizeLabel].compactMap { $0 }
        name = words.isEmpty ? id.name : words.joined(separator: " ")
    }

    init?(json v: JSONValue) {
        guard let a = v["architecture"]?.stringValue, let l = v["layers"]?.intValue, let e = v["embedding"]?.intValue,
              let f = v["feed_forward"]?.intValue, let h = v["heads"]?.intValue, let k = v["kv_heads"]?.intValue else { return nil }
        architecture = a
        layers = l
        embedding = e
        feedForward = f
        heads = h
        kvHeads = k
        name = v["name"]?.stringValue
    }

    var json: JSONValue {
        .object([("architecture", .string(architecture)), ("layers", .int(layers)), ("embedding", .int(embedding)),
                 ("feed_forward", .int(feedForward)), ("heads", .int(heads)), ("kv_heads", .int(kvHeads)),
                 ("name", name.map(JSONValue.string) ?? .null)])
    }

    /// Equal shapes: what an adapter validated against one base needs to load on another.
    public func sameShapes(as o: BaseFingerprint) -> Bool {
        (architecture, layers, embedding, feedForward, heads, kvHeads) == (o.architecture, o.layers, o.embedding, o.feedForward, o.heads, o.kvHeads)
    }

    public var description: String {
        "\(name ?? architecture) (\(layers) layers, \(embedding) wide, \(heads)/\(kvHeads) heads)"
    }
}

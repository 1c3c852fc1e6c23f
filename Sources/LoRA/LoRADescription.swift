// A human- and machine-readable description of a loaded adapter, for `lorad adapter inspect`: where
// it came from, the config its file declares (PEFT adapter_config.json or llama.cpp GGUF metadata),
// and per module its layer, target, rank, shape, folded scale and DoRA flag, with totals. The
// adapter passed in was already validated against a base model by the loader, so describing it
// also states that it is compatible with that base.

import Foundation
import JSON
import ModelFormats

public struct LoRADescription: Sendable {
    public struct Module: Sendable {
        public let layer: Int
        public let target: LoRATarget
        public let rank: Int
        public let inFeatures: Int
        public let outFeatures: Int
        public let scale: Float
        public let isDoRA: Bool
        /// Elements of A, B and the DoRA magnitude vector (what training learned).
        public let parameters: Int
        /// Bytes the module holds in memory: f32 arrays (DoRA factors included) and the forward pass's
        /// copy (16-bit when exact, LoRAKernelWeights).
        public let bytes: Int
    }

    public let name: String
    /// "peft", "gguf" or "combined".
    public let format: String
    public let source: String
    /// The declared config, in a fixed key order (empty for adapters that have no file).
    public let config: [(String, JSONValue)]
    public let modules: [Module]
    /// Bytes of the adapter on disk (directory contents or file), when it came from a path.
    public let fileBytes: Int?

    public var parameters: Int { modules.reduce(0) { $0 + $1.parameters } }
    public var bytes: Int { modules.reduce(0) { $0 + $1.bytes } }

    /// Describes `adapter`, reading the declared config from `path` (the directory or file it was
    /// loaded from; nil for a combined adapter). A config that cannot be re-read is left empty:
    /// the adapter was loaded from it a moment ago, so this only happens if the file changed.
    public init(adapter: LoRAAdapter, path: String?) {
        name = adapter.name
        source = adapter.source
        modules = adapter.modules.map { layer, target, m in
            Module(layer: layer, target: target, rank: m.rank, inFeatures: m.inFeatures, outFeatures: m.outFeatures,
                   scale: m.scale, isDoRA: m.isDoRA,
                   parameters: m.a.count + m.b.count + (m.magnitude?.count ?? 0),
                   bytes: adapter.byteCount(layer: layer, target: target))
        }
        var isDir: ObjCBool = false
        guard let path, FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            format = "combined"
            config = []
            fileBytes = nil
            return
        }
        if isDir.boolValue {
            format = "peft"
            config = Self.peftConfig(directory: path)
            fileBytes = ["adapter_config.json", "adapter_model.safetensors"].reduce(0) { total, f in
                total + Self.size(path + "/" + f)
            }
        } else {
            format = "gguf"
            config = Self.ggufConfig(path: path)
            fileBytes = Self.size(path)
        }
    }

    private static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    private static func peftConfig(directory: String) -> [(String, JSONValue)] {
        let path = directory + "/adapter_config.json"
        guard let data = FileManager.default.contents(atPath: path),
              let c = try? PEFTConfig.parse(Array(data), path: path) else { return [] }
        let targets: JSONValue
        switch c.targets {
        case .list(let xs): targets = .array(xs.map { .string($0) })
        case .regex(let r): targets = .string(r)
        case .allLinear: targets = .string("all-linear")
        }
        return [
            ("base_model_name_or_path", c.baseModel.map { .string($0) } ?? .null),
            ("r", .int(c.r)),
            ("lora_alpha", .double(c.loraAlpha)),
            ("use_rslora", .bool(c.useRSLoRA)),
            ("use_dora", .bool(c.useDoRA)),
            ("target_modules", targets),
            ("layers_to_transform", c.layersToTransform.map { .array($0.map { .int($0) }) } ?? .null),
            ("rank_pattern", .object(c.rankPattern.map { ($0.0, .int($0.1)) })),
            ("alpha_pattern", .object(c.alphaPattern.map { ($0.0, .double($0.1)) })),
        ]
    }

    private static func ggufConfig(path: String) -> [(String, JSONValue)] {
        guard let f = try? GGUFFile(path: path) else { return [] }
        func s(_ k: String) -> JSONValue { (try? f.string(k)).flatMap { $0 }.map { .string($0) } ?? .null }
        let alpha = (try? f.float("adapter.lora.alpha")).flatMap { $0 }
        return [
            ("general.architecture", s("general.architecture")),
            ("general.type", s("general.type")),
            ("general.name", s("general.name")),
            ("adapter.type", s("adapter.type")),
            ("adapter.lora.alpha", alpha.map { .double(Double($0)) } ?? .null),
        ]
    }

    /// One JSON object: name, format, source, base (when given), compatible, the declared-base
    /// warning (null when there is none), config, totals, modules.
    public func json(base: String? = nil, warning: String? = nil) -> JSONValue {
        let ranks = Set(modules.map(\.rank)).sorted()
        return .object([
            ("name", .string(name)),
            ("format", .string(format)),
            ("source", .string(source)),
            ("base", base.map { .string($0) } ?? .null),
            ("compatible", .bool(true)),
            ("warning", warning.map { .string($0) } ?? .null),
            ("config", .object(config)),
            ("module_count", .int(modules.count)),
            ("layers", .array(Set(modules.map(\.layer)).sorted().map { .int($0) })),
            ("targets", .array(LoRATarget.allCases.filter { t in modules.contains { $0.target == t } }.map { .string($0.rawValue) })),
            ("ranks", .array(ranks.map { .int($0) })),
            ("dora", .bool(modules.contains { $0.isDoRA })),
            ("parameters", .int(parameters)),
            ("bytes", .int(bytes)),
            ("file_bytes", fileBytes.map { .int($0) } ?? .null),
            ("modules", .array(modules.map { m in
                .object([
                    ("layer", .int(m.layer)),
                    ("target", .string(m.target.rawValue)),
                    ("module", .string(m.target.hfPath(layer: m.layer))),
                    ("rank", .int(m.rank)),
                    ("in", .int(m.inFeatures)),
                    ("out", .int(m.outFeatures)),
                    ("scale", .double(Double(m.scale))),
                    ("dora", .bool(m.isDoRA)),
                    ("parameters", .int(m.parameters)),
                    ("bytes", .int(m.bytes)),
                ])
            })),
        ])
    }

    /// A short header, the config, one table row per module, and the totals.
    public func text(base: String? = nil, warning: String? = nil) -> String {
        var out = ""
        out += "name:       \(name)\n"
        out += "format:     \(formatName)\n"
        out += "source:     \(source)\n"
        if let base { out += "base:       \(base) (\(warning == nil ? "compatible" : "shapes fit"))\n" }
        if let warning { out += "warning:    \(warning)\n" }
        if !config.isEmpty {
            out += "config:\n"
            for (k, v) in config { out += "  \(k): \(v.serialized())\n" }
        }
        let layers = Set(modules.map(\.layer)).count
        let targets = LoRATarget.allCases.filter { t in modules.contains { $0.target == t } }.map(\.rawValue)
        out += "modules:    \(modules.count) in \(layers) layer\(layers == 1 ? "" : "s") (\(targets.joined(separator: ", ")))\n"
        let header = [pad("layer", 5), pad("target", 9, left: true), pad("rank", 4), pad("in", 5), pad("out", 5),
                      pad("scale", 10), pad("dora", 4, left: true), pad("params", 9)]
        out += "  " + header.joined(separator: "  ") + "\n"
        for m in modules {
            let row = [pad(String(m.layer), 5), pad(m.target.rawValue, 9, left: true), pad(String(m.rank), 4),
                       pad(String(m.inFeatures), 5), pad(String(m.outFeatures), 5), pad("\(m.scale)", 10),
                       pad(m.isDoRA ? "yes" : "no", 4, left: true), pad(String(m.parameters), 9)]
            out += "  " + row.joined(separator: "  ") + "\n"
        }
        out += "parameters: \(parameters)\n"
        out += "bytes:      \(bytes) in memory (f32 and the forward pass's copy)" + (fileBytes.map { ", \($0) on disk" } ?? "") + "\n"
        return out
    }

    private var formatName: String {
        switch format {
        case "peft": return "PEFT directory"
        case "gguf": return "llama.cpp GGUF LoRA"
        default: return format
        }
    }

    private func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return left ? s + fill : fill + s
    }
}

// adapter_config.json of a PEFT LoRA adapter (FORMATS.md §5.1): the fields that change inference,
// the options lorad refuses, and PEFT's own rules for which modules are targeted and what rank and
// alpha each gets (peft utils/other.py `get_pattern_key`, tuners_utils.py `check_target_module_exists`,
// checked against peft 0.21.2):
//   - target_modules as a string is a regex that must match the whole module path (re.fullmatch);
//     as a list, an entry matches a path equal to it or ending in "." + entry, and only then do
//     layers_to_transform / layers_pattern restrict the layer; "all-linear" is every linear layer
//     except the output layer.
//   - rank_pattern / alpha_pattern: the first key p with re.match("(.*\.)?(p)$", path) wins.
// Parsed by the strict JSON reader (a repeated key is refused, not silently resolved).

import Foundation
import JSON

public struct PEFTConfig: Sendable {
    public enum Targets: Sendable, Equatable {
        case list([String])
        case regex(String)
        case allLinear
    }

    public var r: Int
    public var loraAlpha: Double
    public var useRSLoRA: Bool
    public var useDoRA: Bool
    /// Sorted by key, the order lorad has always tried them in (its first JSON reader lost the
    /// file's order; PEFT tries them in file order, which matters only when two patterns match).
    public var rankPattern: [(String, Int)]
    public var alphaPattern: [(String, Double)]
    public var targets: Targets
    public var excludeModules: Targets?
    public var layersToTransform: [Int]?
    public var layersPattern: [String]?
    public var baseModel: String?

    public init(r: Int, loraAlpha: Double, useRSLoRA: Bool = false, useDoRA: Bool = false,
                rankPattern: [(String, Int)] = [], alphaPattern: [(String, Double)] = [],
                targets: Targets, excludeModules: Targets? = nil, layersToTransform: [Int]? = nil,
                layersPattern: [String]? = nil, baseModel: String? = nil) {
        self.r = r
        self.loraAlpha = loraAlpha
        self.useRSLoRA = useRSLoRA
        self.useDoRA = useDoRA
        self.rankPattern = rankPattern
        self.alphaPattern = alphaPattern
        self.targets = targets
        self.excludeModules = excludeModules
        self.layersToTransform = layersToTransform
        self.layersPattern = layersPattern
        self.baseModel = baseModel
    }

    /// The JSON size limit: real configs are a few KB.
    static let maxBytes = 1 << 20

    public static func parse(_ data: [UInt8], path: String) throws -> PEFTConfig {
        guard data.count <= maxBytes else {
            throw LoRAError.unreadable(path: path, reason: "\(data.count) bytes; adapter_config.json is expected to be far below \(maxBytes)")
        }
        let o: JSONValue
        do {
            o = try JSONValue.parse(data)
        } catch {
            throw LoRAError.unreadable(path: path, reason: "not valid JSON (\(error))")
        }
        guard o.objectMembers != nil else { throw LoRAError.unreadable(path: path, reason: "the top level is not a JSON object") }

        if let t = field(o, "peft_type") {
            guard let s = t.stringValue else { throw LoRAError.badConfig(field: "peft_type", expected: "a string", found: describe(t)) }
            guard s.uppercased() == "LORA" else { throw LoRAError.unsupportedPEFTType(s) }
        }
        try rejectUnsupported(o)

        let r = try int(o, "r", default: 8)
        guard r > 0 else { throw LoRAError.badConfig(field: "r", expected: "a positive integer", found: String(r)) }
        let alpha = try number(o, "lora_alpha", default: 8)
        let rsLoRA = try bool(o, "use_rslora", default: false)
        let dora = try bool(o, "use_dora", default: false)

        var rankPattern: [(String, Int)] = []
        for (k, v) in try dict(o, "rank_pattern").sorted(by: { $0.0 < $1.0 }) {
            guard let n = jsonInt(v), n > 0 else { throw LoRAError.badConfig(field: "rank_pattern.\(k)", expected: "a positive integer", found: describe(v)) }
            rankPattern.append((k, n))
        }
        var alphaPattern: [(String, Double)] = []
        for (k, v) in try dict(o, "alpha_pattern").sorted(by: { $0.0 < $1.0 }) {
            guard let x = v.doubleValue else { throw LoRAError.badConfig(field: "alpha_pattern.\(k)", expected: "a number", found: describe(v)) }
            alphaPattern.append((k, x))
        }
        // PEFT fills in its default for Llama (q_proj, v_proj) when target_modules is null.
        let targets = try self.targets(field(o, "target_modules"), field: "target_modules") ?? .list(["q_proj", "v_proj"])
        let exclude = try self.targets(field(o, "exclude_modules"), field: "exclude_modules")

        var layers: [Int]?
        if let v = field(o, "layers_to_transform") {
            if let n = jsonInt(v) {
                layers = [n]
            } else if let list = v.arrayValue {
                layers = try list.map {
                    guard let n = jsonInt($0) else { throw LoRAError.badConfig(field: "layers_to_transform", expected: "integers", found: describe($0)) }
                    return n
                }
                if layers!.isEmpty { layers = nil }  // PEFT: an empty list restricts nothing
            } else {
                throw LoRAError.badConfig(field: "layers_to_transform", expected: "an integer or a list of integers", found: describe(v))
            }
        }
        var layersPattern: [String]?
        if let v = field(o, "layers_pattern") {
            if let s = v.stringValue {
                layersPattern = s.isEmpty ? nil : [s]
            } else if let list = v.arrayValue, case let strings = list.compactMap(\.stringValue), strings.count == list.count {
                layersPattern = strings.isEmpty ? nil : strings
            } else {
                throw LoRAError.badConfig(field: "layers_pattern", expected: "a string or a list of strings", found: describe(v))
            }
        }
        let baseModel = o["base_model_name_or_path"]?.stringValue
        return PEFTConfig(r: r, loraAlpha: alpha, useRSLoRA: rsLoRA, useDoRA: dora, rankPattern: rankPattern,
                          alphaPattern: alphaPattern, targets: targets, excludeModules: exclude,
                          layersToTransform: layers, layersPattern: layersPattern, baseModel: baseModel)
    }

    /// Options whose adapters lorad cannot serve exactly: refused rather than silently ignored.
    private static func rejectUnsupported(_ o: JSONValue) throws {
        func present(_ key: String) -> JSONValue? {
            guard let v = field(o, key) else { return nil }
            if let b = v.boolValue { return b ? v : nil }
            if let list = v.arrayValue, list.isEmpty { return nil }
            if let members = v.objectMembers, members.isEmpty { return nil }
            return v
        }
        if let v = present("modules_to_save") {
            throw LoRAError.unsupportedOption(option: "modules_to_save", detail: "the adapter replaces whole modules (\(describe(v))); lorad only adds low-rank deltas to a shared base")
        }
        if present("lora_bias") != nil {
            throw LoRAError.unsupportedOption(option: "lora_bias", detail: "lora_B has a trained bias; lorad's base projections have no bias to adapt")
        }
        if present("fan_in_fan_out") != nil {
            throw LoRAError.unsupportedOption(option: "fan_in_fan_out", detail: "true means Conv1D-style [in, out] base weights; a Llama base uses nn.Linear (hint: maybe wrong base model?)")
        }
        for key in ["trainable_token_indices", "layer_replication", "use_qalora", "target_parameters",
                    "alora_invocation_tokens", "arrow_config", "use_bdlora"] {
            if let v = present(key) {
                throw LoRAError.unsupportedOption(option: key, detail: "\(describe(v)) selects a LoRA variant lorad does not implement")
            }
        }
    }

    // MARK: - Which modules are targeted

    /// Whether PEFT would put a LoRA layer on the module at `path` (e.g. "model.layers.3.self_attn.q_proj").
    public func targets(path: String) -> Bool {
        if let ex = excludeModules {
            switch ex {
            case .regex(let p): if fullMatch(p, path) { return false }
            case .list(let l): if l.contains(where: { path == $0 || path.hasSuffix("." + $0) }) { return false }
            case .allLinear: return false
            }
        }
        switch targets {
        case .regex(let p):
            return fullMatch(p, path)
        case .list(let l):
            if l.contains(path) { return true }
            guard l.contains(where: { path.hasSuffix("." + $0) }) else { return false }
            return layerAllowed(path)
        case .allLinear:
            // Every nn.Linear except the output layer; layer restrictions apply as for a list.
            guard path != "lm_head", LoRATarget.allCases.contains(where: { path.hasSuffix("." + $0.rawValue) }) else { return false }
            return layerAllowed(path)
        }
    }

    private func layerAllowed(_ path: String) -> Bool {
        guard let layers = layersToTransform else { return true }
        var index: Int?
        if let patterns = layersPattern {
            for p in patterns {
                if let g = firstGroup(#"^(?:|.*?\.)"# + p + #"\.(\d+)\."#, path) { index = Int(g); break }
            }
        } else {
            index = firstGroup(#"^.*?\.[^.]*\.(\d+)\."#, path).flatMap { Int($0) }
        }
        guard let index else { return false }
        return layers.contains(index)
    }

    /// Rank and alpha of the module at `path` after rank_pattern / alpha_pattern.
    public func rankAndAlpha(path: String) -> (rank: Int, alpha: Double) {
        let rank = rankPattern.first { patternMatches($0.0, path) }?.1 ?? r
        let alpha = alphaPattern.first { patternMatches($0.0, path) }?.1 ?? loraAlpha
        return (rank, alpha)
    }

    /// PEFT's scaling: alpha / r, or alpha / sqrt(r) with rsLoRA (computed in double as Python does).
    public func scale(path: String) -> Float {
        let (rank, alpha) = rankAndAlpha(path: path)
        return Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
    }

    private func patternMatches(_ p: String, _ path: String) -> Bool {
        firstGroup(#"^(.*\.)?("# + p + #")$"#, path, group: 0) != nil
    }

    // MARK: - JSON helpers

    private static func targets(_ v: JSONValue?, field: String) throws -> Targets? {
        guard let v else { return nil }
        if let s = v.stringValue {
            if s == "all-linear" { return .allLinear }
            guard (try? NSRegularExpression(pattern: "^(?:" + s + ")$")) != nil else {
                throw LoRAError.badConfig(field: field, expected: "a valid regular expression", found: "\"\(s)\"")
            }
            return .regex(s)
        }
        if let list = v.arrayValue {
            return .list(try list.map {
                guard let s = $0.stringValue else {
                    throw LoRAError.badConfig(field: field, expected: "strings", found: describe($0))
                }
                return s
            })
        }
        throw LoRAError.badConfig(field: field, expected: "a list of module names, a regex string or \"all-linear\"", found: describe(v))
    }

    /// The member `key` of the top-level object; nil when it is absent or null (PEFT's default).
    static func field(_ o: JSONValue, _ key: String) -> JSONValue? {
        guard let v = o[key], !v.isNull else { return nil }
        return v
    }

    /// An integral number below 1e15 in magnitude, written with or without a fraction or exponent
    /// (8, 8.0 and 8e0 are all 8, as Python's int checks let them through); booleans are not numbers.
    static func jsonInt(_ v: JSONValue) -> Int? {
        guard let d = v.doubleValue, d == d.rounded(), abs(d) < 1e15 else { return nil }
        return Int(d)
    }

    private static func int(_ o: JSONValue, _ key: String, default d: Int) throws -> Int {
        guard let v = field(o, key) else { return d }
        guard let n = jsonInt(v) else { throw LoRAError.badConfig(field: key, expected: "an integer", found: describe(v)) }
        return n
    }

    private static func number(_ o: JSONValue, _ key: String, default d: Double) throws -> Double {
        guard let v = field(o, key) else { return d }
        guard let x = v.doubleValue, x.isFinite else { throw LoRAError.badConfig(field: key, expected: "a finite number", found: describe(v)) }
        return x
    }

    private static func bool(_ o: JSONValue, _ key: String, default d: Bool) throws -> Bool {
        guard let v = field(o, key) else { return d }
        guard let b = v.boolValue else { throw LoRAError.badConfig(field: key, expected: "true or false", found: describe(v)) }
        return b
    }

    private static func dict(_ o: JSONValue, _ key: String) throws -> [(String, JSONValue)] {
        guard let v = field(o, key) else { return [] }
        guard let members = v.objectMembers else { throw LoRAError.badConfig(field: key, expected: "an object", found: describe(v)) }
        return members
    }

    /// A found value for a message: the JSON it was written as.
    static func describe(_ v: JSONValue) -> String { v.serialized() }
}

/// Python-`re`-style helpers over NSRegularExpression (ICU syntax agrees with Python's for the
/// patterns adapters use). An invalid pattern matches nothing.
func fullMatch(_ pattern: String, _ s: String) -> Bool {
    firstGroup("^(?:" + pattern + ")$", s, group: 0) != nil
}

func firstGroup(_ pattern: String, _ s: String, group: Int = 1) -> String? {
    guard let re = try? NSRegularExpression(pattern: pattern) else { return nil }
    let ns = s as NSString
    guard let m = re.firstMatch(in: s, range: NSRange(location: 0, length: ns.length)), group < m.numberOfRanges else { return nil }
    let r = m.range(at: group)
    guard r.location != NSNotFound else { return nil }
    return ns.substring(with: r)
}

// The linear layers of a Llama block that LoRA can adapt, and how their names map between
// Hugging Face / PEFT (`model.layers.N.self_attn.q_proj`) and GGUF (`blk.N.attn_q.weight`).
// FORMATS.md §3.1 and §5.2.

public enum LoRATarget: String, Sendable, CaseIterable, Hashable {
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj"
    case gate = "gate_proj", up = "up_proj", down = "down_proj"

    /// The Hugging Face module path inside a decoder layer.
    public var hfModule: String {
        switch self {
        case .q, .k, .v, .o: return "self_attn." + rawValue
        case .gate, .up, .down: return "mlp." + rawValue
        }
    }

    /// The GGUF base tensor name stem (`attn_q`, `ffn_gate`, ...).
    public var ggufStem: String {
        switch self {
        case .q: return "attn_q"
        case .k: return "attn_k"
        case .v: return "attn_v"
        case .o: return "attn_output"
        case .gate: return "ffn_gate"
        case .up: return "ffn_up"
        case .down: return "ffn_down"
        }
    }

    /// Position in q, k, v, o, gate, up, down (forward order; a switch, since the forward pass asks
    /// for it on every projection).
    public var order: Int {
        switch self {
        case .q: return 0
        case .k: return 1
        case .v: return 2
        case .o: return 3
        case .gate: return 4
        case .up: return 5
        case .down: return 6
        }
    }

    public func ggufTensor(layer: Int) -> String { "blk.\(layer).\(ggufStem).weight" }
    public func hfPath(layer: Int) -> String { "model.layers.\(layer).\(hfModule)" }

    /// Parses `model.layers.N.self_attn.q_proj` (any prefix such as `base_model.model.`).
    public static func parseHF(_ path: String) -> (layer: Int, target: LoRATarget)? {
        let parts = path.split(separator: ".")
        // ... layers . N . (self_attn|mlp) . name, with nothing after the name.
        guard let li = parts.firstIndex(of: "layers"), parts.count == li + 4,
              let layer = Int(parts[li + 1]), layer >= 0,
              let target = LoRATarget(rawValue: String(parts[li + 3])),
              target.hfModule == "\(parts[li + 2]).\(parts[li + 3])"
        else { return nil }
        return (layer, target)
    }

    /// Parses `blk.N.attn_q.weight` (the base tensor name a GGUF LoRA pair refers to).
    public static func parseGGUF(_ name: String) -> (layer: Int, target: LoRATarget)? {
        let parts = name.split(separator: ".")
        guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, parts[3] == "weight",
              let target = allCases.first(where: { $0.ggufStem == parts[2] }) else { return nil }
        return (layer, target)
    }
}

// Which model a base is by name, and whether an adapter that names its own base meant this one.
// Shapes decide whether an adapter loads; but two models can share every shape (fine-tunes of one
// architecture, or unrelated models of the same size), and an adapter trained on another one loads
// cleanly and answers badly. PEFT records the base it was trained on (`base_model_name_or_path`),
// llama.cpp LoRA files `general.base_model.0.name`/`.repo_url`; a GGUF base says what it is in
// `general.basename` ("smollm2") and `general.size_label` ("135M"). When both sides name a model, a
// declared base that does not mention the served one's family and size earns a warning (never a
// refusal: names are free text, and a renamed fine-tune of the same base is legitimate).

import ModelFormats

public struct BaseModelIdentity: Sendable, Equatable {
    /// `general.basename`, e.g. "smollm2".
    public var basename: String?
    /// `general.size_label`, e.g. "135M".
    public var sizeLabel: String?
    /// `general.name`, for messages.
    public var name: String?

    public init(basename: String? = nil, sizeLabel: String? = nil, name: String? = nil) {
        self.basename = basename
        self.sizeLabel = sizeLabel
        self.name = name
    }

    public init(gguf: GGUFFile) {
        basename = (try? gguf.string("general.basename")) ?? nil
        sizeLabel = (try? gguf.string("general.size_label")) ?? nil
        name = (try? gguf.string("general.name")) ?? nil
    }

    /// Lowercase letters and digits only, so "SmolLM2-135M" and "smollm2 135m" compare equal.
    static func squeezed(_ s: String) -> String {
        String(s.lowercased().unicodeScalars.filter { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") }.map(Character.init))
    }

    /// A warning when `declared` (an adapter's recorded base) names some other model; nil when it
    /// mentions this one's family and size, or when either side gives nothing to compare.
    public func mismatch(declared: String?) -> String? {
        guard let declared, !declared.isEmpty, let basename, !basename.isEmpty else { return nil }
        let d = Self.squeezed(declared)
        var wanted = [Self.squeezed(basename)]
        if let sizeLabel, !sizeLabel.isEmpty { wanted.append(Self.squeezed(sizeLabel)) }
        guard !wanted.allSatisfy({ d.contains($0) }) else { return nil }
        let served = [basename, sizeLabel].compactMap { $0 }.joined(separator: " ")
        return "the adapter was trained for '\(declared)', but the served base is \(served)"
            + (name.map { " ('\($0)')" } ?? "")
            + "; its shapes fit, so it loads, but its answers may be poor (hint: train or convert it for this base)"
    }
}

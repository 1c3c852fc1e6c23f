// Exporting any adapter (loaded, merged-from, combined) as a PEFT directory or a llama.cpp LoRA GGUF.
//
// PEFT (FORMATS.md §5): lora_B rows (and DoRA magnitudes) of q/k are permuted back to HF order
// (§3.4). Each module keeps its rank and gets lora_alpha = scale·r, so PEFT's alpha/r gives back the
// scale exactly (a float times a small integer is exact in double, and so is the division back);
// use_rslora is written false, so rsLoRA and per-module alphas are folded into alpha. The most common
// (r, alpha) become the global values; other modules get rank_pattern / alpha_pattern entries keyed
// by their escaped full module path. target_modules is the list of projection names, plus
// layers_to_transform when the modules are one product set of layers × projections, else the list of
// full module paths.
//
// llama.cpp GGUF (§4): lora_a ne [in, r], lora_b ne [r, out] in GGUF row order; one global
// adapter.lora.alpha. llama.cpp applies alpha/rank (in f32) per tensor, so alpha = scale·rank of the
// most common module; a module whose scale differs gets lora_b pre-multiplied by scale/(alpha/rank).
// DoRA cannot be expressed there (llama.cpp has no magnitude vectors) and is refused.

import Foundation
import Kernels
import JSON
import ModelFormats

extension LoRAAdapter {
    public func exportPEFT(directory: String, base: BaseModelInfo, baseModelName: String? = nil,
                           dtype: SafetensorsDType = .f32) throws {
        let mods = modules
        guard !mods.isEmpty else { throw LoRAError.cannotExport(format: "PEFT", reason: "the adapter has no modules") }
        let dora = mods.map { $0.module.isDoRA }
        guard Set(dora).count == 1 else {
            throw LoRAError.cannotExport(format: "PEFT", reason: "some modules are DoRA and some are not; PEFT's use_dora is global")
        }
        let isDoRA = dora[0]
        var w = SafetensorsWriter(metadata: [("format", "pt")])
        var ranks: [String: Int] = [:], alphas: [String: Double] = [:]
        for (layer, target, m) in mods {
            let path = target.hfPath(layer: layer)
            let key = "base_model.model." + path
            var b = m.b
            var mag = m.magnitude
            if let heads = base.permutationHeads(target) {
                b = QKPermutation.toHF(b, rows: m.outFeatures, cols: m.rank, heads: heads)
                mag = mag.map { QKPermutation.toHF($0, rows: m.outFeatures, cols: 1, heads: heads) }
            }
            try w.addTensor(name: key + ".lora_A.weight", shape: [m.rank, m.inFeatures], floats: m.a, dtype: dtype)
            try w.addTensor(name: key + ".lora_B.weight", shape: [m.outFeatures, m.rank], floats: b, dtype: dtype)
            if isDoRA {
                guard let mag else { throw LoRAError.cannotExport(format: "PEFT", reason: "\(path) is DoRA but has no magnitude vector") }
                try w.addTensor(name: key + ".lora_magnitude_vector", shape: [m.outFeatures], floats: mag, dtype: dtype)
            }
            ranks[path] = m.rank
            alphas[path] = Double(m.scale) * Double(m.rank)
        }
        let globalRank = mostCommon(Array(ranks.values))
        let globalAlpha = mostCommon(Array(alphas.values))
        func escaped(_ p: String) -> String { p.replacingOccurrences(of: ".", with: "\\.") }
        let rankPattern = ranks.keys.sorted().filter { ranks[$0] != globalRank }.map { (escaped($0), JSONValue.int(ranks[$0]!)) }
        let alphaPattern = alphas.keys.sorted().filter { alphas[$0] != globalAlpha }.map { (escaped($0), JSONValue.double(alphas[$0]!)) }

        // target_modules: projection names (+ layers_to_transform) when that set is exactly the modules.
        let targets = LoRATarget.allCases.filter { t in mods.contains { $0.target == t } }
        let layers = Array(Set(mods.map(\.layer))).sorted()
        let product = targets.count * layers.count == mods.count
        let config: [(String, JSONValue)] = [
            ("peft_type", .string("LORA")),
            ("task_type", .string("CAUSAL_LM")),
            ("base_model_name_or_path", baseModelName.map { .string($0) } ?? .null),
            ("r", .int(globalRank)),
            ("lora_alpha", .double(globalAlpha)),
            ("use_rslora", .bool(false)),
            ("use_dora", .bool(isDoRA)),
            ("rank_pattern", .object(rankPattern)),
            ("alpha_pattern", .object(alphaPattern)),
            ("target_modules", .array(product ? targets.map { .string($0.rawValue) }
                                              : mods.map { .string($0.target.hfPath(layer: $0.layer)) })),
            ("layers_to_transform", product && layers.count < layerCount ? .array(layers.map { .int($0) }) : .null),
            ("layers_pattern", .null),
            ("exclude_modules", .null),
            ("modules_to_save", .null),
            ("bias", .string("none")),
            ("lora_bias", .bool(false)),
            ("lora_dropout", .double(0)),
            ("fan_in_fan_out", .bool(false)),
            ("inference_mode", .bool(true)),
            ("init_lora_weights", .bool(true)),
        ]
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw LoRAError.io(path: directory, reason: error.localizedDescription)
        }
        do {
            try w.write(to: directory + "/adapter_model.safetensors")
            try writeFileAtomically(Array((JSONValue.object(config).serialized() + "\n").utf8), to: directory + "/adapter_config.json")
        } catch let e as GGUFWriterError {
            throw LoRAError.io(path: directory, reason: e.description)
        }
    }

    public func exportGGUF(path: String, dtype: TensorTypeChoice = .f32) throws {
        let mods = modules
        guard !mods.isEmpty else { throw LoRAError.cannotExport(format: "llama.cpp GGUF LoRA", reason: "the adapter has no modules") }
        if let d = mods.first(where: { $0.module.isDoRA }) {
            throw LoRAError.cannotExport(format: "llama.cpp GGUF LoRA", reason: "\(d.target.hfPath(layer: d.layer)) is DoRA; llama.cpp cannot apply DoRA's magnitude vectors (merge it into the base instead)")
        }
        let alpha = mostCommon(mods.map { $0.module.scale * Float($0.module.rank) })
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("general.type", .string("adapter"))
        w.set("general.name", .string(name))
        w.set("adapter.type", .string("lora"))
        w.set("adapter.lora.alpha", .float32(alpha))
        for (layer, target, m) in mods {
            let llamaScale = alpha == 0 ? 1 : alpha / Float(m.rank)
            let fold = llamaScale == m.scale ? 1 : m.scale / llamaScale
            let b = fold == 1 ? m.b : m.b.map { $0 * fold }
            let stem = target.ggufTensor(layer: layer)
            do {
                try add(&w, stem + ".lora_a", [m.inFeatures, m.rank], m.a, dtype)
                try add(&w, stem + ".lora_b", [m.rank, m.outFeatures], b, dtype)
            } catch {
                throw LoRAError.cannotExport(format: "llama.cpp GGUF LoRA", reason: "\(error)")
            }
        }
        do { try w.write(to: path) } catch let e as GGUFWriterError { throw LoRAError.io(path: path, reason: e.description) }
    }

    public enum TensorTypeChoice: Sendable { case f32, f16 }

    private func add(_ w: inout GGUFWriter, _ name: String, _ shape: [Int], _ v: [Float], _ t: TensorTypeChoice) throws {
        switch t {
        case .f32: try w.addTensor(name: name, shape: shape, floats: v)
        case .f16:
            var bytes = [UInt8]()
            bytes.reserveCapacity(2 * v.count)
            for x in v { withUnsafeBytes(of: f32ToF16(x).littleEndian) { bytes.append(contentsOf: $0) } }
            try w.addTensor(name: name, type: .f16, shape: shape, data: bytes)
        }
    }
}

/// The most frequent value; ties go to the one seen first.
private func mostCommon<T: Hashable>(_ values: [T]) -> T {
    var counts: [T: Int] = [:]
    for v in values { counts[v, default: 0] += 1 }
    var best = values[0]
    for v in values where counts[v]! > counts[best]! { best = v }
    return best
}

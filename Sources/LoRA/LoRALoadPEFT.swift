// Loading a PEFT LoRA directory (adapter_config.json + adapter_model.safetensors, FORMATS.md §5)
// into lorad's convention, validating everything against the base before use:
//   - keys `base_model.model.<HF module path>.lora_A.weight` [r, in], `.lora_B.weight` [out, r],
//     `.lora_magnitude_vector` [out] (DoRA); anything else is refused with a hint;
//   - lora_B rows (and DoRA magnitudes) of q_proj / k_proj are permuted per head exactly as
//     convert_hf_to_gguf permuted the base rows (§3.4); lora_A is never permuted;
//   - scale = alpha/r or alpha/sqrt(r) per module after rank_pattern / alpha_pattern (§5.3);
//   - DoRA: doraScale = m / ‖W + s·B·A‖ per GGUF-order output row, from the base rows (§5.4).

import Foundation
import ModelFormats

extension LoRAAdapter {
    /// Loads `path` as a PEFT directory when it is a directory, else as a llama.cpp GGUF LoRA file.
    public static func load(path: String, name: String, base: BaseModelInfo,
                            options: LoRALoadOptions = LoRALoadOptions()) throws -> LoRAAdapter {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw LoRAError.notAnAdapter(path: path, reason: "no such file or directory")
        }
        if isDir.boolValue { return try loadPEFT(directory: path, name: name, base: base, options: options) }
        guard path.hasSuffix(".gguf") else {
            throw LoRAError.notAnAdapter(path: path, reason: "a file that does not end in .gguf")
        }
        return try loadGGUF(path: path, name: name, base: base, options: options)
    }

    public static func loadPEFT(directory: String, name: String, base: BaseModelInfo,
                                options: LoRALoadOptions = LoRALoadOptions()) throws -> LoRAAdapter {
        let configPath = directory + "/adapter_config.json"
        let weightsPath = directory + "/adapter_model.safetensors"
        let fm = FileManager.default
        guard fm.fileExists(atPath: configPath) else {
            throw LoRAError.notAnAdapter(path: directory, reason: "adapter_config.json is missing")
        }
        guard fm.fileExists(atPath: weightsPath) else {
            let bin = fm.fileExists(atPath: directory + "/adapter_model.bin")
            throw LoRAError.notAnAdapter(path: directory, reason: bin
                ? "only adapter_model.bin (a PyTorch pickle) is present; save the adapter with safe_serialization=True"
                : "adapter_model.safetensors is missing")
        }
        let configData: [UInt8]
        do {
            configData = try ByteRegion.contents(ofRegularFile: configPath, maxBytes: 1 << 20)
        } catch let e as MappedFileError {
            throw LoRAError.unreadable(path: configPath, reason: e.reason)
        }
        let config = try PEFTConfig.parse(configData, path: configPath)
        let file: SafetensorsFile
        do {
            file = try SafetensorsFile(path: weightsPath)
        } catch let e as SafetensorsError {
            throw LoRAError.unreadable(path: weightsPath, reason: e.description)
        } catch {
            throw LoRAError.unreadable(path: weightsPath, reason: "\(error)")
        }
        let modules = try buildPEFT(config: config, file: file, base: base, options: options)
        return LoRAAdapter(name: name, layerCount: base.layerCount, source: "PEFT directory \(directory)", modules: modules,
                           declaredBase: config.baseModel, contentDigest: options.contentDigest)
    }

    /// The validated modules of a parsed config and safetensors file (exposed for tests and combine).
    static func buildPEFT(config: PEFTConfig, file: SafetensorsFile, base: BaseModelInfo,
                          options: LoRALoadOptions) throws -> [(layer: Int, target: LoRATarget, module: LoRAModule)] {
        // Targets that would adapt something lorad has no LoRA path for.
        for other in ["lm_head", "model.embed_tokens"] where config.targets(path: other) {
            throw LoRAError.unsupportedOption(option: "target_modules", detail: "it targets \(other); lorad adapts only the attention and MLP projections")
        }
        var targeted: [String: (Int, LoRATarget)] = [:]
        for l in 0..<base.layerCount {
            for t in LoRATarget.allCases where config.targets(path: t.hfPath(layer: l)) {
                targeted[t.hfPath(layer: l)] = (l, t)
            }
        }
        guard !targeted.isEmpty else { throw LoRAError.noMatchingModules(targetModules: describeTargets(config)) }

        struct Parts { var a: SafetensorsTensorInfo?; var b: SafetensorsTensorInfo?; var m: SafetensorsTensorInfo? }
        var parts: [String: Parts] = [:]
        for t in file.tensors {
            var key = t.name
            if key.hasPrefix("base_model.model.") { key.removeFirst("base_model.model.".count) }
            let kinds: [(String, WritableKeyPath<Parts, SafetensorsTensorInfo?>)] = [
                (".lora_A.weight", \.a), (".lora_B.weight", \.b),
                (".lora_magnitude_vector", \.m), (".lora_magnitude_vector.weight", \.m),
            ]
            guard let (suffix, slot) = kinds.first(where: { key.hasSuffix($0.0) }) else {
                throw LoRAError.unexpectedTensor(name: t.name, hint: unexpectedHint(key))
            }
            let module = String(key.dropLast(suffix.count))
            guard let (layer, target) = LoRATarget.parseHF(module), module == target.hfPath(layer: layer) else {
                throw LoRAError.unknownModule(tensor: t.name)
            }
            guard layer < base.layerCount else {
                throw LoRAError.layerOutOfRange(tensor: t.name, layer: layer, layerCount: base.layerCount)
            }
            guard [.f32, .f16, .bf16].contains(t.dtype) else { throw LoRAError.unsupportedDType(tensor: t.name, dtype: t.dtype.rawValue) }
            if slot == \Parts.m && !config.useDoRA {
                throw LoRAError.unexpectedTensor(name: t.name, hint: "a DoRA magnitude vector, but adapter_config.json has use_dora false")
            }
            parts[module, default: Parts()][keyPath: slot] = t
        }
        for module in parts.keys.sorted() where targeted[module] == nil {
            throw LoRAError.untargetedModule(module: module)
        }

        var out: [(layer: Int, target: LoRATarget, module: LoRAModule)] = []
        for module in targeted.keys.sorted() {
            let (layer, target) = targeted[module]!
            guard let p = parts[module] else { throw LoRAError.missingModule(module: module) }
            guard let at = p.a else { throw LoRAError.missingHalf(module: module, missing: "lora_A") }
            guard let bt = p.b else { throw LoRAError.missingHalf(module: module, missing: "lora_B") }
            let (inF, outF) = base.shape(target)
            guard at.shape.count == 2 else { throw LoRAError.shapeMismatch(tensor: at.name, expected: [config.r, inF], found: at.shape) }
            guard bt.shape.count == 2 else { throw LoRAError.shapeMismatch(tensor: bt.name, expected: [outF, config.r], found: bt.shape) }
            let rank = at.shape[0]
            guard bt.shape[1] == rank else { throw LoRAError.rankMismatch(module: module, aRank: rank, bRank: bt.shape[1]) }
            guard rank >= 1, rank <= options.maxRank else {
                throw LoRAError.rankOutOfRange(module: module, rank: rank, maxRank: options.maxRank)
            }
            guard at.shape[1] == inF else { throw LoRAError.shapeMismatch(tensor: at.name, expected: [rank, inF], found: at.shape) }
            guard bt.shape[0] == outF else { throw LoRAError.shapeMismatch(tensor: bt.name, expected: [outF, rank], found: bt.shape) }
            let (configRank, _) = config.rankAndAlpha(path: module)
            guard configRank == rank else { throw LoRAError.configRankMismatch(module: module, config: configRank, tensors: rank) }

            let a = try finiteFloats(file, at)
            var b = try finiteFloats(file, bt)
            var m: [Float]?
            if config.useDoRA {
                guard let mt = p.m else { throw LoRAError.missingHalf(module: module, missing: "lora_magnitude_vector") }
                guard mt.shape == [outF] else { throw LoRAError.shapeMismatch(tensor: mt.name, expected: [outF], found: mt.shape) }
                m = try finiteFloats(file, mt)
            }
            if let heads = base.permutationHeads(target) {
                b = QKPermutation.toGGUF(b, rows: outF, cols: rank, heads: heads)
                m = m.map { QKPermutation.toGGUF($0, rows: outF, cols: 1, heads: heads) }
            }
            let scale = config.scale(path: module)
            var doraScale: [Float]?
            if let m {
                doraScale = try DoRA.scales(magnitude: m, a: a, b: b, scale: scale, rank: rank, inFeatures: inF,
                                            outFeatures: outF, module: module) { base.baseRow(layer, target, $0) }
            }
            out.append((layer, target, LoRAModule(rank: rank, inFeatures: inF, outFeatures: outF, a: a, b: b,
                                                  scale: scale, doraScale: doraScale, magnitude: m)))
        }
        return out
    }

    private static func finiteFloats(_ file: SafetensorsFile, _ t: SafetensorsTensorInfo) throws -> [Float] {
        let v: [Float]
        do { v = try file.floats(of: t) } catch { throw LoRAError.unsupportedDType(tensor: t.name, dtype: t.dtype.rawValue) }
        if let i = v.firstIndex(where: { !$0.isFinite }) { throw LoRAError.nonFinite(tensor: t.name, index: i, value: v[i]) }
        return v
    }

    private static func unexpectedHint(_ key: String) -> String {
        if key.contains("lora_embedding_A") || key.contains("lora_embedding_B") {
            return "LoRA on the token embedding is not supported"
        }
        if key.hasSuffix(".bias") {
            return "trained biases (bias=\"all\"/\"lora_only\" or lora_bias=true) are not supported"
        }
        if key.contains("embed_tokens") || key.contains("lm_head") {
            return "a full embedding or output matrix (modules_to_save, or resized embeddings for new tokens) is not supported"
        }
        if key.hasSuffix(".weight") {
            return "a full weight matrix (modules_to_save?) is not supported; expected only lora_A / lora_B / lora_magnitude_vector"
        }
        return "expected only lora_A.weight, lora_B.weight and lora_magnitude_vector tensors"
    }

    private static func describeTargets(_ c: PEFTConfig) -> String {
        var s: String
        switch c.targets {
        case .list(let l): s = "[" + l.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        case .regex(let r): s = "\"\(r)\""
        case .allLinear: s = "\"all-linear\""
        }
        if let layers = c.layersToTransform { s += " with layers_to_transform \(layers)" }
        if c.excludeModules != nil { s += " minus exclude_modules" }
        return s
    }
}

/// DoRA's per-row factor (FORMATS.md §5.4, peft tuners/lora/dora.py): with V = W + s·B·A,
/// doraScale[row] = m[row] / ‖V[row, :]‖₂. Accumulated in double (PEFT uses f32 torch.linalg.norm,
/// which differs by rounding only).
package enum DoRA {
    package static func scales(magnitude m: [Float], a: [Float], b: [Float], scale: Float, rank: Int, inFeatures: Int,
                       outFeatures: Int, module: String, baseRow: (Int) -> [Float]) throws -> [Float] {
        var out = [Float](repeating: 0, count: outFeatures)
        var delta = [Float](repeating: 0, count: inFeatures)
        for row in 0..<outFeatures {
            let w = baseRow(row)
            guard w.count == inFeatures else {
                throw LoRAError.incompatible("DoRA needs base rows of \(inFeatures) values for \(module), the base model info gave \(w.count)")
            }
            for c in 0..<inFeatures { delta[c] = 0 }
            for k in 0..<rank {
                let bk = b[row * rank + k]
                for c in 0..<inFeatures { delta[c] += bk * a[k * inFeatures + c] }
            }
            var ss = 0.0
            for c in 0..<inFeatures {
                let v = Double(w[c] + scale * delta[c])
                ss += v * v
            }
            let f = m[row] / Float(ss.squareRoot())
            guard f.isFinite else { throw LoRAError.nonFinite(tensor: module + ".lora_magnitude_vector / row norm", index: row, value: f) }
            out[row] = f
        }
        return out
    }
}

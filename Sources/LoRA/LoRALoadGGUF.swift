// Loading a llama.cpp LoRA GGUF (FORMATS.md §4; llama-adapter.cpp `llama_adapter_lora_init_impl`):
//   - general.type = "adapter", adapter.type = "lora", general.architecture = the base's;
//   - pairs `<base tensor>.lora_a` with ggml ne [in, r] (row-major r × in: PEFT's A layout) and
//     `<base tensor>.lora_b` with ne [r, out] (row-major out × r), B already in GGUF row order;
//   - scale = alpha / rank (rank = lora_b.ne[0], per tensor), or 1 when alpha is 0 or absent; the
//     user's per-request scale multiplies it in the forward pass, as llama.cpp's does;
//   - `*_norm.weight` extras (mergekit) are skipped as llama.cpp skips them; token-embedding and
//     output LoRA are refused (no LoRA path for them in lorad).

import Kernels
import ModelFormats

extension LoRAAdapter {
    public static func loadGGUF(path: String, name: String, base: BaseModelInfo,
                                options: LoRALoadOptions = LoRALoadOptions()) throws -> LoRAAdapter {
        let file: GGUFFile
        do {
            file = try GGUFFile(path: path)
        } catch let e as GGUFError {
            throw LoRAError.unreadable(path: path, reason: e.description)
        } catch let e as MappedFileError {
            throw LoRAError.unreadable(path: path, reason: e.reason)
        }
        let modules = try buildGGUF(file: file, base: base, options: options)
        let declared = ((try? file.string("general.base_model.0.name")) ?? nil) ?? ((try? file.string("general.base_model.0.repo_url")) ?? nil)
        return LoRAAdapter(name: name, layerCount: base.layerCount, source: "GGUF LoRA file \(path)", modules: modules,
                           declaredBase: declared, contentDigest: options.contentDigest)
    }

    static func buildGGUF(file: GGUFFile, base: BaseModelInfo,
                          options: LoRALoadOptions) throws -> [(layer: Int, target: LoRATarget, module: LoRAModule)] {
        func string(_ key: String) throws -> String? {
            do { return try file.string(key) } catch { throw LoRAError.badConfig(field: key, expected: "a string", found: "another type") }
        }
        let generalType = try string("general.type")
        guard generalType == "adapter" else {
            throw LoRAError.notAnAdapter(path: file.path ?? "GGUF", reason: "general.type is \(generalType.map { "'\($0)'" } ?? "absent"), expected 'adapter' (hint: is this a base model file?)")
        }
        let adapterType = try string("adapter.type")
        guard adapterType == "lora" else {
            throw LoRAError.unsupportedOption(option: "adapter.type", detail: "is \(adapterType.map { "'\($0)'" } ?? "absent"), expected 'lora'")
        }
        let arch = try string("general.architecture") ?? ""
        guard arch == base.architecture else { throw LoRAError.architectureMismatch(expected: base.architecture, found: arch) }
        if file.metadata["adapter.alora.invocation_tokens"] != nil {
            throw LoRAError.unsupportedOption(option: "adapter.alora.invocation_tokens", detail: "activated LoRA (aLoRA) is not supported")
        }
        let alpha: Float
        do { alpha = try file.float("adapter.lora.alpha") ?? 0 } catch {
            throw LoRAError.badConfig(field: "adapter.lora.alpha", expected: "a number", found: "another type")
        }
        guard alpha.isFinite else { throw LoRAError.badConfig(field: "adapter.lora.alpha", expected: "a finite number", found: "\(alpha)") }

        var pairs: [String: (a: GGUFTensorInfo?, b: GGUFTensorInfo?)] = [:]
        for t in file.tensors {
            let isA = t.name.hasSuffix(".lora_a"), isB = t.name.hasSuffix(".lora_b")
            guard isA || isB else {
                throw LoRAError.unexpectedTensor(name: t.name, hint: "llama.cpp LoRA tensors end in .lora_a or .lora_b")
            }
            let baseName = String(t.name.dropLast(".lora_a".count))
            if baseName.hasSuffix("_norm.weight") { continue }  // llama.cpp skips these
            if isA { pairs[baseName, default: (nil, nil)].a = t } else { pairs[baseName, default: (nil, nil)].b = t }
        }
        var out: [(layer: Int, target: LoRATarget, module: LoRAModule)] = []
        for baseName in pairs.keys.sorted() {
            let (at, bt) = pairs[baseName]!
            guard let (layer, target) = LoRATarget.parseGGUF(baseName) else {
                if baseName == "token_embd.weight" || baseName == "output.weight" {
                    throw LoRAError.unsupportedOption(option: baseName, detail: "LoRA on the token embedding or output matrix is not supported")
                }
                throw LoRAError.unknownModule(tensor: (at ?? bt)!.name)
            }
            guard layer < base.layerCount else {
                throw LoRAError.layerOutOfRange(tensor: (at ?? bt)!.name, layer: layer, layerCount: base.layerCount)
            }
            guard let at else { throw LoRAError.missingHalf(module: baseName, missing: "lora_a") }
            guard let bt else { throw LoRAError.missingHalf(module: baseName, missing: "lora_b") }
            let (inF, outF) = base.shape(target)
            guard at.shape.count == 2 else { throw LoRAError.shapeMismatch(tensor: at.name, expected: [inF, bt.shape.first ?? 0], found: at.shape) }
            guard bt.shape.count == 2 else { throw LoRAError.shapeMismatch(tensor: bt.name, expected: [at.shape[1], outF], found: bt.shape) }
            let rank = bt.shape[0]
            guard at.shape[1] == rank else { throw LoRAError.rankMismatch(module: baseName, aRank: at.shape[1], bRank: rank) }
            guard rank >= 1, rank <= options.maxRank else {
                throw LoRAError.rankOutOfRange(module: baseName, rank: rank, maxRank: options.maxRank)
            }
            guard at.shape[0] == inF else { throw LoRAError.shapeMismatch(tensor: at.name, expected: [inF, rank], found: at.shape) }
            guard bt.shape[1] == outF else { throw LoRAError.shapeMismatch(tensor: bt.name, expected: [rank, outF], found: bt.shape) }
            let a = try finiteFloats(file, at)
            let b = try finiteFloats(file, bt)
            let scale = alpha == 0 ? 1 : alpha / Float(rank)
            out.append((layer, target, LoRAModule(rank: rank, inFeatures: inF, outFeatures: outF, a: a, b: b, scale: scale)))
        }
        guard !out.isEmpty else { throw LoRAError.noMatchingModules(targetModules: "(no lora_a/lora_b tensors in the file)") }
        return out
    }

    private static func finiteFloats(_ file: GGUFFile, _ t: GGUFTensorInfo) throws -> [Float] {
        guard t.type.isComputable else { throw LoRAError.unsupportedDType(tensor: t.name, dtype: t.type.name) }
        let n = t.elementCount
        let raw = file.data(of: t)
        let v = [Float](unsafeUninitializedCapacity: n) { out, initialized in
            if n > 0 { dequantize(t.type, raw.baseAddress!, count: n, into: out.baseAddress!) }
            initialized = n
        }
        if let i = v.firstIndex(where: { !$0.isFinite }) { throw LoRAError.nonFinite(tensor: t.name, index: i, value: v[i]) }
        return v
    }
}

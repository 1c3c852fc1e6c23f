// Every kind of bad adapter, built in code (PEFT directories and GGUF LoRA files in a
// temp dir): each must be refused with its own error, never loaded and never a trap.

import Foundation
import Kernels
import ModelFormats
import Testing
@testable import LoRA

private func plain(_ edit: (inout PEFTBuilder) -> Void = { _ in }) throws -> String {
    var b = PEFTBuilder()
    for l in 0..<2 { b.module(l, .q); b.module(l, .v) }
    edit(&b)
    return try b.write()
}

@Suite struct PEFTValidationTests {
    @Test func validAdapterLoads() throws {
        let dir = try plain()
        let a = try LoRAAdapter.load(path: dir, name: "ok", base: syntheticBase())
        #expect(a.modules.count == 4)
        #expect(a.modules.map(\.target) == [.q, .v, .q, .v])
        #expect(a.module(layer: 1, target: .v)?.scale == 2)
        #expect(a.module(layer: 0, target: .k) == nil)
        #expect(a.source.contains(dir))
    }

    @Test func wrongShapeHintsAtBaseModel() throws {
        let other = BaseModelInfo(layerCount: 2, headCount: 2, headCountKV: 1, embeddingLength: 16, feedForwardLength: 12) { _, _, _ in [] }
        let dir = try plain()
        let e = loadError(dir, base: other)
        #expect(e == .shapeMismatch(tensor: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", expected: [2, 16], found: [2, 8]))
        #expect(e?.description.contains("maybe wrong base model?") == true)
    }

    @Test func layerBeyondTheBase() throws {
        let dir = try plain { $0.module(5, .q) }
        #expect(loadError(dir) == .layerOutOfRange(tensor: "base_model.model.model.layers.5.self_attn.q_proj.lora_A.weight", layer: 5, layerCount: 2))
    }

    @Test func missingHalf() throws {
        let dir = try plain { $0.remove("layers.1.self_attn.v_proj.lora_B.weight") }
        #expect(loadError(dir) == .missingHalf(module: "model.layers.1.self_attn.v_proj", missing: "lora_B"))
        let dir2 = try plain { $0.remove("layers.0.self_attn.q_proj.lora_A.weight") }
        #expect(loadError(dir2) == .missingHalf(module: "model.layers.0.self_attn.q_proj", missing: "lora_A"))
    }

    @Test func rankMismatchBetweenAAndB() throws {
        let dir = try plain {
            $0.remove("layers.0.self_attn.v_proj.lora_B.weight")
            $0.tensors.append(("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight", [4, 3], [Float](repeating: 0.1, count: 12), .f32))
        }
        #expect(loadError(dir) == .rankMismatch(module: "model.layers.0.self_attn.v_proj", aRank: 2, bRank: 3))
    }

    @Test func rankZeroAndAboveMaximum() throws {
        var b = PEFTBuilder()
        b.config["target_modules"] = ["q_proj"]
        b.tensors = [("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", [0, 8], [], .f32),
                     ("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", [8, 0], [], .f32)]
        b.config["layers_to_transform"] = [0]
        #expect(loadError(try b.write()) == .rankOutOfRange(module: "model.layers.0.self_attn.q_proj", rank: 0, maxRank: 256))
        let dir = try plain()
        #expect(loadError(dir, maxRank: 1) == .rankOutOfRange(module: "model.layers.0.self_attn.q_proj", rank: 2, maxRank: 1))
    }

    @Test func configRankDisagreesWithTensors() throws {
        let dir = try plain { $0.config["rank_pattern"] = ["v_proj": 8] }
        #expect(loadError(dir) == .configRankMismatch(module: "model.layers.0.self_attn.v_proj", config: 8, tensors: 2))
    }

    @Test func targetsMatchingNothingAreRefused() throws {
        // vLLM would silently serve the base model here.
        let dir = try plain { $0.config["target_modules"] = ["c_attn", "c_proj"] }
        #expect(loadError(dir) == .noMatchingModules(targetModules: "[\"c_attn\", \"c_proj\"]"))
        let dir2 = try plain { $0.config["target_modules"] = #"transformer\.h\.\d+\.attn"# }
        guard case .noMatchingModules = loadError(dir2) else { Issue.record("regex matching nothing accepted"); return }
        let dir3 = try plain { $0.config["layers_to_transform"] = [7] }
        #expect(loadError(dir3) == .noMatchingModules(targetModules: "[\"q_proj\", \"v_proj\"] with layers_to_transform [7]"))
    }

    @Test func weightsForUntargetedOrUnknownModules() throws {
        let dir = try plain { $0.module(0, .k) }
        #expect(loadError(dir) == .untargetedModule(module: "model.layers.0.self_attn.k_proj"))
        let dir2 = try plain { $0.config["target_modules"] = ["q_proj", "v_proj", "o_proj"] }
        #expect(loadError(dir2) == .missingModule(module: "model.layers.0.self_attn.o_proj"))
        let dir3 = try plain {
            $0.tensors.append(("base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight", [2, 8], [Float](repeating: 0, count: 16), .f32))
        }
        #expect(loadError(dir3) == .unknownModule(tensor: "base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight"))
    }

    @Test func unsupportedOptions() throws {
        func option(_ key: String, _ value: Any) throws -> String? {
            let dir = try plain { $0.config[key] = value }
            if case .unsupportedOption(let o, _) = loadError(dir) { return o }
            return nil
        }
        #expect(try option("modules_to_save", ["lm_head"]) == "modules_to_save")
        #expect(try option("lora_bias", true) == "lora_bias")
        #expect(try option("fan_in_fan_out", true) == "fan_in_fan_out")
        #expect(try option("trainable_token_indices", [1, 2]) == "trainable_token_indices")
        #expect(try option("layer_replication", [[0, 1]]) == "layer_replication")
        #expect(try option("use_qalora", true) == "use_qalora")
        #expect(try option("target_modules", ["q_proj", "lm_head"]) == "target_modules")
        #expect(try option("target_modules", ["embed_tokens", "v_proj"]) == "target_modules")
        // Present but off: accepted.
        #expect(try option("modules_to_save", NSNull()) == nil)
        #expect(try option("lora_bias", false) == nil)
        let ia3 = try plain { $0.config["peft_type"] = "IA3" }
        #expect(loadError(ia3) == .unsupportedPEFTType("IA3"))
    }

    @Test func unsupportedTensors() throws {
        func hint(_ name: String, _ shape: [Int]) throws -> String? {
            let dir = try plain { $0.tensors.append((name, shape, [Float](repeating: 0, count: shape.reduce(1, *)), .f32)) }
            if case .unexpectedTensor(let n, let h) = loadError(dir), n == name { return h }
            return nil
        }
        #expect(try hint("base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias", [8])?.contains("biases") == true)
        #expect(try hint("base_model.model.model.embed_tokens.weight", [300, 8])?.contains("resized embeddings") == true)
        #expect(try hint("base_model.model.lm_head.weight", [300, 8])?.contains("modules_to_save") == true)
        #expect(try hint("base_model.model.model.embed_tokens.lora_embedding_A", [2, 300])?.contains("token embedding") == true)
        #expect(try hint("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", [8])?.contains("use_dora") == true)
    }

    @Test func nonFiniteWeights() throws {
        let dir = try plain {
            let i = $0.tensors.firstIndex { $0.0.hasSuffix("layers.1.self_attn.q_proj.lora_B.weight") }!
            $0.tensors[i].2[5] = .nan
        }
        guard case .nonFinite(let t, 5, let v) = loadError(dir) else { Issue.record("NaN accepted"); return }
        #expect(t == "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight" && v.isNaN)
        let dir2 = try plain {
            let i = $0.tensors.firstIndex { $0.0.hasSuffix("layers.0.self_attn.v_proj.lora_A.weight") }!
            $0.tensors[i].2[0] = -.infinity
        }
        #expect(loadError(dir2) == .nonFinite(tensor: "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight", index: 0, value: -.infinity))
    }

    @Test func truncatedOrMalformedFiles() throws {
        let dir = try plain()
        let st = dir + "/adapter_model.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: st))
        try bytes.prefix(bytes.count - 3).write(to: URL(fileURLWithPath: st))
        guard case .unreadable(let p, let reason) = loadError(dir) else { Issue.record("truncated file accepted"); return }
        #expect(p == st && reason.contains("data buffer"))

        let dir2 = try plain()
        try Data("{\"r\": 2,".utf8).write(to: URL(fileURLWithPath: dir2 + "/adapter_config.json"))
        guard case .unreadable(_, let broken) = loadError(dir2) else { Issue.record("broken JSON accepted"); return }
        #expect(broken == "not valid JSON (expected an object key (a string), found end of input at byte 8)")
        // A repeated key is ambiguous (Python keeps the last, other readers the first): refused.
        try Data(#"{"r": 2, "lora_alpha": 4, "r": 8}"#.utf8).write(to: URL(fileURLWithPath: dir2 + "/adapter_config.json"))
        guard case .unreadable(_, let duplicate) = loadError(dir2) else { Issue.record("duplicate key accepted"); return }
        #expect(duplicate.contains(#"duplicate key "r""#), "\(duplicate)")

        let dir3 = try plain { $0.config["r"] = "two" }
        #expect(loadError(dir3) == .badConfig(field: "r", expected: "an integer", found: "\"two\""))
        let dir4 = try plain { $0.config["target_modules"] = "(unclosed" }
        guard case .badConfig(field: "target_modules", _, _) = loadError(dir4) else { Issue.record("bad regex accepted"); return }

        let dir5 = try plain()
        try FileManager.default.removeItem(atPath: dir5 + "/adapter_model.safetensors")
        try Data([1]).write(to: URL(fileURLWithPath: dir5 + "/adapter_model.bin"))
        guard case .notAnAdapter(_, let r5) = loadError(dir5) else { Issue.record("missing safetensors accepted"); return }
        #expect(r5.contains("adapter_model.bin"))
        #expect(loadError(dir5 + "/nope") == .notAnAdapter(path: dir5 + "/nope", reason: "no such file or directory"))
    }

    @Test func storedTypes() throws {
        for dtype in [SafetensorsDType.f16, .bf16] {
            var b = PEFTBuilder()
            for l in 0..<2 { b.module(l, .q, dtype: dtype); b.module(l, .v, dtype: dtype) }
            let a = try LoRAAdapter.load(path: try b.write(), name: "h", base: syntheticBase())
            let expectA = b.tensors[0].2.map { dtype == .f16 ? f16ToF32(f32ToF16($0)) : bf16ToF32(f32ToBF16($0)) }
            #expect(a.module(layer: 0, target: .q)?.a == expectA)
        }
        var b = PEFTBuilder()
        for l in 0..<2 { b.module(l, .q); b.module(l, .v) }
        b.tensors[0].3 = .f32
        let dir = try b.write()
        // An I64 tensor where a float is expected.
        var w = SafetensorsWriter()
        for (n, s, v, _) in b.tensors { try w.addTensor(name: n, shape: s, floats: v) }
        try w.addTensor(name: "base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector", dtype: .i64, shape: [1], data: [UInt8](repeating: 0, count: 8))
        try w.write(to: dir + "/adapter_model.safetensors")
        #expect(loadError(dir) == .unsupportedDType(tensor: "base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector", dtype: "I64"))
    }

    @Test func doraNeedsItsMagnitude() throws {
        let dir = try plain { $0.config["use_dora"] = true }
        #expect(loadError(dir) == .missingHalf(module: "model.layers.0.self_attn.q_proj", missing: "lora_magnitude_vector"))
    }
}

@Suite struct PEFTConfigMatchingTests {
    private func config(_ extra: [String: Any]) throws -> PEFTConfig {
        var o: [String: Any] = ["peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]]
        for (k, v) in extra { o[k] = v }
        return try PEFTConfig.parse(Array(try JSONSerialization.data(withJSONObject: o)), path: "x")
    }

    @Test func listRegexAllLinearAndLayers() throws {
        let list = try config(["target_modules": ["q_proj", "mlp.up_proj"], "layers_to_transform": [1]])
        #expect(list.targets(path: "model.layers.1.self_attn.q_proj"))
        #expect(!list.targets(path: "model.layers.0.self_attn.q_proj"))
        #expect(list.targets(path: "model.layers.1.mlp.up_proj"))
        #expect(!list.targets(path: "model.layers.1.mlp.gate_proj"))
        // A regex must match the whole path and ignores layers_to_transform (PEFT's rule).
        let regex = try config(["target_modules": #".*\.(q|v)_proj"#, "layers_to_transform": 1])
        #expect(regex.targets(path: "model.layers.0.self_attn.v_proj"))
        #expect(!regex.targets(path: "model.layers.0.self_attn.o_proj"))
        #expect(!(try config(["target_modules": "q_proj"])).targets(path: "model.layers.0.self_attn.q_proj"))
        let all = try config(["target_modules": "all-linear", "exclude_modules": ["down_proj"]])
        #expect(LoRATarget.allCases.filter { all.targets(path: $0.hfPath(layer: 3)) } == [.q, .k, .v, .o, .gate, .up])
        #expect(!all.targets(path: "lm_head"))
        let pattern = try config(["target_modules": ["q_proj"], "layers_to_transform": [2], "layers_pattern": "layers"])
        #expect(pattern.targets(path: "model.layers.2.self_attn.q_proj"))
        let otherPattern = try config(["target_modules": ["q_proj"], "layers_to_transform": [2], "layers_pattern": "h"])
        #expect(!otherPattern.targets(path: "model.layers.2.self_attn.q_proj"))
    }

    @Test func rankAndAlphaPatterns() throws {
        let c = try config(["rank_pattern": ["q_proj": 2, #"model\.layers\.1\.mlp\.down_proj"#: 6],
                            "alpha_pattern": ["layers.1.self_attn.v_proj": 3.0], "use_rslora": true, "lora_alpha": 16])
        #expect(c.rankAndAlpha(path: "model.layers.0.self_attn.q_proj") == (2, 16))
        #expect(c.rankAndAlpha(path: "model.layers.1.mlp.down_proj") == (6, 16))
        #expect(c.rankAndAlpha(path: "model.layers.0.mlp.down_proj") == (4, 16))
        #expect(c.rankAndAlpha(path: "model.layers.1.self_attn.v_proj") == (4, 3))
        // "(.*\.)?(p)$": a pattern must end at a dot boundary, so "k_proj" does not match "qk_proj".
        #expect(c.scale(path: "model.layers.0.self_attn.q_proj") == Float(16 / 2.0.squareRoot()))
        #expect(c.scale(path: "model.layers.1.self_attn.v_proj") == 1.5)
        let plain = try config(["lora_alpha": 8])
        #expect(plain.scale(path: "model.layers.0.self_attn.q_proj") == 2)
    }
}

// MARK: - GGUF LoRA files

private func ggufLoRA(arch: String = "llama", type: String = "adapter", alpha: Float? = 8, edit: (inout [(String, [Int], [Float])]) -> Void = { _ in }) throws -> String {
    var rng = TestRandom(seed: 9)
    var tensors: [(String, [Int], [Float])] = []
    for l in 0..<2 {
        for t in [LoRATarget.q, .down] {
            let (n, m) = syntheticBase().shape(t)
            tensors.append((t.ggufTensor(layer: l) + ".lora_a", [n, 2], rng.floats(2 * n)))
            tensors.append((t.ggufTensor(layer: l) + ".lora_b", [2, m], rng.floats(2 * m)))
        }
    }
    edit(&tensors)
    var w = GGUFWriter()
    w.set("general.architecture", .string(arch))
    w.set("general.type", .string(type))
    w.set("adapter.type", .string("lora"))
    if let alpha { w.set("adapter.lora.alpha", .float32(alpha)) }
    for (n, s, v) in tensors { try w.addTensor(name: n, shape: s, floats: v) }
    let path = try tempDir() + "/a.gguf"
    try w.write(to: path)
    return path
}

@Suite struct GGUFLoRAValidationTests {
    @Test func loadsWithLlamaCppScale() throws {
        let a = try LoRAAdapter.load(path: try ggufLoRA(), name: "g", base: syntheticBase())
        #expect(a.modules.count == 4)
        let m = try #require(a.module(layer: 1, target: .down))
        #expect(m.rank == 2 && m.inFeatures == 12 && m.outFeatures == 8 && m.scale == 4)
        let noAlpha = try LoRAAdapter.load(path: try ggufLoRA(alpha: nil), name: "g", base: syntheticBase())
        #expect(noAlpha.module(layer: 0, target: .q)?.scale == 1)
        let zero = try LoRAAdapter.load(path: try ggufLoRA(alpha: 0), name: "g", base: syntheticBase())
        #expect(zero.module(layer: 0, target: .q)?.scale == 1)
        // mergekit's norm extras are skipped, as llama.cpp skips them.
        let extras = try ggufLoRA { $0.append(("blk.0.attn_norm.weight.lora_a", [8, 1], [Float](repeating: 0, count: 8))) }
        #expect(try LoRAAdapter.load(path: extras, name: "g", base: syntheticBase()).modules.count == 4)
    }

    @Test func refusals() throws {
        #expect(loadError(try ggufLoRA(arch: "gpt2")) == .architectureMismatch(expected: "llama", found: "gpt2"))
        guard case .notAnAdapter = loadError(try ggufLoRA(type: "model")) else { Issue.record("base model accepted as adapter"); return }
        #expect(loadError(try ggufLoRA { $0.removeAll { $0.0 == "blk.1.attn_q.weight.lora_b" } })
                == .missingHalf(module: "blk.1.attn_q.weight", missing: "lora_b"))
        // lora_a stored transposed: ne [r, in] instead of [in, r].
        #expect(loadError(try ggufLoRA { $0[0].1 = [2, 8] }) == .rankMismatch(module: "blk.0.attn_q.weight", aRank: 8, bRank: 2))
        #expect(loadError(try ggufLoRA { $0[0].1 = [4, 4] }) == .rankMismatch(module: "blk.0.attn_q.weight", aRank: 4, bRank: 2))
        #expect(loadError(try ggufLoRA { $0[0] = ($0[0].0, [16, 2], [Float](repeating: 0, count: 32)) })
                == .shapeMismatch(tensor: "blk.0.attn_q.weight.lora_a", expected: [8, 2], found: [16, 2]))
        #expect(loadError(try ggufLoRA { $0[1].2[3] = .infinity }) == .nonFinite(tensor: "blk.0.attn_q.weight.lora_b", index: 3, value: .infinity))
        #expect(loadError(try ggufLoRA { $0.append(("blk.0.attn_qkv.weight.lora_a", [8, 2], [Float](repeating: 0, count: 16))) })
                == .unknownModule(tensor: "blk.0.attn_qkv.weight.lora_a"))
        #expect(loadError(try ggufLoRA { $0.append(("blk.4.attn_q.weight.lora_a", [8, 2], [Float](repeating: 0, count: 16))) })
                == .layerOutOfRange(tensor: "blk.4.attn_q.weight.lora_a", layer: 4, layerCount: 2))
        guard case .unsupportedOption(option: "token_embd.weight", _) = loadError(try ggufLoRA {
            $0.append(("token_embd.weight.lora_a", [2, 30], [Float](repeating: 0, count: 60)))
            $0.append(("token_embd.weight.lora_b", [2, 8], [Float](repeating: 0, count: 16)))
        }) else { Issue.record("embedding LoRA accepted"); return }
        #expect(loadError(try ggufLoRA(), maxRank: 1) == .rankOutOfRange(module: "blk.0.attn_q.weight", rank: 2, maxRank: 1))
    }

    @Test func truncatedFile() throws {
        let path = try ggufLoRA()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for cut in [10, bytes.count / 2, bytes.count - 1] {
            try bytes.prefix(cut).write(to: URL(fileURLWithPath: path))
            guard case .unreadable = loadError(path) else { Issue.record("truncated at \(cut) accepted"); continue }
        }
    }
}

@Suite struct BaseInfoMisuseTests {
    @Test func doraAndMergeRefuseABaseWithoutRows() throws {
        // A base description without weights (rows of the wrong length) cannot serve DoRA or merges.
        let shapesOnly = BaseModelInfo(layerCount: 2, headCount: 4, headCountKV: 2, embeddingLength: 64, feedForwardLength: 128) { _, _, _ in [] }
        guard case .incompatible = loadError(Fixtures.path("lora_tiny_dora"), base: shapesOnly) else { Issue.record("DoRA loaded without base rows"); return }
        let plain = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_plain"), name: "p", base: shapesOnly)
        guard case .incompatible = try #require(throwsLoRA { try plain.merged(base: shapesOnly, storage: .f32) }) else { Issue.record("merged without base rows"); return }
    }
}

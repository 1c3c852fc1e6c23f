// `lorad adapter inspect|export|combine|merge` end to end on the real SmolLM2 model and the adapter
// fixtures written by scripts/goldens/lora_smollm2.py and lora_tiny.py. Expected modules come from
// the fixtures' own adapter_config.json and the base GGUF's tensor shapes, never from lorad's output;
// combine and merge are checked by behaviour: greedy text must equal running the original adapter.

import Foundation
import ModelFormats
import Testing

@Suite struct AdapterCLITests2 {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("LlamaTests/Fixtures")
    static var peft: String { fixtures.appendingPathComponent("lora_smollm2_peft").path }
    static var ggufLoRA: String { fixtures.appendingPathComponent("lora_smollm2.gguf").path }

    /// One module as `inspect --json` reports it.
    struct Module: Equatable, CustomStringConvertible {
        let layer: Int, target: String, rank: Int, inFeatures: Int, outFeatures: Int, scale: Double, dora: Bool
        var description: String { "\(layer).\(target) r\(rank) \(inFeatures)->\(outFeatures) s\(scale)\(dora ? " dora" : "")" }
    }

    static func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-adapter-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs `adapter inspect --json` and returns the parsed object and its modules.
    static func inspect(_ model: String, _ path: String) throws -> ([String: Any], [Module]) {
        let r = try CLI.run(["adapter", "inspect", "--model", model, "--json", path])
        #expect(r.status == 0, "inspect \(path): \(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "not JSON: \(r.stdout)")
        let mods = try #require(obj["modules"] as? [[String: Any]])
        let modules = try mods.map { m in
            Module(layer: try #require(m["layer"] as? Int), target: try #require(m["target"] as? String),
                   rank: try #require(m["rank"] as? Int), inFeatures: try #require(m["in"] as? Int),
                   outFeatures: try #require(m["out"] as? Int), scale: try #require(m["scale"] as? Double),
                   dora: try #require(m["dora"] as? Bool))
        }
        return (obj, modules)
    }

    /// What lora_smollm2_peft must hold, from its adapter_config.json and the base's tensor shapes.
    static func expectedModules(model: String) throws -> [Module] {
        let data = try Data(contentsOf: URL(fileURLWithPath: peft + "/adapter_config.json"))
        let config = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let r = try #require(config["r"] as? Int)
        let alpha = try #require(config["lora_alpha"] as? Double)
        let layers = try #require(config["layers_to_transform"] as? [Int])
        let targets = try #require(config["target_modules"] as? [String])
        let order = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        let stems = ["q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
                     "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"]
        let base = try GGUFFile(path: model)
        var out: [Module] = []
        for l in layers.sorted() {
            for t in order where targets.contains(t) {
                let shape = try #require(base.tensor(named: "blk.\(l).\(stems[t]!).weight")?.shape)
                // PEFT without rsLoRA: scale = lora_alpha / r.
                out.append(Module(layer: l, target: t, rank: r, inFeatures: shape[0], outFeatures: shape[1],
                                  scale: alpha / Double(r), dora: false))
            }
        }
        return out
    }

    static func generate(_ args: [String]) throws -> CLIResult {
        try CLI.run(["generate", "--temperature", "0", "--max-tokens", "24"] + args + ["Write a haiku about the sea."])
    }

    @Test func inspectPEFTAndGGUFShowTheConfiguredModules() throws {
        let model = try CLI.model()
        let expected = try Self.expectedModules(model: model)
        let (peftObj, peftModules) = try Self.inspect(model, Self.peft)
        #expect(peftModules == expected)
        #expect(peftObj["format"] as? String == "peft")
        #expect(peftObj["compatible"] as? Bool == true)
        // Parameters: r·in + out·r per module.
        #expect(peftObj["parameters"] as? Int == expected.reduce(0) { $0 + $1.rank * ($1.inFeatures + $1.outFeatures) })
        // Bytes held in memory: the f32 arrays plus the forward pass's copy, which is bf16 for this BF16
        // adapter (LoRAKernelWeights; SmolLM2's widths need no padding): 4 + 2 bytes per parameter.
        #expect(peftObj["bytes"] as? Int == 6 * (peftObj["parameters"] as? Int ?? -1))

        // The GGUF fixture is the same adapter (alpha 8, F32); llama.cpp's scale alpha/rank is exact here.
        let (ggufObj, ggufModules) = try Self.inspect(model, Self.ggufLoRA)
        #expect(ggufModules == expected)
        #expect(ggufObj["format"] as? String == "gguf")

        let text = try CLI.run(["adapter", "inspect", "--model", model, Self.peft])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("PEFT directory"))
        #expect(text.stdout.contains("modules:    \(expected.count) in 3 layers"))
        // One table row per module: layer, target, rank, in, out.
        let rows = text.stdout.split(separator: "\n").filter { line in
            expected.contains { m in
                let f = line.split(separator: " ").map(String.init)
                return f.count >= 5 && f[0] == "\(m.layer)" && f[1] == m.target && f[2] == "\(m.rank)"
                    && f[3] == "\(m.inFeatures)" && f[4] == "\(m.outFeatures)"
            }
        }
        #expect(rows.count == expected.count, "\(text.stdout)")
    }

    @Test func inspectOfAnAdapterForAnotherBaseFails() throws {
        let model = try CLI.model()
        let tiny = Self.fixtures.appendingPathComponent("lora_tiny_plain").path
        let r = try CLI.run(["adapter", "inspect", "--model", model, tiny])
        #expect(r.status == 1)
        #expect(r.stderr.contains("wrong base model"), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test func usageErrorsExit64() throws {
        let model = try CLI.model()
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let badMethod = try CLI.run(["adapter", "combine", "--model", model, "--method", "mean",
                                     "--output", dir.path + "/x", Self.peft + ":1"])
        #expect(badMethod.status == 64, "\(badMethod.stderr)")
        let badType = try CLI.run(["adapter", "merge", "--model", model, "--type", "q9", "--output", dir.path + "/m.gguf", Self.peft])
        #expect(badType.status == 64, "\(badType.stderr)")
        let badFormat = try CLI.run(["adapter", "export", "--model", model, "--format", "gguf", "--output", dir.path + "/x", Self.peft])
        #expect(badFormat.status == 64, "\(badFormat.stderr)")
    }

    @Test func exportRoundTripKeepsTheModules() throws {
        let model = try CLI.model()
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, original) = try Self.inspect(model, Self.peft)
        let gguf = dir.appendingPathComponent("rt.gguf").path
        let toGGUF = try CLI.run(["adapter", "export", "--model", model, Self.peft, "--output", gguf])
        #expect(toGGUF.status == 0, "\(toGGUF.stderr)")
        let (ggufObj, viaGGUF) = try Self.inspect(model, gguf)
        #expect(ggufObj["format"] as? String == "gguf")
        #expect(viaGGUF == original)
        let back = dir.appendingPathComponent("rt_peft").path
        let toPEFT = try CLI.run(["adapter", "export", "--model", model, gguf, "--output", back, "--format", "peft"])
        #expect(toPEFT.status == 0, "\(toPEFT.stderr)")
        let (peftObj, viaPEFT) = try Self.inspect(model, back)
        #expect(peftObj["format"] as? String == "peft")
        #expect(viaPEFT == original)
    }

    @Test func catOfHalvesGeneratesLikeTheAdapter() throws {
        let model = try CLI.model()
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("combined").path
        let c = try CLI.run(["adapter", "combine", "--model", model, "--method", "cat", "--output", out,
                             Self.peft + ":0.5", Self.peft + ":0.5"])
        #expect(c.status == 0, "\(c.stderr)")
        let (_, modules) = try Self.inspect(model, out)
        let (_, original) = try Self.inspect(model, Self.peft)
        // cat stacks the inputs: twice the rank, scale folded into A (result scale 1).
        #expect(modules.map(\.rank) == original.map { 2 * $0.rank })
        #expect(modules.allSatisfy { $0.scale == 1 })
        // 0.5·s·B·A + 0.5·s·B·A = s·B·A exactly in real numbers; only f32 rounding of the sums differs,
        // far below the greedy margins of these 24 tokens, so the text must be identical.
        let viaCombined = try Self.generate(["--model", model, "--adapter", out])
        let viaOriginal = try Self.generate(["--model", model, "--adapter", Self.peft])
        #expect(viaCombined.status == 0 && viaOriginal.status == 0, "\(viaCombined.stderr) \(viaOriginal.stderr)")
        #expect(!viaOriginal.stdout.isEmpty)
        #expect(viaCombined.stdout == viaOriginal.stdout)
    }

    @Test func mergedModelGeneratesLikeTheAdapter() throws {
        let model = try CLI.model()
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let merged = dir.appendingPathComponent("merged.gguf").path
        let m = try CLI.run(["adapter", "merge", "--model", model, "--type", "f32", "--output", merged, Self.peft])
        #expect(m.status == 0, "\(m.stderr)")
        // F32 storage keeps the exact f32 merged values: the reported error must be 0.
        #expect(m.stderr.contains("max abs error over all: 0.0"), "\(m.stderr)")
        // Every base tensor and metadata key is in the merged file; the touched matrices became F32.
        let base = try GGUFFile(path: model), out = try GGUFFile(path: merged)
        #expect(out.metadataKeys == base.metadataKeys)
        #expect(out.tensors.map(\.name) == base.tensors.map(\.name))
        #expect(out.tensors.map(\.shape) == base.tensors.map(\.shape))
        let expected = try Self.expectedModules(model: model)
        let touched = Set(expected.map { m in
            "blk.\(m.layer).\(["q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output", "down_proj": "ffn_down"][m.target] ?? "?").weight"
        })
        for t in out.tensors {
            let b = try #require(base.tensor(named: t.name))
            if touched.contains(t.name) {
                #expect(t.type == .f32, "\(t.name)")
            } else {
                #expect(t.type == b.type && out.data(of: t).elementsEqual(base.data(of: b)), "\(t.name)")
            }
        }
        // Merged W+s·B·A versus W·x + s·B·(A·x): the same math in a different f32 order (differences
        // ~1e-6 relative), far below the greedy margins, so the text must be identical.
        let viaMerged = try Self.generate(["--model", merged])
        let viaAdapter = try Self.generate(["--model", model, "--adapter", Self.peft])
        #expect(viaMerged.status == 0 && viaAdapter.status == 0, "\(viaMerged.stderr) \(viaAdapter.stderr)")
        #expect(!viaAdapter.stdout.isEmpty)
        #expect(viaMerged.stdout == viaAdapter.stdout)
    }
}

// The SmolLM2 adapter fixtures written by scripts/goldens/lora_smollm2.py: the PEFT directory (BF16
// tensors) and the same adapter converted to a llama.cpp GGUF LoRA in Python must load to identical
// modules; q/k lora_B rows are permuted per head with 9 and 3 heads. One test reads the real model
// (LORAD_TEST_MODEL) to check BaseModelInfo(gguf:) on a quantized base.

import Foundation
import ModelFormats
import Testing
@testable import LoRA

/// SmolLM2-135M's shapes (FORMATS.md §3.2), without the weights: enough for non-DoRA loading.
private let smolShapes = BaseModelInfo(layerCount: 30, headCount: 9, headCountKV: 3, embeddingLength: 576,
                                       feedForwardLength: 1536) { _, _, _ in [] }

@Suite struct LoRASmolLM2Tests {
    @Test func peftAndGGUFFixturesAgree() throws {
        let peft = try LoRAAdapter.load(path: Fixtures.path("lora_smollm2_peft"), name: "p", base: smolShapes)
        let gguf = try LoRAAdapter.load(path: Fixtures.path("lora_smollm2.gguf"), name: "g", base: smolShapes)
        let j = try Fixtures.json("lora_smollm2_peft.json")
        let info = try #require(j["adapter"] as? [String: Any])
        let layers = try #require(info["layers"] as? [Int])
        #expect(peft.modules.count == 5 * layers.count && gguf.modules.count == peft.modules.count)
        #expect(Set(peft.modules.map(\.layer)) == Set(layers))
        let raw = try SafetensorsFile(path: Fixtures.path("lora_smollm2_peft/adapter_model.safetensors"))
        #expect(raw.tensors.allSatisfy { $0.dtype == .bf16 })
        for (layer, target, m) in peft.modules {
            #expect(m.rank == 4 && m.scale == 2)
            let g = try #require(gguf.module(layer: layer, target: target))
            // BF16 values widen exactly to f32, and the GGUF holds the same values in F32.
            #expect(g.a == m.a && g.b == m.b && g.scale == m.scale, "\(layer) \(target)")
            let hfB = try raw.floats(named: "base_model.model." + target.hfPath(layer: layer) + ".lora_B.weight")
            if let heads = smolShapes.permutationHeads(target) {
                #expect(heads == (target == .q ? 9 : 3))
                let hd = m.outFeatures / heads
                #expect(hd == 64)
                for row in [0, 1, 2, 63, 64, 65, m.outFeatures - 1] {
                    let h = row / hd, j = row % hd
                    let hfRow = h * hd + (j.isMultiple(of: 2) ? j / 2 : j / 2 + hd / 2)
                    #expect(Array(m.b[(row * 4)..<(row * 4 + 4)]) == Array(hfB[(hfRow * 4)..<(hfRow * 4 + 4)]))
                }
            } else {
                #expect(m.b == hfB)
            }
        }
    }

    @Test func realBaseModelInfo() throws {
        guard let path = ProcessInfo.processInfo.environment["LORAD_TEST_MODEL"], !path.isEmpty else {
            Issue.record("LORAD_TEST_MODEL is not set: set it to models/SmolLM2-135M-Instruct.Q4_1.gguf (`make model` fetches it)")
            return
        }
        let base = try BaseModelInfo(gguf: GGUFFile(path: path))
        #expect(base.layerCount == 30 && base.headCount == 9 && base.headCountKV == 3 && base.headDim == 64)
        #expect(base.shape(.down) == (1536, 576))
        #expect(base.baseType(0, .q) == .q4_1)
        let row = base.baseRow(3, .k, 191)
        #expect(row.count == 576 && row.allSatisfy(\.isFinite) && row.contains { $0 != 0 })
        let a = try LoRAAdapter.load(path: Fixtures.path("lora_smollm2_peft"), name: "p", base: base)
        #expect(a.modules.count == 15)
        // A merged copy re-quantized to the base's Q4_1 reports its (nonzero, bounded) error.
        let merged = try a.merged(base: base, storage: .baseType).first!
        #expect(merged.type == .q4_1 && merged.maxAbsError > 0 && merged.maxAbsError < 0.5)
    }

    /// An adapter that names another base loads (the shapes fit) but is flagged; one trained on this
    /// base, under the names PEFT and llama.cpp write, is not.
    @Test func declaredBaseIsCheckedByName() throws {
        guard let path = ProcessInfo.processInfo.environment["LORAD_TEST_MODEL"], !path.isEmpty else {
            Issue.record("LORAD_TEST_MODEL is not set: set it to models/SmolLM2-135M-Instruct.Q4_1.gguf (`make model` fetches it)")
            return
        }
        let identity = try BaseModelInfo(gguf: GGUFFile(path: path)).identity
        #expect(identity.basename == "smollm2" && identity.sizeLabel == "135M")
        for same in ["HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2-135m", "/models/SmolLM2_135M_Instruct (dequantized)"] {
            #expect(identity.mismatch(declared: same) == nil, "\(same)")
        }
        for other in ["meta-llama/Llama-3.2-1B", "HuggingFaceTB/SmolLM2-360M-Instruct", "Qwen/Qwen2.5-0.5B"] {
            let warning = identity.mismatch(declared: other)
            #expect(warning?.contains(other) == true && warning?.contains("smollm2 135M") == true, "\(other): \(warning ?? "nil")")
        }
        #expect(identity.mismatch(declared: nil) == nil && identity.mismatch(declared: "") == nil)
        #expect(BaseModelIdentity().mismatch(declared: "meta-llama/Llama-3.2-1B") == nil, "nothing to compare with")
        // The PEFT fixture declares SmolLM2-135M-Instruct.
        let a = try LoRAAdapter.load(path: Fixtures.path("lora_smollm2_peft"), name: "p", base: BaseModelInfo(gguf: GGUFFile(path: path)))
        #expect(a.declaredBase?.contains("SmolLM2-135M") == true)
        #expect(identity.mismatch(declared: a.declaredBase) == nil)
    }
}

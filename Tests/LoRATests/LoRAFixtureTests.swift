// Loading the golden adapters written by scripts/goldens/lora_tiny.py (transformers + PEFT on a tiny
// random Llama): shapes, ranks and scales against PEFT's own values, the Q/K permutation of lora_B
// against the documented index formula and against the independently permuted GGUF LoRA written in
// Python, and DoRA's per-row factors against PEFT's m / ‖W + s·B·A‖.

import Foundation
import ModelFormats
import Testing
@testable import LoRA

@Suite struct LoRAFixtureTests {
    private func peftModules(_ kind: String) throws -> [String: [String: Any]] {
        let j = try Fixtures.json("lora_tiny_logits.json")
        let cases = try #require(j["cases"] as? [String: Any])
        let c = try #require(cases[kind] as? [String: Any])
        return try #require(c["modules"] as? [String: [String: Any]])
    }

    @Test func tinyBaseInfo() throws {
        let base = try Fixtures.tinyBase()
        #expect(base.architecture == "llama" && base.layerCount == 2 && base.headCount == 4 && base.headCountKV == 2)
        #expect(base.headDim == 16 && base.shape(.k) == (64, 32) && base.shape(.down) == (128, 64))
        #expect(base.baseRow(1, .down, 63).count == 128)
    }

    @Test func plainAdapterMatchesPEFTAndPythonGGUF() throws {
        let base = try Fixtures.tinyBase()
        let peft = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_plain"), name: "plain", base: base)
        let gguf = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_plain.gguf"), name: "plain-gguf", base: base)
        let facts = try peftModules("plain")
        #expect(peft.modules.count == 14 && gguf.modules.count == 14)
        let raw = try SafetensorsFile(path: Fixtures.path("lora_tiny_plain/adapter_model.safetensors"))
        for (layer, target, m) in peft.modules {
            let fact = try #require(facts[target.hfPath(layer: layer)])
            #expect(m.rank == fact["rank"] as? Int)
            // PEFT's scaling is a Python float (alpha / r = 2.0 exactly here).
            #expect(Double(m.scale) == fact["scaling"] as? Double)
            #expect(m.inFeatures == base.shape(target).inFeatures && m.outFeatures == base.shape(target).outFeatures)
            let key = "base_model.model." + target.hfPath(layer: layer)
            let hfA = try raw.floats(named: key + ".lora_A.weight")
            let hfB = try raw.floats(named: key + ".lora_B.weight")
            #expect(m.a == hfA)
            // The documented formula, written out independently of QKPermutation: within head h,
            // GGUF row 2i+j holds HF row j·hd/2 + i.
            var expectB = hfB
            if let heads = base.permutationHeads(target) {
                let hd = m.outFeatures / heads
                for h in 0..<heads { for i in 0..<hd / 2 { for j in 0..<2 { for k in 0..<m.rank {
                    expectB[(h * hd + 2 * i + j) * m.rank + k] = hfB[(h * hd + j * hd / 2 + i) * m.rank + k]
                } } } }
                #expect(expectB != hfB, "the permutation must move rows for \(target)")
            }
            #expect(m.b == expectB, "\(layer) \(target)")
            // The GGUF LoRA converted in Python (numpy reshape/swapaxes, as convert_lora_to_gguf does).
            let g = try #require(gguf.module(layer: layer, target: target))
            #expect(g.a == m.a && g.b == m.b && g.scale == m.scale)
        }
    }

    @Test func rsLoRAScalesAndRanks() throws {
        let base = try Fixtures.tinyBase()
        let a = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_rslora"), name: "rs", base: base)
        let facts = try peftModules("rslora")
        #expect(a.modules.count == facts.count && a.modules.count == 8)
        for (layer, target, m) in a.modules {
            let fact = try #require(facts[target.hfPath(layer: layer)])
            #expect(m.rank == fact["rank"] as? Int)
            // The fixture holds PEFT's double scaling to 8 significant digits.
            let s = try #require(fact["scaling"] as? Double)
            #expect(abs(Double(m.scale) - s) <= 1e-7 * s, "\(layer) \(target): \(m.scale) vs \(s)")
        }
        #expect(a.module(layer: 1, target: .v)?.scale == 1.5)
        #expect(a.module(layer: 0, target: .q)?.rank == 2 && a.module(layer: 0, target: .down)?.rank == 6)
        #expect(a.module(layer: 0, target: .o) == nil)
    }

    @Test func doraScalesMatchPEFT() throws {
        let base = try Fixtures.tinyBase()
        let a = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_dora"), name: "dora", base: base)
        let facts = try peftModules("dora")
        #expect(a.modules.map(\.layer) == [1, 1, 1, 1])
        #expect(a.modules.map(\.target) == [.q, .k, .o, .up])
        for (layer, target, m) in a.modules {
            let fact = try #require(facts[target.hfPath(layer: layer)])
            let hf = try #require(fact["dora_scale"] as? [Double]).map { Float($0) }
            let expected = base.permutationHeads(target).map { QKPermutation.toGGUF(hf, rows: m.outFeatures, cols: 1, heads: $0) } ?? hf
            let ours = try #require(m.doraScale)
            // PEFT's norm is an f32 torch.linalg.norm, ours accumulates in double; both see the same
            // f32 V = W + s·B·A, so they agree to a few f32 ulps (2e-6 relative allows ~16 ulps).
            for r in 0..<m.outFeatures {
                #expect(abs(ours[r] - expected[r]) <= 2e-6 * abs(expected[r]), "\(target) row \(r): \(ours[r]) vs \(expected[r])")
            }
        }
    }

    @Test func permutationRoundTrip() {
        let rows = 12, cols = 3
        let m = (0..<(rows * cols)).map(Float.init)
        for heads in [1, 2, 3, 6] {
            let g = QKPermutation.toGGUF(m, rows: rows, cols: cols, heads: heads)
            #expect(QKPermutation.toHF(g, rows: rows, cols: cols, heads: heads) == m)
        }
        // FORMATS.md §3.4: for hd = 8 the GGUF row order is [0,4,1,5,2,6,3,7].
        #expect((0..<8).map { QKPermutation.hfRow(forGGUFRow: $0, rows: 8, heads: 1) } == [0, 4, 1, 5, 2, 6, 3, 7])
    }
}

/// lorad's combine against PEFT's add_weighted_adapter on the same two adapters (lora_tiny.py writes
/// PEFT's combined adapters). Compared as deltas s·B·A: PEFT zero-pads cat ranks to the sum of the
/// config ranks and its SVD factors are unique only up to signs, so the factors themselves may differ.
@Suite struct LoRACombineGoldenTests {
    @Test(arguments: ["cat", "linear", "svd", "ties_svd"])
    func matchesPEFT(_ method: String) throws {
        let base = try Fixtures.tinyBase()
        let j = try Fixtures.json("lora_tiny_combine.json")
        let weights = try #require(j["weights"] as? [Double]).map { Float($0) }
        let inputs = try #require(j["inputs"] as? [String]).map { try LoRAAdapter.load(path: Fixtures.path($0), name: $0, base: base) }
        let m: LoRAAdapter.CombineMethod = switch method {
        case "cat": .cat
        case "linear": .linear
        case "svd": .svd(rank: 3)
        default: .ties(density: 0.5, rank: 3)
        }
        let ours = try LoRAAdapter.combine(Array(zip(inputs, weights)).map { ($0.0, $0.1) }, method: m, name: method)
        let peft = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_combined_\(method)"), name: "peft", base: base)
        #expect(ours.modules.count == peft.modules.count && ours.modules.count == 14)
        for (layer, target, o) in ours.modules {
            let p = try #require(peft.module(layer: layer, target: target))
            let d1 = o.delta(), d2 = p.delta()
            let size = d2.map { abs($0) }.max()!
            let err = zip(d1, d2).map { abs($0 - $1) }.max()!
            // cat and linear: the same f32 products in a different order (a few ulps of the delta).
            // svd: PEFT runs torch.linalg.svd in f32, so its rank-3 factors carry ~1e-6 relative error.
            // ties_svd: the same, on a dense pruned matrix whose singular values lie closer together.
            let tol: Float = method == "svd" ? 2e-5 : method == "ties_svd" ? 1e-4 : 2e-6
            #expect(err <= tol * size, "\(method) \(layer) \(target): \(err) of \(size)")
        }
    }
}

// Merge, combine and export algebra: merged ≈ unmerged, cat ≡ the weighted sum of deltas, linear ≡
// PEFT's formula, svd at full rank ≡ cat and truncation error = the discarded singular values
// (Eckart–Young), export → import gives the same modules. Tolerances are stated at each comparison.

import Foundation
import Kernels
import ModelFormats
import Testing
@testable import LoRA

/// max |x − y| / max(1, max |y|): the f32 error of a sum of products relative to its size.
private func relErr(_ x: [Float], _ y: [Double]) -> Double {
    precondition(x.count == y.count)
    var e = 0.0, m = 1.0
    for i in 0..<x.count { e = max(e, abs(Double(x[i]) - y[i])); m = max(m, abs(y[i])) }
    return e / m
}

private func denseDelta(_ m: LoRAModule, weight: Double = 1) -> [Double] {
    var d = [Double](repeating: 0, count: m.outFeatures * m.inFeatures)
    for r in 0..<m.outFeatures { for k in 0..<m.rank { for c in 0..<m.inFeatures {
        d[r * m.inFeatures + c] += weight * Double(m.scale) * Double(m.b[r * m.rank + k]) * Double(m.a[k * m.inFeatures + c])
    } } }
    return d
}

private func twoAdapters() throws -> (LoRAAdapter, LoRAAdapter, BaseModelInfo) {
    let base = syntheticBase()
    var b1 = PEFTBuilder()
    for l in 0..<2 { b1.module(l, .q, seed: 3); b1.module(l, .v, seed: 3) }
    var b2 = PEFTBuilder()
    b2.config = ["peft_type": "LORA", "r": 3, "lora_alpha": 5, "use_rslora": true, "target_modules": ["q_proj", "down_proj"]]
    for l in 0..<2 { b2.module(l, .q, rank: 3, seed: 7); b2.module(l, .down, rank: 3, seed: 7) }
    return (try LoRAAdapter.load(path: try b1.write(), name: "one", base: base),
            try LoRAAdapter.load(path: try b2.write(), name: "two", base: base), base)
}

@Suite struct LoRAMergeTests {
    @Test func deltaMatchesDoubleReference() throws {
        let (a, _, _) = try twoAdapters()
        for (_, _, m) in a.modules {
            // f32 sums of `rank` products: error ≤ rank·2⁻²⁴ relative; 1e-6 is ample.
            #expect(relErr(m.delta(), denseDelta(m)) < 1e-6)
        }
    }

    @Test func mergedEqualsUnmergedOnTinyFixtures() throws {
        let base = try Fixtures.tinyBase()
        var rng = TestRandom(seed: 5)
        for kind in ["plain", "rslora", "dora"] {
            let a = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_\(kind)"), name: kind, base: base)
            let merged = try a.merged(base: base, storage: .f32)
            #expect(merged.count == a.modules.count)
            for (mw, (layer, target, m)) in zip(merged, a.modules) {
                #expect(mw.layer == layer && mw.target == target && mw.type == .f32 && mw.maxAbsError == 0)
                let wm = try dequantize(.f32, bytes: mw.data)
                let x = rng.floats(m.inFeatures)
                let expected = referenceApply(m, x: x) { base.baseRow(layer, target, $0) }
                let y: [Float] = (0..<m.outFeatures).map { r in (0..<m.inFeatures).reduce(Float(0)) { $0 + wm[r * m.inFeatures + $1] * x[$1] } }
                // f32 dot products of ≤128 terms against a double reference: 1e-5 of the output scale.
                #expect(relErr(y, expected) < 1e-5, "\(kind) \(layer) \(target)")
            }
        }
    }

    @Test func f16AndRequantizedStorageReportTheirError() throws {
        let base = BaseModelInfo(layerCount: 1, headCount: 2, headCountKV: 2, embeddingLength: 64, feedForwardLength: 64,
                                 baseType: { _, _ in .q8_0 }) { _, t, r in (0..<64).map { c in Float((r * 31 + c * 7 + t.order) % 23 - 11) * 0.05 } }
        var b = PEFTBuilder()
        b.config["target_modules"] = ["q_proj", "up_proj"]
        b.module(0, .q, base: base); b.module(0, .up, base: base)
        let a = try LoRAAdapter.load(path: try b.write(), name: "q8", base: base)
        for storage in [MergeStorage.f16, .baseType] {
            let merged = try a.merged(base: base, storage: storage)
            for (mw, (layer, target, m)) in zip(merged, a.modules) {
                #expect(mw.type == (storage == .f16 ? .f16 : .q8_0))
                let exact = m.mergedRows { base.baseRow(layer, target, $0) }
                let back = try dequantize(mw.type, bytes: mw.data)
                let err = zip(back, exact).map { abs($0 - $1) }.max()!
                #expect(err == mw.maxAbsError && err > 0)
                // Q8_0 rounds to d/2 with d = max|block|/127; F16 to half an ulp (2⁻¹¹ relative).
                let bound: Float = storage == .f16 ? exact.map(abs).max()! * 0x1p-11 : exact.map(abs).max()! / 127 / 2 * 1.001
                #expect(err <= bound)
            }
        }
        // A type lorad cannot quantize, or rows that are not whole blocks, are refused.
        let odd = BaseModelInfo(layerCount: 2, headCount: 2, headCountKV: 1, embeddingLength: 8, feedForwardLength: 12,
                                baseType: { _, _ in .q4_K }) { _, t, _ in [Float](repeating: 0.1, count: t == .down ? 12 : 8) }
        let (one, _, _) = try twoAdapters()
        guard case .cannotExport = try #require(throwsLoRA { try one.merged(base: odd, storage: .baseType) }) else { Issue.record("Q4_K merge accepted"); return }
    }

    @Test func doraMergesOnlyAtScaleOne() throws {
        let base = try Fixtures.tinyBase()
        let a = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_dora"), name: "d", base: base)
        guard case .incompatible = try #require(throwsLoRA { try a.merged(base: base, storage: .f32, userScale: 0.5) }) else {
            Issue.record("DoRA merged at scale 0.5"); return
        }
    }
}

func throwsLoRA(_ body: () throws -> Any) -> LoRAError? {
    do { _ = try body(); return nil } catch let e as LoRAError { return e } catch { return nil }
}

@Suite struct LoRACombineTests {
    @Test func catIsTheExactWeightedSumOfDeltas() throws {
        let (one, two, _) = try twoAdapters()
        let c = try LoRAAdapter.combine([(one, 0.7), (two, -1.3)], method: .cat, name: "cat")
        #expect(c.modules.count == 6)  // q in both; v only in one; down only in two
        for (layer, target, m) in c.modules {
            var expected = [Double](repeating: 0, count: m.outFeatures * m.inFeatures)
            for (ad, w) in [(one, 0.7), (two, -1.3)] {
                if let x = ad.module(layer: layer, target: target) {
                    for (i, v) in denseDelta(x, weight: w).enumerated() { expected[i] += v }
                }
            }
            let r1 = one.module(layer: layer, target: target)?.rank ?? 0, r2 = two.module(layer: layer, target: target)?.rank ?? 0
            #expect(m.rank == r1 + r2 && m.scale == 1)
            // Same products as the inputs, summed in f32: 1e-6 of the delta's size.
            #expect(relErr(m.delta(), expected) < 1e-6, "\(layer) \(target)")
        }
        // Applying the cat adapter equals applying both with their weights (module outputs).
        var rng = TestRandom(seed: 11)
        let base = syntheticBase()
        for (layer, target, m) in c.modules {
            let x = rng.floats(m.inFeatures)
            let y = referenceApply(m, x: x) { base.baseRow(layer, target, $0) }
            var both = [Double](repeating: 0, count: m.outFeatures)
            for r in 0..<m.outFeatures { for ci in 0..<m.inFeatures { both[r] += Double(base.baseRow(layer, target, r)[ci]) * Double(x[ci]) } }
            for (ad, w) in [(one, 0.7), (two, -1.3)] {
                guard let mm = ad.module(layer: layer, target: target) else { continue }
                let d = denseDelta(mm, weight: w)
                for r in 0..<m.outFeatures { for ci in 0..<m.inFeatures { both[r] += d[r * m.inFeatures + ci] * Double(x[ci]) } }
            }
            #expect(relErr(y.map(Float.init), both) < 1e-6)
        }
    }

    @Test func linearFollowsPEFT() throws {
        let (one, two, _) = try twoAdapters()
        // One adapter: √(w·s)·B · √(w·s)·A·sign = w·s·B·A, the weighted delta.
        let single = try LoRAAdapter.combine([(one, -0.5)], method: .linear, name: "lin1")
        for (layer, target, m) in single.modules {
            #expect(relErr(m.delta(), denseDelta(one.module(layer: layer, target: target)!, weight: -0.5)) < 1e-6)
        }
        // Two adapters of equal rank: (Σ √|wᵢsᵢ|·Bᵢ)(Σ sign·√|wᵢsᵢ|·Aᵢ), PEFT's formula with its cross terms.
        let twin = try LoRAAdapter.combine([(one, 1)], method: .cat, name: "twin")  // scale 1, rank 2
        let l = try LoRAAdapter.combine([(one, 0.3), (twin, 2)], method: .linear, name: "lin2")
        for (layer, target, m) in l.modules {
            let p = one.module(layer: layer, target: target)!, q = twin.module(layer: layer, target: target)!
            let wp = 0.3 * Double(p.scale), wq = 2 * Double(q.scale)
            var expected = [Double](repeating: 0, count: m.outFeatures * m.inFeatures)
            for r in 0..<m.outFeatures { for k in 0..<m.rank { for c in 0..<m.inFeatures {
                let bb = wp.squareRoot() * Double(p.b[r * 2 + k]) + wq.squareRoot() * Double(q.b[r * 2 + k])
                let aa = wp.squareRoot() * Double(p.a[k * m.inFeatures + c]) + wq.squareRoot() * Double(q.a[k * m.inFeatures + c])
                expected[r * m.inFeatures + c] += bb * aa
            } } }
            #expect(relErr(m.delta(), expected) < 1e-5)
        }
        guard case .incompatible = try #require(throwsLoRA { try LoRAAdapter.combine([(one, 1), (two, 1)], method: .linear, name: "x") }) else {
            Issue.record("unequal ranks accepted"); return
        }
    }

    @Test func svdAtFullRankIsCatAndTruncationIsOptimal() throws {
        let (one, two, _) = try twoAdapters()
        let inputs: [(adapter: LoRAAdapter, weight: Float)] = [(one, 0.7), (two, 1.1)]
        let cat = try LoRAAdapter.combine(inputs, method: .cat, name: "cat")
        let full = try LoRAAdapter.combine(inputs, method: .svd(rank: 5), name: "svd5")
        for (layer, target, m) in full.modules {
            let c = cat.module(layer: layer, target: target)!
            let exact = denseDelta(c)
            // Householder QR + Jacobi in double, rounded to f32 factors: 1e-5 of the delta's size.
            #expect(relErr(m.delta(), exact) < 1e-5, "\(layer) \(target) rank \(c.rank)")
        }
        // Rank 1: the Frobenius error is the norm of the discarded singular values.
        for (layer, target, c) in cat.modules where c.rank >= 2 {
            let exact = denseDelta(c)
            let t = SmallLinalg.truncatedProduct(b: c.b, a: c.a, out: c.outFeatures, rank: c.rank, inFeatures: c.inFeatures, keep: 1)
            let approx = LoRAModule(rank: 1, inFeatures: c.inFeatures, outFeatures: c.outFeatures, a: t.a, b: t.b, scale: 1).delta()
            let err = zip(approx, exact).reduce(0.0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) }.squareRoot()
            let tail = t.singularValues.dropFirst().reduce(0.0) { $0 + $1 * $1 }.squareRoot()
            let total = t.singularValues.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(err - tail) <= 1e-5 * total, "\(layer) \(target): \(err) vs \(tail)")
        }
    }

    @Test func svdHelpersOnAwkwardShapes() {
        var rng = TestRandom(seed: 2)
        for (m, n) in [(7, 3), (5, 5), (9, 1)] {
            let a = SmallLinalg.Matrix(rows: m, cols: n, v: rng.floats(m * n).map(Double.init))
            let (q, r) = SmallLinalg.qr(a)
            let back = q * r
            #expect(zip(back.v, a.v).allSatisfy { abs($0 - $1) < 1e-12 })
            let qtq = q.transposed * q
            for i in 0..<n { for j in 0..<n { #expect(abs(qtq[i, j] - (i == j ? 1 : 0)) < 1e-12) } }
            let sq = SmallLinalg.Matrix(rows: n, cols: n, v: rng.floats(n * n).map(Double.init))
            let (u, s, v) = SmallLinalg.svd(sq)
            var us = u
            for i in 0..<n { for j in 0..<n { us[i, j] *= s[j] } }
            let rec = us * v.transposed
            #expect(zip(rec.v, sq.v).allSatisfy { abs($0 - $1) < 1e-12 })
            #expect(s == s.sorted(by: >))
        }
        // Rank sum above a dimension (dense fallback) still reproduces the product.
        let b = rng.floats(3 * 4), a = rng.floats(4 * 2)
        let t = SmallLinalg.truncatedProduct(b: b, a: a, out: 3, rank: 4, inFeatures: 2, keep: 4)
        for r in 0..<3 { for c in 0..<2 {
            let e = (0..<4).reduce(0.0) { $0 + Double(b[r * 4 + $1]) * Double(a[$1 * 2 + c]) }
            let g = (0..<4).reduce(0.0) { $0 + Double(t.b[r * 4 + $1]) * Double(t.a[$1 * 2 + c]) }
            #expect(abs(e - g) < 1e-5)
        } }
    }

    @Test func refusals() throws {
        let (one, _, _) = try twoAdapters()
        let dora = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_dora"), name: "d", base: try Fixtures.tinyBase())
        guard case .incompatible = try #require(throwsLoRA { try LoRAAdapter.combine([(one, 1), (dora, 1)], method: .cat, name: "x") }) else {
            Issue.record("DoRA combined"); return
        }
        guard case .incompatible = try #require(throwsLoRA { try LoRAAdapter.combine([], method: .cat, name: "x") }) else {
            Issue.record("empty combination"); return
        }
        #expect(throwsLoRA { try LoRAAdapter.combine([(one, 1)], method: .svd(rank: 0), name: "x") } != nil)
    }
}

@Suite struct LoRAExportTests {
    private func assertSame(_ x: LoRAAdapter, _ y: LoRAAdapter, exactB: Bool = true) {
        #expect(x.modules.count == y.modules.count)
        for (layer, target, m) in x.modules {
            guard let n = y.module(layer: layer, target: target) else { Issue.record("missing \(layer) \(target)"); continue }
            #expect(m.rank == n.rank && m.a == n.a)
            if exactB {
                #expect(m.b == n.b && m.scale == n.scale && m.magnitude == n.magnitude, "\(layer) \(target)")
                #expect(m.doraScale == n.doraScale)
            } else {
                // A folded scale: s·B agrees to an f32 rounding of the product (2⁻²³ relative, doubled).
                let p = m.b.map { $0 * m.scale }, q = n.b.map { $0 * n.scale }
                #expect(zip(p, q).allSatisfy { abs($0 - $1) <= 2.4e-7 * max(abs($0), 1e-30) })
            }
        }
    }

    @Test func peftRoundTripOfEveryFixture() throws {
        let base = try Fixtures.tinyBase()
        for kind in ["plain", "rslora", "dora"] {
            let a = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_\(kind)"), name: kind, base: base)
            let dir = try tempDir() + "/out"
            try a.exportPEFT(directory: dir, base: base, baseModelName: "tiny")
            let b = try LoRAAdapter.load(path: dir, name: kind, base: base)
            assertSame(a, b)
        }
        // The exported config of the rsLoRA fixture folds sqrt(r) into per-module alphas.
        let rs = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_rslora"), name: "rs", base: base)
        let dir = try tempDir() + "/rs"
        try rs.exportPEFT(directory: dir, base: base)
        let cfg = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/adapter_config.json"))) as? [String: Any])
        #expect(cfg["use_rslora"] as? Bool == false)
        #expect(cfg["r"] as? Int == 4 && cfg["lora_alpha"] as? Double == 32)
        #expect((cfg["rank_pattern"] as? [String: Int])?[#"model\.layers\.0\.self_attn\.q_proj"#] == 2)
        // Exported lora_B is back in HF order: equal to the original file's tensor.
        let orig = try SafetensorsFile(path: Fixtures.path("lora_tiny_rslora/adapter_model.safetensors"))
        let out = try SafetensorsFile(path: dir + "/adapter_model.safetensors")
        let key = "base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight"
        #expect(try out.floats(named: key) == orig.floats(named: key))
    }

    @Test func ggufRoundTrip() throws {
        let base = try Fixtures.tinyBase()
        let plain = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_plain"), name: "p", base: base)
        let path = try tempDir() + "/p.gguf"
        try plain.exportGGUF(path: path)
        assertSame(plain, try LoRAAdapter.load(path: path, name: "p", base: base))
        // Byte-level agreement with the GGUF LoRA written in Python: same tensors, same alpha.
        let ours = try GGUFFile(path: path), theirs = try GGUFFile(path: Fixtures.path("lora_tiny_plain.gguf"))
        #expect(try ours.float("adapter.lora.alpha") == theirs.float("adapter.lora.alpha"))
        for t in theirs.tensors {
            let o = try #require(ours.tensor(named: t.name))
            #expect(o.shape == t.shape && Array(ours.data(of: o)) == Array(theirs.data(of: t)), "\(t.name)")
        }
        // Per-module scales (rsLoRA, alpha_pattern) that one global alpha cannot express are folded into B.
        let rs = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_rslora"), name: "rs", base: base)
        let p2 = try tempDir() + "/rs.gguf"
        try rs.exportGGUF(path: p2)
        assertSame(rs, try LoRAAdapter.load(path: p2, name: "rs", base: base), exactB: false)
        let dora = try LoRAAdapter.load(path: Fixtures.path("lora_tiny_dora"), name: "d", base: base)
        guard case .cannotExport = try #require(throwsLoRA { try dora.exportGGUF(path: p2) }) else { Issue.record("DoRA exported to GGUF"); return }
    }

    @Test func combinedAdapterRoundTrips() throws {
        let (one, two, base) = try twoAdapters()
        let c = try LoRAAdapter.combine([(one, 0.5), (two, 2)], method: .cat, name: "c")
        let dir = try tempDir() + "/c"
        try c.exportPEFT(directory: dir, base: base)
        let back = try LoRAAdapter.load(path: dir, name: "c", base: base)
        assertSame(c, back)
        let p = try tempDir() + "/c.gguf"
        try c.exportGGUF(path: p)
        assertSame(c, try LoRAAdapter.load(path: p, name: "c", base: base), exactB: false)
    }
}

@Suite struct LoRATaskArithmeticTests {
    @Test func dareIsSeededAndDensityOneIsSVD() throws {
        let (one, two, _) = try twoAdapters()
        let inputs: [(adapter: LoRAAdapter, weight: Float)] = [(one, 0.7), (two, 1.1)]
        let d1 = try LoRAAdapter.combine(inputs, method: .dare(density: 0.3, rank: 2, seed: 42), name: "d")
        let d2 = try LoRAAdapter.combine(inputs, method: .dare(density: 0.3, rank: 2, seed: 42), name: "d")
        let d3 = try LoRAAdapter.combine(inputs, method: .dare(density: 0.3, rank: 2, seed: 43), name: "d")
        #expect(d1.modules.map(\.module) == d2.modules.map(\.module))
        #expect(d1.modules.map(\.module) != d3.modules.map(\.module))
        // Density 1 prunes nothing: DARE-linear is then the svd combination (same rank-5 delta).
        let full = try LoRAAdapter.combine(inputs, method: .dare(density: 1, rank: 5, seed: 1), name: "f")
        let svd = try LoRAAdapter.combine(inputs, method: .svd(rank: 5), name: "s")
        for (layer, target, m) in full.modules {
            // Dense Jacobi SVD vs the QR-core SVD of the same matrix, both rounded to f32 factors.
            #expect(relErr(m.delta(), svd.module(layer: layer, target: target)!.delta().map(Double.init)) < 1e-5)
        }
        #expect(throwsLoRA { try LoRAAdapter.combine(inputs, method: .ties(density: -1, rank: 2), name: "x") } != nil)
    }

    @Test func tiesOnOneAdapterKeepsTheLargestEntries() throws {
        let (one, _, _) = try twoAdapters()
        // One input, rank high enough to keep everything: the result is w·(the top half of D by magnitude).
        let t = try LoRAAdapter.combine([(one, 2)], method: .ties(density: 0.5, rank: 8), name: "t")
        for (layer, target, m) in t.modules {
            let d = one.module(layer: layer, target: target)!.delta()
            let k = d.count / 2
            let threshold = d.map(abs).sorted(by: >)[k - 1]
            let expected = d.map { abs($0) >= threshold ? Double(2 * $0) : 0 }
            #expect(relErr(m.delta(), expected) < 1e-5)
        }
    }
}

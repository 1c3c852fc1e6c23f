// LoRA adapters in lorad's forward pass against independent references, on a tiny random Llama
// (Fixtures/lora_tiny_*, written by scripts/goldens/lora_tiny.py with transformers + PEFT and
// llama.cpp):
// - PEFT plain LoRA on all seven projections, rsLoRA with rank_pattern/alpha_pattern, and DoRA: our
//   logits equal transformers + PEFT's (float32, eval mode) within 2e-4 absolute. Both sides compute in
//   f32 on a 2-layer, 64-wide model with logits of magnitude ~1-3: differences come only from
//   summation order (~1e-6 relative per sum), so 2e-4 leaves room and a real error (a missing
//   permutation, a wrong scale) moves logits by 1e-2 or more.
// - The same plain adapter as a llama.cpp GGUF LoRA: with llama.cpp's numerics (f16 Q/K/V and
//   attention weights; this model's F32 weights take no 8-bit path) our logits equal llama.cpp's
//   (llama-cpp-python with lora_path) within 1e-4, the same summation-order margin as above. With
//   f32 numerics they differ by ~3e-3, which is llama.cpp's f16 rounding.
// - Algebra: scale 0 is exactly the base; a batch mixing adapters gives each sequence what it
//   gets alone.

import Foundation
import LoRA
import ModelFormats
import Testing
@testable import Llama

struct TinyLoRAFixture {
    let sequences: [[Int32]]
    /// case name → [sequence][position][vocab] logits.
    let logits: [String: [[[Float]]]]
    let llamaCpp: [String: [[[Float]]]]

    static func load() throws -> TinyLoRAFixture {
        let url = try fixtureURL("lora_tiny_logits.json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let seqs = try #require(json["sequences"] as? [[Int]]).map { $0.map(Int32.init) }
        func table(_ key: String) throws -> [String: [[[Float]]]] {
            let cases = try #require(json[key] as? [String: [String: Any]])
            var out: [String: [[[Float]]]] = [:]
            for (name, c) in cases {
                let l = try #require(c["logits"] as? [[[Double]]])
                out[name] = l.map { $0.map { $0.map(Float.init) } }
            }
            return out
        }
        return TinyLoRAFixture(sequences: seqs, logits: try table("cases"), llamaCpp: try table("llama_cpp"))
    }
}

func fixtureURL(_ name: String) throws -> URL {
    let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
    return try #require(Bundle.module.url(forResource: parts[0], withExtension: parts.count > 1 ? parts[1] : nil,
                                          subdirectory: "Fixtures"), "fixture \(name) is missing")
}

@Suite(.serialized) struct LoRAGoldenTests {
    let model: LlamaModel
    let base: BaseModelInfo
    let fixture: TinyLoRAFixture

    init() throws {
        let gguf = try GGUFFile(path: try fixtureURL("lora_tiny_base.gguf").path)
        model = try LlamaModel(gguf: gguf, threads: 1)
        base = try BaseModelInfo(gguf: gguf)
        fixture = try TinyLoRAFixture.load()
    }

    func adapter(_ name: String) throws -> LoRAAdapter {
        try LoRAAdapter.load(path: try fixtureURL(name).path, name: name, base: base)
    }

    func logits(_ seq: [Int32], _ adapters: [AdapterUse]) throws -> [[Float]] {
        let V = model.config.vocabularySize
        let flat = try model.forward(seq, cache: model.makeCache(), logits: .all, adapters: adapters)
        return (0..<seq.count).map { Array(flat[($0 * V)..<(($0 + 1) * V)]) }
    }

    func maxDiff(_ a: [[Float]], _ b: [[Float]]) -> Float {
        zip(a, b).map { zip($0, $1).map { abs($0 - $1) }.max()! }.max()!
    }

    @Test(arguments: [("base", nil), ("plain", "lora_tiny_plain"), ("rslora", "lora_tiny_rslora"), ("dora", "lora_tiny_dora")])
    func matchesPEFT(_ name: String, _ dir: String?) throws {
        let uses = try dir.map { [AdapterUse(try adapter($0))] } ?? []
        let ref = try #require(fixture.logits[name])
        var worst: Float = 0
        for (s, seq) in fixture.sequences.enumerated() {
            let d = maxDiff(try logits(seq, uses), ref[s])
            worst = max(worst, d)
            #expect(d <= 2e-4, "\(name) sequence \(s): max |Δ logit| \(d)")
        }
        print("tiny \(name) vs transformers+PEFT: max |Δ logit| \(worst)")
        if dir != nil {
            // The adapter really changes the output (so the comparison above means something).
            let baseRef = try #require(fixture.logits["base"])
            #expect(maxDiff(ref[0], baseRef[0]) > 1e-2)
        }
    }

    /// Decoding one token at a time on two threads: a lone adapter row's term runs beside the base
    /// product in the same pool call (AdapterPlan.alongside); DoRA's runs after it. Same references,
    /// same bound as above.
    @Test(arguments: [("plain", "lora_tiny_plain"), ("rslora", "lora_tiny_rslora"), ("dora", "lora_tiny_dora")])
    func tokenByTokenOnTwoThreadsMatchesPEFT(_ name: String, _ dir: String) throws {
        let twoThreads = try LlamaModel(path: try fixtureURL("lora_tiny_base.gguf").path, threads: 2)
        let uses = [AdapterUse(try adapter(dir))]
        let ref = try #require(fixture.logits[name])
        for (s, seq) in fixture.sequences.enumerated() {
            let cache = twoThreads.makeCache()
            var steps: [[Float]] = []
            for t in seq { steps.append(try twoThreads.forward([t], cache: cache, adapters: uses)) }
            let d = maxDiff(steps, ref[s])
            #expect(d <= 2e-4, "\(name) sequence \(s): max |Δ logit| \(d)")
        }
    }

    @Test func ggufLoRAMatchesLlamaCpp() throws {
        let plain = try adapter("lora_tiny_plain.gguf")
        let llamaLike = try LlamaModel(path: try fixtureURL("lora_tiny_base.gguf").path, threads: 1, numerics: .llamaCpp)
        let V = llamaLike.config.vocabularySize
        for (name, uses) in [("base", [AdapterUse]()), ("plain_gguf", [AdapterUse(plain)])] {
            let ref = try #require(fixture.llamaCpp[name])
            for (s, seq) in fixture.sequences.enumerated() {
                let flat = try llamaLike.forward(seq, cache: llamaLike.makeCache(), logits: .all, adapters: uses)
                let ours = (0..<seq.count).map { Array(flat[($0 * V)..<(($0 + 1) * V)]) }
                let d = maxDiff(ours, ref[s])
                #expect(d <= 1e-4, "\(name) sequence \(s): max |Δ logit| vs llama.cpp \(d)")
            }
        }
        // The GGUF export of the plain adapter and the PEFT original are the same adapter.
        let peft = try adapter("lora_tiny_plain")
        let seq = fixture.sequences[0]
        #expect(maxDiff(try logits(seq, [AdapterUse(plain)]), try logits(seq, [AdapterUse(peft)])) <= 1e-4)
    }

    @Test func scaleZeroIsExactlyBase() throws {
        let plain = try adapter("lora_tiny_plain")
        for seq in fixture.sequences {
            #expect(try logits(seq, [AdapterUse(plain, scale: 0)]) == (try logits(seq, [])))
        }
    }

    @Test func mixedBatchEqualsAlone() throws {
        let uses: [[AdapterUse]] = [[], [AdapterUse(try adapter("lora_tiny_plain"))],
                                    [AdapterUse(try adapter("lora_tiny_rslora"), scale: 0.5)],
                                    [AdapterUse(try adapter("lora_tiny_dora"))],
                                    [AdapterUse(try adapter("lora_tiny_plain")), AdapterUse(try adapter("lora_tiny_rslora"), scale: -1)]]
        let seq = fixture.sequences[1]
        let alone = try uses.map { try logits(seq, $0) }
        let caches = uses.map { _ in model.makeCache() }
        let batch = try model.forward(batch: zip(uses, caches).map { BatchItem(tokens: seq, cache: $1, logits: .all, adapters: $0) })
        let V = model.config.vocabularySize
        for i in uses.indices {
            let rows = (0..<seq.count).map { Array(batch[i][($0 * V)..<(($0 + 1) * V)]) }
            #expect(maxDiff(rows, alone[i]) <= 1e-5, "item \(i)")
        }
    }

    @Test func doraRefusesOtherScalesAndStacking() throws {
        let dora = try adapter("lora_tiny_dora"), plain = try adapter("lora_tiny_plain")
        let seq = fixture.sequences[0]
        #expect(throws: LlamaError.self) { try logits(seq, [AdapterUse(dora, scale: 0.5)]) }
        #expect(throws: LlamaError.self) { try logits(seq, [AdapterUse(dora), AdapterUse(plain)]) }
    }

    /// Merged weights (W + s·B·A as F32 copies) give the unmerged path's logits within 1e-4: the same
    /// numbers summed in another order (the rank-r product folded into W first). As F16 copies the
    /// bound is 2e-2: f16 rounding of each weight (relative 2^-11 ≈ 5e-4) over 64-128-term dot
    /// products of values ~0.1-1 in a 2-layer model.
    @Test(arguments: [("lora_tiny_plain", MergeStorage.f32, Float(1e-4)), ("lora_tiny_dora", .f32, 1e-4),
                      ("lora_tiny_rslora", .f16, 2e-2)])
    func mergedEqualsUnmerged(_ name: String, _ storage: MergeStorage, _ bound: Float) throws {
        let a = try adapter(name)
        let merged = try MergedAdapter(adapter: a, base: base, storage: storage)
        let seq = fixture.sequences[2]
        let V = model.config.vocabularySize
        let out = try model.forward(batch: [BatchItem(tokens: seq, cache: model.makeCache(), logits: .all, merged: merged)])[0]
        let rows = (0..<seq.count).map { Array(out[($0 * V)..<(($0 + 1) * V)]) }
        let d = maxDiff(rows, try logits(seq, [AdapterUse(a)]))
        print("\(name) merged as \(storage) vs unmerged: max |Δ logit| \(d), stored max error \(merged.maxAbsError)")
        #expect(d <= bound)
    }

    /// One decode step of several sequences on two threads, each after its own 7-token prefill, equals
    /// each run alone. Without DoRA or stacking the adapters' terms run beside the base product as
    /// several jobs into scratch rows, with a merged and a base sequence in the same batch; with them,
    /// after it. Bound as in mergedInMixedBatch.
    @Test(arguments: [false, true])
    func decodeStepOnTwoThreadsEqualsAlone(withDoRAAndStacking: Bool) throws {
        let twoThreads = try LlamaModel(path: try fixtureURL("lora_tiny_base.gguf").path, threads: 2)
        let plain = try adapter("lora_tiny_plain"), rs = try adapter("lora_tiny_rslora")
        let merged = try MergedAdapter(adapter: plain, base: base, storage: .f32)
        var items: [(uses: [AdapterUse], merged: MergedAdapter?)] = [
            ([], nil), ([AdapterUse(plain)], nil), ([AdapterUse(rs, scale: 0.5)], nil), ([AdapterUse(plain, scale: 0.3)], nil),
            ([], merged)]
        if withDoRAAndStacking {
            items += [([AdapterUse(try adapter("lora_tiny_dora"))], nil), ([AdapterUse(plain), AdapterUse(rs, scale: -1)], nil)]
        }
        let seq = fixture.sequences[1]
        let history = Array(seq.dropLast()), next = [seq.last!]
        func prefilled(_ item: (uses: [AdapterUse], merged: MergedAdapter?)) throws -> KVCache {
            let cache = twoThreads.makeCache()
            _ = try twoThreads.forward(batch: [BatchItem(tokens: history, cache: cache, logits: .none, adapters: item.uses,
                                                         merged: item.merged)])
            return cache
        }
        let alone = try items.map { item in
            try twoThreads.forward(batch: [BatchItem(tokens: next, cache: try prefilled(item), adapters: item.uses,
                                                     merged: item.merged)])[0]
        }
        let caches = try items.map(prefilled)
        let batch = try twoThreads.forward(batch: zip(items, caches).map {
            BatchItem(tokens: next, cache: $1, adapters: $0.uses, merged: $0.merged)
        })
        for i in items.indices {
            #expect(maxDiff([batch[i]], [alone[i]]) <= 1e-4, "item \(i)")
        }
        // The adapters really act in this step (so the comparison means something).
        #expect(maxDiff([batch[1]], [batch[0]]) > 1e-2)
    }

    /// One adapter listed twice for a sequence is that adapter once with the scales summed, exactly:
    /// the forward pass merges the uses (two uses of it would list every row twice in one job, which
    /// two threads could then add into at once).
    @Test func sameAdapterTwiceIsItsScalesSummed() throws {
        let twoThreads = try LlamaModel(path: try fixtureURL("lora_tiny_base.gguf").path, threads: 2)
        let plain = try adapter("lora_tiny_plain")
        let seq = fixture.sequences[2]
        let twice = try twoThreads.forward(seq, cache: twoThreads.makeCache(), logits: .all,
                                           adapters: [AdapterUse(plain), AdapterUse(plain, scale: 0.5)])
        let summed = try twoThreads.forward(seq, cache: twoThreads.makeCache(), logits: .all,
                                            adapters: [AdapterUse(plain, scale: 1.5)])
        let d = zip(twice, summed).map { abs($0 - $1) }.max()!
        #expect(d == 0, "max |Δ logit| \(d)")
    }

    /// A batch mixing a merged sequence, an unmerged one and a base one: each as alone.
    @Test func mergedInMixedBatch() throws {
        let plain = try adapter("lora_tiny_plain"), rs = try adapter("lora_tiny_rslora")
        let merged = try MergedAdapter(adapter: plain, base: base, storage: .f32)
        let seq = fixture.sequences[0]
        let V = model.config.vocabularySize
        let out = try model.forward(batch: [
            BatchItem(tokens: seq, cache: model.makeCache(), logits: .all, merged: merged),
            BatchItem(tokens: seq, cache: model.makeCache(), logits: .all, adapters: [AdapterUse(rs)]),
            BatchItem(tokens: seq, cache: model.makeCache(), logits: .all)])
        let refs = [try logits(seq, [AdapterUse(plain)]), try logits(seq, [AdapterUse(rs)]), try logits(seq, [])]
        for i in 0..<3 {
            let rows = (0..<seq.count).map { Array(out[i][($0 * V)..<(($0 + 1) * V)]) }
            #expect(maxDiff(rows, refs[i]) <= 1e-4, "item \(i)")
        }
        #expect(throws: LlamaError.self) {
            try model.forward(batch: [BatchItem(tokens: seq, cache: model.makeCache(), adapters: [AdapterUse(rs)], merged: merged)])
        }
    }
}

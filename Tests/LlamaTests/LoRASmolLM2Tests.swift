// LoRA on the real SmolLM2 (Fixtures/lora_smollm2_*, written by scripts/goldens/lora_smollm2.py):
// - a PEFT adapter (r=4 on q/k/v/o/down of layers 3, 14, 25; BF16 weights) changes lorad's greedy
//   output exactly as it changes transformers + PEFT's on the dequantized model; teacher-forced
//   top-5 log-probabilities agree within 1e-3 nats (the bound of the exact-reference test: both sides
//   are f32 on the same dequantized weights, the adapter adds two thin products; observed 5.2e-5);
// - the same adapter as a llama.cpp GGUF LoRA, run with llama.cpp's numerics, against llama.cpp
//   with lora_path: held to LlamaGoldenTests' self-consistency bounds (top-1 agreement ≥ 0.95 and
//   mean |Δ logprob| of llama.cpp's top-5 ≤ 0.137 = 1.25 × the spread between llama.cpp's own two
//   attention paths), because SmolLM2 amplifies rounding differences.

import Foundation
import LoRA
import ModelFormats
import Testing
@testable import Llama

struct SmolLoRAFixture: Decodable {
    struct Case: Decodable { let greedy: [Int32]; let top: [[[Double]]]; let margin: [Double] }
    struct Prompt: Decodable {
        let text: String; let ids: [Int32]
        let transformers: [String: Case]
        let llama_cpp_lora: Case
    }
    let prompts: [Prompt]
}

@Suite(.serialized) struct LoRASmolLM2Tests {
    let fixture: SmolLoRAFixture
    init() throws {
        fixture = try JSONDecoder().decode(SmolLoRAFixture.self, from: Data(contentsOf: try fixtureURL("lora_smollm2_peft.json")))
    }

    func greedy(_ model: LlamaModel, _ ids: [Int32], _ uses: [AdapterUse], steps: Int) throws -> [Int32] {
        let cache = model.makeCache()
        var logits = try model.forward(ids, cache: cache, adapters: uses)
        var out: [Int32] = []
        for _ in 0..<steps {
            let next = Int32(logits.indices.max { logits[$0] < logits[$1] }!)
            out.append(next)
            logits = try model.forward([next], cache: cache, adapters: uses)
        }
        return out
    }

    func teacherForced(_ model: LlamaModel, _ seq: [Int32], _ uses: [AdapterUse]) throws -> [[Double]] {
        let V = model.config.vocabularySize
        let flat = try model.forward(seq, cache: model.makeCache(), logits: .all, adapters: uses)
        return (0..<seq.count).map { logSoftmax(flat[($0 * V)..<(($0 + 1) * V)]) }
    }

    @Test func peftAdapterMatchesTransformers() throws {
        let gguf = try GGUFFile(path: try testModelPath())
        let model = try LlamaModel(gguf: gguf)
        let adapter = try LoRAAdapter.load(path: try fixtureURL("lora_smollm2_peft").path, name: "smol",
                                           base: try BaseModelInfo(gguf: gguf))
        for p in fixture.prompts {
            let base = try #require(p.transformers["base"]), peft = try #require(p.transformers["peft"])
            #expect(try greedy(model, p.ids, [], steps: base.greedy.count) == base.greedy)
            #expect(try greedy(model, p.ids, [AdapterUse(adapter)], steps: peft.greedy.count) == peft.greedy)
            #expect(base.greedy != peft.greedy, "the adapter changes the output")
            let lp = try teacherForced(model, p.ids + peft.greedy.dropLast(), [AdapterUse(adapter)])
            var worst = 0.0
            for (row, ref) in zip(lp, peft.top) {
                for pair in ref {
                    let d = abs(row[Int(pair[0])] - pair[1])
                    worst = max(worst, d)
                    #expect(d <= 1e-3, "token \(Int(pair[0])): ours \(row[Int(pair[0])]) transformers \(pair[1])")
                }
            }
            print("SmolLM2 + PEFT adapter vs transformers+PEFT: max |Δ logprob| \(worst)")
            #expect(!peft.top.isEmpty)
        }
    }

    @Test func ggufAdapterMatchesLlamaCpp() throws {
        let gguf = try GGUFFile(path: try testModelPath())
        let model = try LlamaModel(gguf: gguf, numerics: .llamaCpp)
        let adapter = try LoRAAdapter.load(path: try fixtureURL("lora_smollm2.gguf").path, name: "smol",
                                           base: try BaseModelInfo(gguf: gguf))
        var agree = 0, positions = 0, deltas: [Double] = []
        for p in fixture.prompts {
            let ref = p.llama_cpp_lora
            let lp = try teacherForced(model, p.ids + ref.greedy.dropLast(), [AdapterUse(adapter)])
            for (row, top) in zip(lp, ref.top) {
                positions += 1
                if row.indices.max(by: { row[$0] < row[$1] }) == Int(top[0][0]) { agree += 1 }
                for pair in top.prefix(5) { deltas.append(abs(row[Int(pair[0])] - pair[1])) }
            }
        }
        let mean = deltas.reduce(0, +) / Double(deltas.count)
        print("SmolLM2 + GGUF LoRA vs llama.cpp: top-1 \(agree)/\(positions), mean |Δ logprob| \(mean)")
        #expect(Double(agree) / Double(positions) >= 0.95)
        #expect(mean <= 0.137)
    }
}

// `.q8` numerics: decode-sized products take Q8 activations (as llama.cpp), prompt-sized ones stay
// f32. Checked on the real SmolLM2 against Fixtures/llama_logits.json:
// - a prompt run in one call (≥ the sgemm crossover of 20 tokens) gives exactly `.f32`'s logits;
// - decoding token by token, teacher-forced along llama.cpp's own greedy path, stays within
//   llama.cpp's self-consistency, with the same bounds as LlamaGoldenTests (top-1 agreement ≥ its
//   flash-attention-vs-default agreement − 0.02; mean and p99 |Δ logprob| over its top-5 ≤ 1.25× that
//   spread).

import Foundation
import Kernels
import Testing
@testable import Llama

@Suite(.serialized) struct NumericsQ8Tests {
    @Test func promptsStayF32() throws {
        let path = try testModelPath()
        let q8 = try LlamaModel(path: path, numerics: .q8), f32 = try LlamaModel(path: path, numerics: .f32)
        let ids = (0..<32).map { Int32(($0 * 7919) % 49152) }
        let a = try q8.forward(ids, cache: q8.makeCache(), logits: .all)
        let b = try f32.forward(ids, cache: f32.makeCache(), logits: .all)
        #expect(a == b)
    }

    @Test func decodingStaysWithinLlamaCppsOwnSpread() throws {
        let model = try LlamaModel(path: try testModelPath(), numerics: .q8)
        let V = model.config.vocabularySize
        var deltas: [Double] = [], selfSpread: [Double] = []
        var agree = 0, selfAgree = 0, positions = 0
        for c in try LogitsGolden.load().cases {
            let cache = model.makeCache()
            var rows: [[Double]] = []
            for t in c.ids + c.greedy {
                let logits = try model.forward([t], cache: cache)
                rows.append(logSoftmax(logits[0..<V]))
            }
            let o = compare(rows, c.top)
            deltas += o.deltas
            agree += o.agree
            for (p, r) in zip(c.top_fa, c.top) {
                var f = [Double](repeating: -.infinity, count: V)
                for (t, l) in zip(p.ids, p.logprobs) { f[Int(t)] = l }
                if f.indices.max(by: { f[$0] < f[$1] }) == Int(r.ids[0]) { selfAgree += 1 }
                for k in 0..<5 where f[Int(r.ids[k])] > -.infinity { selfSpread.append(abs(f[Int(r.ids[k])] - r.logprobs[k])) }
            }
            positions += c.top.count
        }
        let mean = deltas.reduce(0, +) / Double(deltas.count), selfMean = selfSpread.reduce(0, +) / Double(selfSpread.count)
        let agreement = Double(agree) / Double(positions), selfAgreement = Double(selfAgree) / Double(positions)
        print("q8 decode vs llama.cpp: top-1 \(agreement) (FA: \(selfAgreement)); mean |Δ| \(mean) (FA: \(selfMean)); "
              + "p99 \(percentile(deltas, 0.99)) (FA: \(percentile(selfSpread, 0.99)))")
        #expect(agreement >= selfAgreement - 0.02)
        #expect(mean <= 1.25 * selfMean)
        #expect(percentile(deltas, 0.99) <= 1.25 * percentile(selfSpread, 0.99))
    }
}

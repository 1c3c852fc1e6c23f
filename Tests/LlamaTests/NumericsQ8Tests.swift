// `.q8` numerics: every product whose weights have a Q8 path (Q4_0, Q4_1, Q8_0) takes Q8 activations,
// as llama.cpp does; attention and the KV cache stay f32. Checked on the real SmolLM2 against
// Fixtures/llama_logits.json, along llama.cpp's own greedy paths, with the same bounds as
// LlamaGoldenTests (top-1 agreement ≥ llama.cpp's flash-attention-vs-default agreement − 0.02; mean
// and p99 |Δ logprob| over its top-5 ≤ 1.25× that spread), both ways a sequence can run:
// - token by token (decode products, one row each);
// - each whole sequence in one call (prompt-sized products: 20+ rows).

import Foundation
import Kernels
import Testing
@testable import Llama

@Suite(.serialized) struct NumericsQ8Tests {
    @Test func decodingStaysWithinLlamaCppsOwnSpread() throws {
        try checkAgainstLlamaCpp("token by token") { model, ids in
            let cache = model.makeCache()
            return try ids.map { try model.forward([$0], cache: cache) }
        }
    }

    @Test func wholeSequencesStayWithinLlamaCppsOwnSpread() throws {
        try checkAgainstLlamaCpp("in one call") { model, ids in
            let V = model.config.vocabularySize
            let all = try model.forward(ids, cache: model.makeCache(), logits: .all)
            return (0..<ids.count).map { Array(all[($0 * V)..<(($0 + 1) * V)]) }
        }
    }

    /// Runs every golden case's ids + greedy continuation through `logits` (one row per token) on a
    /// `.q8` model and holds the log-probabilities to llama.cpp's own spread.
    private func checkAgainstLlamaCpp(_ label: String,
                                      _ logits: (LlamaModel, [Int32]) throws -> [[Float]]) throws {
        let model = try LlamaModel(path: try testModelPath(), numerics: .q8)
        let V = model.config.vocabularySize
        var deltas: [Double] = [], selfSpread: [Double] = []
        var agree = 0, selfAgree = 0, positions = 0
        for c in try LogitsGolden.load().cases {
            let rows = try logits(model, c.ids + c.greedy).map { logSoftmax($0[0..<V]) }
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
        print("q8 \(label) vs llama.cpp: top-1 \(agreement) (FA: \(selfAgreement)); mean |Δ| \(mean) (FA: \(selfMean)); "
              + "p99 \(percentile(deltas, 0.99)) (FA: \(percentile(selfSpread, 0.99)))")
        #expect(agreement >= selfAgreement - 0.02, "\(label)")
        #expect(mean <= 1.25 * selfMean, "\(label)")
        #expect(percentile(deltas, 0.99) <= 1.25 * percentile(selfSpread, 0.99), "\(label)")
    }
}

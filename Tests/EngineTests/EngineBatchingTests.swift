// Continuous batching must not change what a sequence generates: every request run together with
// others (different adapters, prompts of different lengths, chunked prefill) gets exactly the
// tokens it gets alone, and those are the tokens of the single-sequence Generator.

import Foundation
import Generation
import Sampling
import Testing
@testable import Engine
import Llama
import LoRA

@Suite struct EngineBatchingTests {
    static let texts = [
        "Hello there, how are you?",
        "x",
        "The quick brown fox jumps over the lazy dog again and again, and then once more.",
        "abc abc abc",
    ]

    func requests(_ t: TinyFixtures.Loaded) -> [EngineRequest] {
        let adapterSets: [[AdapterUse]] = [[], [t.adapterA], [t.adapterB], [t.adapterA, t.adapterB]]
        var out: [EngineRequest] = []
        for (i, text) in Self.texts.enumerated() {
            let p = t.tokenizer.encode(text)
            for (j, a) in adapterSets.enumerated() where (i + j) % 2 == 0 || j == 0 {
                out.append(EngineRequest(queueKey: "k\(j)", adapters: a, prompt: p, sampling: greedy(maxTokens: 10)))
            }
        }
        return out
    }

    @Test func batchedEqualsAloneEqualsGenerator() throws {
        let t = try TinyFixtures.get()
        let reqs = requests(t)
        // Alone: one request at a time.
        var alone: [[Int32]] = []
        do {
            let d = EngineDriver(t, config: EngineConfig())
            for r in reqs {
                let id = try d.engine.submit(r)
                d.collect([id])
                let o = try #require(d.outcomes[id])
                #expect(o.failure == nil)
                alone.append(o.tokens)
            }
        }
        // The single-sequence generator agrees with the engine run alone.
        for (r, tokens) in zip(reqs, alone) {
            let g = Generator(model: t.model, tokenizer: t.tokenizer, parameters: r.sampling, adapters: r.adapters)
            let res = try g.generate(prompt: r.prompt)
            #expect(res.tokens == tokens, "generator and engine disagree for prompt of \(r.prompt.count) tokens")
        }
        // Together, with a small prefill chunk so prompts are split across steps while others decode.
        var config = EngineConfig()
        config.prefillChunk = 7
        config.prefixCache = false
        let d = EngineDriver(t, config: config)
        let ids = try reqs.map { try d.engine.submit($0) }
        d.collect(ids)
        for (i, id) in ids.enumerated() {
            #expect(d.outcomes[id]?.tokens == alone[i], "request \(i) changed when batched")
            #expect(d.outcomes[id]?.usage?.promptTokens == reqs[i].prompt.count)
        }
        #expect(d.batchSizes.contains { $0 > 1 }, "the requests never shared a step")
    }

    @Test func maxSequencesBoundsTheBatch() throws {
        let t = try TinyFixtures.get()
        var config = EngineConfig()
        config.maxSequences = 3
        let d = EngineDriver(t, config: config)
        let ids = try requests(t).map { try d.engine.submit($0) }
        d.collect(ids)
        #expect(d.batchSizes.allSatisfy { $0 <= 3 })
        #expect(d.batchSizes.contains(3))
        #expect(ids.allSatisfy { d.outcomes[$0]?.finish != nil })
    }
}

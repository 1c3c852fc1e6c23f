// The prefix cache: a second request sharing a long prefix reuses its KV (and says so in usage),
// generates exactly what it generates without the cache, and never reuses KV across adapters or
// scales. Also the prompt log-probabilities of `echo`, checked against a direct forward pass.

import Foundation
import Testing
@testable import Engine
import Llama
import LoRA

@Suite struct EnginePrefixCacheTests {
    static let system = "You are the support assistant of Acme. Answer briefly and politely. Never invent facts. "

    func run(_ d: EngineDriver, _ r: EngineRequest) throws -> Outcome {
        let id = try d.engine.submit(r)
        d.collect([id])
        return try #require(d.outcomes[id])
    }

    @Test func secondRequestReusesThePrefixAndGeneratesTheSame() throws {
        let t = try TinyFixtures.get()
        let p1 = t.tokenizer.encode(Self.system + "Where is my order?")
        let p2 = t.tokenizer.encode(Self.system + "How do I return a toaster?")
        let shared = zip(p1, p2).prefix { $0 == $1 }.count
        #expect(shared > 40)

        var off = EngineConfig()
        off.prefixCache = false
        let plain = EngineDriver(t, config: off)
        let expected = try run(plain, EngineRequest(queueKey: "a", adapters: [t.adapterA], prompt: p2, sampling: greedy(maxTokens: 12)))

        let d = EngineDriver(t)
        let first = try run(d, EngineRequest(queueKey: "a", adapters: [t.adapterA], prompt: p1, sampling: greedy(maxTokens: 12)))
        #expect(first.admittedCached == 0)
        #expect(first.usage?.cachedPromptTokens == 0)
        #expect(d.engine.stats().prefixCacheEntries == 1)
        #expect(d.engine.stats().kvBytesPrefixCache > 0)

        let second = try run(d, EngineRequest(queueKey: "a", adapters: [t.adapterA], prompt: p2, sampling: greedy(maxTokens: 12)))
        #expect(second.admittedCached == shared)
        #expect(second.usage?.cachedPromptTokens == shared)
        #expect(second.tokens == expected.tokens, "the cache changed the generated tokens")

        // The same prompt on another adapter, or the same adapter at another scale: no reuse.
        let other = try run(d, EngineRequest(queueKey: "b", adapters: [t.adapterB], prompt: p2, sampling: greedy(maxTokens: 4)))
        #expect(other.admittedCached == 0)
        let scaled = try run(d, EngineRequest(queueKey: "a", adapters: [AdapterUse(t.adapterA.adapter, scale: 0.5)],
                                              prompt: p2, sampling: greedy(maxTokens: 4)))
        #expect(scaled.admittedCached == 0)
        let base = try run(d, EngineRequest(queueKey: "base", prompt: p2, sampling: greedy(maxTokens: 4)))
        #expect(base.admittedCached == 0)
    }

    @Test func aConversationReusesItsEarlierTurn() throws {
        let t = try TinyFixtures.get()
        let d = EngineDriver(t)
        let turn1 = t.tokenizer.encode(Self.system + "Hi")
        let first = try run(d, EngineRequest(queueKey: "a", prompt: turn1, sampling: greedy(maxTokens: 6)))
        // The next prompt continues the first: its prompt, the reply, then more text.
        let turn2 = turn1 + first.tokens + t.tokenizer.encode(" and then?")
        let second = try run(d, EngineRequest(queueKey: "a", prompt: turn2, sampling: greedy(maxTokens: 4)))
        // Everything that went through the model in turn 1 is reused (all but its last sampled token).
        #expect(second.admittedCached == turn1.count + first.tokens.count - 1)
    }

    @Test func evictedUnderBudgetPressure() throws {
        let t = try TinyFixtures.get()
        var config = EngineConfig()
        let perPosition = 2 * t.model.config.layerCount * t.model.config.kvDim * 4
        config.kvBudgetBytes = perPosition * 200
        let d = EngineDriver(t, config: config)
        for i in 0..<6 {
            let prompt = t.tokenizer.encode("\(i) " + Self.system)
            let o = try run(d, EngineRequest(queueKey: "a", prompt: prompt, sampling: greedy(maxTokens: 4)))
            #expect(o.failure == nil, "request \(i) failed: \(String(describing: o.failure))")
            #expect(d.engine.budget.usedBytes <= config.kvBudgetBytes)
        }
        #expect(d.engine.stats().prefixCacheEntries < 6, "nothing was evicted")
    }

    /// Echo log-probabilities equal a log-softmax of the logits of one plain forward pass.
    @Test func promptLogprobsMatchADirectForwardPass() throws {
        let t = try TinyFixtures.get()
        let prompt = t.tokenizer.encode("The cat sat on the mat, the end.")
        var sampling = greedy(maxTokens: 1)
        sampling.topLogprobs = 3
        var config = EngineConfig()
        config.prefillChunk = 5   // several chunks, so rows from different steps are stitched together
        let d = EngineDriver(t, config: config)
        let o = try run(d, EngineRequest(queueKey: "a", adapters: [t.adapterB], prompt: prompt, sampling: sampling,
                                         promptLogprobs: true))
        let lp = try #require(o.promptLogprobs)
        #expect(lp.count == prompt.count)
        #expect(lp[0].logprob == nil)
        #expect(lp.map(\.id) == prompt)
        let vocab = t.model.config.vocabularySize
        let logits = try t.model.forward(prompt, cache: t.model.makeCache(), logits: .all, adapters: [t.adapterB])
        for k in 1..<prompt.count {
            let row = Array(logits[((k - 1) * vocab)..<(k * vocab)]).map(Double.init)
            let m = row.max()!
            let logZ = m + log(row.reduce(0) { $0 + exp($1 - m) })
            let want = row[Int(prompt[k])] - logZ
            // Tolerance: float32 log-sum-exp over a 267-entry row against float64; 1e-4 nats.
            #expect(abs(Double(lp[k].logprob!) - want) < 1e-4, "token \(k)")
            #expect(lp[k].top.count == 3)
            let best = row.indices.max { row[$0] < row[$1] }!
            #expect(lp[k].top.first?.id == Int32(best))
        }
        #expect(o.usage?.cachedPromptTokens == 0)
    }
}

// KV memory under pressure (issue 18): a request is admitted only when the budget holds its whole
// worst case (prompt + max_tokens) beside what every live sequence may still grow to, so memory
// pressure makes later requests wait and never ends a running sequence, whichever key (tenant) the
// later request has; a request that not even an idle engine could hold fails at once with a message
// that says what to change.

import Foundation
import Testing
@testable import Engine
import Llama
import Sampling

@Suite struct EngineKVBudgetTests {
    /// Admitted, finished and failed events in the order the engine sent them.
    final class Timeline {
        var log: [String] = []
        func record(_ id: UInt64, _ event: EngineEvent) {
            switch event {
            case .admitted: log.append("admitted \(id)")
            case .finished: log.append("finished \(id)")
            case .failed(let e): log.append("failed \(id): \(e)")
            default: break
            }
        }
    }

    func perPosition(_ t: TinyFixtures.Loaded) -> Int { 2 * t.model.config.layerCount * t.model.config.kvDim * 4 }

    /// Room for 100 positions. Tenant a runs 20 prompt tokens + 40 to generate (60 set aside);
    /// tenant b's 30 + 20 (50) does not fit beside it and waits until a's sequence ends, which then
    /// has every token it asked for. Before this rule b was admitted at once (its prompt fitted) and
    /// one of the two ran out of memory while growing.
    @Test func aRequestThatDoesNotFitBesideARunningOneWaitsInsteadOfEndingIt() throws {
        let t = try TinyFixtures.get()
        var config = EngineConfig()
        config.kvBudgetBytes = perPosition(t) * 100
        config.prefixCache = false
        let d = EngineDriver(t, config: config)
        var noEnd = greedy(maxTokens: 40)
        for eog in t.tokenizer.eogTokens { noEnd.logitBias[eog] = -.infinity }   // a runs to its max_tokens
        let promptA = Array(t.tokenizer.encode(String(repeating: "a cat ", count: 40)).prefix(20))
        let promptB = Array(t.tokenizer.encode(String(repeating: "the dog ", count: 40)).prefix(30))
        #expect(promptA.count == 20 && promptB.count == 30)
        let timeline = Timeline()
        let a = try d.engine.submit(EngineRequest(queueKey: "a", prompt: promptA, sampling: noEnd))
        let deadline = Date().addingTimeInterval(30)
        while d.outcomes[a]?.admittedCached == nil && Date() < deadline {
            d.absorb(d.engine.drainEvents(), onEvent: timeline.record)
            Thread.sleep(forTimeInterval: 0.002)
        }
        let b = try d.engine.submit(EngineRequest(queueKey: "b", prompt: promptB, sampling: greedy(maxTokens: 20)))
        d.collect([a, b], onEvent: timeline.record)
        let log = timeline.log
        #expect(d.outcomes[a]?.failure == nil && d.outcomes[b]?.failure == nil, "\(log)")
        #expect(d.outcomes[a]?.tokens.count == 40, "a got every token it asked for")
        let finishedA = log.firstIndex(of: "finished \(a)"), admittedB = log.firstIndex(of: "admitted \(b)")
        #expect(finishedA != nil && admittedB != nil && finishedA! < admittedB!, "b waited for a: \(log)")
        #expect(d.engine.budget.usedBytes <= config.kvBudgetBytes)
    }

    /// The rule sets aside worst cases, not whole contexts: two requests whose worst cases fit
    /// together run at once.
    @Test func requestsWhoseWorstCasesFitTogetherRunTogether() throws {
        let t = try TinyFixtures.get()
        var config = EngineConfig()
        config.kvBudgetBytes = perPosition(t) * 100
        config.prefixCache = false
        let d = EngineDriver(t, config: config)
        let prompt = Array(t.tokenizer.encode(String(repeating: "a cat ", count: 40)).prefix(20))
        var noEnd = greedy(maxTokens: 25)
        for eog in t.tokenizer.eogTokens { noEnd.logitBias[eog] = -.infinity }   // both run 25 steps: b arrives while a runs
        let timeline = Timeline()
        let ids = try ["a", "b"].map { try d.engine.submit(EngineRequest(queueKey: $0, prompt: prompt, sampling: noEnd)) }
        d.collect(ids, onEvent: timeline.record)
        let log = timeline.log
        #expect(ids.allSatisfy { d.outcomes[$0]?.failure == nil }, "\(log)")
        let bothAdmitted = ids.compactMap { log.firstIndex(of: "admitted \($0)") }.max()
        let firstFinished = ids.compactMap { log.firstIndex(of: "finished \($0)") }.min()
        #expect(bothAdmitted != nil && firstFinished != nil && bothAdmitted! < firstFinished!, "they ran together: \(log)")
    }

    /// Nothing running and still no room: 20 + 200 positions in a budget of 100 fails at once, saying
    /// what it needs and what to change (the server answers 503).
    @Test func aRequestNoIdleEngineCouldHoldFailsAtOnce() throws {
        let t = try TinyFixtures.get()
        var config = EngineConfig()
        config.kvBudgetBytes = perPosition(t) * 100
        let d = EngineDriver(t, config: config)
        let prompt = Array(t.tokenizer.encode(String(repeating: "a cat ", count: 40)).prefix(20))
        let id = try d.engine.submit(EngineRequest(queueKey: "a", prompt: prompt, sampling: greedy(maxTokens: 200)))
        d.collect([id])
        guard case .kvBudgetExhausted(let message)? = d.outcomes[id]?.failure else {
            Issue.record("expected kvBudgetExhausted, got \(String(describing: d.outcomes[id]))")
            return
        }
        #expect(message.contains("220 positions") && message.contains("max_tokens") && message.contains("engine.kv_budget"), "\(message)")
        #expect(d.outcomes[id]?.tokens.isEmpty == true)
    }
}

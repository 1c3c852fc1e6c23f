// The engine's scheduling: queue limits, round-robin admission across adapters, cancellation that
// returns KV memory, pausing a sequence whose reader is behind, shutdown.

import Foundation
import Sampling
import Testing
@testable import Engine
import Llama

@Suite struct EngineSchedulingTests {
    func request(_ t: TinyFixtures.Loaded, key: String, text: String = "Hello", maxTokens: Int = 8) -> EngineRequest {
        EngineRequest(queueKey: key, prompt: t.tokenizer.encode(text), sampling: greedy(maxTokens: maxTokens))
    }

    @Test func queueLimitsRefuseAtOnce() throws {
        let t = try TinyFixtures.get()
        var config = EngineConfig()
        config.queueLimit = 5
        config.perAdapterQueueLimit = 3
        // Build the engine but do not start it, so nothing leaves the queue.
        let engine = Engine(model: t.model, tokenizer: t.tokenizer, config: config, wake: {})
        for _ in 0..<3 { _ = try engine.submit(request(t, key: "a")) }
        #expect(throws: EngineError.queueFull(limit: 3, perAdapter: true)) { try engine.submit(request(t, key: "a")) }
        for _ in 0..<2 { _ = try engine.submit(request(t, key: "b")) }
        #expect(throws: EngineError.queueFull(limit: 5, perAdapter: false)) { try engine.submit(request(t, key: "c")) }
        #expect(engine.stats().queuedRequests == 5)
    }

    @Test func badRequestsAreRefusedAtSubmit() throws {
        let t = try TinyFixtures.get()
        var config = EngineConfig()
        config.contextLimit = 16
        let engine = Engine(model: t.model, tokenizer: t.tokenizer, config: config, wake: {})
        #expect(throws: EngineError.prompt(.empty)) {
            try engine.submit(EngineRequest(queueKey: "a", prompt: [], sampling: .greedy))
        }
        #expect(throws: EngineError.prompt(.tooLong(tokens: 16, limit: 16))) {
            try engine.submit(EngineRequest(queueKey: "a", prompt: Array(repeating: 65, count: 16), sampling: .greedy))
        }
        #expect(throws: EngineError.self) {
            try engine.submit(EngineRequest(queueKey: "a", prompt: [99_999], sampling: .greedy))
        }
        var bad = SamplingParameters.greedy
        bad.topP = 7
        #expect(throws: EngineError.self) {
            try engine.submit(EngineRequest(queueKey: "a", prompt: [65], sampling: bad))
        }
    }

    /// With one slot, ten requests on adapter "a" queued before one on "b": "b" runs second, not last.
    @Test func admissionIsRoundRobinAcrossKeys() throws {
        let t = try TinyFixtures.get()
        var config = EngineConfig()
        config.maxSequences = 1
        config.perAdapterQueueLimit = 20
        let engine = Engine(model: t.model, tokenizer: t.tokenizer, config: config, wake: {})
        let flood = try (0..<10).map { _ in try engine.submit(request(t, key: "a", maxTokens: 2)) }
        let other = try engine.submit(request(t, key: "b", maxTokens: 2))
        let d = EngineDriver(engine: engine)
        var admissionOrder: [UInt64] = []
        d.collect(flood + [other]) { id, event in
            if case .admitted = event { admissionOrder.append(id) }
        }
        #expect(admissionOrder.firstIndex(of: other) == 1, "admission order: \(admissionOrder)")
    }

    @Test func cancelFreesTheSequenceAndItsMemory() throws {
        let t = try TinyFixtures.get()
        var config = EngineConfig()
        config.prefixCache = false
        let d = EngineDriver(t, config: config)
        #expect(d.engine.stats().kvBytesSequences == 0)
        // Paused from the start (as a slow reader would be), so it is surely live when cancelled:
        // it prefills and samples its first token, then waits. (Pausing after submit raced the
        // engine thread, which could finish it first on a loaded machine.)
        var held = request(t, key: "a", maxTokens: 400)
        held.startsPaused = true
        let long = try d.engine.submit(held)
        let short = try d.engine.submit(request(t, key: "b", maxTokens: 3))
        d.collect([short])
        let deadline = Date().addingTimeInterval(30)
        while (d.outcomes[long]?.tokens.count ?? 0) < 1 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.005)
            d.absorb(d.engine.drainEvents())
        }
        #expect(d.engine.stats().liveSequences == 1)
        #expect(d.engine.stats().kvBytesSequences > 0)
        d.engine.cancel(long)
        let freed = Date().addingTimeInterval(10)
        while (d.engine.stats().liveSequences > 0 || d.engine.stats().kvBytesSequences > 0) && Date() < freed {
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(d.engine.stats().liveSequences == 0)
        #expect(d.engine.stats().kvBytesSequences == 0)
        #expect(d.engine.budget.usedBytes == 0, "KV memory not returned to the budget")
        d.absorb(d.engine.drainEvents())
        #expect(d.outcomes[long]?.finish == nil, "a cancelled request must not finish normally")
        #expect(d.outcomes[long]?.tokens.count == 1)
    }

    @Test func pausedSequenceWaitsWhileOthersRun() throws {
        let t = try TinyFixtures.get()
        let d = EngineDriver(t)
        var held = request(t, key: "a", maxTokens: 50)
        held.startsPaused = true   // a setPaused after submit could come after many steps
        let slow = try d.engine.submit(held)
        let fast = try d.engine.submit(request(t, key: "b", maxTokens: 20))
        d.collect([fast])
        let tokensWhilePaused = d.outcomes[slow]?.tokens.count ?? 0
        #expect(tokensWhilePaused <= 1, "a paused sequence kept decoding: \(tokensWhilePaused) tokens")
        d.engine.setPaused(slow, false)
        d.collect([slow])
        #expect(d.outcomes[slow]?.finish != nil)
    }

    @Test func shutdownFailsWhatIsLeft() throws {
        let t = try TinyFixtures.get()
        let d = EngineDriver(t)
        let id = try d.engine.submit(request(t, key: "a", maxTokens: 100_000))
        d.engine.beginDrain()
        #expect(throws: EngineError.shuttingDown) { try d.engine.submit(request(t, key: "a")) }
        d.engine.shutdown()
        d.absorb(d.engine.drainEvents())
        let o = d.outcomes[id]
        #expect(o?.failure == .shuttingDown || o?.finish != nil)
    }
}

/// A quiet key's first sequence is prefilled in steps of its own, without the busy key's decode
/// rows, but only every other step (Engine.step). Two busy sequences decode; a 40-token prompt of
/// another key arrives with 16-token prefill chunks: its chunks run alone, with the decoders, alone
/// (16, 16, 8), so each busy sequence gets exactly one token between the quiet one's admission and
/// its first token. Without the rule they get one per chunk (three); with a prefill step every step,
/// none.
@Suite struct EnginePrefillFirstTests {
    func tokensBetweenAdmissionAndFirstToken(prefillFirst: Bool, asksForIt: Bool = true) throws -> [Int] {
        let t = try TinyFixtures.get()
        var config = EngineConfig()
        config.prefillChunk = 16
        config.prefillFirst = prefillFirst
        config.prefixCache = false
        let d = EngineDriver(t, config: config)
        var long = greedy(maxTokens: 200)
        for eog in t.tokenizer.eogTokens { long.logitBias[eog] = -.infinity }
        let busy = try (0..<2).map { _ in try d.engine.submit(EngineRequest(queueKey: "busy", prompt: t.tokenizer.encode("Hello"), sampling: long)) }
        let deadline = Date().addingTimeInterval(30)
        while busy.contains(where: { (d.outcomes[$0]?.tokens.count ?? 0) < 2 }) && Date() < deadline {
            d.absorb(d.engine.drainEvents())
            Thread.sleep(forTimeInterval: 0.001)
        }
        let prompt = Array(t.tokenizer.encode(String(repeating: "a quiet cat ", count: 20)).prefix(40))
        #expect(prompt.count == 40)
        var request = EngineRequest(queueKey: "quiet", prompt: prompt, sampling: greedy(maxTokens: 1))
        request.prefillFirst = asksForIt
        let quiet = try d.engine.submit(request)
        var admitted = false, first = false
        var between = [busy[0]: 0, busy[1]: 0]
        d.collect([quiet]) { id, event in
            switch event {
            case .admitted where id == quiet: admitted = true
            case .token where id == quiet: first = true
            case .token where admitted && !first: between[id, default: 0] += 1
            default: break
            }
        }
        for id in busy { d.engine.cancel(id) }
        return busy.map { between[$0]! }
    }

    @Test func aQuietKeysPrefillRunsAloneEveryOtherStep() throws {
        #expect(try tokensBetweenAdmissionAndFirstToken(prefillFirst: true) == [1, 1])
        #expect(try tokensBetweenAdmissionAndFirstToken(prefillFirst: false) == [3, 3])
        // A request that does not ask for it (the server's without tenants) shares its steps.
        #expect(try tokensBetweenAdmissionAndFirstToken(prefillFirst: true, asksForIt: false) == [3, 3])
    }
}

// Shared pieces of the engine tests: the tiny chat model and adapters that scripts/goldens/tiny_chat.py
// writes into Tests/Fixtures/tiny_chat (shared with the server tests, read in place), and a driver
// that runs an engine to completion and collects each request's events.

import Foundation
import Sampling
import Testing
import Engine
import Llama
import LoRA
import ModelFormats
import Tokenizer

enum TinyFixtures {
    static func url(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tiny_chat/\(name)")
    }

    /// Loaded once: the model, its tokenizer and two adapters.
    struct Loaded: Sendable {
        let model: LlamaModel
        let tokenizer: Tokenizer
        let adapterA: AdapterUse
        let adapterB: AdapterUse
    }

    static let loaded: Result<Loaded, any Error> = Result {
        let gguf = try GGUFFile(path: url("model.gguf").path)
        let model = try LlamaModel(gguf: gguf, threads: 2)
        let tokenizer = try Tokenizer(gguf: gguf)
        let base = try BaseModelInfo(gguf: gguf)
        let a = try LoRAAdapter.load(path: url("adapters/alpha").path, name: "alpha", base: base)
        let b = try LoRAAdapter.load(path: url("adapters/beta.gguf").path, name: "beta", base: base)
        return Loaded(model: model, tokenizer: tokenizer, adapterA: AdapterUse(a), adapterB: AdapterUse(b, scale: 0.7))
    }

    static func get() throws -> Loaded { try loaded.get() }
}

/// What one request produced.
struct Outcome: Sendable {
    var admittedCached: Int?
    var tokens: [Int32] = []
    var text = ""
    var finish: FinishReason?
    var usage: EngineUsage?
    var failure: EngineError?
    var promptLogprobs: [PromptTokenLogprob]?
    var done: Bool { finish != nil || failure != nil }
}

/// Runs an engine on the test's requests and collects events until every request has ended.
final class EngineDriver: @unchecked Sendable {
    // @unchecked: `outcomes` is touched only by the test thread (in `collect`); the semaphore is thread-safe.
    let engine: Engine
    private let woken = DispatchSemaphore(value: 0)
    var outcomes: [UInt64: Outcome] = [:]
    var batchSizes: [Int] = []

    init(_ loaded: TinyFixtures.Loaded, config: EngineConfig = EngineConfig()) {
        let sem = woken
        engine = Engine(model: loaded.model, tokenizer: loaded.tokenizer, config: config, wake: { sem.signal() })
        engine.start()
    }

    /// Starts an engine built by the test (for example with requests queued before it runs). It
    /// wakes nobody, so `collect` polls.
    init(engine: Engine) {
        self.engine = engine
        engine.start()
    }

    deinit { engine.shutdown() }

    /// Drains events until `ids` have all ended or `timeout` passes (then the test fails).
    func collect(_ ids: [UInt64], timeout: Double = 60, onEvent: ((UInt64, EngineEvent) -> Void)? = nil) {
        let deadline = Date().addingTimeInterval(timeout)
        while !ids.allSatisfy({ outcomes[$0]?.done == true }) {
            guard Date() < deadline else {
                Issue.record("requests did not finish within \(timeout) s")
                return
            }
            _ = woken.wait(timeout: .now() + 0.05)
            absorb(engine.drainEvents(), onEvent: onEvent)
        }
    }

    func absorb(_ out: EngineOutput, onEvent: ((UInt64, EngineEvent) -> Void)? = nil) {
        batchSizes += out.batchSizes
        for (id, event) in out.events {
            var o = outcomes[id] ?? Outcome()
            switch event {
            case .admitted(let cached): o.admittedCached = cached
            case .promptLogprobs(let lp): o.promptLogprobs = lp
            case .token(let t, let text):
                o.tokens.append(t.id)
                o.text += text
            case .finished(let reason, let text, let usage):
                o.text += text
                o.finish = reason
                o.usage = usage
            case .failed(let e): o.failure = e
            }
            outcomes[id] = o
            onEvent?(id, event)
        }
    }
}

func greedy(maxTokens: Int) -> SamplingParameters {
    var p = SamplingParameters.greedy
    p.maxTokens = maxTokens
    return p
}

// Regex constraints in the sampling chain, on the real model (LORAD_TEST_MODEL, SmolLM2-135M
// Instruct): what a constrained sequence generates matches its pattern whole (checked with
// NSRegularExpression, an independent matcher) and ends with end of generation once it matches, greedy
// and sampled alike; and a constraint is per sequence: a free sequence batched with a constrained
// one generates exactly what it generates alone.

import Foundation
import Generation
import Sampling
import Testing
@testable import Engine
import Llama
import Tokenizer

enum RealModel {
    static let loaded: Result<ModelBundle, any Error> = Result {
        guard let path = ProcessInfo.processInfo.environment["LORAD_TEST_MODEL"], !path.isEmpty,
              FileManager.default.fileExists(atPath: path) else {
            throw ConstraintTestSetup(description: "LORAD_TEST_MODEL is not set or missing: set it to the SmolLM2-135M-Instruct "
                + "Q4_1 GGUF (e.g. LORAD_TEST_MODEL=$PWD/models/SmolLM2-135M-Instruct.Q4_1.gguf; `make model` fetches it)")
        }
        return try ModelBundle(path: path, threads: 2)
    }

    static func get() throws -> ModelBundle { try loaded.get() }
}

struct ConstraintTestSetup: Error, CustomStringConvertible {
    let description: String
}

/// Whether `text` is a whole match of `pattern`, by Foundation's regex engine.
func wholeMatch(_ pattern: String, _ text: String) throws -> Bool {
    let re = try NSRegularExpression(pattern: "^(?:" + pattern + ")$")
    return re.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
}

@Suite(.serialized) struct EngineConstraintTests {
    /// (pattern, bounded: every match is followed only by end of generation, so a run must stop).
    static let patterns: [(String, Bool)] = [
        (#"\d{3}-\d{4}"#, true),
        ("(yes|no|maybe)", true),
        ("[A-Z][a-z]+( [A-Z][a-z]+)*", false),
        (#"(Order|Ticket) #[0-9]{4,6}"#, true),
    ]

    /// `text` as a user turn in SmolLM2's chat format, the assistant's turn opened.
    func prompt(_ b: ModelBundle, _ text: String) throws -> [Int32] {
        b.tokenizer.encode("<|im_start|>user\n\(text)<|im_end|>\n<|im_start|>assistant\n", parseSpecial: true)
    }

    @Test(arguments: [Float(0), 1])
    func generatorOutputMatchesThePattern(temperature: Float) throws {
        let b = try RealModel.get()
        let prompts = ["What is your phone number?", "Is the sky green? Answer yes, no or maybe.", "Name a famous city."]
        for (pattern, bounded) in Self.patterns {
            let constraint = try b.constraints.compile(pattern)
            for (i, text) in prompts.enumerated() {
                var p = SamplingParameters(temperature: temperature, seed: UInt64(17 + i), maxTokens: 40)
                p.constraint = constraint
                let g = Generator(model: b.model, tokenizer: b.tokenizer, parameters: p)
                let r = try g.generate(prompt: try prompt(b, text))
                let last = try #require(r.tokens.last)
                if r.finishReason == .stop {
                    #expect(b.tokenizer.eogTokens.contains(last), "\(pattern): stopped on \(last), not end of generation")
                    #expect(try wholeMatch(pattern, r.text), "\(pattern) at T=\(temperature): \(r.text.debugDescription) does not match")
                } else {
                    // Only an unbounded pattern may run out of tokens, and what it has is a prefix of a match.
                    #expect(!bounded, "\(pattern) at T=\(temperature) did not stop: \(r.text.debugDescription)")
                    var state = constraint.makeState()
                    for t in r.tokens { state.advance(t) }
                    #expect(!state.isDead, "\(pattern): \(r.text.debugDescription) is not a prefix of a match")
                }
            }
        }
    }

    @Test func choiceOutputIsOneOfTheChoices() throws {
        let b = try RealModel.get()
        let choices = ["refund", "exchange", "repair (in store)", "a+b?"]
        let constraint = try b.constraints.compile(TokenConstraint.choicePattern(choices))
        for seed in UInt64(0)..<4 {
            var p = SamplingParameters(temperature: 1, seed: seed, maxTokens: 20)
            p.constraint = constraint
            let r = try Generator(model: b.model, tokenizer: b.tokenizer, parameters: p)
                .generate(prompt: try prompt(b, "My toaster broke. What do you offer?"))
            #expect(r.finishReason == .stop)
            #expect(choices.contains(r.text), "\(r.text.debugDescription) is not one of the choices")
        }
    }

    @Test func theMaskComesBeforeGreedyAndEndOfGenerationOnlyWhenAccepted() throws {
        let b = try RealModel.get()
        let constraint = try b.constraints.compile(#"\d{3}"#)
        var state = constraint.makeState()
        var allowed = state.allowed()
        #expect(!allowed.allowEnd)
        for id in b.tokenizer.eogTokens { #expect(!allowed.contains(id)) }
        // Logits that favour end of generation and a letter: greedy must still pick a digit token.
        var logits = [Float](repeating: 0, count: b.model.config.vocabularySize)
        for id in b.tokenizer.eogTokens { logits[Int(id)] = 100 }
        logits[Int(b.tokenizer.encode("a", addBOS: false)[0])] = 50
        var sampler = try Sampler(parameters: .greedy, vocabularySize: logits.count)
        let first = sampler.sample(logits: logits, allowed: allowed).id
        #expect(allowed.contains(first))
        let piece = String(decoding: b.tokenizer.piece(first), as: UTF8.self)
        #expect(piece.allSatisfy { $0.isNumber }, "\(piece.debugDescription)")
        // After three digits only end of generation remains.
        for t in b.tokenizer.encode("123", addBOS: false) { state.advance(t) }
        allowed = state.allowed()
        #expect(allowed.allowEnd && allowed.mask.isEmpty)
        logits = [Float](repeating: 5, count: logits.count)
        let end = sampler.sample(logits: logits, allowed: allowed).id
        #expect(b.tokenizer.eogTokens.contains(end))
    }

    @Test func aFreeSequenceBatchedWithAConstrainedOneIsUnchanged() throws {
        let b = try RealModel.get()
        let free = EngineRequest(queueKey: "free", prompt: try prompt(b, "Tell me about the moon."), sampling: greedy(maxTokens: 24))
        var constrainedSampling = greedy(maxTokens: 24)
        constrainedSampling.constraint = try b.constraints.compile(#"\d{3}-\d{4}"#)
        let constrained = EngineRequest(queueKey: "constrained", prompt: try prompt(b, "Tell me about the moon."),
                                        sampling: constrainedSampling)
        var config = EngineConfig()
        config.prefixCache = false
        config.contextLimit = 512
        config.kvBudgetBytes = 64 << 20

        func run(_ requests: [EngineRequest]) throws -> ([Outcome], [Int]) {
            let d = EngineDriver(engine: Engine(model: b.model, tokenizer: b.tokenizer, config: config, wake: {}))
            let ids = try requests.map { try d.engine.submit($0) }
            d.collect(ids, timeout: 120)
            return (try ids.map { try #require(d.outcomes[$0]) }, d.batchSizes)
        }
        let (alone, _) = try run([free])
        let (together, sizes) = try run([free, constrained])
        #expect(sizes.contains { $0 > 1 }, "the two sequences never shared a step")
        #expect(together[0].tokens == alone[0].tokens, "the free sequence changed when batched with a constrained one")
        #expect(together[0].text == alone[0].text)
        #expect(together[1].finish == .stop)
        #expect(try wholeMatch(#"\d{3}-\d{4}"#, together[1].text), "\(together[1].text.debugDescription)")
        // The engine's constrained sequence is the single-sequence generator's.
        let g = try Generator(model: b.model, tokenizer: b.tokenizer, parameters: constrainedSampling).generate(prompt: constrained.prompt)
        #expect(g.tokens == together[1].tokens)
    }
}

// Behaviour of the sampler on hand-made inputs: greedy, seeds, the draw's distribution, logit
// bias, penalty math, log-probabilities, parameter validation, and the fast paths against their
// plain references. The llama.cpp comparison is in SamplerGoldenTests.

import Foundation
import Testing
@testable import Sampling

struct SamplerTests {
    /// Deterministic test logits: a fixed-seed generator, normal-ish values.
    static func randomLogits(_ n: Int, seed: UInt64, scale: Float = 3) -> [Float] {
        var g = SamplerRandom(seed: seed)
        return (0..<n).map { _ in
            // Sum of four uniforms: cheap, bell-shaped, no ties in practice.
            var s = 0.0
            for _ in 0..<4 { s += g.nextUnitDouble() }
            return Float(s - 2) * scale
        }
    }

    static let plain = SamplingParameters(temperature: 1, topK: 0, topP: 1, minP: 0)

    @Test func defaultsAreLlamaCpps() {
        let p = SamplingParameters()
        #expect(p.temperature == 0.8 && p.topK == 40 && p.topP == 0.95 && p.minP == 0.05)
        #expect(p.repeatPenalty == 1 && p.repeatLastN == 64 && p.frequencyPenalty == 0 && p.presencePenalty == 0)
        #expect(p.seed == nil && p.logitBias.isEmpty && p.maxTokens == nil && p.stop.isEmpty && p.topLogprobs == nil)
        #expect(SamplingParameters.greedy.isGreedy && !p.isGreedy)
    }

    @Test func greedyIsArgmax() throws {
        for seed in UInt64(0)..<20 {
            let logits = Self.randomLogits(1000 + Int(seed) * 37, seed: seed)
            var s = try Sampler(parameters: .greedy, vocabularySize: logits.count)
            let expected = logits.indices.max { logits[$0] < logits[$1] }!
            #expect(s.sample(logits: logits).id == Int32(expected))
        }
    }

    @Test func greedyTiesGoToTheLowestId() throws {
        var s = try Sampler(parameters: .greedy, vocabularySize: 6)
        #expect(s.sample(logits: [0, 3, 1, 3, 3, -1]).id == 1)
    }

    @Test func greedyShortcutAgreesWithTheFullChain() throws {
        // The argmax shortcut in `sample` against llama.cpp's temp <= 0 branch run through every
        // stage, with penalties and a bias so the winner is not simply the raw argmax.
        for seed in UInt64(0)..<10 {
            let logits = Self.randomLogits(3000, seed: 100 + seed)
            let top = Int32(logits.indices.max { logits[$0] < logits[$1] }!)
            var p = SamplingParameters.greedy
            p.repeatPenalty = 1.4
            p.presencePenalty = 0.5
            p.logitBias = [top: -3, 7: 4]
            var s = try Sampler(parameters: p, vocabularySize: logits.count)
            s.accept(contentsOf: [top, 12, 12, 99])
            let chain = s.stageSnapshots(logits: logits)[.temperature]!
            let finite = chain.filter { $0.logit > -.infinity }
            #expect(finite.count == 1)
            #expect(s.sample(logits: logits).id == finite.first?.id)
        }
    }

    @Test func sameSeedSameTokensDifferentSeedDifferentTokens() throws {
        let logits = Self.randomLogits(2000, seed: 5, scale: 1.5)
        func run(_ seed: UInt64) throws -> [Int32] {
            var p = SamplingParameters(topK: 0, topP: 1, minP: 0)
            p.seed = seed
            var s = try Sampler(parameters: p, vocabularySize: logits.count)
            return (0..<64).map { _ in
                let t = s.sample(logits: logits).id
                s.accept(t)
                return t
            }
        }
        #expect(try run(42) == run(42))
        #expect(try run(42) != run(43))
        // No seed: a fresh one per sampler, reported so the run can be repeated.
        let a = try Sampler(parameters: SamplingParameters(), vocabularySize: 10)
        let b = try Sampler(parameters: SamplingParameters(), vocabularySize: 10)
        #expect(a.seed != b.seed)
        var replay = SamplingParameters()
        replay.seed = a.seed
        var s1 = a, s2 = try Sampler(parameters: replay, vocabularySize: 10)
        let small = Array(logits.prefix(10))
        for _ in 0..<20 { #expect(s1.sample(logits: small).id == s2.sample(logits: small).id) }
    }

    /// Pearson's chi-square of observed counts against expected probabilities.
    static func chiSquare(_ counts: [Int], _ probs: [Double]) -> Double {
        let n = Double(counts.reduce(0, +))
        return zip(counts, probs).reduce(0) { acc, cp in
            let e = n * cp.1
            return acc + (Double(cp.0) - e) * (Double(cp.0) - e) / e
        }
    }

    @Test(arguments: [Float(1.0), 0.5, 1.7])
    func drawFollowsTheTemperedSoftmax(temperature: Float) throws {
        // 20000 draws from 5 tokens with a fixed seed. Threshold 18.47 is the chi-square 0.999
        // quantile for 4 degrees of freedom: a correct sampler stays below it for 99.9% of seeds
        // (this seed is fixed, so the test is deterministic), while an off-by-one in the cumulative
        // search or a missing temperature gives values in the hundreds.
        let logits: [Float] = [1.0, 0.5, 0.0, -0.5, 2.0]
        var p = Self.plain
        p.temperature = temperature
        p.seed = 2024
        var s = try Sampler(parameters: p, vocabularySize: 5)
        var counts = [Int](repeating: 0, count: 5)
        for _ in 0..<20000 { counts[Int(s.sample(logits: logits).id)] += 1 }
        let e = logits.map { exp(Double($0) / Double(temperature)) }
        let z = e.reduce(0, +)
        let chi = Self.chiSquare(counts, e.map { $0 / z })
        #expect(chi < 18.47, "chi-square \(chi) for counts \(counts)")
    }

    @Test func truncatedTokensAreNeverDrawn() throws {
        // top-k 2 of [3, 2.9, 0, ...]: only ids 0 and 1, in proportion e^0.1 : 1.
        var p = Self.plain
        p.topK = 2
        p.seed = 9
        var s = try Sampler(parameters: p, vocabularySize: 6)
        var counts = [Int](repeating: 0, count: 6)
        for _ in 0..<20000 { counts[Int(s.sample(logits: [3, 2.9, 0, 2.8, -1, 1]).id)] += 1 }
        #expect(counts[2] + counts[3] + counts[4] + counts[5] == 0)
        let p0 = exp(0.1) / (exp(0.1) + 1)
        // 1 degree of freedom, 0.999 quantile 10.83.
        #expect(Self.chiSquare([counts[0], counts[1]], [p0, 1 - p0]) < 10.83, "\(counts)")
    }

    @Test(arguments: [-Float.infinity, -100])
    func logitBiasBansAToken(bias: Float) throws {
        let logits: [Float] = [0.5, 4, 1, 0, -0.5, 2]
        var greedy = SamplingParameters.greedy
        greedy.logitBias = [1: bias]
        var g = try Sampler(parameters: greedy, vocabularySize: logits.count)
        #expect(g.sample(logits: logits).id == 5)

        var p = Self.plain
        p.logitBias = [1: bias]
        p.seed = 3
        var s = try Sampler(parameters: p, vocabularySize: logits.count)
        for _ in 0..<5000 { #expect(s.sample(logits: logits).id != 1) }
    }

    @Test func positiveBiasPromotesAToken() throws {
        var p = SamplingParameters.greedy
        p.logitBias = [4: 5]
        var s = try Sampler(parameters: p, vocabularySize: 5)
        #expect(s.sample(logits: [0, 1, 2, 3, -1.5]).id == 4)   // -1.5 + 5 = 3.5 > 3
    }

    @Test func penaltiesFollowLlamaCppsFormula() throws {
        // Hand-computed (FORMATS.md §7.1), window of the last 5 tokens [0, 0, 1, 0, 2]:
        //   id 0 (logit 2, count 3):  2 / 2 = 1,      1 - (3·0.5 + 0.25) = -0.75
        //   id 1 (logit -1, count 1): -1 · 2 = -2,   -2 - (0.5 + 0.25)    = -2.75
        //   id 2 (logit 0, count 1):   0 · 2 = 0,     0 - 0.75            = -0.75
        //   id 3 was pushed out of the window; ids 4 and 5 never occurred: unchanged.
        var p = Self.plain
        p.repeatPenalty = 2
        p.frequencyPenalty = 0.5
        p.presencePenalty = 0.25
        p.repeatLastN = 5
        var s = try Sampler(parameters: p, vocabularySize: 6)
        s.accept(contentsOf: [3, 0, 0, 1, 0, 2])
        #expect(s.penaltyWindow == [0, 0, 1, 0, 2])
        let got = s.stageSnapshots(logits: [2, -1, 0, 3, 0.5, -2])[.penalties]!.map(\.logit)
        #expect(got == [-0.75, -2.75, -0.75, 3, 0.5, -2])
    }

    @Test func frequencyAndPresenceAreAdditiveAsInOpenAI() throws {
        // repeat 1: only mu -= c·freq + (c > 0)·presence.
        var p = Self.plain
        p.frequencyPenalty = -1
        p.presencePenalty = 2
        var s = try Sampler(parameters: p, vocabularySize: 3)
        s.accept(contentsOf: [1, 1, 1, 2])
        let got = s.stageSnapshots(logits: [1, 1, 1])[.penalties]!.map(\.logit)
        // id 1: 1 - (3·(-1) + 2) = 2;  id 2: 1 - (1·(-1) + 2) = 0
        #expect(got == [1, 2, 0] as [Float])
    }

    @Test func penaltiesOffWhenWindowIsZeroOrNeutral() throws {
        for p in [SamplingParameters(repeatPenalty: 2, repeatLastN: 0),
                  SamplingParameters(repeatPenalty: 1, repeatLastN: 64)] {
            var s = try Sampler(parameters: p, vocabularySize: 3)
            s.accept(contentsOf: [0, 1, 2])
            #expect(s.stageSnapshots(logits: [1, -1, 2])[.penalties]!.map(\.logit) == [1, -1, 2])
        }
    }

    @Test func penaltyWindowIsARingOfTheLastN() {
        var w = PenaltyWindow(capacity: 3)
        for t: Int32 in [5, 6, 5, 7, 5, 8] { w.push(t) }
        #expect(w.tokens == [7, 5, 8])
        #expect(w.counts == [7: 1, 5: 1, 8: 1])
    }

    @Test func logprobsAreTheRawLogSoftmax() throws {
        let logits = Self.randomLogits(20, seed: 77)
        var p = SamplingParameters(temperature: 0.7, topK: 5)
        p.topLogprobs = 20
        p.seed = 1
        p.logitBias = [3: 10]                      // must not show in the (raw) logprobs
        var s = try Sampler(parameters: p, vocabularySize: 20)
        let out = s.sample(logits: logits)
        let m = Double(logits.max()!)
        let logZ = m + log(logits.reduce(0.0) { $0 + exp(Double($1) - m) })
        let chosen = try #require(out.logprob)
        // float32 result of a double computation: within 1e-6 absolute for values of order 1-10.
        #expect(abs(Double(chosen) - (Double(logits[Int(out.id)]) - logZ)) < 1e-6)
        #expect(out.topLogprobs.count == 20)
        let total = out.topLogprobs.reduce(0.0) { $0 + exp(Double($1.logprob)) }
        #expect(abs(total - 1) < 1e-5, "probabilities over the whole vocabulary sum to \(total)")
        let order = logits.indices.sorted { logits[$0] > logits[$1] }.map(Int32.init)
        #expect(out.topLogprobs.map(\.id) == order)
        for t in out.topLogprobs {
            #expect(abs(Double(t.logprob) - (Double(logits[Int(t.id)]) - logZ)) < 1e-6)
        }
    }

    @Test func logprobsTopNAndOff() throws {
        let logits = Self.randomLogits(49152, seed: 8)
        var p = SamplingParameters.greedy
        p.topLogprobs = 3
        var s = try Sampler(parameters: p, vocabularySize: logits.count)
        let out = s.sample(logits: logits)
        let best = logits.indices.sorted { logits[$0] > logits[$1] }.prefix(3).map(Int32.init)
        #expect(out.topLogprobs.map(\.id) == best)
        #expect(out.logprob == out.topLogprobs.first?.logprob)   // greedy picked the top token
        p.topLogprobs = 0
        s = try Sampler(parameters: p, vocabularySize: logits.count)
        let zero = s.sample(logits: logits)
        #expect(zero.logprob != nil && zero.topLogprobs.isEmpty)
        s = try Sampler(parameters: .greedy, vocabularySize: logits.count)
        let none = s.sample(logits: logits)
        #expect(none.logprob == nil && none.topLogprobs.isEmpty)
    }

    @Test func allTokensBannedGivesADeterministicAnswer() throws {
        var p = Self.plain
        p.logitBias = [0: -.infinity, 1: -.infinity, 2: -.infinity]
        var s = try Sampler(parameters: p, vocabularySize: 3)
        #expect(s.sample(logits: [1, 2, 3]).id == 0)
        var g = try Sampler(parameters: { var q = p; q.temperature = 0; return q }(), vocabularySize: 3)
        #expect(g.sample(logits: [1, 2, 3]).id == 0)
        var d = try Sampler(parameters: SamplingParameters(logitBias: p.logitBias), vocabularySize: 3)
        #expect(d.sample(logits: [1, 2, 3]).id == 0)
    }

    @Test func nanLogitsCountAsImpossible() throws {
        var s = try Sampler(parameters: Self.plain, vocabularySize: 3)
        for _ in 0..<200 { #expect(s.sample(logits: [.nan, 0, .nan]).id == 1) }
    }

    @Test func selectionMatchesAFullSort() {
        // Awkward sizes, k below/at/above n, and coarse logits so ties are common.
        var g = SamplerRandom(seed: 11)
        for n in [1, 2, 7, 129, 1000, 4099] {
            for k in [1, 3, 40, 257, n, n + 5] {
                let cands = (0..<n).map { i in
                    Candidate(id: Int32(i), logit: Float(Int(g.next() % 64)) / 4 - 8, p: 0)
                }
                var work = cands
                work.withUnsafeMutableBufferPointer { selectBest($0, count: n, k: k) }
                let kk = min(k, n)
                #expect(Array(work.prefix(kk)) == selectBestReference(cands, k: kk), "n \(n) k \(k)")
                #expect(Set(work.map(\.id)) == Set(cands.map(\.id)), "selection must permute")
            }
        }
    }

    @Test func chainMatchesAPlainReference() throws {
        // The fast chain (partial selection, adaptive top-p prefix) against a direct
        // transcription of FORMATS.md §7.1 with full sorts, on a full-size vocabulary.
        let settings: [(Int, Float, Float)] = [(40, 0.95, 0.05), (0, 0.9, 0), (0, 1, 0.1), (500, 0.99, 0.01), (0, 0.3, 0)]
        for (i, (k, topP, minP)) in settings.enumerated() {
            let logits = Self.randomLogits(49152, seed: 300 + UInt64(i), scale: 4)
            let p = SamplingParameters(temperature: 0.9, topK: k, topP: topP, minP: minP)
            let s = try Sampler(parameters: p, vocabularySize: logits.count)
            let ours = Set(s.stageSnapshots(logits: logits)[.temperature]!.map(\.id))
            #expect(ours == Self.referenceSurvivors(logits, p), "top_k \(k) top_p \(topP) min_p \(minP)")
        }
    }

    /// Full sort, float arithmetic in the orders llama.cpp uses; no partial selection.
    static func referenceSurvivors(_ logits: [Float], _ p: SamplingParameters) -> Set<Int32> {
        var c = logits.enumerated().map { (id: Int32($0.offset), logit: $0.element) }
        var sorted = false
        if p.topK > 0 {
            c = Array(c.sorted { $0.logit > $1.logit || ($0.logit == $1.logit && $0.id < $1.id) }.prefix(p.topK))
            sorted = true
        }
        if p.topP < 1 {
            let m = c.map(\.logit).max()!
            var e = c.map { exp($0.logit - m) }
            var sum: Float = 0
            for x in e { sum += x }
            e = e.map { $0 / sum }
            var order = Array(c.indices)
            if !sorted { order.sort { c[$0].logit > c[$1].logit || (c[$0].logit == c[$1].logit && c[$0].id < c[$1].id) } }
            var cum: Float = 0
            var keep = order.count
            for (j, idx) in order.enumerated() {
                cum += e[idx]
                if cum >= p.topP { keep = j + 1; break }
            }
            c = order.prefix(keep).map { c[$0] }
        }
        if p.minP > 0 {
            let threshold = c.map(\.logit).max()! + log(p.minP)
            c = c.filter { $0.logit >= threshold }
        }
        return Set(c.map(\.id))
    }

    @Test func validationNamesTheField() {
        let bad: [(String, SamplingParameters)] = [
            ("temperature", SamplingParameters(temperature: -0.1)),
            ("temperature", SamplingParameters(temperature: .nan)),
            ("top_k", SamplingParameters(topK: -1)),
            ("top_p", SamplingParameters(topP: 0)),
            ("top_p", SamplingParameters(topP: 1.01)),
            ("min_p", SamplingParameters(minP: -0.01)),
            ("min_p", SamplingParameters(minP: 1.5)),
            ("repeat_penalty", SamplingParameters(repeatPenalty: 0)),
            ("repeat_last_n", SamplingParameters(repeatLastN: -1)),
            ("frequency_penalty", SamplingParameters(frequencyPenalty: 2.5)),
            ("presence_penalty", SamplingParameters(presencePenalty: -2.01)),
            ("logit_bias", SamplingParameters(logitBias: [5: 101])),
            ("logit_bias", SamplingParameters(logitBias: [-1: 1])),
            ("logit_bias", SamplingParameters(logitBias: [10: 1])),        // vocabulary of 10
            ("max_tokens", SamplingParameters(maxTokens: 0)),
            ("stop", SamplingParameters(stop: ["ok", ""])),
            ("top_logprobs", SamplingParameters(topLogprobs: 21)),
            ("top_logprobs", SamplingParameters(topLogprobs: -1)),
        ]
        for (field, p) in bad {
            #expect(throws: SamplingParameterError.self, "\(field)") { try p.validate(vocabularySize: 10) }
            do {
                try p.validate(vocabularySize: 10)
            } catch {
                #expect(error.field == field)
                #expect(error.description.contains(field) && error.description.contains("expected"))
            }
            #expect(throws: SamplingParameterError.self) { try Sampler(parameters: p, vocabularySize: 10) }
        }
        let good: [SamplingParameters] = [
            SamplingParameters(), .greedy,
            SamplingParameters(temperature: 2, topK: 0, topP: 1, minP: 1, repeatPenalty: 0.5, repeatLastN: 0,
                               frequencyPenalty: -2, presencePenalty: 2, logitBias: [0: -.infinity, 9: 100],
                               maxTokens: 1, stop: ["\n"], topLogprobs: 20),
        ]
        for p in good { #expect(throws: Never.self) { try p.validate(vocabularySize: 10) } }
    }

    @Test func errorMessageSaysWhatWasExpectedAndFound() {
        do {
            try SamplingParameters(topP: 1.5).validate()
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "invalid sampling parameter top_p: expected (0, 1] (1 = disabled), found 1.5")
        }
    }
}

// Compares the sampler's chain with llama.cpp's, stage by stage, on Fixtures/sampler.json
// (written by scripts/goldens/sampler.py through llama-cpp-python 0.3.36's low-level sampler API).
//
// Tolerances, and why:
// - Surviving token sets: exact. Both sides run the same float32 operations in the same order
//   (softmax sums in array order, float running sums for top-p), and the fixture's logits have no
//   ties at a cut.
// - Logits after bias/penalties/temperature: |ours - theirs| <= 2e-6·max(1, |theirs|). The
//   operations are identical in float32, but llama.cpp is built with -march=native and the C++
//   compiler may fuse `logit - count*freq + present` into an FMA (1 rounding instead of 2), which
//   moves a result by at most an ulp or two (≈1.2e-7 relative each).
// - Probabilities: |ours - theirs| <= 1e-6 + 1e-5·theirs. llama.cpp's dist sampler uses float
//   exps with a double sum; ours are a double softmax of our own float logits (intermediate
//   stages) or the same float/double recipe (final stage). Differences of a few float ulps (~1e-7
//   relative) are expected; the bound is 100× that, and still 1000× smaller than the effect of
//   e.g. applying temperature before truncation or dropping one survivor.

import Foundation
import Testing
@testable import Sampling

struct SamplerGoldenTests {
    struct Case {
        let name: String
        let logits: [Float]
        let parameters: SamplingParameters
        let history: [Int32]
        let stages: [String: [String: Any]]
        let chainSelected: Int32?
    }

    static func fixture() throws -> (cases: [Case], largeFirstHex: String, largeVocab: Int) {
        let url = try #require(Bundle.module.url(forResource: "sampler", withExtension: "json", subdirectory: "Fixtures"),
                               "Fixtures/sampler.json missing: run scripts/goldens/sampler.py")
        let root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let vectorsHex = try #require(root["vectors"] as? [String: String])
        let largeVocab = try #require(root["large_vocab"] as? Int)
        var vectors = try vectorsHex.mapValues { try floats(hex: $0) }
        vectors["large"] = hashedLogits(count: largeVocab)
        var cases: [Case] = []
        for raw in try #require(root["cases"] as? [[String: Any]]) {
            let p = try #require(raw["params"] as? [String: Any])
            var bias: [Int32: Float] = [:]
            for pair in try #require(p["logit_bias"] as? [[Any]]) {
                bias[Int32(try #require(pair[0] as? Int))] = try number(pair[1])
            }
            let params = SamplingParameters(
                temperature: try number(p["temperature"]), topK: try #require(p["top_k"] as? Int),
                topP: try number(p["top_p"]), minP: try number(p["min_p"]),
                repeatPenalty: try number(p["repeat_penalty"]), repeatLastN: try #require(p["repeat_last_n"] as? Int),
                frequencyPenalty: try number(p["frequency_penalty"]), presencePenalty: try number(p["presence_penalty"]),
                seed: 1, logitBias: bias)
            let vectorName = try #require(raw["vector"] as? String)
            cases.append(Case(
                name: try #require(raw["name"] as? String),
                logits: try #require(vectors[vectorName]),
                parameters: params,
                history: try #require(raw["history"] as? [Int]).map { Int32($0) },
                stages: try #require(raw["stages"] as? [String: [String: Any]]),
                chainSelected: (raw["chain_selected"] as? Int).map { Int32($0) }))
        }
        return (cases, try #require(root["large_first_logits_hex"] as? String), largeVocab)
    }

    /// Must match `hashed_logits` in scripts/goldens/sampler.py bit for bit (checked below).
    static func hashedLogits(count: Int) -> [Float] {
        (0..<count).map { i in
            var x = UInt32(truncatingIfNeeded: UInt64(i) &* 0x9E37_79B1)
            x ^= x >> 16
            x = x &* 0x85EB_CA6B
            x ^= x >> 13
            x = x &* 0xC2B2_AE35
            x ^= x >> 16
            let u = Double(x) / 4294967296.0
            let u2 = u * u
            let u4 = u2 * u2
            let u8 = u4 * u4
            return Float(24.0 * u8 - 4.0)
        }
    }

    static func floats(hex: String) throws -> [Float] {
        let bytes = Array(hex.utf8)
        try #require(bytes.count % 8 == 0)
        func nibble(_ c: UInt8) -> UInt32 { c <= 57 ? UInt32(c - 48) : UInt32(c - 87) }
        return stride(from: 0, to: bytes.count, by: 8).map { o in
            var bits: UInt32 = 0
            for b in 0..<4 { bits |= (nibble(bytes[o + 2 * b]) << 4 | nibble(bytes[o + 2 * b + 1])) << (8 * UInt32(b)) }
            return Float(bitPattern: bits)
        }
    }

    static func number(_ any: Any?) throws -> Float {
        if let s = any as? String {
            switch s {
            case "-inf": return -.infinity
            case "inf": return .infinity
            default: throw FixtureError(text: "unexpected number string \(s)")
            }
        }
        return Float(try #require(any as? Double))
    }

    struct FixtureError: Error { let text: String }

    static func close(_ ours: Float, _ theirs: Float, relative: Float) -> Bool {
        if ours == theirs { return true }    // also covers equal infinities
        return abs(ours - theirs) <= relative * max(1, abs(theirs))
    }

    @Test func largeRowMatchesTheGenerator() throws {
        let fx = try Self.fixture()
        let ours = Self.hashedLogits(count: fx.largeVocab).prefix(8)
        #expect(Array(ours) == (try Self.floats(hex: fx.largeFirstHex)))
    }

    @Test func everyStageMatchesLlamaCpp() throws {
        let fx = try Self.fixture()
        #expect(fx.cases.count >= 15)
        for c in fx.cases {
            var sampler = try Sampler(parameters: c.parameters, vocabularySize: c.logits.count)
            sampler.accept(contentsOf: c.history)
            let snaps = sampler.stageSnapshots(logits: c.logits)

            // Bias and penalties: the listed logits changed, every other one is untouched.
            let penalized = try #require(snaps[.penalties])
            let pen = try #require(c.stages["penalties"])
            #expect(penalized.count == (pen["count"] as? Int), "\(c.name)")
            var changed: [Int32: Float] = [:]
            for pair in try #require(pen["changed"] as? [[Any]]) {
                changed[Int32(try #require(pair[0] as? Int))] = try Self.number(pair[1])
            }
            var penaltyMismatches = 0
            for cand in penalized {
                let expected = changed[cand.id] ?? c.logits[Int(cand.id)]
                if !Self.close(cand.logit, expected, relative: 2e-6) { penaltyMismatches += 1 }
            }
            #expect(penaltyMismatches == 0, "\(c.name): \(penaltyMismatches) logits differ after bias/penalties")

            for stage in [Sampler.Stage.topK, .topP, .minP, .temperature] {
                let ours = try #require(snaps[stage])
                let theirs = try #require(c.stages[stage.rawValue])
                if let count = theirs["count"] as? Int {
                    #expect(ours.count == count, "\(c.name) \(stage): kept \(ours.count), llama.cpp \(count)")
                    continue
                }
                let ids = try #require(theirs["ids"] as? [Int]).map { Int32($0) }
                let logits = try #require(theirs["logits"] as? [Any]).map { try Self.number($0) }
                let probs = try #require(theirs["probs"] as? [Any]).map { try Self.number($0) }
                let sortedOurs = ours.sorted { $0.id < $1.id }
                #expect(sortedOurs.map(\.id) == ids, "\(c.name) \(stage): surviving sets differ")
                guard sortedOurs.map(\.id) == ids else { continue }

                // Probabilities: for the last stage the sampler's own; before it, the softmax of
                // the survivors, which is what llama.cpp's dist would draw from at that point.
                let ourProbs: [Float]
                if stage == .temperature {
                    ourProbs = sortedOurs.map(\.p)
                } else {
                    let m = Double(sortedOurs.map(\.logit).max()!)
                    let e = sortedOurs.map { exp(Double($0.logit) - m) }
                    let s = e.reduce(0, +)
                    ourProbs = e.map { Float($0 / s) }
                }
                var logitMismatches = 0, probMismatches = 0
                for i in ids.indices {
                    if !Self.close(sortedOurs[i].logit, logits[i], relative: 2e-6) { logitMismatches += 1 }
                    if abs(ourProbs[i] - probs[i]) > 1e-6 + 1e-5 * probs[i] { probMismatches += 1 }
                }
                #expect(logitMismatches == 0, "\(c.name) \(stage): \(logitMismatches) logits differ")
                #expect(probMismatches == 0, "\(c.name) \(stage): \(probMismatches) probabilities differ")
            }

            // Greedy: llama.cpp's whole chain picked this token; our argmax shortcut must agree.
            if let selected = c.chainSelected {
                #expect(c.parameters.isGreedy)
                var s = try Sampler(parameters: c.parameters, vocabularySize: c.logits.count)
                s.accept(contentsOf: c.history)
                #expect(s.sample(logits: c.logits).id == selected, "\(c.name)")
            }
        }
    }
}

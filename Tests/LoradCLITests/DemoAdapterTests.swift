// The demo tenants of adapters/ (issue 17, part 6) and the learning test: on SmolLM2, `lorad train`
// on a product's facts makes the greedy answers to held-out, paraphrased questions contain the facts
// the base gets wrong. Each product's adapters/NAME.eval.jsonl holds 12 such questions (two per fact,
// worded unlike any training question), each with the fact its answer must contain; `lorad eval
// --json` gives the contains-rate of the adapter and of the base on them.
//
// Two checks: the adapters shipped in adapters/ answer them (cheap: no training), and
// scripts/train-demo-adapters, the command that rebuilt them, teaches one product's facts again from
// the committed data into a temporary registry (docs/BENCHMARKS.md has its times).

import Foundation
import JSON
import Testing

@Suite(.serialized) struct DemoAdapterTests {
    static let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let products = ["kaffeko", "spokeshed"]

    /// The contains-rates of `name`'s active version and of the base on its held-out questions.
    static func containsRates(registry: String, name: String) throws -> (adapter: Double, base: Double) {
        let r = try CLI.run(["eval", "--model", try CLI.model(), "--adapters", registry, "--adapter", name,
                             "--data", checkout.appendingPathComponent("adapters/\(name).eval.jsonl").path,
                             "--max-tokens", "48", "--threads", "2", "--json"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let results = try #require(try JSONValue.parse(Array(r.stdout.utf8))["results"]?.arrayValue, "\(r.stdout)")
        func rate(_ model: (String) -> Bool) throws -> Double {
            let row = try #require(results.first { model($0["model"]?.stringValue ?? "") }, "\(r.stdout)")
            #expect(row["contains_rows"]?.intValue == 12, "\(r.stdout)")
            return try #require(row["contains"]?.doubleValue, "\(r.stdout)")
        }
        return (try rate { $0.hasPrefix(name + "@v") }, try rate { $0 == "base" })
    }

    /// The stored types of a safetensors file's tensors (from its JSON header).
    static func storedTypes(_ path: String) throws -> Set<String> {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONValue.parse(Array(data[8..<(8 + length)]))
        return Set((header.objectMembers ?? []).filter { $0.0 != "__metadata__" }.compactMap { $0.1["dtype"]?.stringValue })
    }

    // Thresholds. The base answers none of the 24 questions with the fact (it cannot know a part
    // number or a returns address), so it must stay at or below 1 of 12: a fact it could guess
    // would make the product a poor demo. Trained with the script's flags (seed 0, 2 threads), each
    // product answered 11 of 12; a run that published its epoch-2 weights (the lowest eval loss)
    // answered 7 of 12 for spokeshed, mixing its facts up. 9 of 12 (0.75) fails such a half-learned
    // run and leaves two answers of room for another CPU's rounding (only seed 0 was measured).
    static let baseAtMost = 1.0 / 12
    static let adapterAtLeast = 0.75

    @Test(arguments: products) func theShippedAdapterAnswersItsHeldOutQuestions(_ name: String) throws {
        let registry = Self.checkout.appendingPathComponent("adapters").path
        #expect(try Self.storedTypes(registry + "/\(name)/v1/adapter_model.safetensors") == ["F16"])
        let (adapter, base) = try Self.containsRates(registry: registry, name: name)
        #expect(base <= Self.baseAtMost, "base contains-rate \(base) on \(name)'s questions")
        #expect(adapter >= Self.adapterAtLeast, "\(name) contains-rate \(adapter)")
    }

    // One product, to keep `make test` short (this test took 247 s on the shared 2-core machine,
    // docs/BENCHMARKS.md; idle, the trainer's throughput puts it near a minute and a half); spokeshed's
    // training is the same command on other data, and its shipped adapter is checked above.
    @Test(arguments: ["kaffeko"]) func trainingOnAProductsFactsTeachesThem(_ name: String) throws {
        let dir = NSTemporaryDirectory() + "lorad-demo-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var env = ProcessInfo.processInfo.environment
        env["LORAD"] = try CLI.binary()
        env["MODEL"] = try CLI.model()
        env["ADAPTERS"] = dir
        let script = Self.checkout.appendingPathComponent("scripts/train-demo-adapters").path
        let r = try CLI.execute("/bin/sh", [script, name], environment: env)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        // Published as v1 in f16 (--dtype f16: a demo adapter ships small).
        #expect(try Self.storedTypes(dir + "/\(name)/v1/adapter_model.safetensors") == ["F16"])
        let (adapter, base) = try Self.containsRates(registry: dir, name: name)
        #expect(base <= Self.baseAtMost, "base contains-rate \(base) on \(name)'s questions")
        #expect(adapter >= Self.adapterAtLeast, "\(name) trained by the script: contains-rate \(adapter)\n\(r.stdout)")
    }
}

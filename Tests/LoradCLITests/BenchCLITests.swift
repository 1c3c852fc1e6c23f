// `lorad bench --json`: one JSON object on stdout with the keys bench/compare reads. Behaviour only,
// on the tiny chat model (the whole run takes well under a second): the figures are checked for
// presence and sanity, never against a speed (benchmarks are not tests; the real figures come from
// running `lorad bench` itself, docs/BENCHMARKS.md).

import Foundation
import Testing

@Suite struct BenchCLITests {
    @Test func jsonHasEveryFigure() throws {
        let r = try CLI.run(["bench", "--model", ChatFixtures.tinyModel, "--json", "--synthetic-adapters", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(obj["model"] as? String == "model.gguf")
        #expect((obj["threads"] as? Int ?? 0) >= 1)
        #expect(obj["numerics"] as? String == "f32")
        for key in ["pp128", "pp512", "tg", "batch4", "batch16", "batch32", "ttft_ms",
                    "adapter1_tg", "adapter1_tg_ratio", "adapter1_pp512", "base2", "adapters2", "adapters2_ratio"] {
            let v = try #require(obj[key] as? Double, "missing \(key)")
            #expect(v > 0 && v.isFinite, "\(key) = \(v)")
        }
        // High-water marks: the whole run's is at least the one taken after tg, and both hold at
        // least the runtime itself (a few MB; the tiny model's file is 370 KB).
        let rss = try #require(obj["peak_rss_bytes"] as? Int), tgRSS = try #require(obj["tg_peak_rss_bytes"] as? Int)
        #expect(tgRSS > 4 << 20 && rss >= tgRSS, "tg_peak_rss_bytes \(tgRSS), peak_rss_bytes \(rss)")
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
    }

    @Test func onlyMeasuresTheNamedFigures() throws {
        let r = try CLI.run(["bench", "--model", ChatFixtures.tinyModel, "--json", "--only", "pp128,batch4"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(Set(obj.keys) == ["model", "threads", "numerics", "pp128", "batch4", "peak_rss_bytes"])
    }

    @Test func usageErrors() throws {
        #expect(try CLI.run(["bench", "--only", "pp128,tg64"]).status == 64)
        #expect(try CLI.run(["bench", "--repetitions", "0"]).status == 64)
        #expect(try CLI.run(["bench", "--numerics", "int4"]).status == 64)
        // The kernel tables (what MatMulBenchmarkTests and ComputePoolBenchmarkTests printed) are a
        // mode of their own.
        #expect(try CLI.run(["bench", "--kernels", "fast"]).status == 64)
        #expect(try CLI.run(["bench", "--kernels", "quick", "--json"]).status == 64)
    }
}

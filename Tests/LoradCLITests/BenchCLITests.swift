// `lorad bench --json`: one JSON object on stdout with the keys bench/compare reads. Behaviour only:
// the figures are checked for presence and sanity, never against a speed (benchmarks are not tests).

import Foundation
import Testing

@Suite struct BenchCLITests {
    @Test func jsonHasEveryFigure() throws {
        let r = try CLI.run(["bench", "--model", try CLI.model(), "--json", "--synthetic-adapters", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(obj["model"] as? String == "SmolLM2-135M-Instruct.Q4_1.gguf")
        #expect((obj["threads"] as? Int ?? 0) >= 1)
        for key in ["pp128", "pp512", "tg", "batch4", "batch16", "batch32", "ttft_ms",
                    "adapter1_tg", "adapter1_tg_ratio", "adapter1_pp512", "base2", "adapters2", "adapters2_ratio"] {
            let v = try #require(obj[key] as? Double, "missing \(key)")
            #expect(v > 0 && v.isFinite, "\(key) = \(v)")
        }
        let rss = try #require(obj["peak_rss_bytes"] as? Int)
        #expect(rss > 90_000_000, "the mapped model's touched pages alone are ~98 MB")
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
    }

    @Test func onlyMeasuresTheNamedFigures() throws {
        let r = try CLI.run(["bench", "--model", try CLI.model(), "--json", "--only", "pp128,batch4"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(Set(obj.keys) == ["model", "threads", "numerics", "pp128", "batch4", "peak_rss_bytes"])
    }

    @Test func usageErrors() throws {
        #expect(try CLI.run(["bench", "--only", "pp128,tg64"]).status == 64)
        #expect(try CLI.run(["bench", "--repetitions", "0"]).status == 64)
        #expect(try CLI.run(["bench", "--numerics", "int4"]).status == 64)
    }
}

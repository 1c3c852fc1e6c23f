// `lorad inspect` as a user runs it.

import Foundation
import Testing

@Suite struct InspectCLITests {
    @Test func tableShowsMetadataAndTensors() throws {
        let r = try CLI.run(["inspect", try CLI.model()])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("general.architecture"))
        #expect(r.stdout.contains("\"llama\""))
        #expect(r.stdout.contains("(49152 items)"), "long arrays are abbreviated")
        #expect(r.stdout.contains("token_embd.weight") && r.stdout.contains("Q8_0"))
        #expect(r.stdout.contains("272 tensors (61 × F32, 210 × Q4_1, 1 × Q8_0)"))
        #expect(r.stdout.split(separator: "\n").count < 400, "no full arrays in the table")
    }

    @Test func jsonIsOneObject() throws {
        let r = try CLI.run(["inspect", "--json", try CLI.model()])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let meta = try #require(obj["metadata"] as? [String: Any])
        #expect(meta["llama.block_count"] as? Int == 30)
        let tokens = try #require(meta["tokenizer.ggml.tokens"] as? [String: Any])
        #expect(tokens["length"] as? Int == 49152)
        #expect((tokens["values"] as? [String])?.count == 8)
        let tensors = try #require(obj["tensors"] as? [[String: Any]])
        #expect(tensors.count == 272)
        #expect(tensors.first?["name"] as? String == "token_embd.weight")
        #expect(tensors.first?["shape"] as? [Int] == [576, 49152])
    }

    @Test func modelFlagAndEnvironment() throws {
        let model = try CLI.model()
        let viaFlag = try CLI.run(["inspect", "--model", model, "--json"])
        let viaEnv = try CLI.run(["inspect", "--json"], environment: ["LORAD_MODEL": model])
        #expect(viaFlag.status == 0 && viaEnv.status == 0)
        #expect(viaFlag.stdout == viaEnv.stdout)
    }

    @Test func errorsAndUsage() throws {
        let missing = try CLI.run(["inspect", "/nonexistent/x.gguf"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("/nonexistent/x.gguf") && missing.stderr.contains("No such file"))

        let notGGUF = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-not-\(UUID()).gguf")
        try Data("hello, this is not a model".utf8).write(to: notGGUF)
        defer { try? FileManager.default.removeItem(at: notGGUF) }
        let bad = try CLI.run(["inspect", notGGUF.path])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("not a GGUF file"))

        let usage = try CLI.run(["inspect", "--array-limit", "-3", try CLI.model()])
        #expect(usage.status == 64, "usage errors exit with 64 (EX_USAGE)")
        let unknown = try CLI.run(["inspect", "--bogus"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("Unknown option"))
        let noCommand = try CLI.run(["frobnicate"])
        #expect(noCommand.status == 64)
    }
}

// The registry commands as an operator runs them, and the publish's crash safety: `lorad adapter
// import` killed with SIGKILL at every step of a publish (LORAD_FAILPOINT_PUBLISH_KILL_AT) leaves a
// registry that opens and shows the old version or the new one, whole; a full file system leaves the
// old state and says why.

import Foundation
import JSON
import ModelFormats
import Testing

@Suite struct RegistryCLITests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("LlamaTests/Fixtures").path

    static func tempDir() throws -> String {
        let path = NSTemporaryDirectory() + "lorad-registry-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A PEFT adapter for SmolLM2 with rank `rank` on q_proj of every layer (zeros: only its size
    /// matters here), so that copying it takes many write steps.
    static func bigAdapter(in dir: String, rank: Int) throws -> String {
        let path = dir + "/big"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let config = """
            {"peft_type": "LORA", "r": \(rank), "lora_alpha": \(rank), "target_modules": ["q_proj"],
             "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct", "bias": "none"}
            """
        try config.write(toFile: path + "/adapter_config.json", atomically: true, encoding: .utf8)
        var w = SafetensorsWriter()
        for layer in 0..<30 {
            let prefix = "base_model.model.model.layers.\(layer).self_attn.q_proj"
            try w.addTensor(name: prefix + ".lora_A.weight", shape: [rank, 576], floats: [Float](repeating: 0, count: rank * 576))
            try w.addTensor(name: prefix + ".lora_B.weight", shape: [576, rank], floats: [Float](repeating: 0, count: rank * 576))
        }
        try w.write(to: path + "/adapter_model.safetensors")
        return path
    }

    static func lorad(_ args: [String], root: String, env: [String: String] = [:]) throws -> CLIResult {
        let sub = args[0]
        return try CLI.run(["adapter", sub, "--adapters", root] + args.dropFirst(), environment: env)
    }

    /// `adapter show NAME --json`, parsed.
    static func show(_ name: String, root: String) throws -> JSONValue {
        let r = try lorad(["show", name, "--json"], root: root)
        #expect(r.status == 0, "\(r.stderr)")
        return try JSONValue.parse(r.stdout)
    }

    @Test func importListShowActivateRollbackRemove() throws {
        let model = try CLI.model(), root = try Self.tempDir() + "/reg"
        let peft = Self.fixtures + "/lora_smollm2_peft", gguf = Self.fixtures + "/lora_smollm2.gguf"
        var r = try Self.lorad(["import", "faq", peft, "--model", model], root: root)
        #expect(r.status == 0 && r.stdout.hasPrefix("faq@v1 (active)"), "\(r.stdout)\(r.stderr)")
        r = try Self.lorad(["import", "faq", gguf, "--model", model, "--no-activate"], root: root)
        #expect(r.status == 0 && r.stdout.hasPrefix("faq@v2 "), "\(r.stdout)\(r.stderr)")
        r = try Self.lorad(["list"], root: root)
        #expect(r.stdout.contains("faq") && r.stdout.contains("v1      v1 v2"), "\(r.stdout)")
        var shown = try Self.show("faq", root: root)
        #expect(shown["active"]?.intValue == 1)
        #expect(shown["versions"]?.arrayValue?.compactMap { $0["source"]?.stringValue } == ["imported", "imported"])
        #expect(try Self.lorad(["activate", "faq", "v2"], root: root).status == 0)
        #expect(try Self.show("faq", root: root)["active"]?.intValue == 2)
        r = try Self.lorad(["rollback", "faq"], root: root)
        #expect(r.status == 0 && r.stdout == "faq@v1 is active\n")
        r = try Self.lorad(["rm", "faq@v1"], root: root)
        #expect(r.status == 1 && r.stderr.contains("active version"), "\(r.stderr)")
        r = try Self.lorad(["gc", "--keep", "0"], root: root)
        #expect(r.status == 0 && r.stdout == "removed faq@v2\n", "\(r.stdout)")
        shown = try Self.show("faq", root: root)
        #expect(shown["versions"]?.arrayValue?.count == 1)

        // Refusals: an adapter for another base, bad names and references, unknown versions.
        r = try Self.lorad(["import", "faq", Self.fixtures + "/lora_tiny_plain", "--model", model], root: root)
        #expect(r.status == 1 && r.stderr.contains("does not fit the base model"), "\(r.stderr)")
        #expect(try Self.lorad(["import", "../x", peft, "--model", model], root: root).status == 64)
        #expect(try Self.lorad(["rm", "faq@v0"], root: root).status == 64)
        r = try Self.lorad(["activate", "faq", "9"], root: root)
        #expect(r.status == 1 && r.stderr.contains("faq has no version v9 (versions: v1)"), "\(r.stderr)")
        #expect(try Self.lorad(["rm", "faq"], root: root).status == 0)
        r = try Self.lorad(["show", "faq"], root: root)
        #expect(r.status == 1 && r.stderr.contains("no adapter named 'faq'"))
    }

    /// SIGKILL at each step of a publish (at least 50 of them): the registry always opens, showing
    /// the old version active or the new one, whole; a publish after the crash succeeds.
    @Test func aPublishKilledAtAnyStepLeavesTheOldOrTheNewVersion() throws {
        let model = try CLI.model(), dir = try Self.tempDir()
        let pristine = dir + "/pristine", big = try Self.bigAdapter(in: dir, rank: 24)
        #expect(try Self.lorad(["import", "faq", Self.fixtures + "/lora_smollm2_peft", "--model", model], root: pristine).status == 0)
        let oldDigest = try Self.show("faq", root: pristine)["versions"]?.arrayValue?.first?["digest"]?.stringValue
        var newDigest: String? = nil
        var killed = 0, sawNew = 0
        for step in 1...400 {
            let root = dir + "/run\(step)"
            try FileManager.default.copyItem(atPath: pristine, toPath: root)
            let r = try Self.lorad(["import", "faq", big, "--model", model], root: root,
                                   env: ["LORAD_FAILPOINT_PUBLISH_KILL_AT": "\(step)"])
            let shown = try Self.show("faq", root: root)
            let versions = shown["versions"]?.arrayValue ?? []
            #expect(shown["problems"]?.arrayValue?.isEmpty == true, "step \(step): \(shown.serialized())")
            let active = shown["active"]?.intValue
            let activeDigest = versions.first { $0["version"]?.intValue == active }?["digest"]?.stringValue
            if !r.signaled {
                // Past the last step: the publish completed.
                #expect(r.status == 0, "\(r.stderr)")
                newDigest = activeDigest
                break
            }
            #expect(r.status == SIGKILL)
            killed += 1
            #expect(versions.count <= 2 && (active == 1 || active == 2), "step \(step): \(shown.serialized())")
            if active == 2 { sawNew += 1 } else { #expect(activeDigest == oldDigest, "step \(step)") }
            try FileManager.default.removeItem(atPath: root)
        }
        #expect(killed >= 50, "only \(killed) kill points")
        #expect(sawNew >= 1, "the last steps come after the switch to v2")
        #expect(newDigest != nil && newDigest != oldDigest)
        // After a crash mid-copy, the next publish cleans up and succeeds.
        let root = dir + "/again"
        try FileManager.default.copyItem(atPath: pristine, toPath: root)
        _ = try Self.lorad(["import", "faq", big, "--model", model], root: root, env: ["LORAD_FAILPOINT_PUBLISH_KILL_AT": "20"])
        let r = try Self.lorad(["import", "faq", big, "--model", model], root: root)
        #expect(r.status == 0 && r.stdout.hasPrefix("faq@v2 (active)"), "\(r.stdout)\(r.stderr)")
        let hidden = try FileManager.default.contentsOfDirectory(atPath: root + "/faq").filter { $0.hasPrefix(".") && $0 != ".lock" }
        #expect(hidden.isEmpty, "\(hidden)")
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A file system that fills up mid-publish: the error says so, the old version stays active and
    /// nothing is left behind.
    @Test(.enabled(if: getuid() == 0, "mounting a small tmpfs needs root (CI runs as root)"))
    func aFullFileSystemKeepsTheOldState() throws {
        let model = try CLI.model(), dir = try Self.tempDir()
        let mount = dir + "/small"
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let big = try Self.bigAdapter(in: dir, rank: 24)
        #expect(try CLI.execute("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mount], environment: nil).status == 0)
        defer {
            _ = try? CLI.execute("/bin/umount", [mount], environment: nil)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let root = mount + "/reg"
        #expect(try Self.lorad(["import", "faq", Self.fixtures + "/lora_smollm2_peft", "--model", model], root: root).status == 0)
        let before = try Self.show("faq", root: root)
        let r = try Self.lorad(["import", "faq", big, "--model", model], root: root)
        #expect(r.status == 1 && r.stderr.contains("No space left on device"), "\(r.stderr)")
        let after = try Self.show("faq", root: root)
        #expect(after == before)
        let left = try FileManager.default.contentsOfDirectory(atPath: root + "/faq").sorted()
        #expect(left == [".lock", "current", "v1"], "\(left)")
    }
}

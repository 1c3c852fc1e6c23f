// `lorad train` and `lorad eval` as an operator runs them, on the tiny chat model (Tests/Fixtures/
// tiny_chat): a run publishes v1 and eval puts it beside the base; Ctrl-C (SIGINT) mid-run publishes
// nothing and, with --save-on-interrupt, leaves a checkpoint; a full file system at publish leaves the
// registry as it was.

import Foundation
import JSON
import Testing

@Suite struct TrainCLITests {
    static let tinyModel = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_chat/model.gguf").path

    static func setUp() throws -> (dir: String, root: String, data: String) {
        let dir = NSTemporaryDirectory() + "lorad-train-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/registry", withIntermediateDirectories: true)
        let rows = [("What is the warranty?", "The warranty is 3 years."), ("Where do returns go?", "To 12 Harbor Street."),
                    ("When are you open?", "We are open 9 to 5."), ("What is the part number?", "It is AX-42."),
                    ("Who makes it?", "It is made by Acme.")]
        func row(_ q: String, _ a: String, _ extra: [(String, JSONValue)]) -> String {
            JSONValue.object([("messages", .array([.object([("role", .string("user")), ("content", .string(q))]),
                                                    .object([("role", .string("assistant")), ("content", .string(a))])]))] + extra)
                .serialized()
        }
        // Training data must not carry eval-only keys; eval data may.
        let train = rows.map { row($0.0, $0.1, []) }
        let lines = rows.map { row($0.0, $0.1, [("must_contain", .string($0.1))]) }
        try (train.joined(separator: "\n") + "\n").write(toFile: dir + "/facts.jsonl", atomically: true, encoding: .utf8)
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/eval.jsonl", atomically: true, encoding: .utf8)
        return (dir, dir + "/registry", dir + "/facts.jsonl")
    }

    @Test func trainPublishesAVersionAndEvalShowsItBesideTheBase() throws {
        let (dir, root, data) = try Self.setUp()
        var r = try CLI.run(["train", "--model", Self.tinyModel, "--adapters", root, "--adapter", "shop", "--data", data,
                             "--new", "--rank", "2", "--alpha", "4", "--targets", "q_proj,v_proj", "--steps", "4", "--lr", "0.01",
                             "--threads", "1", "--activate", "--json"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
        #expect(lines.first?["event"]?.stringValue == "data")
        #expect(lines.contains { $0["event"]?.stringValue == "step" })
        let last = try #require(lines.last)
        #expect(last["event"]?.stringValue == "published" && last["version"] == .int(1) && last["active"] == .bool(true), "\(r.stdout)")
        #expect(FileManager.default.fileExists(atPath: root + "/shop/v1/adapter_model.safetensors"))

        r = try CLI.run(["eval", "--model", Self.tinyModel, "--adapters", root, "--adapter", "shop", "--data", dir + "/eval.jsonl",
                         "--max-tokens", "4", "--threads", "1"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("shop@v1") && r.stdout.contains("base") && r.stdout.contains("CONTAINS"), "\(r.stdout)")
    }

    @Test func aMalformedLineFailsWithItsLineNumberAndPublishesNothing() throws {
        let (dir, root, data) = try Self.setUp()
        let bad = dir + "/bad.jsonl"
        try (String(contentsOfFile: data, encoding: .utf8) + "{\"messages\": 3}\n").write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try CLI.run(["train", "--model", Self.tinyModel, "--adapters", root, "--adapter", "shop", "--data", bad,
                             "--new", "--rank", "2", "--alpha", "4", "--steps", "2", "--threads", "1", "--activate"])
        #expect(r.status == 1 && r.stderr.contains("bad.jsonl:6:"), "\(r.stdout)\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty)
    }

    @Test func ctrlCPublishesNothingAndCanLeaveACheckpoint() throws {
        let (dir, root, data) = try Self.setUp()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try CLI.binary())
        p.arguments = ["train", "--model", Self.tinyModel, "--adapters", root, "--adapter", "shop", "--data", data,
                       "--new", "--rank", "2", "--alpha", "4", "--steps", "1000000", "--threads", "1", "--activate",
                       "--checkpoint", dir + "/ckpt", "--save-on-interrupt", "--eval-every", "1000000"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let seen = Collected()
        out.fileHandleForReading.readabilityHandler = { h in seen.add(h.availableData) }
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while !seen.text.contains("step 1/") && Date() < deadline && p.isRunning { Thread.sleep(forTimeInterval: 0.05) }
        #expect(seen.text.contains("step 1/"), "\(seen.text)")
        p.interrupt()
        p.waitUntilExit()
        out.fileHandleForReading.readabilityHandler = nil
        seen.add(out.fileHandleForReading.readDataToEndOfFile())
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationReason == .exit && p.terminationStatus == 130, "\(seen.text)\(stderr)")
        #expect(seen.text.contains("interrupted after step") && seen.text.contains("nothing published"), "\(seen.text)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty)
        #expect(FileManager.default.fileExists(atPath: dir + "/ckpt/state.json"))
    }

    /// A registry whose file system is full when the trained version is published: the error says so,
    /// the active version and the registry's entries stay as they were, nothing half-written is left.
    @Test(.enabled(if: getuid() == 0, "mounting a small tmpfs needs root (CI runs as root)"))
    func aFullFileSystemAtPublishKeepsTheRegistryAsItWas() throws {
        let (dir, _, data) = try Self.setUp()
        let mount = dir + "/small"
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        #expect(try CLI.execute("/bin/mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mount], environment: nil).status == 0)
        defer {
            _ = try? CLI.execute("/bin/umount", [mount], environment: nil)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let root = mount + "/registry"
        func train() throws -> CLIResult {
            try CLI.run(["train", "--model", Self.tinyModel, "--adapters", root, "--adapter", "shop", "--data", data,
                         "--new", "--rank", "2", "--alpha", "4", "--targets", "q_proj,v_proj", "--steps", "2", "--threads", "1", "--activate"])
        }
        var r = try train()
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let before = try RegistryCLITests.show("shop", root: root)
        // Fill what is left (dd stops at ENOSPC), then train the next version.
        _ = try CLI.execute("/bin/dd", ["if=/dev/zero", "of=\(mount)/filler", "bs=4096"], environment: nil)
        r = try train()
        #expect(r.status == 1 && r.stderr.contains("No space left on device"), "\(r.stdout)\(r.stderr)")
        #expect(try RegistryCLITests.show("shop", root: root) == before)
        let left = try FileManager.default.contentsOfDirectory(atPath: root + "/shop").sorted()
        #expect(left == [".lock", "current", "v1"], "\(left)")
    }
}

/// Output gathered from a pipe's handler thread.
final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func add(_ d: Data) { lock.lock(); data.append(d); lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}

// The registry's layout, publish, activation, rollback, removal and its refusals, on the tiny LoRA
// fixtures (Tests/LlamaTests/Fixtures, read through #filePath) validated against the tiny base.
// File digests are checked against coreutils' sha256sum, an implementation independent of ours.

import Foundation
import LoRA
import ModelFormats
@testable import Registry
import Testing

enum RegistryFixtures {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("LlamaTests/Fixtures").path
    static var plain: String { dir + "/lora_tiny_plain" }
    static var plain2: String { dir + "/lora_tiny_plain2" }
    static var gguf: String { dir + "/lora_tiny_plain.gguf" }

    static let base: BaseModelInfo = {
        let gguf = try! GGUFFile(path: dir + "/lora_tiny_base.gguf")
        return try! BaseModelInfo(gguf: gguf)
    }()

    static func validate(_ path: String) throws {
        _ = try LoRAAdapter.load(path: path, name: "check", base: base)
    }

    /// A fresh registry root under /tmp.
    static func root() throws -> String {
        let path = NSTemporaryDirectory() + "lorad-registry-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func request(_ name: String, _ source: String, activate: Bool = true) -> PublishRequest {
        PublishRequest(name: name, source: source, base: BaseFingerprint(base), activate: activate)
    }

    static func sha256sum(_ path: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        p.arguments = [path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(String(decoding: data, as: UTF8.self).prefix(64))
    }

    /// Every name under `dir`, recursively, hidden ones included (to see what a failure left).
    static func tree(_ dir: String) -> [String] {
        (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).sorted()
    }
}

struct AdapterReferenceTests {
    @Test(arguments: ["a", "faq", "acme-support", "x.y_z-1", "0", String(repeating: "a", count: 64)])
    func validNames(_ name: String) {
        #expect(AdapterName.isValid(name))
        #expect(AdapterReference(name) == AdapterReference(name: name))
    }

    @Test(arguments: ["", "A", "-a", ".a", "..", "../etc", "a/b", "/abs", "a b", "é", String(repeating: "a", count: 65), "a\u{0}"])
    func invalidNames(_ name: String) {
        #expect(!AdapterName.isValid(name))
        #expect(AdapterReference(name) == nil)
    }

    @Test func versions() {
        #expect(AdapterReference("faq@v3") == AdapterReference(name: "faq", version: 3))
        #expect(AdapterReference("faq@3") == AdapterReference(name: "faq", version: 3))
        for bad in ["faq@v0", "faq@v01", "faq@", "faq@vx", "faq@v-1", "faq@v1@v2", "../x@v1", "faq@v1234567890"] {
            #expect(AdapterReference(bad) == nil, "\(bad)")
        }
        #expect(AdapterReference(name: "faq", version: 2).description == "faq@v2")
    }
}

struct RegistryTests {
    typealias F = RegistryFixtures

    @Test func publishActivateRollbackRemove() throws {
        let root = try F.root()
        let r = try Registry(root: root)
        let m1 = try r.publish(F.request("faq", F.plain), validate: F.validate)
        #expect(m1.version == 1 && m1.parent == nil && m1.source == .imported)
        for f in m1.files {
            #expect(f.sha256 == (try F.sha256sum("\(root)/faq/v1/\(f.name)")), "\(f.name)")
        }
        #expect(try Posix_readlink("\(root)/faq/current") == "v1")

        let m2 = try r.publish(F.request("faq", F.plain2), validate: F.validate)
        #expect(m2.version == 2 && m2.parent == 1)
        #expect(m2.digest != m1.digest, "different weights, different content identity")
        var a = try r.adapter("faq")
        #expect(a.versions.map(\.version) == [1, 2] && a.active == 2 && a.problems.isEmpty)
        #expect(try r.resolve(AdapterReference("faq")!).version == 2)
        #expect(try r.resolve(AdapterReference("faq@v1")!).loadPath == "\(root)/faq/v1")

        #expect(try r.rollback("faq") == 1)
        #expect(try r.adapter("faq").active == 1)
        #expect(throws: RegistryError.nothingToRollBackTo(name: "faq", active: 1)) { try r.rollback("faq") }
        try r.activate("faq", version: 2)
        #expect(throws: RegistryError.activeVersion(name: "faq", version: 2)) { try r.remove("faq", version: 2) }
        #expect(throws: RegistryError.versionNotFound(name: "faq", version: 7, available: [1, 2])) { try r.activate("faq", version: 7) }

        // The same bytes published again: a new version with the same digest.
        let m3 = try r.publish(F.request("faq", F.plain, activate: false), validate: F.validate)
        #expect(m3.digest == m1.digest && m3.version == 3)
        a = try r.adapter("faq")
        #expect(a.active == 2, "activate: false leaves the active version")
        #expect(try r.collectGarbage(keep: 1) == [AdapterReference(name: "faq", version: 1)])
        #expect(try r.adapter("faq").versions.map(\.version) == [2, 3])
        try r.remove("faq", version: 3)
        try r.remove("faq")
        #expect(throws: RegistryError.notFound(name: "faq")) { try r.adapter("faq") }
        #expect(F.tree(root).isEmpty, "\(F.tree(root))")
    }

    @Test func ggufAdaptersAreVersionsToo() throws {
        let r = try Registry(root: try F.root())
        try r.publish(F.request("g", F.gguf), validate: F.validate)
        let v = try r.resolve(AdapterReference("g")!)
        #expect(v.loadPath.hasSuffix("/g/v1/adapter_model.gguf"))
        try F.validate(v.loadPath)
        try r.verify(v)
    }

    /// What came before versions keeps working, and its first publish keeps it as v1.
    @Test func plainLayoutsAreVersionOne() throws {
        let root = try F.root()
        try FileManager.default.copyItem(atPath: F.plain, toPath: root + "/peft")
        try FileManager.default.copyItem(atPath: F.gguf, toPath: root + "/ll.gguf")
        let r = try Registry(root: root)
        #expect(try r.entryNames() == ["ll", "peft"])
        let plain = try r.resolve(AdapterReference("peft@v1")!)
        #expect(plain.isPlain && plain.loadPath == root + "/peft" && plain.manifest == nil)
        #expect(try r.resolve(AdapterReference("ll")!).loadPath == root + "/ll.gguf")

        try r.publish(F.request("peft", F.plain2), validate: F.validate)
        try r.publish(F.request("ll", F.plain2), validate: F.validate)
        for name in ["peft", "ll"] {
            let a = try r.adapter(name)
            #expect(a.versions.map(\.version) == [1, 2] && a.active == 2, "\(name)")
            #expect(a.version(1)?.manifest?.origin?.hasPrefix("the unversioned adapter") == true)
            #expect(a.versions.allSatisfy { !$0.isPlain })
        }
        #expect(!FileManager.default.fileExists(atPath: root + "/peft/adapter_config.json"))
        #expect(!FileManager.default.fileExists(atPath: root + "/ll.gguf"))
        #expect(try r.rollback("ll") == 1)
        try F.validate(try r.resolve(AdapterReference("ll")!).loadPath)
    }

    @Test func aVersionThatDoesNotFitIsNotPublished() throws {
        let root = try F.root()
        let r = try Registry(root: root)
        try r.publish(F.request("faq", F.plain), validate: F.validate)
        let before = F.tree(root)
        struct Misfit: Error {}
        #expect(throws: RegistryError.self) {
            try r.publish(F.request("faq", F.plain2), validate: { _ in throw Misfit() })
        }
        #expect(F.tree(root) == before, "nothing left behind")
        #expect(throws: RegistryError.self) { try r.publish(F.request("faq", "/nonexistent"), validate: F.validate) }
        #expect(throws: RegistryError.self) { try r.publish(F.request("faq", "/etc/hostname"), validate: F.validate) }
        #expect(throws: RegistryError.badName("../x")) { try r.publish(F.request("../x", F.plain), validate: F.validate) }
        #expect(try r.adapter("faq").versions.map(\.version) == [1])
    }

    @Test func nothingOutsideTheRootIsRead() throws {
        let root = try F.root(), outside = try F.root()
        try FileManager.default.copyItem(atPath: F.plain, toPath: outside + "/evil")
        try FileManager.default.createSymbolicLink(atPath: root + "/evil", withDestinationPath: outside + "/evil")
        let r = try Registry(root: root)
        #expect(throws: RegistryError.outsideRoot(path: root + "/evil")) { try r.adapter("evil") }
        #expect(throws: RegistryError.badName("..")) { try r.adapter("..") }

        try r.publish(F.request("faq", F.plain), validate: F.validate)
        // A version whose file is a symlink out of the root is refused, and the other versions read.
        try r.publish(F.request("faq", F.plain2, activate: false), validate: F.validate)
        try FileManager.default.removeItem(atPath: root + "/faq/v2/adapter_model.safetensors")
        try FileManager.default.createSymbolicLink(atPath: root + "/faq/v2/adapter_model.safetensors",
                                                   withDestinationPath: outside + "/evil/adapter_model.safetensors")
        let a = try r.adapter("faq")
        #expect(a.versions.map(\.version) == [1] && a.active == 1)
        #expect(a.problems.count == 1 && a.problems[0].contains("outside the registry"), "\(a.problems)")
        #expect(throws: RegistryError.self) { try r.resolve(AdapterReference("faq@v2")!) }
        // `current` pointing out of the adapter is a problem, not a path.
        try FileManager.default.removeItem(atPath: root + "/faq/current")
        try FileManager.default.createSymbolicLink(atPath: root + "/faq/current", withDestinationPath: "../../etc")
        let b = try r.adapter("faq")
        #expect(b.active == nil && b.problems.contains { $0.contains("current") })
        #expect(throws: RegistryError.self) { try r.resolve(AdapterReference("faq")!) }
    }

    @Test func brokenManifestsAreReportedAndTheRestServes() throws {
        let root = try F.root()
        let r = try Registry(root: root)
        try r.publish(F.request("faq", F.plain), validate: F.validate)
        try r.publish(F.request("faq", F.plain2, activate: false), validate: F.validate)
        let manifest = root + "/faq/v2/lorad.json"
        let good = try String(contentsOfFile: manifest, encoding: .utf8)
        for (bad, words) in [("{", "not JSON"),
                             (good.replacingOccurrences(of: "\"adapter_config.json\"", with: "\"../x.json\""), "plain file name"),
                             (good.replacingOccurrences(of: "\"format\":1", with: "\"format\":9"), "format 9"),
                             (good.replacingOccurrences(of: "\"version\":2", with: "\"version\":3"), "not faq@v2")] {
            try bad.write(toFile: manifest, atomically: false, encoding: .utf8)
            let a = try r.adapter("faq")
            #expect(a.versions.map(\.version) == [1] && a.active == 1, "\(words)")
            #expect(a.problems.first?.contains(words) == true, "\(a.problems) should say \(words)")
        }
        try good.write(toFile: manifest, atomically: false, encoding: .utf8)
        // Bytes changed after publishing: the size check catches a truncation, verify a same-size edit.
        let weights = root + "/faq/v2/adapter_model.safetensors"
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: weights)))
        bytes[bytes.count - 1] ^= 0xff
        try Data(bytes).write(to: URL(fileURLWithPath: weights))
        let v2 = try r.resolve(AdapterReference("faq@v2")!)
        #expect(throws: RegistryError.self) { try r.verify(v2) }
        try Data(bytes.dropLast()).write(to: URL(fileURLWithPath: weights))
        #expect(try r.adapter("faq").problems.first?.contains("changed after it was published") == true)
    }
}

private func Posix_readlink(_ path: String) throws -> String {
    try FileManager.default.destinationOfSymbolicLink(atPath: path)
}

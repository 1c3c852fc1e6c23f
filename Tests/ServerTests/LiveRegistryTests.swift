// The registry under a running daemon: `lorad adapter import`, `rollback` and `rm` on the root it
// serves are picked up without a signal (file-system events, RegistryWatch), and each request comes
// from the version that was active when it was prepared.

import Foundation
import JSON
import Testing

@Suite struct LiveRegistryTests {
    static func lorad(_ args: [String], root: String) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try LiveFixtures.binary())
        p.arguments = ["adapter"] + args.prefix(1) + ["--adapters", root] + args.dropFirst()
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func answer(_ d: LiveDaemon, _ model: String) throws -> String? {
        let r = try d.post("/v1/chat/completions", chatBody(model: model, "hello there", maxTokens: 6))
        guard r.status == 200 else { return nil }
        return r.json?["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue
    }

    /// Polls until `condition` holds; the seconds it took, or nil after `limit`.
    static func secondsUntil(_ limit: Double, _ condition: () throws -> Bool) rethrows -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < limit {
            if try condition() { return Date().timeIntervalSince(start) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return try condition() ? Date().timeIntervalSince(start) : nil
    }

    @Test func importRollbackAndRemoveAreServedWithoutASignal() throws {
        let d = try LiveDaemon()
        let root = d.dir.appendingPathComponent("adapters").path
        let model = LiveFixtures.root.appendingPathComponent("model.gguf").path
        let alpha = try #require(try Self.answer(d, "alpha"))
        let beta = try #require(try Self.answer(d, "beta"))
        #expect(alpha != beta, "the fixtures' two adapters must answer differently for this test to mean anything")

        // A new version of alpha with beta's weights: served without SIGHUP. The design's bound is one
        // second (a 100 ms settle, then a rescan that reloads only what changed); the limit here is
        // wider for a loaded machine, and the time is printed.
        var r = try Self.lorad(["import", "alpha", root + "/beta.gguf", "--model", model], root: root)
        #expect(r.status == 0, "\(r.output)")
        let swapped = try Self.secondsUntil(5) { try Self.answer(d, "alpha") == beta }
        #expect(swapped != nil, "alpha@v2 was not served: \(d.logText)")
        print("registry: alpha@v2 served \(swapped.map { String(format: "%.3f", $0) } ?? "-") s after the import finished")
        #expect(try d.get("/v1/models/alpha@v2").status == 200)

        r = try Self.lorad(["rollback", "alpha"], root: root)
        #expect(r.status == 0 && r.output.contains("alpha@v1 is active"), "\(r.output)")
        #expect(try Self.secondsUntil(5) { try Self.answer(d, "alpha") == alpha } != nil, "rollback not served")

        // A new adapter appears, then goes.
        r = try Self.lorad(["import", "gamma", root + "/alpha/v1", "--model", model], root: root)
        #expect(r.status == 0, "\(r.output)")
        #expect(try Self.secondsUntil(5) { try Self.answer(d, "gamma") == alpha } != nil, "gamma not served")
        r = try Self.lorad(["rm", "gamma"], root: root)
        #expect(r.status == 0, "\(r.output)")
        #expect(try Self.secondsUntil(5) {
            try d.post("/v1/chat/completions", chatBody(model: "gamma", "hi", maxTokens: 2)).status == 404
        } != nil, "gamma still served after rm")
        #expect(!d.logText.contains("SIGHUP"), "no signal was sent: \(d.logText)")
        #expect(d.stop() == 0)
    }
}

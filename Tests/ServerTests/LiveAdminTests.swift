// The admin API on a running daemon: the registry listed, a version imported from an import root,
// activated, rolled back and removed, vLLM's load/unload_lora_adapter; each change served as soon as
// it is answered; refusals for paths outside the import roots, unknown names and versions, the
// active version, and callers whose uid is not in admin.uids.

import Foundation
import JSON
import Testing

@Suite struct LiveAdminTests {
    static func answer(_ d: LiveDaemon, _ model: String) throws -> String? {
        let r = try d.post("/v1/chat/completions", chatBody(model: model, "hello there", maxTokens: 6))
        guard r.status == 200 else { return nil }
        return r.json?["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue
    }

    static func send(_ d: LiveDaemon, _ method: String, _ path: String, _ body: JSONValue? = nil) throws -> LiveDaemon.Reply {
        try d.send(method, path, body)
    }

    @Test func theRegistryThroughTheAdminAPI() throws {
        let incoming = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-incoming-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: incoming, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: incoming) }
        try FileManager.default.copyItem(at: LiveFixtures.root.appendingPathComponent("adapters/alpha"), to: incoming.appendingPathComponent("alpha"))
        try FileManager.default.copyItem(at: LiveFixtures.root.appendingPathComponent("adapters/beta.gguf"), to: incoming.appendingPathComponent("beta.gguf"))
        let d = try LiveDaemon(adapterKeys: ["import_roots = [\"\(incoming.path)\"]", "rescan_seconds = 0"])
        let alpha = try #require(try Self.answer(d, "alpha"))
        let beta = try #require(try Self.answer(d, "beta"))
        #expect(alpha != beta)

        var r = try Self.send(d, "GET", "/v1/adapters")
        #expect(r.status == 200, "\(r.text)")
        let names = r.json?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(names.contains("alpha") && names.contains("beta") && names.contains("broken"), "\(names)")

        // Import beta's weights as alpha@v2: served the moment the answer comes.
        r = try Self.send(d, "POST", "/v1/adapters/alpha/versions", .object([("path", .string(incoming.appendingPathComponent("beta.gguf").path))]))
        #expect(r.status == 200 && r.json?["version"]?.intValue == 2, "\(r.text)")
        #expect(try Self.answer(d, "alpha") == beta)
        r = try Self.send(d, "GET", "/v1/adapters/alpha")
        #expect(r.json?["active"]?.intValue == 2 && r.json?["versions"]?.arrayValue?.count == 2, "\(r.text)")

        r = try Self.send(d, "POST", "/v1/adapters/alpha/activate", .object([("version", .int(1))]))
        #expect(r.status == 200 && r.json?["active"]?.intValue == 1, "\(r.text)")
        #expect(try Self.answer(d, "alpha") == alpha)
        r = try Self.send(d, "POST", "/v1/adapters/alpha/activate", .object([("version", .string("v2"))]))
        #expect(r.status == 200 && r.json?["active"]?.intValue == 2, "\(r.text)")
        r = try Self.send(d, "POST", "/v1/adapters/alpha/rollback")
        #expect(r.status == 200 && r.json?["active"]?.intValue == 1, "\(r.text)")

        // Refusals.
        r = try Self.send(d, "POST", "/v1/adapters/alpha/activate", .object([("version", .int(9))]))
        #expect(r.status == 404 && r.text.contains("no version v9"), "\(r.text)")
        r = try Self.send(d, "POST", "/v1/adapters/alpha/activate", .object([("version", .string("latest"))]))
        #expect(r.status == 400, "\(r.text)")
        r = try Self.send(d, "DELETE", "/v1/adapters/alpha/versions/1")
        #expect(r.status == 409 && r.text.contains("active version"), "\(r.text)")
        r = try Self.send(d, "POST", "/v1/adapters/evil/versions", .object([("path", .string(LiveFixtures.root.appendingPathComponent("adapters/alpha").path))]))
        #expect(r.status == 403 && r.text.contains("import_roots"), "\(r.text)")
        r = try Self.send(d, "POST", "/v1/adapters/evil/versions", .object([("path", .string(incoming.path + "/../../etc"))]))
        #expect(r.status == 403 || r.status == 400, "\(r.text)")
        r = try Self.send(d, "POST", "/v1/adapters/Bad_Name/versions", .object([("path", .string(incoming.appendingPathComponent("alpha").path))]))
        #expect(r.status == 400 && r.text.contains("not an adapter name"), "\(r.text)")
        r = try Self.send(d, "GET", "/v1/adapters/nope")
        #expect(r.status == 404, "\(r.text)")
        #expect(try Self.send(d, "PUT", "/v1/adapters/alpha").status == 405)

        // Removing a version that is not active, then vLLM's pair of endpoints.
        r = try Self.send(d, "DELETE", "/v1/adapters/alpha/versions/2")
        #expect(r.status == 200 && r.json?["versions"]?.arrayValue?.count == 1, "\(r.text)")
        r = try Self.send(d, "POST", "/v1/load_lora_adapter",
                          .object([("lora_name", .string("gamma")), ("lora_path", .string(incoming.appendingPathComponent("alpha").path))]))
        #expect(r.status == 200 && r.text == "Success: LoRA adapter 'gamma' added successfully.", "\(r.text)")
        #expect(try Self.answer(d, "gamma") == alpha)
        r = try Self.send(d, "POST", "/v1/unload_lora_adapter", .object([("lora_name", .string("gamma"))]))
        #expect(r.status == 200, "\(r.text)")
        #expect(try Self.answer(d, "gamma") == nil)
        #expect(FileManager.default.fileExists(atPath: incoming.appendingPathComponent("alpha/adapter_config.json").path),
                "unload leaves the source path alone")
        #expect(d.logText.contains("admin: uid \(getuid()) imported"), "\(d.logText)")
        #expect(d.stop() == 0)
    }

    @Test func onlyTheListedUidsMayUseIt() throws {
        let d = try LiveDaemon(admin: ["uids = [\(getuid() == 4242 ? 4243 : 4242)]"])
        let r = try Self.send(d, "GET", "/v1/adapters")
        #expect(r.status == 403 && r.text.contains("may not use the admin API"), "\(r.text)")
        #expect(try Self.answer(d, "alpha") != nil, "the OpenAI API stays open")
        #expect(d.stop() == 0)
    }
}

// Adapter uploads on a running daemon (POST /v1/adapters/NAME/versions with the files in the body):
// the fixture adapters' files sent as JSON base64 and as multipart/form-data are published and
// served, answering as the adapters they came from; corrupt uploads (bad base64, bad safetensors,
// an adapter for another base) get 400 with the loader's message while the old version keeps
// serving; file names that are paths are refused; the temporary files are gone afterwards. And the
// limits: uploads may pass server.max_body_bytes up to admin.max_upload_bytes (413 past it), but
// only for admin callers: every other route, TCP, and a uid outside admin.uids are cut off at
// server.max_body_bytes before the body is read; a stalled upload still gets 408.

import Foundation
import JSON
import LoradClient
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct LiveUploadTests {
    static let alphaDir = LiveFixtures.root.appendingPathComponent("adapters/alpha")
    static func fixture(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: LiveFixtures.root.appendingPathComponent(path)))
    }
    static func alphaConfig() throws -> [UInt8] { try fixture("adapters/alpha/adapter_config.json") }
    static func alphaWeights() throws -> [UInt8] { try fixture("adapters/alpha/adapter_model.safetensors") }
    static func betaGGUF() throws -> [UInt8] { try fixture("adapters/beta.gguf") }

    static func base64(_ bytes: [UInt8]) -> JSONValue { .string(Data(bytes).base64EncodedString()) }

    /// `{"files": {...}, "activate": ...}`.
    static func jsonUpload(_ files: [(String, JSONValue)], activate: Bool? = nil) -> JSONValue {
        .object([("files", .object(files))] + (activate.map { [("activate", .bool($0))] } ?? []))
    }

    static let boundary = "------------------------lorad0upload0test"

    /// A multipart/form-data body as `curl -F NAME=@FILE` builds it.
    static func multipart(_ parts: [(name: String, content: [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        for p in parts {
            let file = p.name == "activate" ? "" : "; filename=\"upload.bin\"\r\nContent-Type: application/octet-stream"
            out += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(p.name)\"\(file)\r\n\r\n".utf8) + p.content + Array("\r\n".utf8)
        }
        return out + Array("--\(boundary)--\r\n".utf8)
    }

    /// POSTs a raw body with its Content-Type over the Unix socket.
    static func post(_ d: LiveDaemon, _ path: String, body: [UInt8], contentType: String) throws -> LiveDaemon.Reply {
        let c = try DaemonClient(socket: d.socket, timeoutSeconds: 60)
        try c.send(Array("POST \(path) HTTP/1.1\r\nHost: lorad\r\nConnection: close\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        let h = try c.readHead()
        return LiveDaemon.Reply(status: h.status, head: h, body: try c.readBody())
    }

    static func postMultipart(_ d: LiveDaemon, _ path: String, _ parts: [(name: String, content: [UInt8])]) throws -> LiveDaemon.Reply {
        try post(d, path, body: multipart(parts), contentType: "multipart/form-data; boundary=\(boundary)")
    }

    /// Sends only a request head announcing `length` body bytes; the answer the daemon gives before
    /// any of the body is sent.
    static func headOnly(_ d: LiveDaemon, _ path: String, length: Int) throws -> LiveDaemon.Reply {
        let c = try DaemonClient(socket: d.socket, timeoutSeconds: 30)
        try c.send(Array("POST \(path) HTTP/1.1\r\nHost: lorad\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\n\r\n".utf8))
        let h = try c.readHead()
        return LiveDaemon.Reply(status: h.status, head: h, body: try c.readBody())
    }

    /// A daemon whose temporary files go to a directory of its own, so the test can see them removed.
    static func daemon(tmp: URL, admin: [String] = [], server: [String] = []) throws -> LiveDaemon {
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        return try LiveDaemon(server: server, adapterKeys: ["rescan_seconds = 0"], admin: admin, extraEnvironment: ["TMPDIR": tmp.path])
    }

    static func temporaryDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("lorad-upload-tmp-\(UUID().uuidString.prefix(8))")
    }

    @Test func uploadsAsJSONAndMultipartAreServed() throws {
        let tmp = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        let d = try Self.daemon(tmp: tmp)
        let alpha = try #require(try d.answer("alpha"))
        let beta = try #require(try d.answer("beta"))
        #expect(alpha != beta)
        let config = try JSONValue.parse(try Self.alphaConfig())

        // JSON, PEFT: the configuration as an object, the weights in base64. A new adapter, served at once.
        var r = try d.post("/v1/adapters/up/versions", Self.jsonUpload([("adapter_config.json", config),
                                                                        ("adapter_model.safetensors", Self.base64(try Self.alphaWeights()))]))
        #expect(r.status == 200 && r.json?["version"]?.intValue == 1 && r.json?["active"]?.boolValue == true, "\(r.text)")
        #expect(try d.answer("up") == alpha)
        // JSON, GGUF: beta's file as up@v2.
        r = try d.post("/v1/adapters/up/versions", Self.jsonUpload([("adapter.gguf", Self.base64(try Self.betaGGUF()))]))
        #expect(r.status == 200 && r.json?["version"]?.intValue == 2, "\(r.text)")
        #expect(try d.answer("up") == beta)
        // Multipart, PEFT (as curl -F sends it): up@v3 answers as alpha again.
        r = try Self.postMultipart(d, "/v1/adapters/up/versions", [("adapter_model.safetensors", try Self.alphaWeights()),
                                                                    ("adapter_config.json", try Self.alphaConfig())])
        #expect(r.status == 200 && r.json?["version"]?.intValue == 3, "\(r.text)")
        #expect(try d.answer("up") == alpha)
        // Multipart, GGUF, not activated; JSON with the configuration in base64 too, not activated.
        r = try Self.postMultipart(d, "/v1/adapters/up/versions", [("adapter.gguf", try Self.betaGGUF()), ("activate", Array("false".utf8))])
        #expect(r.status == 200 && r.json?["version"]?.intValue == 4 && r.json?["active"]?.boolValue == false, "\(r.text)")
        r = try d.post("/v1/adapters/up/versions", Self.jsonUpload([("adapter_config.json", Self.base64(try Self.alphaConfig())),
                                                                    ("adapter_model.safetensors", Self.base64(try Self.alphaWeights()))],
                                                                   activate: false))
        #expect(r.status == 200 && r.json?["version"]?.intValue == 5, "\(r.text)")
        #expect(try d.answer("up") == alpha)
        #expect(try d.answer("up@v4") == beta)
        #expect(try d.answer("up@v5") == alpha)

        let shown = try d.send("GET", "/v1/adapters/up").json
        #expect(shown?["active"]?.intValue == 3 && shown?["versions"]?.arrayValue?.count == 5, "\(String(describing: shown))")
        #expect(d.logText.contains("admin: uid \(getuid()) imported upload ("), "\(d.logText)")
        #expect(d.logText.contains(") as up"), "\(d.logText)")
        // The uploads' temporary directories are gone.
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.hasPrefix("lorad-upload-") } == [])
        #expect(d.stop() == 0)
    }

    @Test func corruptUploadsAreRefusedAndTheOldVersionServes() throws {
        let tmp = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        let d = try Self.daemon(tmp: tmp)
        let beta = try #require(try d.answer("beta"))
        let config = try JSONValue.parse(try Self.alphaConfig())
        func upload(_ files: [(String, JSONValue)]) throws -> LiveDaemon.Reply {
            try d.post("/v1/adapters/beta/versions", Self.jsonUpload(files))
        }

        // Not base64.
        var r = try upload([("adapter.gguf", .string("R0dV!A=="))])
        #expect(r.status == 400 && r.text.contains("not valid base64") && r.text.contains("'!' at offset 4"), "\(r.text)")
        // Base64 of bytes that are no safetensors file: the loader's message.
        r = try upload([("adapter_config.json", config), ("adapter_model.safetensors", Self.base64(Array("not a safetensors file".utf8)))])
        #expect(r.status == 400 && r.text.contains("does not load") && r.text.lowercased().contains("safetensors"), "\(r.text)")
        // Truncated weights.
        r = try upload([("adapter_config.json", config), ("adapter_model.safetensors", Self.base64(Array(try Self.alphaWeights().prefix(4000))))])
        #expect(r.status == 400, "\(r.text)")
        // A real LoRA for another base (SmolLM2's shapes against the tiny model).
        let smol = try Data(contentsOf: LiveFixtures.root.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("LlamaTests/Fixtures/lora_smollm2.gguf"))
        r = try upload([("adapter.gguf", Self.base64(Array(smol)))])
        #expect(r.status == 400 && r.text.contains("does not load"), "\(r.text)")
        // Multipart with a cut-off body (no closing boundary).
        var cut = Self.multipart([("adapter.gguf", try Self.betaGGUF())])
        cut.removeLast(8)
        r = try Self.post(d, "/v1/adapters/beta/versions", body: cut, contentType: "multipart/form-data; boundary=\(Self.boundary)")
        #expect(r.status == 400 && r.text.contains("closing boundary"), "\(r.text)")
        // Half a PEFT adapter, and both layouts at once.
        r = try upload([("adapter_config.json", config)])
        #expect(r.status == 400 && r.text.contains("adapter_model.safetensors"), "\(r.text)")
        r = try upload([("adapter_config.json", config), ("adapter_model.safetensors", Self.base64(try Self.alphaWeights())),
                        ("adapter.gguf", Self.base64(try Self.betaGGUF()))])
        #expect(r.status == 400, "\(r.text)")

        // File names that are paths, or any other name: refused, naming the ones allowed.
        for name in ["../adapter_config.json", "x/adapter.gguf", "/etc/passwd", "..", "adapter_model.bin"] {
            r = try upload([(name, Self.base64([1, 2, 3]))])
            #expect(r.status == 400 && r.text.contains("adapter_config.json") && r.text.contains("adapter.gguf") && r.text.contains("never a path"),
                    "\(name): \(r.text)")
        }
        r = try Self.postMultipart(d, "/v1/adapters/beta/versions", [("sub/adapter.gguf", try Self.betaGGUF())])
        #expect(r.status == 400 && r.text.contains("never a path"), "\(r.text)")
        // A name that is no adapter name, and a field that is neither files nor activate.
        r = try d.post("/v1/adapters/Bad%2Fname/versions", Self.jsonUpload([("adapter.gguf", Self.base64(try Self.betaGGUF()))]))
        #expect(r.status == 400 && r.text.contains("not an adapter name"), "\(r.text)")
        r = try d.post("/v1/adapters/beta/versions", .object([("files", .object([("adapter.gguf", Self.base64(try Self.betaGGUF()))])),
                                                              ("path", .string("/etc"))]))
        #expect(r.status == 400 && r.text.contains("unexpected field"), "\(r.text)")

        // Through all of it beta kept serving its one good version.
        #expect(try d.answer("beta") == beta)
        let shown = try d.send("GET", "/v1/adapters/beta").json
        #expect(shown?["served_version"]?.intValue == 1, "\(String(describing: shown))")
        #expect(d.logText.contains("admin: uid \(getuid()) failed: imported upload ("), "\(d.logText)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.hasPrefix("lorad-upload-") } == [])
        #expect(d.stop() == 0)
    }

    /// server.max_body_bytes is 4 KiB, smaller than the uploads; admin.max_upload_bytes 64 KiB.
    @Test func uploadLimitsApplyOnlyToAdminUploads() throws {
        let tmp = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        var started: (LiveDaemon, Int)?
        for _ in 0..<5 where started == nil {
            let port = try freeLoopbackPort()
            do {
                started = (try Self.daemon(tmp: tmp, admin: ["max_upload_bytes = \"64KiB\""],
                                           server: ["max_body_bytes = \"4KiB\"", "read_timeout_seconds = 2", "tcp = \"127.0.0.1:\(port)\""]), port)
            } catch let e as LiveError where e.description.contains("in use") {
                continue
            }
        }
        let (d, port) = try #require(started, "no free loopback port in five tries")
        let alpha = try #require(try d.answer("alpha"))

        // An upload past server.max_body_bytes but within admin.max_upload_bytes: taken.
        let body = Self.multipart([("adapter_model.safetensors", try Self.alphaWeights()), ("adapter_config.json", try Self.alphaConfig())])
        #expect(body.count > 4 << 10 && body.count < 64 << 10)
        var r = try Self.post(d, "/v1/adapters/up/versions", body: body, contentType: "multipart/form-data; boundary=\(Self.boundary)")
        #expect(r.status == 200, "\(r.text)")
        #expect(try d.answer("up") == alpha)

        // Past admin.max_upload_bytes: 413 naming it, before the body is sent.
        r = try Self.headOnly(d, "/v1/adapters/up/versions", length: (64 << 10) + 1)
        #expect(r.status == 413 && r.text.contains("admin.max_upload_bytes"), "\(r.text)")
        // The limit is live: after a SIGHUP that raises it to 128 KiB, the same head is let through
        // (it then times out waiting for the body it announced: 408, not 413).
        let config = d.dir.appendingPathComponent("lorad.toml")
        var toml = try String(contentsOf: config, encoding: .utf8)
        toml = toml.replacingOccurrences(of: "max_upload_bytes = \"64KiB\"", with: "max_upload_bytes = \"128KiB\"")
        try toml.write(to: config, atomically: true, encoding: .utf8)
        kill(d.pid, SIGHUP)
        #expect(secondsUntil(10) { d.logText.contains("SIGHUP: applied admin.max_upload_bytes") } != nil, "\(d.logText)")
        r = try Self.headOnly(d, "/v1/adapters/up/versions", length: (64 << 10) + 1)
        #expect(r.status == 408, "\(r.text)")
        r = try Self.headOnly(d, "/v1/adapters/up/versions", length: (128 << 10) + 1)
        #expect(r.status == 413 && r.text.contains("admin.max_upload_bytes"), "\(r.text)")
        // Every other route keeps server.max_body_bytes, admin routes included.
        r = try Self.headOnly(d, "/v1/chat/completions", length: (4 << 10) + 1)
        #expect(r.status == 413 && r.text.contains("server.max_body_bytes"), "\(r.text)")
        r = try Self.headOnly(d, "/v1/adapters/combine", length: (4 << 10) + 1)
        #expect(r.status == 413 && r.text.contains("server.max_body_bytes"), "\(r.text)")

        // Over TCP (never an admin caller) the upload route is cut off at server.max_body_bytes too.
        let (fd, rc) = connectLoopback(port: port)
        defer { close(fd) }
        #expect(rc == 0)
        let head = Array("POST /v1/adapters/up/versions HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        _ = head.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &buf, buf.count)
        let answer = String(decoding: buf[0..<max(0, n)], as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 413") && answer.contains("server.max_body_bytes"), "\(answer)")

        // An upload that stops arriving still meets the read timeout (2 s): 408.
        let stalled = try DaemonClient(socket: d.socket, timeoutSeconds: 30)
        try stalled.send(Array("POST /v1/adapters/up/versions HTTP/1.1\r\nHost: x\r\nContent-Length: \(32 << 10)\r\n\r\n{\"files\"".utf8))
        let began = Date()
        #expect(try stalled.readHead().status == 408)
        #expect(Date().timeIntervalSince(began) < 20)
        #expect(try d.get("/healthz").status == 200)
        #expect(d.stop() == 0)
    }

    /// A local uid outside admin.uids gets server.max_body_bytes on the upload route (then 403 for a
    /// small body): the larger limit is decided by the same check that admits admin callers.
    @Test func nonAdminUidsKeepTheServerLimit() throws {
        let tmp = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        let d = try Self.daemon(tmp: tmp, admin: ["uids = [\(getuid() == 4242 ? 4243 : 4242)]"], server: ["max_body_bytes = \"4KiB\""])
        var r = try Self.headOnly(d, "/v1/adapters/up/versions", length: (4 << 10) + 1)
        #expect(r.status == 413 && r.text.contains("server.max_body_bytes"), "\(r.text)")
        r = try d.post("/v1/adapters/up/versions", Self.jsonUpload([("adapter.gguf", Self.base64([1]))]))
        #expect(r.status == 403, "\(r.text)")
        #expect(d.stop() == 0)
    }
}

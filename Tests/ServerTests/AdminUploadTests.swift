// An upload's body decoded without a daemon: base64 against Foundation's encoder on awkward sizes
// (with and without padding and line breaks) and its refusals with offsets; `AdapterUpload` from
// JSON and multipart bodies, the file names it takes (never a path) and the layouts it accepts.

import Foundation
import JSON
import Testing
@testable import Server

@Suite struct AdminUploadTests {
    @Test func base64MatchesFoundationOnAwkwardSizes() throws {
        var rng = SystemRandomNumberGenerator()
        for size in [0, 1, 2, 3, 4, 5, 57, 58, 59, 1000, 4097] {
            let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let padded = Data(bytes).base64EncodedString()
            #expect(try Base64.decode(padded) == bytes, "size \(size)")
            // Without padding, and wrapped at 76 columns as base64(1) writes it.
            #expect(try Base64.decode(padded.filter { $0 != "=" }) == bytes, "size \(size) unpadded")
            let wrapped = Data(bytes).base64EncodedString(options: [.lineLength76Characters, .endLineWithLineFeed])
            #expect(try Base64.decode(wrapped + "\n") == bytes, "size \(size) wrapped")
        }
    }

    @Test func base64RefusalsSayWhere() {
        func message(_ text: String) -> String? {
            do { _ = try Base64.decode(text); return nil } catch { return error.message }
        }
        #expect(message("QUJD!A==")?.contains("'!' at offset 4") == true)
        #expect(message("QUJD RA==")?.contains("byte 0x20 at offset 4") == true)
        #expect(message("QQ==QQ==")?.contains("after the '=' padding") == true)
        #expect(message("QUJDR")?.contains("cut short") == true)
        #expect(message("QUJ==") != nil, "padding that does not fill the group")
        #expect(message("QQ===") != nil)
    }

    static let config = JSONValue.object([("r", .int(8)), ("lora_alpha", .int(16))])

    @Test func jsonBodies() throws {
        let body = JSONValue.object([("files", .object([("adapter_config.json", Self.config),
                                                          ("adapter_model.safetensors", .string("AAEC"))])),
                                     ("activate", .bool(false))])
        let u = try AdapterUpload(body: Array(body.serialized().utf8), contentType: "application/json")
        #expect(u.files.map(\.name) == ["adapter_config.json", "adapter_model.safetensors"])
        #expect(try JSONValue.parse(u.files[0].bytes) == Self.config)
        #expect(u.files[1].bytes == [0, 1, 2])
        #expect(!u.activate && !u.isGGUF)
        let gguf = try AdapterUpload(body: Array(#"{"files": {"adapter.gguf": "R0dVRg=="}}"#.utf8), contentType: nil)
        #expect(gguf.isGGUF && gguf.activate && gguf.files[0].bytes == Array("GGUF".utf8))
    }

    @Test func multipartBodies() throws {
        let b = "xyz"
        let body = Array("--\(b)\r\nContent-Disposition: form-data; name=\"adapter.gguf\"; filename=\"beta.gguf\"\r\n\r\nGGUF\r\n--\(b)\r\nContent-Disposition: form-data; name=\"activate\"\r\n\r\nfalse\r\n--\(b)--\r\n".utf8)
        let u = try AdapterUpload(body: body, contentType: "multipart/form-data; boundary=\(b)")
        #expect(u.isGGUF && !u.activate && u.files[0].bytes == Array("GGUF".utf8))
    }

    @Test(arguments: ["../adapter.gguf", "a/adapter.gguf", "/adapter.gguf", "..", ".", "", "adapter_model.bin", "ADAPTER.GGUF", "adapter.gguf\u{0}"])
    func namesThatAreNotTheFilesAreRefused(name: String) {
        let body = JSONValue.object([("files", .object([(name, .string("AAAA"))]))])
        do {
            _ = try AdapterUpload(body: Array(body.serialized().utf8), contentType: nil)
            Issue.record("\(name) was taken")
        } catch {
            #expect(error.status == 400 && error.message.contains("never a path") && error.message.contains("adapter_config.json"), "\(error)")
        }
    }

    @Test func layoutsAndFieldsAreChecked() {
        func refusal(_ json: String, contentType: String? = nil) -> String? {
            do { _ = try AdapterUpload(body: Array(json.utf8), contentType: contentType); return nil } catch { return error.message }
        }
        #expect(refusal(#"{"files": {}}"#)?.contains("found no files") == true)
        #expect(refusal(#"{"files": {"adapter_config.json": {}}}"#)?.contains("adapter_model.safetensors") == true)
        #expect(refusal(#"{"files": {"adapter.gguf": "AAAA", "adapter_config.json": {}}}"#)?.contains("alone") == true)
        #expect(refusal(#"{"files": {"adapter.gguf": {}}}"#)?.contains("base64 string") == true)
        #expect(refusal(#"{"files": {"adapter.gguf": "AAAA"}, "activate": "yes"}"#)?.contains("true or false") == true)
        #expect(refusal(#"{"files": {"adapter.gguf": "AAAA"}, "name": "x"}"#)?.contains("unexpected field") == true)
        #expect(refusal(#"{"file": {}}"#)?.contains("unexpected field") == true)
        #expect(refusal("not json")?.contains("not JSON") == true)
        #expect(refusal("--b\r\n", contentType: "multipart/form-data; boundary=b")?.contains("multipart") == true)
        #expect(refusal("", contentType: "multipart/form-data")?.contains("boundary") == true)
    }
}

// The multipart/form-data parser: parts as curl sends them, contents that merely look like a
// boundary, the boundary parameter of Content-Type, and every refusal: a preamble or an epilogue,
// a missing closing boundary (a body cut short anywhere), duplicate parts, more parts than the
// limit, parts without a form-data name.

import HTTP
import Testing

@Suite struct MultipartTests {
    static let boundary = "------------------------d74496d66958873e"

    /// A body as curl builds it for `-F name=@file`: each part's fields, a blank line, its content.
    static func body(_ parts: [(name: String, filename: String?, content: [UInt8])], boundary: String = boundary,
                     close: Bool = true) -> [UInt8] {
        var out: [UInt8] = []
        for p in parts {
            var head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(p.name)\""
            if let f = p.filename { head += "; filename=\"\(f)\"\r\nContent-Type: application/octet-stream" }
            head += "\r\n\r\n"
            out += Array(head.utf8) + p.content + Array("\r\n".utf8)
        }
        if close { out += Array("--\(boundary)--\r\n".utf8) } else { out.removeLast(2) }
        return out
    }

    static func refusal(_ body: [UInt8], boundary: String = boundary, maxParts: Int = Multipart.defaultMaxParts) -> String? {
        do {
            let parts = try Multipart.parse(body, boundary: boundary, maxParts: maxParts)
            Issue.record("expected a refusal, got \(parts.count) parts")
            return nil
        } catch {
            return error.message
        }
    }

    @Test func partsAsCurlSendsThem() throws {
        // Binary content with CR, LF, "--" and a near-boundary inside: only CRLF + "--" + the exact
        // boundary ends a part.
        let weights: [UInt8] = [0, 0x0D, 0x0A, 0x2D, 0x2D, 0xFF] + Array("\r\n--\(Self.boundary.dropLast())x".utf8) + [7]
        let body = Self.body([("adapter_model.safetensors", "x.bin", weights), ("adapter_config.json", "y.json", Array("{\"r\": 8}".utf8)),
                              ("activate", nil, Array("false".utf8))])
        let parts = try Multipart.parse(body, boundary: Self.boundary)
        #expect(parts.map(\.name) == ["adapter_model.safetensors", "adapter_config.json", "activate"])
        #expect(parts.map(\.filename) == ["x.bin", "y.json", nil])
        #expect(Array(parts[0].content) == weights)
        #expect(String(decoding: parts[1].content, as: UTF8.self) == "{\"r\": 8}")
        #expect(String(decoding: parts[2].content, as: UTF8.self) == "false")
        #expect(parts[0].headers["Content-Type"] == "application/octet-stream")
    }

    @Test func emptyContentsPaddingAndNoFinalCRLF() throws {
        var body = Self.body([("a", nil, []), ("b", nil, [1])])
        body.removeLast(2)   // no CRLF after the closing boundary
        let parts = try Multipart.parse(body, boundary: Self.boundary)
        #expect(parts.map { Array($0.content) } == [[], [1]])
        // Transport padding (spaces, tabs) after a boundary is allowed (RFC 2046).
        let padded = Array("--b \t\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b-- \r\n".utf8)
        #expect(try Multipart.parse(padded, boundary: "b").map { Array($0.content) } == [Array("x".utf8)])
    }

    @Test func contentDispositionParameters() throws {
        let body = Array("--b\r\ncontent-disposition: Form-Data ;name=\"we\\\"ird\"; filename=\"a;b.bin\"\r\n\r\nz\r\n--b--".utf8)
        let parts = try Multipart.parse(body, boundary: "b")
        #expect(parts.first?.name == "we\"ird" && parts.first?.filename == "a;b.bin")
    }

    @Test func missingFinalBoundaryIsRefused() {
        let full = Self.body([("a", "a.bin", Array("hello".utf8))])
        // Cut anywhere short of the closing "--": refused, never taken as complete.
        let closing = full.count - 4   // "--\r\n" after the last boundary
        for end in 0..<closing {
            let message = Self.refusal(Array(full[..<end]))
            #expect(message != nil, "cut at \(end)")
        }
        #expect(Self.refusal(Self.body([("a", nil, [1, 2])], close: false))?.contains("cut short") == true)
        #expect(Self.refusal(Array("--\(Self.boundary)\r\n".utf8))?.contains("cut short") == true)
        #expect(Self.refusal(Array("--\(Self.boundary)".utf8))?.contains("closing boundary") == true)
    }

    @Test func duplicatePartsAreRefused() {
        let message = Self.refusal(Self.body([("adapter.gguf", "a", [1]), ("adapter.gguf", "b", [2])]))
        #expect(message?.contains("\"adapter.gguf\" appears twice") == true, "\(message ?? "")")
    }

    @Test func partsPastTheLimitAreRefused() throws {
        let three = Self.body([("a", nil, [1]), ("b", nil, [2]), ("c", nil, [3])])
        #expect(try Multipart.parse(three, boundary: Self.boundary, maxParts: 3).count == 3)
        #expect(Self.refusal(three, maxParts: 2)?.contains("more than 2 parts") == true)
        // A part's fields are bounded too.
        let longField = Array("--b\r\nContent-Disposition: form-data; name=a\r\nX: \(String(repeating: "y", count: Multipart.maxPartHeaderBytes))\r\n\r\nz\r\n--b--".utf8)
        #expect(Self.refusal(longField, boundary: "b")?.contains("longer than") == true)
    }

    @Test func preambleEpilogueAndBadFramingAreRefused() {
        let good = Self.body([("a", nil, [1])])
        #expect(Self.refusal(Array("hello\r\n".utf8) + good)?.contains("preamble") == true)
        #expect(Self.refusal(good + Array("trailing".utf8))?.contains("epilogue") == true)
        // A boundary line with something after it that is not padding.
        #expect(Self.refusal(Array("--bx\r\n\r\n\r\n--b--".utf8), boundary: "b")?.contains("expected CRLF") == true)
        // A bare LF ending the boundary line.
        #expect(Self.refusal(Array("--b\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b--".utf8), boundary: "b") != nil)
    }

    @Test func partsNeedAFormDataName() {
        #expect(Self.refusal(Array("--b\r\n\r\nx\r\n--b--".utf8), boundary: "b")?.contains("Content-Disposition") == true)
        #expect(Self.refusal(Array("--b\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--b--".utf8), boundary: "b")?.contains("form-data") == true)
        #expect(Self.refusal(Array("--b\r\nContent-Disposition: form-data; filename=a\r\n\r\nx\r\n--b--".utf8), boundary: "b")?.contains("name parameter") == true)
        #expect(Self.refusal(Array("--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--b--".utf8), boundary: "b") != nil)
    }

    @Test func boundaryFromContentType() throws {
        #expect(try Multipart.boundary(contentType: "multipart/form-data; boundary=\(Self.boundary)") == Self.boundary)
        #expect(try Multipart.boundary(contentType: "Multipart/Form-Data;boundary=\"a b:c\"") == "a b:c")
        #expect(try Multipart.boundary(contentType: "multipart/form-data; charset=utf-8; boundary=x") == "x")
        #expect(try Multipart.boundary(contentType: "application/json") == nil)
        #expect(try Multipart.boundary(contentType: "multipart/mixed; boundary=x") == nil)
        for bad in ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=\"x",
                    "multipart/form-data; boundary=a{b", "multipart/form-data; boundary=\(String(repeating: "x", count: 71))"] {
            #expect(throws: MultipartError.self, "\(bad)") { try Multipart.boundary(contentType: bad) }
        }
    }
}

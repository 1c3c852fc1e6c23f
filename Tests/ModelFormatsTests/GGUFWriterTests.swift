// Writer round trips: every metadata type and several tensor types go out and come back unchanged,
// in memory and through a file on disk; and the real model's header is read as llama.cpp reads it.

import Foundation
import JSON
import Kernels
import Testing
@testable import ModelFormats

@Suite struct GGUFWriterTests {
    static let values: [(String, GGUFValue)] = [
        ("t.u8", .uint8(200)), ("t.i8", .int8(-100)), ("t.u16", .uint16(60000)), ("t.i16", .int16(-30000)),
        ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-2_000_000_000)), ("t.f32", .float32(-1.5e-7)),
        ("t.bool", .bool(true)), ("t.str", .string("héllo ✓ \u{0}x")), ("t.u64", .uint64(UInt64.max)),
        ("t.i64", .int64(Int64.min)), ("t.f64", .float64(Double.pi)),
        ("a.u8", .array(.uint8([1, 2, 255]))), ("a.i8", .array(.int8([-1, 0, 1]))),
        ("a.u16", .array(.uint16([1, 65535]))), ("a.i16", .array(.int16([-5]))),
        ("a.u32", .array(.uint32([]))), ("a.i32", .array(.int32([3, -3]))),
        ("a.f32", .array(.float32([1, -0.0, .infinity]))), ("a.bool", .array(.bool([true, false]))),
        ("a.str", .array(.string(["", "Ġt", "日本"]))), ("a.u64", .array(.uint64([0, UInt64.max]))),
        ("a.i64", .array(.int64([Int64.min]))), ("a.f64", .array(.float64([1e300]))),
    ]

    func sample(alignment: Int = 32) throws -> GGUFWriter {
        var w = GGUFWriter(alignment: alignment)
        for (k, v) in Self.values { w.set(k, v) }
        try w.addTensor(name: "f", shape: [3, 2], floats: [1, 2, 3, 4, 5, 6])
        try w.addTensor(name: "q", type: .q4_1, shape: [64, 3], data: (0..<120).map { UInt8($0) })
        try w.addTensor(name: "k", type: .q6_K, shape: [256], data: (0..<210).map { UInt8(255 - $0) })
        return w
    }

    func check(_ f: GGUFFile, alignment: Int) {
        for (k, v) in Self.values { #expect(f.metadata[k] == v, "\(k)") }
        #expect(f.metadataKeys.filter { $0 != "general.alignment" } == Self.values.map(\.0))
        #expect(f.alignment == alignment)
        #expect(f.tensors.map(\.name) == ["f", "q", "k"])
        #expect(f.tensor(named: "q")?.shape == [64, 3])
        #expect(Array(f.data(of: f.tensor(named: "q")!)) == (0..<120).map { UInt8($0) })
        #expect(Array(f.data(of: f.tensor(named: "k")!)) == (0..<210).map { UInt8(255 - $0) })
        let fl = f.data(of: f.tensor(named: "f")!)
        #expect((0..<6).map { fl.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } == [1, 2, 3, 4, 5, 6])
    }

    @Test(arguments: [32, 64, 8])
    func roundTripInMemory(alignment: Int) throws {
        let f = try GGUFFile(bytes: try sample(alignment: alignment).bytes())
        check(f, alignment: alignment)
    }

    @Test func roundTripThroughFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-\(UUID()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try sample().write(to: path)
        let f = try GGUFFile(path: path)
        check(f, alignment: 32)
        #expect(f.path == path)
        // Written again over the old file (atomic replace), read back unchanged.
        try sample().write(to: path)
        check(try GGUFFile(path: path), alignment: 32)
    }

    @Test func rejectsWrongDataSize() {
        var w = GGUFWriter()
        #expect(throws: GGUFWriterError.self) { try w.addTensor(name: "x", type: .q8_0, shape: [32], data: [0]) }
        #expect(throws: GGUFWriterError.self) { try w.addTensor(name: "x", type: .q8_0, shape: [16], data: []) }
    }

    @Test func missingFileIsAClearError() {
        #expect(throws: MappedFileError.self) { try GGUFFile(path: "/nonexistent/model.gguf") }
        #expect(throws: MappedFileError.self) { try GGUFFile(path: "/tmp") }
    }

    /// The real SmolLM2 file: facts FORMATS.md §1 records from the bytes.
    @Test func realModelHeader() throws {
        let f = try GGUFFile(path: try testModelPath())
        #expect(f.version == 3)
        #expect(f.tensors.count == 272 && f.metadata.count == 33)
        #expect(f.dataOffset == 1_785_664)
        #expect(f.alignment == 32)
        #expect(f.tensors.filter { $0.type == .q4_1 }.count == 210)
        #expect(f.tensors.filter { $0.type == .f32 }.count == 61)
        #expect(f.tensor(named: "token_embd.weight")?.type == .q8_0)
        #expect(f.tensor(named: "token_embd.weight")?.shape == [576, 49152])
        #expect(f.tensor(named: "blk.0.attn_k.weight")?.shape == [576, 192])
        #expect(try f.int("llama.block_count") == 30)
        #expect(try f.string("tokenizer.ggml.pre") == "smollm")
        #expect(f.array("tokenizer.ggml.merges")?.strings?.first == "Ġ t")
        #expect(f.array("tokenizer.ggml.tokens")?.count == 49152)
        #expect(f.tensors.allSatisfy { $0.offset % 32 == 0 })
        #expect(throws: GGUFError.wrongValueType(key: "llama.block_count", expected: "a string", found: "u32")) {
            try f.string("llama.block_count")
        }
        // JSON description parses with Foundation and keeps the tensor table.
        let json = f.describeJSON(arrayLimit: 4).serialized()
        let obj = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect((obj?["tensors"] as? [Any])?.count == 272)
    }
}

/// The real model's path from LORAD_TEST_MODEL (set by `make test`); missing is a failure.
func testModelPath() throws -> String {
    guard let p = ProcessInfo.processInfo.environment["LORAD_TEST_MODEL"], !p.isEmpty else {
        Issue.record("LORAD_TEST_MODEL is not set: run the suite with `make test`, which fetches the model")
        throw ModelMissing()
    }
    guard FileManager.default.fileExists(atPath: p) else {
        Issue.record("LORAD_TEST_MODEL=\(p) does not exist: run scripts/fetch-model")
        throw ModelMissing()
    }
    return p
}

struct ModelMissing: Error {}

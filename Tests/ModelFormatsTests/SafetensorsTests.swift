// The safetensors reader against corrupted files built in code (each must give its own typed error,
// never a trap), and writer round trips.

import Foundation
import Kernels
import Testing
@testable import ModelFormats

/// A file from a literal header (no padding added) and a data buffer.
private func raw(_ header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var out = [UInt8]()
    withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
    return out + h + data
}

private func readError(_ bytes: [UInt8]) -> SafetensorsError? {
    do {
        _ = try SafetensorsFile(bytes: bytes)
        return nil
    } catch let e as SafetensorsError {
        return e
    } catch {
        Issue.record("unexpected error type \(type(of: error)): \(error)")
        return nil
    }
}

private let twoTensors = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[1,2],"data_offsets":[8,12]}}"#

@Suite struct SafetensorsReaderTests {
    @Test func readsValidFile() throws {
        var data = [UInt8]()
        for f: Float in [1.5, -2] { withUnsafeBytes(of: f.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        for f: Float in [0.5, 3] { withUnsafeBytes(of: f32ToF16(f).littleEndian) { data.append(contentsOf: $0) } }
        let f = try SafetensorsFile(bytes: raw(twoTensors, data: data))
        #expect(f.tensors.map(\.name) == ["a", "b"])
        #expect(f.tensor(named: "b")?.shape == [1, 2])
        #expect(try f.floats(named: "a") == [1.5, -2])
        #expect(try f.floats(named: "b") == [0.5, 3])
        #expect(f.metadata.isEmpty)
    }

    @Test func emptyAndScalarTensorsAndMetadata() throws {
        let h = #"{"__metadata__":{"format":"pt"},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}  "#
        let f = try SafetensorsFile(bytes: raw(h, data: [UInt8](repeating: 0, count: 8)))
        #expect(f.metadata == ["format": "pt"])
        #expect(f.tensor(named: "s")?.shape == [])
        #expect(f.tensor(named: "e")?.elementCount == 0)
        #expect(throws: SafetensorsError.wrongDType(tensor: "s", expected: "F32, F16, BF16 or F64", found: "I64")) {
            try f.floats(named: "s")
        }
        #expect(throws: SafetensorsError.missingTensor("zz")) { try f.floats(named: "zz") }
    }

    @Test func badHeaderLength() {
        #expect(readError([1, 2, 3]) == .truncated(what: "the 8-byte header length", needed: 8, fileSize: 3))
        #expect(readError(raw("{}", length: 200)) == .headerPastEnd(fileSize: 10))
        #expect(readError(raw("{}", length: 100_000_001)) == .headerTooLarge(100_000_001))
        #expect(readError(raw("{}", length: UInt64.max)) == .headerTooLarge(UInt64.max))
    }

    /// A path can lead to any file (a symlink): the messages for a file that is not safetensors must
    /// not repeat its first bytes, here read as the header length.
    @Test func badHeaderLengthIsNotEchoed() {
        let text = Array("password=hunter2".utf8)   // first 8 bytes as a little-endian length: huge
        let small = raw("{}", length: 0x0102_0304)       // a plausible length past the end
        for bytes in [text, small] {
            let message = readError(bytes)?.description ?? ""
            #expect(message.contains("not a safetensors file"), "\(message)")
            for n in [UInt64(0x0102_0304), UInt64(0x0102_0304 + 8), text.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }] {
                #expect(!message.contains(String(n)), "\(message)")
            }
        }
    }

    @Test func notJSON() {
        guard case .headerNotJSON = readError(raw(" {}")) else { Issue.record("leading space accepted"); return }
        guard case .headerNotJSON = readError(raw("{\"a\":")) else { Issue.record("broken JSON accepted"); return }
        guard case .headerNotJSON = readError(raw("[1,2]")) else { Issue.record("array accepted"); return }
        #expect(readError([2, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0xFF]) == .headerNotUTF8)
        // The JSON reader's own message says what was expected, what was found and where.
        #expect(readError(raw("{\"a\":")) == .headerNotJSON(reason: "expected a JSON value, found end of input at byte 5"))
        #expect(readError(raw(#"{"a":{"dtype":"F32",}}"#))?.description
                == "safetensors header is not a JSON object: expected an object key after ',', found '}' (trailing commas are not allowed in JSON) at byte 20")
    }

    @Test func missingOrMistypedFields() {
        func reason(_ h: String) -> String? {
            if case .badEntry(_, let r) = readError(raw(h)) { return r }
            return nil
        }
        #expect(reason(#"{"a":{"shape":[1],"data_offsets":[0,4]}}"#) == "missing \"dtype\"")
        #expect(reason(#"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#) == "missing \"shape\"")
        #expect(reason(#"{"a":{"dtype":"F32","shape":[1]}}"#) == "missing \"data_offsets\"")
        #expect(reason(#"{"a":{"dtype":5,"shape":[1],"data_offsets":[0,4]}}"#) == "\"dtype\" is not a string")
        #expect(reason(#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#) != nil)
        #expect(reason(#"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#) == "\"shape\" holds 1.5, not a non-negative integer")
        #expect(reason(#"{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#) == "\"shape\" holds 2.0, not a non-negative integer")
        #expect(reason(#"{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#) == "\"shape\" holds true, not a non-negative integer")
        #expect(reason(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}"#) == "\"data_offsets\" is not a pair of integers")
        #expect(reason(#"{"a":{"dtype":"F32","shape":3,"data_offsets":[0,4]}}"#) == "\"shape\" is not an array")
        #expect(reason(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#) == "\"data_offsets\" is not a pair of integers")
        #expect(reason(#"{"a":[1]}"#) == "the entry is not an object")
        #expect(reason(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}}"#)
                == "the shape's element count overflows")
    }

    @Test func unknownDType() {
        #expect(readError(raw(#"{"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
                == .unknownDType(tensor: "a", dtype: "F12"))
    }

    @Test func offsetsOutOfRange() {
        #expect(readError(raw(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0]))
                == .offsetsOutOfRange(tensor: "a", begin: 0, end: 8, bufferSize: 4))
        #expect(readError(raw(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0]))
                == .offsetsOutOfRange(tensor: "a", begin: 4, end: 0, bufferSize: 4))
    }

    @Test func sizeMismatch() {
        #expect(readError(raw(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)))
                == .sizeMismatch(tensor: "a", expected: 12, found: 8))
    }

    @Test func gapsOverlapsAndTrailingBytes() {
        let gap = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        #expect(readError(raw(gap, data: [UInt8](repeating: 0, count: 12))) == .gapOrOverlap(tensor: "b", expected: 4, found: 8))
        let overlap = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(readError(raw(overlap, data: [UInt8](repeating: 0, count: 8))) == .gapOrOverlap(tensor: "b", expected: 8, found: 4))
        let late = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(readError(raw(late, data: [UInt8](repeating: 0, count: 8))) == .gapOrOverlap(tensor: "a", expected: 0, found: 4))
        let short = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        #expect(readError(raw(short, data: [UInt8](repeating: 0, count: 6))) == .trailingBytes(expected: 4, found: 6))
    }

    @Test func duplicateKeys() {
        let h = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        #expect(readError(raw(h, data: [0, 0, 0, 0])) == .duplicateKey("a"))
        // The same name spelled with an escape is still the same key.
        let h2 = #"{"ab":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a\u0062":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        #expect(readError(raw(h2, data: [0, 0, 0, 0])) == .duplicateKey("ab"))
        // A key repeated inside one tensor's entry is not a tensor named twice, but is refused too.
        let h3 = #"{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}"#
        #expect(readError(raw(h3, data: [0, 0, 0, 0]))
                == .headerNotJSON(reason: #"duplicate key "dtype" in an object (each key may appear once) at byte 20"#))
        let h4 = #"{"__metadata__":{"format":"pt","format":"np"}}"#
        guard case .headerNotJSON = readError(raw(h4)) else { Issue.record("duplicate metadata key accepted"); return }
        // Equal keys in different nested objects are fine.
        let ok = #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(readError(raw(ok, data: [UInt8](repeating: 0, count: 8))) == nil)
    }

    @Test func metadataMustBeStrings() {
        #expect(readError(raw(#"{"__metadata__":{"format":1}}"#)) == .metadataNotStrings(key: "format"))
        #expect(readError(raw(#"{"__metadata__":{"ok":"x","bad":true}}"#)) == .metadataNotStrings(key: "bad"))
        #expect(readError(raw(#"{"__metadata__":["pt"]}"#)) == .metadataNotStrings(key: "__metadata__"))
    }

    @Test func everyTruncationOfAValidFileIsRejected() throws {
        var w = SafetensorsWriter()
        try w.addTensor(name: "x", shape: [3], floats: [1, 2, 3])
        let full = w.bytes()
        for cut in 0..<full.count {
            #expect(readError(Array(full[..<cut])) != nil, "cut at \(cut)")
        }
    }
}

@Suite struct SafetensorsWriterTests {
    @Test func roundTripAllFloatTypes() throws {
        var w = SafetensorsWriter(metadata: [("format", "pt")])
        let values: [Float] = [0, 1, -2.5, 3.25, 65504, -0.0001, 7, 8]
        try w.addTensor(name: "w.f32", shape: [2, 4], floats: values)
        try w.addTensor(name: "w.f16", shape: [4, 2], floats: values, dtype: .f16)
        try w.addTensor(name: "w.bf16", shape: [8], floats: values, dtype: .bf16)
        try w.addTensor(name: "ids", dtype: .i64, shape: [1], data: [1, 0, 0, 0, 0, 0, 0, 0])
        let bytes = w.bytes()
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.1) << (8 * $1.0) }
        #expect(headerLength % 8 == 0)
        let f = try SafetensorsFile(bytes: bytes)
        #expect(f.dataOffset % 8 == 0)
        #expect(f.metadata == ["format": "pt"])
        // Ordered by dtype size (descending), then name.
        #expect(f.tensors.map(\.name) == ["ids", "w.f32", "w.bf16", "w.f16"])
        #expect(try f.floats(named: "w.f32") == values)
        #expect(try f.floats(named: "w.f16") == values.map { f16ToF32(f32ToF16($0)) })
        #expect(try f.floats(named: "w.bf16") == values.map { bf16ToF32(f32ToBF16($0)) })
        #expect(f.tensor(named: "w.f16")?.shape == [4, 2])
    }

    @Test func atomicWriteAndMappedRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("a.safetensors").path
        var w = SafetensorsWriter()
        try w.addTensor(name: "t", shape: [3, 1], floats: [1, 2, 3])
        try w.write(to: path)
        let f = try SafetensorsFile(path: path)
        #expect(f.path == path)
        #expect(try f.floats(named: "t") == [1, 2, 3])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["a.safetensors"])
    }

    @Test func writerRejectsBadInput() throws {
        var w = SafetensorsWriter()
        #expect(throws: SafetensorsError.writerSizeMismatch(tensor: "a", expected: 8, found: 4)) {
            try w.addTensor(name: "a", dtype: .f32, shape: [2], data: [0, 0, 0, 0])
        }
        try w.addTensor(name: "a", shape: [1], floats: [1])
        #expect(throws: SafetensorsError.writerDuplicateTensor("a")) { try w.addTensor(name: "a", shape: [1], floats: [1]) }
        #expect(throws: SafetensorsError.writerBadName("__metadata__")) {
            try w.addTensor(name: "__metadata__", shape: [1], floats: [1])
        }
    }

    @Test func emptyFile() throws {
        let f = try SafetensorsFile(bytes: SafetensorsWriter().bytes())
        #expect(f.tensors.isEmpty)
    }
}

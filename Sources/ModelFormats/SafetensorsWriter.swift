// safetensors writer (FORMATS.md §5.5), following the reference implementation's conventions so its
// stricter readers accept the output: tensors ordered by dtype size (descending) then name, packed
// without gaps; `__metadata__` first when present; the JSON header space-padded to a multiple of 8
// bytes so the data starts 8-aligned. Files are written atomically (temporary file + rename).

import JSON
import Kernels

public struct SafetensorsWriter {
    public var metadata: [(String, String)] = []
    private var entries: [(name: String, dtype: SafetensorsDType, shape: [Int], data: [UInt8])] = []

    public init(metadata: [(String, String)] = []) {
        self.metadata = metadata
    }

    /// Adds a tensor; `shape` row-major (outermost first), `data` little-endian in `dtype`.
    public mutating func addTensor(name: String, dtype: SafetensorsDType, shape: [Int], data: [UInt8]) throws {
        guard !name.isEmpty, name != "__metadata__" else { throw SafetensorsError.writerBadName(name) }
        let expected = shape.reduce(1, *) * dtype.byteSize
        guard shape.allSatisfy({ $0 >= 0 }), expected == data.count else {
            throw SafetensorsError.writerSizeMismatch(tensor: name, expected: expected, found: data.count)
        }
        guard !entries.contains(where: { $0.name == name }) else { throw SafetensorsError.writerDuplicateTensor(name) }
        entries.append((name, dtype, shape, data))
    }

    /// Adds f32 values stored as F32, F16 or BF16 (rounded to nearest even for the 16-bit types).
    public mutating func addTensor(name: String, shape: [Int], floats: [Float], dtype: SafetensorsDType = .f32) throws {
        var bytes = [UInt8]()
        switch dtype {
        case .f32:
            bytes.reserveCapacity(floats.count * 4)
            for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        case .f16, .bf16:
            bytes.reserveCapacity(floats.count * 2)
            for f in floats {
                let h = dtype == .f16 ? f32ToF16(f) : f32ToBF16(f)
                withUnsafeBytes(of: h.littleEndian) { bytes.append(contentsOf: $0) }
            }
        default:
            throw SafetensorsError.wrongDType(tensor: name, expected: "F32, F16 or BF16", found: dtype.rawValue)
        }
        try addTensor(name: name, dtype: dtype, shape: shape, data: bytes)
    }

    public func bytes() -> [UInt8] {
        let ordered = entries.sorted { ($0.dtype.byteSize, $1.name) > ($1.dtype.byteSize, $0.name) }
        var header: [(String, JSONValue)] = []
        if !metadata.isEmpty {
            header.append(("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) })))
        }
        var offset = 0
        for e in ordered {
            header.append((e.name, .object([
                ("dtype", .string(e.dtype.rawValue)),
                ("shape", .array(e.shape.map { .int($0) })),
                ("data_offsets", .array([.int(offset), .int(offset + e.data.count)])),
            ])))
            offset += e.data.count
        }
        var json = Array(JSONValue.object(header).serialized().utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        for e in ordered { out.append(contentsOf: e.data) }
        return out
    }

    /// Writes to a temporary file beside `path` and renames it into place.
    public func write(to path: String) throws {
        try writeFileAtomically(bytes(), to: path)
    }
}

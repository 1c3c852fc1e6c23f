// GGUF v3 writer: builds files in memory (tiny test models, LoRA exports) and writes them
// atomically. Output follows ggml's conventions, so ggml's stricter reader accepts it too: tensors
// packed in insertion order, each padded to the alignment, `general.alignment` written only when
// it differs from the default 32.

import Kernels

public enum GGUFWriterError: Error, CustomStringConvertible, Sendable {
    case sizeMismatch(tensor: String, expected: Int?, found: Int)
    case duplicateTensor(String)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .sizeMismatch(let name, let expected, let found):
            let e = expected.map(String.init) ?? "a whole number of blocks"
            return "tensor '\(name)': data has \(found) bytes, shape and type need \(e)"
        case .duplicateTensor(let name):
            return "tensor '\(name)' was added twice"
        case .io(let path, let reason):
            return "cannot write \(path): \(reason)"
        }
    }
}

public struct GGUFWriter {
    public let alignment: Int
    private var keys: [String] = []
    private var values: [String: GGUFValue] = [:]
    private var tensors: [(name: String, type: TensorType, shape: [Int], data: [UInt8])] = []

    public init(alignment: Int = 32) {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "alignment must be a power of two")
        self.alignment = alignment
        if alignment != 32 { set("general.alignment", .uint32(UInt32(alignment))) }
    }

    /// Sets a metadata value; a key set twice keeps its first position and its last value.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if values[key] == nil { keys.append(key) }
        values[key] = value
    }

    /// Adds a tensor; `shape` in ggml order (innermost first), `data` in the stored type.
    public mutating func addTensor(name: String, type: TensorType, shape: [Int], data: [UInt8]) throws {
        let expected = type.byteCount(elements: shape.reduce(1, *))
        guard expected == data.count else {
            throw GGUFWriterError.sizeMismatch(tensor: name, expected: expected, found: data.count)
        }
        guard !tensors.contains(where: { $0.name == name }) else { throw GGUFWriterError.duplicateTensor(name) }
        tensors.append((name, type, shape, data))
    }

    /// Adds an F32 tensor.
    public mutating func addTensor(name: String, shape: [Int], floats: [Float]) throws {
        var bytes = [UInt8]()
        bytes.reserveCapacity(floats.count * 4)
        for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        try addTensor(name: name, type: .f32, shape: shape, data: bytes)
    }

    public func bytes() -> [UInt8] {
        var out = [UInt8]()
        out.append(contentsOf: [0x47, 0x47, 0x55, 0x46])
        out.appendLE(UInt32(3))
        out.appendLE(UInt64(tensors.count))
        out.appendLE(UInt64(keys.count))
        for key in keys {
            out.appendString(key)
            out.appendValue(values[key]!)
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            out.appendString(t.name)
            out.appendLE(UInt32(t.shape.count))
            for d in t.shape { out.appendLE(UInt64(d)) }
            out.appendLE(t.type.rawValue)
            out.appendLE(UInt64(offset))
            offsets.append(offset)
            offset += t.data.count
            offset += (alignment - offset % alignment) % alignment
        }
        out.padTo(alignment)
        for t in tensors {
            out.append(contentsOf: t.data)
            out.padTo(alignment)
        }
        return out
    }

    /// Writes to a temporary file beside `path` and renames it into place.
    public func write(to path: String) throws {
        try writeFileAtomically(bytes(), to: path)
    }
}

extension [UInt8] {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }

    mutating func appendString(_ s: String) {
        appendLE(UInt64(s.utf8.count))
        append(contentsOf: s.utf8)
    }

    mutating func padTo(_ alignment: Int) {
        append(contentsOf: repeatElement(0, count: (alignment - count % alignment) % alignment))
    }

    mutating func appendValue(_ v: GGUFValue) {
        appendLE(v.type.rawValue)
        appendPayload(v)
    }

    private mutating func appendPayload(_ v: GGUFValue) {
        switch v {
        case .uint8(let x): appendLE(x)
        case .int8(let x): appendLE(x)
        case .uint16(let x): appendLE(x)
        case .int16(let x): appendLE(x)
        case .uint32(let x): appendLE(x)
        case .int32(let x): appendLE(x)
        case .float32(let x): appendLE(x.bitPattern)
        case .bool(let x): append(x ? 1 : 0)
        case .string(let s): appendString(s)
        case .uint64(let x): appendLE(x)
        case .int64(let x): appendLE(x)
        case .float64(let x): appendLE(x.bitPattern)
        case .array(let a):
            appendLE(a.elementType.rawValue)
            appendLE(UInt64(a.count))
            switch a {
            case .uint8(let xs): append(contentsOf: xs)
            case .int8(let xs): for x in xs { appendLE(x) }
            case .uint16(let xs): for x in xs { appendLE(x) }
            case .int16(let xs): for x in xs { appendLE(x) }
            case .uint32(let xs): for x in xs { appendLE(x) }
            case .int32(let xs): for x in xs { appendLE(x) }
            case .float32(let xs): for x in xs { appendLE(x.bitPattern) }
            case .bool(let xs): for x in xs { append(x ? 1 : 0) }
            case .string(let xs): for x in xs { appendString(x) }
            case .uint64(let xs): for x in xs { appendLE(x) }
            case .int64(let xs): for x in xs { appendLE(x) }
            case .float64(let xs): for x in xs { appendLE(x.bitPattern) }
            }
        }
    }
}

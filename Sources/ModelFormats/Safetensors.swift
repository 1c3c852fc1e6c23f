// safetensors reader (FORMATS.md §5.5; rules from the safetensors README and src/tensor.rs): an
// 8-byte little-endian header length N, N bytes of JSON, then the data buffer. The whole header is
// validated before any tensor is touched, with the reference implementation's rules: header at most
// 100,000,000 bytes, a JSON object starting with `{`, no duplicate keys, string-only __metadata__,
// known dtypes, offsets inside the buffer, byte spans equal to shape × dtype size, and tensors that
// tile the buffer exactly (no gaps, overlaps or trailing bytes). The file stays memory-mapped.
// The header is parsed by the strict JSON reader, which rejects a repeated key in any object.

import JSON
import Kernels

/// Element types of safetensors (the names used in the header).
public enum SafetensorsDType: String, CaseIterable, Sendable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32", f64 = "F64", i64 = "I64", u64 = "U64"

    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }
}

public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    /// Row-major (C order), outermost first, as in PyTorch.
    public let shape: [Int]
    /// Byte range [begin, end) relative to the start of the data buffer.
    public let begin: Int
    public let end: Int
    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { end - begin }
}

public final class SafetensorsFile: Sendable {
    /// Header limit of the reference implementation.
    public static let maxHeaderSize = 100_000_000

    public let region: ByteRegion
    /// `__metadata__`, empty when absent.
    public let metadata: [String: String]
    /// Every tensor, in data-offset order.
    public let tensors: [SafetensorsTensorInfo]
    /// File offset of the data buffer (8 + header length).
    public let dataOffset: Int
    private let index: [String: Int]

    public var path: String? { region.path }

    public convenience init(path: String) throws {
        try self.init(region: ByteRegion(path: path))
    }

    public convenience init(bytes: [UInt8]) throws {
        try self.init(region: ByteRegion(bytes: bytes))
    }

    public init(region: ByteRegion) throws {
        self.region = region
        let buf = region.buffer
        let size = buf.count
        guard size >= 8 else { throw SafetensorsError.truncated(what: "the 8-byte header length", needed: 8, fileSize: size) }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(buf[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(Self.maxHeaderSize) else { throw SafetensorsError.headerTooLarge(n) }
        let headerSize = Int(n)
        guard 8 + headerSize <= size else {
            throw SafetensorsError.headerPastEnd(fileSize: size)
        }
        let header = Array(UnsafeRawBufferPointer(rebasing: buf[8..<(8 + headerSize)]))
        guard header.first == UInt8(ascii: "{") else {
            throw SafetensorsError.headerNotJSON(reason: "it must start with '{'")
        }
        guard String(validating: header, as: UTF8.self) != nil else { throw SafetensorsError.headerNotUTF8 }
        let parsed: JSONValue
        do {
            parsed = try JSONValue.parse(header)
        } catch {
            // A tensor named twice has a message of its own; a key repeated deeper is a broken entry.
            if let dup = error.duplicateKey, dup.depth == 1 { throw SafetensorsError.duplicateKey(dup.key) }
            throw SafetensorsError.headerNotJSON(reason: error.description)
        }
        guard let object = parsed.objectMembers else {
            throw SafetensorsError.headerNotJSON(reason: "the top level is not an object")
        }

        var metadata: [String: String] = [:]
        if let m = parsed["__metadata__"] {
            guard let members = m.objectMembers else { throw SafetensorsError.metadataNotStrings(key: "__metadata__") }
            for (k, v) in members {
                guard let s = v.stringValue else { throw SafetensorsError.metadataNotStrings(key: k) }
                metadata[k] = s
            }
        }
        let bufferSize = size - 8 - headerSize
        var infos: [SafetensorsTensorInfo] = []
        for (name, value) in object where name != "__metadata__" {
            infos.append(try Self.entry(name: name, value: value, bufferSize: bufferSize))
        }
        // Tiling check: sorted by (begin, end), each tensor starts where the previous one ended.
        infos.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var expected = 0
        for t in infos {
            guard t.begin == expected else { throw SafetensorsError.gapOrOverlap(tensor: t.name, expected: expected, found: t.begin) }
            expected = t.end
        }
        guard expected == bufferSize else { throw SafetensorsError.trailingBytes(expected: expected, found: bufferSize) }
        self.metadata = metadata
        self.tensors = infos
        self.dataOffset = 8 + headerSize
        var index: [String: Int] = [:]
        for (i, t) in infos.enumerated() { index[t.name] = i }
        self.index = index
    }

    public func tensor(named name: String) -> SafetensorsTensorInfo? {
        index[name].map { tensors[$0] }
    }

    /// The stored bytes of `tensor` (which must come from this file).
    public func data(of tensor: SafetensorsTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: region.buffer[(dataOffset + tensor.begin)..<(dataOffset + tensor.end)])
    }

    /// The values of a floating-point tensor (F32, F16, BF16 or F64) widened or narrowed to f32.
    public func floats(of tensor: SafetensorsTensorInfo) throws -> [Float] {
        let raw = data(of: tensor)
        let n = tensor.elementCount
        switch tensor.dtype {
        case .f32, .f16, .bf16:
            let type: TensorType = tensor.dtype == .f32 ? .f32 : tensor.dtype == .f16 ? .f16 : .bf16
            return [Float](unsafeUninitializedCapacity: n) { out, initialized in
                if n > 0 { dequantize(type, raw.baseAddress!, count: n, into: out.baseAddress!) }
                initialized = n
            }
        case .f64:
            return (0..<n).map { i in Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian)) }
        default:
            throw SafetensorsError.wrongDType(tensor: tensor.name, expected: "F32, F16, BF16 or F64", found: tensor.dtype.rawValue)
        }
    }

    public func floats(named name: String) throws -> [Float] {
        guard let t = tensor(named: name) else { throw SafetensorsError.missingTensor(name) }
        return try floats(of: t)
    }

    // MARK: - Header validation

    private static func entry(name: String, value: JSONValue, bufferSize: Int) throws -> SafetensorsTensorInfo {
        guard value.objectMembers != nil else {
            throw SafetensorsError.badEntry(tensor: name, reason: "the entry is not an object")
        }
        guard let dtypeValue = value["dtype"] else { throw SafetensorsError.badEntry(tensor: name, reason: "missing \"dtype\"") }
        guard let dtypeName = dtypeValue.stringValue else {
            throw SafetensorsError.badEntry(tensor: name, reason: "\"dtype\" is not a string")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw SafetensorsError.unknownDType(tensor: name, dtype: dtypeName)
        }
        guard let shapeValue = value["shape"] else { throw SafetensorsError.badEntry(tensor: name, reason: "missing \"shape\"") }
        guard let shapeList = shapeValue.arrayValue else { throw SafetensorsError.badEntry(tensor: name, reason: "\"shape\" is not an array") }
        var shape: [Int] = []
        var elements = 1
        for d in shapeList {
            // Only an integer written without fraction or exponent (2.0 is refused, as the reference does).
            guard let v = d.intValue, v >= 0 else {
                throw SafetensorsError.badEntry(tensor: name, reason: "\"shape\" holds \(d.serialized()), not a non-negative integer")
            }
            let (p, overflow) = elements.multipliedReportingOverflow(by: v)
            guard !overflow else { throw SafetensorsError.badEntry(tensor: name, reason: "the shape's element count overflows") }
            elements = p
            shape.append(v)
        }
        guard let offsetsValue = value["data_offsets"] else {
            throw SafetensorsError.badEntry(tensor: name, reason: "missing \"data_offsets\"")
        }
        guard let offList = offsetsValue.arrayValue, offList.count == 2,
              let begin = offList[0].intValue, let end = offList[1].intValue else {
            throw SafetensorsError.badEntry(tensor: name, reason: "\"data_offsets\" is not a pair of integers")
        }
        guard begin >= 0, begin <= end, end <= bufferSize else {
            throw SafetensorsError.offsetsOutOfRange(tensor: name, begin: begin, end: end, bufferSize: bufferSize)
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, bytes == end - begin else {
            throw SafetensorsError.sizeMismatch(tensor: name, expected: overflow ? Int.max : bytes, found: end - begin)
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }
}

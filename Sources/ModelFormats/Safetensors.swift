// safetensors reader (FORMATS.md §5.5; rules from the safetensors README and src/tensor.rs): an
// 8-byte little-endian header length N, N bytes of JSON, then the data buffer. The whole header is
// validated before any tensor is touched, with the reference implementation's rules: header at most
// 100,000,000 bytes, a JSON object starting with `{`, no duplicate keys, string-only __metadata__,
// known dtypes, offsets inside the buffer, byte spans equal to shape × dtype size, and tensors that
// tile the buffer exactly (no gaps, overlaps or trailing bytes). The file stays memory-mapped.
//
// The header is parsed with Foundation's JSONSerialization, which silently keeps the last of two
// equal keys, so a small scanner over the top-level object finds duplicates first.

import Foundation
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
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(header))
        } catch {
            throw SafetensorsError.headerNotJSON(reason: "\(error.localizedDescription)")
        }
        guard let object = parsed as? [String: Any] else {
            throw SafetensorsError.headerNotJSON(reason: "the top level is not an object")
        }
        if let dup = Self.firstDuplicateTopLevelKey(header) { throw SafetensorsError.duplicateKey(dup) }

        var metadata: [String: String] = [:]
        if let m = object["__metadata__"] {
            guard let dict = m as? [String: Any] else { throw SafetensorsError.metadataNotStrings(key: "__metadata__") }
            for (k, v) in dict {
                // NSNumber bridges to String on some platforms; insist on a real string.
                guard let s = v as? String, !(v is NSNumber) else { throw SafetensorsError.metadataNotStrings(key: k) }
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

    private static func entry(name: String, value: Any, bufferSize: Int) throws -> SafetensorsTensorInfo {
        guard let dict = value as? [String: Any] else {
            throw SafetensorsError.badEntry(tensor: name, reason: "the entry is not an object")
        }
        guard let dtypeAny = dict["dtype"] else { throw SafetensorsError.badEntry(tensor: name, reason: "missing \"dtype\"") }
        guard let dtypeName = dtypeAny as? String, !(dtypeAny is NSNumber) else {
            throw SafetensorsError.badEntry(tensor: name, reason: "\"dtype\" is not a string")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw SafetensorsError.unknownDType(tensor: name, dtype: dtypeName)
        }
        guard let shapeAny = dict["shape"] else { throw SafetensorsError.badEntry(tensor: name, reason: "missing \"shape\"") }
        guard let shapeList = shapeAny as? [Any] else { throw SafetensorsError.badEntry(tensor: name, reason: "\"shape\" is not an array") }
        var shape: [Int] = []
        var elements = 1
        for d in shapeList {
            guard let v = jsonInt(d), v >= 0 else {
                throw SafetensorsError.badEntry(tensor: name, reason: "\"shape\" holds \(d), not a non-negative integer")
            }
            let (p, overflow) = elements.multipliedReportingOverflow(by: v)
            guard !overflow else { throw SafetensorsError.badEntry(tensor: name, reason: "the shape's element count overflows") }
            elements = p
            shape.append(v)
        }
        guard let offAny = dict["data_offsets"] else {
            throw SafetensorsError.badEntry(tensor: name, reason: "missing \"data_offsets\"")
        }
        guard let offList = offAny as? [Any], offList.count == 2,
              let begin = jsonInt(offList[0]), let end = jsonInt(offList[1]) else {
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

    /// An integer JSON number as Int; nil for booleans, fractions, exponents and out-of-range values.
    /// (JSONSerialization gives NSNumber for both numbers and booleans; the ObjC type code tells them apart:
    /// "c" for booleans, "d" for anything written with a fraction or exponent.)
    static func jsonInt(_ v: Any) -> Int? {
        guard let n = v as? NSNumber else { return nil }
        let code = String(cString: n.objCType)
        switch code {
        case "i", "s", "l", "q", "I", "S", "L":
            return n.intValue
        case "Q":
            let u = n.uint64Value
            return u <= UInt64(Int.max) ? Int(u) : nil
        default:
            return nil
        }
    }

    /// The first key that occurs twice in the top-level object of a syntactically valid JSON text.
    static func firstDuplicateTopLevelKey(_ bytes: [UInt8]) -> String? {
        var seen = Set<String>()
        var depth = 0
        var expectKey = false
        var i = 0
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        while i < bytes.count {
            let c = bytes[i]
            if c == quote {
                let start = i + 1
                i += 1
                var escaped = false
                while i < bytes.count && bytes[i] != quote {
                    if bytes[i] == backslash { escaped = true; i += 1 }
                    i += 1
                }
                if depth == 1 && expectKey {
                    let raw = Array(bytes[start..<min(i, bytes.count)])
                    var key = String(decoding: raw, as: UTF8.self)
                    if escaped, let data = ("[\"" + key + "\"]").data(using: .utf8),
                       let arr = try? JSONSerialization.jsonObject(with: data) as? [String], let k = arr.first {
                        key = k
                    }
                    if !seen.insert(key).inserted { return key }
                    expectKey = false
                }
            } else if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                depth += 1
                if depth == 1 && c == UInt8(ascii: "{") { expectKey = true }
            } else if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                depth -= 1
            } else if c == UInt8(ascii: ",") && depth == 1 {
                expectKey = true
            }
            i += 1
        }
        return nil
    }
}

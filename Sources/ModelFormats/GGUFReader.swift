// GGUF v2/v3 reader (FORMATS.md §1), memory-mapped and zero-copy for tensor data.
//
// Every count, length and offset is checked against the bytes that remain before it is used, so a
// malformed or hostile file yields a GGUFError naming the problem and its byte offset, never a trap
// or an out-of-bounds read. The checks follow ggml's gguf.cpp (nested arrays, duplicate keys and
// tensor names, at most 4 dimensions, rows made of whole blocks, alignment a power of two), but
// tensors need not be packed in info order: only alignment, bounds and overlap are required, as
// other writers do not promise ggml's packing.

import Kernels

/// One tensor-info record, validated against the file.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let type: TensorType
    /// Dimensions in ggml order: `shape[0]` is the innermost (contiguous) one.
    public let shape: [Int]
    /// Offset of the data relative to the start of the data section.
    public let offset: Int
    public let byteCount: Int
    public var elementCount: Int { shape.reduce(1, *) }
    /// Length of one row (`shape[0]`), and the number of rows (product of the rest).
    public var rowLength: Int { shape.first ?? 1 }
    public var rowCount: Int { shape.dropFirst().reduce(1, *) }
}

/// A parsed GGUF file. Immutable; tensor data stays in the mapped region.
public final class GGUFFile: Sendable {
    public let version: Int
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// File offset where the data section starts.
    public let dataOffset: Int
    public let region: ByteRegion
    private let tensorIndex: [String: Int]

    public var fileSize: Int { region.count }
    public var path: String? { region.path }

    /// Maps and validates the file at `path`.
    public convenience init(path: String) throws {
        try self.init(region: ByteRegion(path: path))
    }

    /// Validates a GGUF image held in memory (tests, and files built in code).
    public convenience init(bytes: [UInt8]) throws {
        try self.init(region: ByteRegion(bytes: bytes))
    }

    public init(region: ByteRegion) throws {
        self.region = region
        var r = Cursor(bytes: region.buffer)

        let magic = try r.u32("magic")
        guard magic == 0x4655_4747 else { throw GGUFError.badMagic(found: magic) }
        let version = try r.u32("version")
        // Version 1 used 32-bit counts; ggml refuses it, and anything newer than 3.
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(version) }
        self.version = Int(version)

        let tensorCountOffset = r.offset
        let tensorCount = try r.u64("tensor count")
        let kvCountOffset = r.offset
        let kvCount = try r.u64("metadata count")
        // Smallest possible records: a KV is a key length (8), a type (4) and a 1-byte value; a
        // tensor info is a name length (8), n_dims (4), a type (4) and an offset (8).
        guard kvCount <= UInt64(r.remaining / 13) else {
            throw GGUFError.implausibleCount(what: "metadata count", value: kvCount, offset: kvCountOffset)
        }
        guard tensorCount <= UInt64(r.remaining / 24) else {
            throw GGUFError.implausibleCount(what: "tensor count", value: tensorCount, offset: tensorCountOffset)
        }

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        keys.reserveCapacity(Int(kvCount))
        for _ in 0..<Int(kvCount) {
            let keyOffset = r.offset
            let key = try r.string("metadata key")
            guard metadata[key] == nil else { throw GGUFError.duplicateKey(key, offset: keyOffset) }
            metadata[key] = try r.value(key: key)
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys

        var alignment = 32
        if let value = metadata["general.alignment"] {
            guard let a = value.int, a > 0, a & (a - 1) == 0 else {
                let raw: UInt64 = value.int.map { UInt64(bitPattern: Int64($0)) } ?? 0
                throw GGUFError.badAlignment(raw)
            }
            alignment = a
        }
        self.alignment = alignment

        // Tensor infos: read all, then place them once the data section start is known.
        struct RawInfo { let name: String; let type: TensorType; let shape: [Int]; let offset: UInt64; let bytes: Int }
        var infos: [RawInfo] = []
        infos.reserveCapacity(Int(tensorCount))
        var index: [String: Int] = [:]
        for _ in 0..<Int(tensorCount) {
            let nameOffset = r.offset
            let name = try r.string("tensor name")
            guard index[name] == nil else { throw GGUFError.duplicateTensor(name, offset: nameOffset) }
            let dimsOffset = r.offset
            let nDims = try r.u32("dimension count of '\(name)'")
            guard nDims <= 4 else {
                throw GGUFError.tooManyDimensions(tensor: name, count: nDims, offset: dimsOffset)
            }
            var shape: [Int] = []
            var elements = 1
            for d in 0..<Int(nDims) {
                let neOffset = r.offset
                let ne = try r.u64("dimension \(d) of '\(name)'")
                guard let n = Int(exactly: ne), n >= 0 else {
                    throw GGUFError.badDimension(tensor: name, dimension: d, value: ne, offset: neOffset)
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: n)
                guard !overflow else {
                    throw GGUFError.badDimension(tensor: name, dimension: d, value: ne, offset: neOffset)
                }
                elements = product
                shape.append(n)
            }
            if shape.isEmpty { shape = [1] }
            let typeOffset = r.offset
            let typeId = try r.u32("type of '\(name)'")
            guard let type = TensorType(rawValue: typeId) else {
                throw GGUFError.unknownTensorType(tensor: name, id: typeId, offset: typeOffset)
            }
            guard shape[0] % type.blockSize == 0 else {
                throw GGUFError.rowNotWholeBlocks(tensor: name, rowLength: shape[0], type: type.name,
                                                  blockSize: type.blockSize)
            }
            guard let bytes = type.byteCount(elements: elements) else {
                throw GGUFError.badDimension(tensor: name, dimension: 0, value: UInt64(shape[0]), offset: dimsOffset)
            }
            let offset = try r.u64("data offset of '\(name)'")
            guard offset % UInt64(alignment) == 0 else {
                throw GGUFError.misalignedTensor(tensor: name, offset: offset, alignment: alignment)
            }
            index[name] = infos.count
            infos.append(RawInfo(name: name, type: type, shape: shape, offset: offset, bytes: bytes))
        }

        // The data section starts at the next multiple of the alignment.
        let end = r.offset
        let dataOffset = end + (alignment - end % alignment) % alignment
        self.dataOffset = dataOffset
        let size = region.count

        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(infos.count)
        for info in infos {
            let (start, overflow) = UInt64(dataOffset).addingReportingOverflow(info.offset)
            guard !overflow, start <= UInt64(size), UInt64(info.bytes) <= UInt64(size) - start else {
                throw GGUFError.tensorOutOfBounds(tensor: info.name, start: overflow ? UInt64.max : start,
                                                  byteCount: info.bytes, fileSize: size)
            }
            tensors.append(GGUFTensorInfo(name: info.name, type: info.type, shape: info.shape,
                                          offset: Int(info.offset), byteCount: info.bytes))
        }
        // No two tensors may share bytes: a writer bug that would make one tensor's update
        // silently change another.
        let sorted = tensors.filter { $0.byteCount > 0 }.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw GGUFError.overlappingTensors(a.name, b.name)
        }
        self.tensors = tensors
        self.tensorIndex = index
    }

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor's bytes, zero-copy. Valid while this file object lives.
    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: region.base + dataOffset + tensor.offset, count: tensor.byteCount)
    }

    // MARK: Typed metadata access, with errors that name the key.

    public func string(_ key: String) throws -> String? {
        guard let v = metadata[key] else { return nil }
        guard let s = v.string else { throw GGUFError.wrongValueType(key: key, expected: "a string", found: "\(v.type)") }
        return s
    }

    public func int(_ key: String) throws -> Int? {
        guard let v = metadata[key] else { return nil }
        guard let i = v.int else { throw GGUFError.wrongValueType(key: key, expected: "an integer", found: "\(v.type)") }
        return i
    }

    public func float(_ key: String) throws -> Float? {
        guard let v = metadata[key] else { return nil }
        guard let f = v.float else { throw GGUFError.wrongValueType(key: key, expected: "a float", found: "\(v.type)") }
        return f
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let v = metadata[key] else { return nil }
        guard let b = v.bool else { throw GGUFError.wrongValueType(key: key, expected: "a bool", found: "\(v.type)") }
        return b
    }

    public func array(_ key: String) -> GGUFArray? { metadata[key]?.array }
}

/// A bounds-checked little-endian reader over the file's bytes.
struct Cursor {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    var remaining: Int { bytes.count - offset }

    private mutating func take(_ n: Int, _ what: @autoclosure () -> String) throws -> Int {
        guard n <= remaining else {
            throw GGUFError.truncated(what: what(), offset: offset, needed: n, fileSize: bytes.count)
        }
        let at = offset
        offset += n
        return at
    }

    mutating func u8(_ what: @autoclosure () -> String) throws -> UInt8 {
        bytes[try take(1, what())]
    }
    mutating func u16(_ what: @autoclosure () -> String) throws -> UInt16 {
        UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(2, what()), as: UInt16.self))
    }
    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4, what()), as: UInt32.self))
    }
    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8, what()), as: UInt64.self))
    }

    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let lengthOffset = offset
        let len = try u64("length of \(what())")
        guard len <= UInt64(remaining) else {
            if len > UInt64(Int.max) {
                throw GGUFError.implausibleCount(what: "length of \(what())", value: len, offset: lengthOffset)
            }
            throw GGUFError.truncated(what: what(), offset: offset, needed: Int(len), fileSize: bytes.count)
        }
        let start = try take(Int(len), what())
        let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<start + Int(len)])
        guard let s = String(validating: slice, as: UTF8.self) else {
            throw GGUFError.invalidUTF8(what: what(), offset: start)
        }
        return s
    }

    mutating func value(key: String) throws -> GGUFValue {
        let typeOffset = offset
        let raw = try u32("value type of '\(key)'")
        guard let type = GGUFValueType(rawValue: raw) else {
            throw GGUFError.unknownValueType(raw, key: key, offset: typeOffset)
        }
        if type == .array { return .array(try array(key: key)) }
        return try scalar(type, key: key)
    }

    mutating func scalar(_ type: GGUFValueType, key: String) throws -> GGUFValue {
        let what = "value of '\(key)'"
        switch type {
        case .uint8: return .uint8(try u8(what))
        case .int8: return .int8(Int8(bitPattern: try u8(what)))
        case .uint16: return .uint16(try u16(what))
        case .int16: return .int16(Int16(bitPattern: try u16(what)))
        case .uint32: return .uint32(try u32(what))
        case .int32: return .int32(Int32(bitPattern: try u32(what)))
        case .float32: return .float32(Float(bitPattern: try u32(what)))
        case .bool: return .bool(try bool(what))
        case .string: return .string(try string(what))
        case .uint64: return .uint64(try u64(what))
        case .int64: return .int64(Int64(bitPattern: try u64(what)))
        case .float64: return .float64(Double(bitPattern: try u64(what)))
        case .array: throw GGUFError.nestedArray(key: key, offset: offset)
        }
    }

    mutating func bool(_ what: @autoclosure () -> String) throws -> Bool {
        // ggml stores bools as one byte; anything but 0 reads as true, as in C.
        try u8(what()) != 0
    }

    mutating func array(key: String) throws -> GGUFArray {
        let typeOffset = offset
        let raw = try u32("array element type of '\(key)'")
        guard let type = GGUFValueType(rawValue: raw) else {
            throw GGUFError.unknownValueType(raw, key: key, offset: typeOffset)
        }
        if type == .array { throw GGUFError.nestedArray(key: key, offset: typeOffset) }
        let countOffset = offset
        let count64 = try u64("array length of '\(key)'")
        // Each element takes at least its fixed size (a string at least its 8-byte length).
        let minSize = UInt64(type.fixedSize ?? 8)
        guard count64 <= UInt64(remaining) / minSize else {
            throw GGUFError.implausibleCount(what: "array length of '\(key)'", value: count64, offset: countOffset)
        }
        let n = Int(count64)
        let what = "elements of '\(key)'"
        if let size = type.fixedSize {
            // Fixed-size elements: check once, then read without per-element checks.
            let start = try take(n * size, what)
            let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<start + n * size])
            func load<T: FixedWidthInteger>(_: T.Type) -> [T] {
                (0..<n).map { T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * size, as: T.self)) }
            }
            switch type {
            case .uint8: return .uint8(Array(raw))
            case .int8: return .int8(raw.map { Int8(bitPattern: $0) })
            case .uint16: return .uint16(load(UInt16.self))
            case .int16: return .int16(load(Int16.self))
            case .uint32: return .uint32(load(UInt32.self))
            case .int32: return .int32(load(Int32.self))
            case .float32: return .float32(load(UInt32.self).map { Float(bitPattern: $0) })
            case .bool: return .bool(raw.map { $0 != 0 })
            case .uint64: return .uint64(load(UInt64.self))
            case .int64: return .int64(load(Int64.self))
            case .float64: return .float64(load(UInt64.self).map { Double(bitPattern: $0) })
            case .string, .array: break
            }
        }
        var strings: [String] = []
        strings.reserveCapacity(n)
        for i in 0..<n { strings.append(try string("element \(i) of '\(key)'")) }
        return .string(strings)
    }
}

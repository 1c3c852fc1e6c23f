// Everything that can be wrong with a GGUF file, each case with the byte offset where it was
// found and a message that says what was expected.

public enum GGUFError: Error, Equatable, Sendable, CustomStringConvertible {
    case badMagic(found: UInt32)
    case unsupportedVersion(UInt32)
    /// The file ended while reading `what`, which needed `needed` bytes at `offset`.
    case truncated(what: String, offset: Int, needed: Int, fileSize: Int)
    /// A count or length that cannot be right (larger than the file could hold, or overflowing).
    case implausibleCount(what: String, value: UInt64, offset: Int)
    case invalidUTF8(what: String, offset: Int)
    case duplicateKey(String, offset: Int)
    case unknownValueType(UInt32, key: String, offset: Int)
    case nestedArray(key: String, offset: Int)
    case badAlignment(UInt64)
    case duplicateTensor(String, offset: Int)
    case tooManyDimensions(tensor: String, count: UInt32, offset: Int)
    case badDimension(tensor: String, dimension: Int, value: UInt64, offset: Int)
    case unknownTensorType(tensor: String, id: UInt32, offset: Int)
    case rowNotWholeBlocks(tensor: String, rowLength: Int, type: String, blockSize: Int)
    case misalignedTensor(tensor: String, offset: UInt64, alignment: Int)
    case tensorOutOfBounds(tensor: String, start: UInt64, byteCount: Int, fileSize: Int)
    case overlappingTensors(String, String)
    /// A metadata key that is present but holds the wrong type for its use.
    case wrongValueType(key: String, expected: String, found: String)
    case missingKey(String)

    public var description: String {
        switch self {
        case .badMagic(let m):
            let hex = String(m, radix: 16, uppercase: true)
            return "not a GGUF file: magic at offset 0 is 0x\(hex), expected 0x46554747 (\"GGUF\")"
        case .unsupportedVersion(let v):
            return "unsupported GGUF version \(v) at offset 4: lorad reads versions 2 and 3"
        case .truncated(let what, let offset, let needed, let size):
            return "file truncated: \(what) at offset \(offset) needs \(needed) bytes but the file has \(size) bytes"
        case .implausibleCount(let what, let value, let offset):
            return "\(what) at offset \(offset) is \(value), more than the file can hold"
        case .invalidUTF8(let what, let offset):
            return "\(what) at offset \(offset) is not valid UTF-8"
        case .duplicateKey(let key, let offset):
            return "duplicate metadata key '\(key)' at offset \(offset)"
        case .unknownValueType(let t, let key, let offset):
            return "metadata key '\(key)' has unknown value type \(t) at offset \(offset) (expected 0-12)"
        case .nestedArray(let key, let offset):
            return "metadata key '\(key)' is an array of arrays at offset \(offset); nested arrays are not supported (ggml rejects them too)"
        case .badAlignment(let a):
            return "general.alignment is \(a); it must be a non-zero power of two"
        case .duplicateTensor(let name, let offset):
            return "duplicate tensor name '\(name)' at offset \(offset)"
        case .tooManyDimensions(let name, let n, let offset):
            return "tensor '\(name)' has \(n) dimensions at offset \(offset); at most 4 are allowed"
        case .badDimension(let name, let dim, let v, let offset):
            return "tensor '\(name)' dimension \(dim) is \(v) at offset \(offset); dimensions must be positive and their product must fit"
        case .unknownTensorType(let name, let id, let offset):
            return "tensor '\(name)' has unknown ggml type id \(id) at offset \(offset) (hint: a newer llama.cpp format?)"
        case .rowNotWholeBlocks(let name, let len, let type, let bs):
            return "tensor '\(name)' has rows of \(len) elements, not a multiple of the \(type) block size \(bs)"
        case .misalignedTensor(let name, let off, let a):
            return "tensor '\(name)' data offset \(off) is not a multiple of the alignment \(a)"
        case .tensorOutOfBounds(let name, let start, let bytes, let size):
            return "tensor '\(name)' data (\(bytes) bytes at file offset \(start)) runs past the end of the file (\(size) bytes)"
        case .overlappingTensors(let a, let b):
            return "tensors '\(a)' and '\(b)' overlap in the data section"
        case .wrongValueType(let key, let expected, let found):
            return "metadata key '\(key)' holds \(found), expected \(expected)"
        case .missingKey(let key):
            return "required metadata key '\(key)' is missing"
        }
    }
}

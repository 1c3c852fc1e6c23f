// Everything that can be wrong with a safetensors file (FORMATS.md §5.5), each case naming what was
// expected and what was found, with a hint where the cause is guessable.

public enum SafetensorsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file is shorter than the 8-byte header length, or than 8 + the header length.
    case truncated(what: String, needed: Int, fileSize: Int)
    /// The header length is above the 100,000,000-byte limit of the reference implementation.
    case headerTooLarge(UInt64)
    /// The header length (first 8 bytes) runs past the end of the file.
    case headerPastEnd(fileSize: Int)
    case headerNotUTF8
    /// The header does not start with `{` or is not a JSON object.
    case headerNotJSON(reason: String)
    case duplicateKey(String)
    case metadataNotStrings(key: String)
    /// A tensor entry lacks `dtype`, `shape` or `data_offsets`, or has an unknown field type.
    case badEntry(tensor: String, reason: String)
    case unknownDType(tensor: String, dtype: String)
    /// `data_offsets` [begin, end) does not fit in the data buffer of `bufferSize` bytes.
    case offsetsOutOfRange(tensor: String, begin: Int, end: Int, bufferSize: Int)
    /// end - begin is not shape product × dtype size.
    case sizeMismatch(tensor: String, expected: Int, found: Int)
    /// Sorted by offset, the tensors must tile the data buffer: `tensor` starts at `found`, but the
    /// previous one ended at `expected`.
    case gapOrOverlap(tensor: String, expected: Int, found: Int)
    /// The last tensor ends at `expected`, but the data buffer has `found` bytes.
    case trailingBytes(expected: Int, found: Int)
    /// A value was read as the wrong type (e.g. F32 floats requested from an I64 tensor).
    case wrongDType(tensor: String, expected: String, found: String)
    case missingTensor(String)
    /// Writer: the data does not match the shape and dtype.
    case writerSizeMismatch(tensor: String, expected: Int, found: Int)
    case writerDuplicateTensor(String)
    case writerBadName(String)

    public var description: String {
        switch self {
        case .truncated(let what, let needed, let size):
            return "safetensors file truncated: \(what) needs \(needed) bytes but the file has \(size) (hint: an interrupted download or copy?)"
        // These two never echo the length: it is the file's first 8 bytes, and a path can lead to
        // any file (a symlink), whose content must not reach a log or a client.
        case .headerTooLarge:
            return "not a safetensors file: its first 8 bytes are not a header length of at most 100000000 bytes"
        case .headerPastEnd(let size):
            return "not a safetensors file, or a truncated one: the header its first 8 bytes announce is longer than the file (\(size) bytes) (hint: an interrupted download or copy?)"
        case .headerNotUTF8:
            return "safetensors header is not valid UTF-8"
        case .headerNotJSON(let reason):
            return "safetensors header is not a JSON object: \(reason)"
        case .duplicateKey(let k):
            return "safetensors header has the key '\(k)' twice; each tensor name must appear once"
        case .metadataNotStrings(let k):
            return "safetensors __metadata__ value for '\(k)' is not a string; __metadata__ must map strings to strings"
        case .badEntry(let t, let reason):
            return "safetensors tensor '\(t)': \(reason); expected {\"dtype\": string, \"shape\": [non-negative ints], \"data_offsets\": [begin, end]}"
        case .unknownDType(let t, let d):
            return "safetensors tensor '\(t)' has dtype '\(d)'; expected one of \(SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", "))"
        case .offsetsOutOfRange(let t, let b, let e, let size):
            return "safetensors tensor '\(t)' data_offsets [\(b), \(e)] do not fit in the \(size)-byte data buffer (expected 0 <= begin <= end <= \(size))"
        case .sizeMismatch(let t, let expected, let found):
            return "safetensors tensor '\(t)' spans \(found) bytes but its shape and dtype need \(expected)"
        case .gapOrOverlap(let t, let expected, let found):
            let kind = found > expected ? "a gap" : "an overlap"
            return "safetensors tensor '\(t)' starts at data offset \(found), expected \(expected) (\(kind): tensors must tile the data buffer exactly)"
        case .trailingBytes(let expected, let found):
            return "safetensors data buffer has \(found) bytes but the tensors cover \(expected) (unreferenced bytes at the end)"
        case .wrongDType(let t, let expected, let found):
            return "safetensors tensor '\(t)' is \(found); expected \(expected)"
        case .missingTensor(let t):
            return "safetensors file has no tensor '\(t)'"
        case .writerSizeMismatch(let t, let expected, let found):
            return "tensor '\(t)': data has \(found) bytes, shape and dtype need \(expected)"
        case .writerDuplicateTensor(let t):
            return "tensor '\(t)' was added twice"
        case .writerBadName(let t):
            return "tensor name '\(t)' is reserved or empty"
        }
    }
}

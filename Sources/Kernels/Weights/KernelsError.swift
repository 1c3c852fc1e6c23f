// The typed error of the Kernels module.
//
// Only the array-taking convenience entry points throw: the pointer-taking ones are for callers that
// have already validated sizes (the GGUF reader, the forward pass) and check their contract with
// preconditions, because a violation there is a bug in lorad, not bad input.

/// What went wrong when converting tensor data, with a hint at the fix.
public enum KernelsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The type has no dequantizer / dot product in lorad (see `TensorType.isComputable`).
    case notComputable(TensorType)
    /// The type has no quantizer in lorad (see `TensorType.isQuantizable`).
    case notQuantizable(TensorType)
    /// `byteCount` bytes are not a whole number of `type` blocks.
    case partialBlockBytes(type: TensorType, byteCount: Int)
    /// `count` values are not a whole number of `type` blocks.
    case partialBlockElements(type: TensorType, count: Int)
    /// A block-quantized type was asked to store a NaN or an infinity (ggml's behaviour is undefined there).
    case nonFiniteValue(type: TensorType, index: Int, value: Float)

    public var description: String {
        switch self {
        case .notComputable(let type):
            return "tensor type \(type) cannot be dequantized by lorad: expected one of "
                + TensorType.allCases.filter(\.isComputable).map(\.name).joined(separator: ", ")
                + " (hint: requantize the model to a supported type, e.g. with llama-quantize)"
        case .notQuantizable(let type):
            return "lorad has no quantizer for tensor type \(type): expected one of "
                + TensorType.allCases.filter(\.isQuantizable).map(\.name).joined(separator: ", ")
        case .partialBlockBytes(let type, let byteCount):
            return "\(byteCount) bytes is not a whole number of \(type) blocks (\(type.blockBytes) bytes each, "
                + "\(byteCount % type.blockBytes) left over) (hint: the data is truncated or has the wrong type)"
        case .partialBlockElements(let type, let count):
            return "\(count) values is not a whole number of \(type) blocks (\(type.blockSize) values each, "
                + "\(count % type.blockSize) left over) (hint: pad the row, or pick a type with a smaller block)"
        case .nonFiniteValue(let type, let index, let value):
            return "value \(index) is \(value), which \(type) cannot store: expected finite values "
                + "(hint: check the source tensor for NaN/inf, or store it as F32/F16/BF16)"
        }
    }
}

// Reference quantization of f32 values to stored tensor types: the entry points and the dispatch.
//
// These are ggml's *reference* quantizers (ggml-quants.c `quantize_row_*_ref`, FORMATS.md §2.3, §2.5),
// not llama-quantize's importance-weighted search: for weights (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1) they are what gguf-py's `gguf.quants.quantize` computes, byte for byte (checked by KernelsTests
// through Fixtures/tensor_types.json). Tests use them to build tiny GGUF models. Q8_1 and Q8_K are the
// activation formats llama.cpp pairs with Q4_1/Q5_1 and K-quant weights; Q8_0 serves both roles.
// Block encoders: Quantize+Legacy.swift (weights) and Quantize+Activations.swift (Q8_1, Q8_K).

extension TensorType {
    /// Types `quantize` can produce.
    public var isQuantizable: Bool {
        switch self {
        case .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .q8_K: return true
        default: return false
        }
    }
}

/// Encodes `count` f32 values at `src` as `type` into `dst`, which must have room for
/// `type.byteCount(elements: count)` bytes (no alignment needed).
///
/// `count` must be a multiple of `type.blockSize` and `type` quantizable (preconditions: the caller
/// validates, or uses the throwing `quantize(_:_:)`). Non-finite input never traps: F32/F16/BF16 store
/// it as is; the block types give some valid but meaningless block (ggml's behaviour is undefined).
public func quantize(_ type: TensorType, _ src: UnsafePointer<Float>, count: Int,
                     into dst: UnsafeMutableRawPointer) {
    precondition(type.isQuantizable, "quantize: \(type) is not quantizable; the caller should have checked")
    precondition(count >= 0 && count % type.blockSize == 0,
                 "quantize: \(count) is not a whole number of \(type) blocks; the caller should have checked")
    let encode: (UnsafePointer<Float>, UnsafeMutableRawPointer) -> Void
    switch type {
    case .f32:
        for i in 0..<count { dst.storeU32(src[i].bitPattern, at: 4 * i) }
        return
    case .f16:
        for i in 0..<count { dst.storeU16(f32ToF16(src[i]), at: 2 * i) }
        return
    case .bf16:
        for i in 0..<count { dst.storeU16(f32ToBF16(src[i]), at: 2 * i) }
        return
    case .q4_0: encode = quantizeBlockQ4_0
    case .q4_1: encode = quantizeBlockQ4_1
    case .q5_0: encode = quantizeBlockQ5_0
    case .q5_1: encode = quantizeBlockQ5_1
    case .q8_0: encode = quantizeBlockQ8_0
    case .q8_1: encode = quantizeBlockQ8_1
    case .q8_K: encode = quantizeBlockQ8_K
    default: preconditionFailure("quantize: \(type) is marked quantizable but has no encoder")
    }
    for b in 0..<count / type.blockSize {
        encode(src + b * type.blockSize, dst + b * type.blockBytes)
    }
}

/// Encodes `values` as `type`.
///
/// Throws `KernelsError.notQuantizable` for a type without a quantizer, `.partialBlockElements` when
/// `values.count` is not a multiple of the block size, and `.nonFiniteValue` when a block-quantized
/// type is given a NaN or infinity.
public func quantize(_ type: TensorType, _ values: [Float]) throws(KernelsError) -> [UInt8] {
    guard type.isQuantizable else { throw .notQuantizable(type) }
    guard values.count % type.blockSize == 0 else {
        throw .partialBlockElements(type: type, count: values.count)
    }
    if type.blockSize > 1, let bad = values.firstIndex(where: { !$0.isFinite }) {
        throw .nonFiniteValue(type: type, index: bad, value: values[bad])
    }
    // Cannot overflow: the output is at most 2.25 bytes per value (Q8_0/Q8_1) or 4 (F32).
    let byteCount = values.count / type.blockSize * type.blockBytes
    return values.withUnsafeBufferPointer { src in
        [UInt8](unsafeUninitializedCapacity: byteCount) { out, initialized in
            if byteCount > 0 {
                quantize(type, src.baseAddress!, count: values.count, into: UnsafeMutableRawPointer(out.baseAddress!))
            }
            initialized = byteCount
        }
    }
}

/// `value` rounded by `rule` and clamped to `range`, without trapping: the C casts in ggml's quantizers
/// are undefined outside the code range, which only non-finite input can reach. NaN gives the code
/// nearest to 0.
@inline(__always)
func clampedCode(_ value: Float, _ rule: FloatingPointRoundingRule, _ range: ClosedRange<Int>) -> Int {
    if value.isNaN { return Swift.min(Swift.max(0, range.lowerBound), range.upperBound) }
    let r = value.rounded(rule)
    if r <= Float(range.lowerBound) { return range.lowerBound }
    if r >= Float(range.upperBound) { return range.upperBound }
    return Int(r)
}

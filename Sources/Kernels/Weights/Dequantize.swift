// Dequantization of stored tensor data to f32: the entry points and the per-type dispatch.
//
// The per-family block decoders live in Dequantize+Floats/Legacy/KQuants.swift. Every decoder does the
// same f32 arithmetic, in the same order, as ggml's `dequantize_row_*` reference code (ggml-quants.c)
// and gguf-py's numpy port, so results are bit-identical to both (checked against gguf-py by
// KernelsTests through Fixtures/tensor_types.json). Layouts: FORMATS.md §2.2-§2.4.

/// Decodes `count` elements of `type` stored at `src` into `dst`.
///
/// `count` must be a multiple of `type.blockSize` and `src` must hold
/// `type.byteCount(elements: count)` bytes; `type` must be computable (`type.isComputable`).
/// These are checked with preconditions: callers validate their input first (or use the throwing
/// `dequantize(_:bytes:)`). `src` needs no alignment.
public func dequantize(_ type: TensorType, _ src: UnsafeRawPointer, count: Int,
                       into dst: UnsafeMutablePointer<Float>) {
    precondition(type.isComputable, "dequantize: \(type) is not computable; the caller should have checked")
    precondition(count >= 0 && count % type.blockSize == 0,
                 "dequantize: \(count) is not a whole number of \(type) blocks; the caller should have checked")
    let blocks = count / type.blockSize
    let decode: (UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void
    switch type {
    case .f32: dequantizeF32(src, count: count, into: dst); return
    case .f16: dequantizeF16(src, count: count, into: dst); return
    case .bf16: dequantizeBF16(src, count: count, into: dst); return
    case .q4_0: decode = dequantizeBlockQ4_0
    case .q4_1: decode = dequantizeBlockQ4_1
    case .q5_0: decode = dequantizeBlockQ5_0
    case .q5_1: decode = dequantizeBlockQ5_1
    case .q8_0: decode = dequantizeBlockQ8_0
    case .q4_K: decode = dequantizeBlockQ4_K
    case .q5_K: decode = dequantizeBlockQ5_K
    case .q6_K: decode = dequantizeBlockQ6_K
    default: preconditionFailure("dequantize: \(type) is marked computable but has no decoder")
    }
    for b in 0..<blocks {
        decode(src + b * type.blockBytes, dst + b * type.blockSize)
    }
}

/// Decodes stored `bytes` of `type` into f32 values.
///
/// Throws `KernelsError.notComputable` for a type lorad cannot decode and
/// `KernelsError.partialBlockBytes` when `bytes` is not a whole number of blocks.
public func dequantize(_ type: TensorType, bytes: [UInt8]) throws(KernelsError) -> [Float] {
    guard type.isComputable else { throw .notComputable(type) }
    guard bytes.count % type.blockBytes == 0 else {
        throw .partialBlockBytes(type: type, byteCount: bytes.count)
    }
    let count = bytes.count / type.blockBytes * type.blockSize
    return bytes.withUnsafeBytes { raw in
        [Float](unsafeUninitializedCapacity: count) { out, initialized in
            // An empty array may have a nil base address; there is nothing to decode then.
            if count > 0 {
                dequantize(type, raw.baseAddress!, count: count, into: out.baseAddress!)
            }
            initialized = count
        }
    }
}

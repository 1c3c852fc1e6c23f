// The plain reference dot product of one stored weight row with an f32 vector.
//
// This is the yardstick later fast kernels are tested against, so it is written to be obviously right,
// not fast: it decodes the row with `dequantize` (bit-identical to ggml's reference decoders) and sums
// the products in double precision. It deliberately does not imitate llama.cpp's numerics (activations
// quantized to Q8_0/Q8_1/Q8_K, FORMATS.md §2.5); it is the exact dot of the stored weights with `x`,
// up to double rounding.

/// Elements decoded at a time: a multiple of every block size (1, 32, 256), so a chunk never splits a
/// block, and small enough to live on the stack.
private let referenceDotChunk = 256

/// Σ w[i] * x[i] for i in 0..<count, where w is `row` (stored as `type`) decoded to f32.
///
/// Accumulation order: each product `Double(w[i]) * Double(x[i])` is exact in double (24-bit by
/// 24-bit significands), and the products are added one at a time into a single double accumulator in
/// increasing `i`; the sum is rounded to f32 once at the end. So the result is within
/// 0.5 ulp(f32) of the exact dot plus `count` double roundings (relative 2⁻⁵³ each, on the partial sums).
///
/// `count` must be a multiple of `type.blockSize`, `row` must hold `type.byteCount(elements: count)`
/// bytes and `type` must be computable (preconditions, as for `dequantize`).
public func referenceDot(_ type: TensorType, row: UnsafeRawPointer, _ x: UnsafePointer<Float>,
                         count: Int) -> Float {
    precondition(type.isComputable, "referenceDot: \(type) is not computable; the caller should have checked")
    precondition(count >= 0 && count % type.blockSize == 0,
                 "referenceDot: \(count) is not a whole number of \(type) blocks; the caller should have checked")
    var sum = 0.0
    withUnsafeTemporaryAllocation(of: Float.self, capacity: referenceDotChunk) { buffer in
        let w = buffer.baseAddress!
        var start = 0
        while start < count {
            let n = min(referenceDotChunk, count - start)  // a multiple of blockSize, as count and the chunk are
            dequantize(type, row + start / type.blockSize * type.blockBytes, count: n, into: w)
            for i in 0..<n {
                sum += Double(w[i]) * Double(x[start + i])
            }
            start += n
        }
    }
    return Float(sum)
}

// Block decoders for the legacy 32-element formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
//
// Source: ggml-quants.c `dequantize_row_q4_0` ... `dequantize_row_q8_0`; layouts in FORMATS.md §2.3.
// The 4-bit codes are not interleaved: element j takes the low nibble of qs[j] and element j+16 its
// high nibble. For Q5, bit k of the little-endian u32 `qh` is the fifth bit of element k.
// Arithmetic order matches ggml and gguf-py exactly: `code * d` (Q4_0/Q5_0/Q8_0, signed code) and
// `code * d + m` (Q4_1/Q5_1), with d and m widened from f16 first.

/// Q4_0, 18 bytes: d f16, qs[16]. x = (nibble - 8) * d.
func dequantizeBlockQ4_0(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = block.f16(0)
    for j in 0..<16 {
        let q = block.byte(2 + j)
        y[j] = Float(Int(q & 0x0F) - 8) * d
        y[j + 16] = Float(Int(q >> 4) - 8) * d
    }
}

/// Q4_1, 20 bytes: d f16, m f16, qs[16]. x = nibble * d + m.
func dequantizeBlockQ4_1(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = block.f16(0)
    let m = block.f16(2)
    for j in 0..<16 {
        let q = block.byte(4 + j)
        y[j] = Float(q & 0x0F) * d + m
        y[j + 16] = Float(q >> 4) * d + m
    }
}

/// Q5_0, 22 bytes: d f16, qh u32, qs[16]. x = (code5 - 16) * d.
func dequantizeBlockQ5_0(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = block.f16(0)
    let qh = block.u32(2)
    for j in 0..<16 {
        let q = block.byte(6 + j)
        let high0 = Int((qh >> UInt32(j)) & 1) << 4
        let high1 = Int((qh >> UInt32(j + 16)) & 1) << 4
        y[j] = Float((Int(q & 0x0F) | high0) - 16) * d
        y[j + 16] = Float((Int(q >> 4) | high1) - 16) * d
    }
}

/// Q5_1, 24 bytes: d f16, m f16, qh u32, qs[16]. x = code5 * d + m.
func dequantizeBlockQ5_1(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = block.f16(0)
    let m = block.f16(2)
    let qh = block.u32(4)
    for j in 0..<16 {
        let q = block.byte(8 + j)
        let high0 = Int((qh >> UInt32(j)) & 1) << 4
        let high1 = Int((qh >> UInt32(j + 16)) & 1) << 4
        y[j] = Float(Int(q & 0x0F) | high0) * d + m
        y[j + 16] = Float(Int(q >> 4) | high1) * d + m
    }
}

/// Q8_0, 34 bytes: d f16, qs[32] int8. x = q * d.
func dequantizeBlockQ8_0(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = block.f16(0)
    for j in 0..<32 {
        y[j] = Float(block.int8(2 + j)) * d
    }
}

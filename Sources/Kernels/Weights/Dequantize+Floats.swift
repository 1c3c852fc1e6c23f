// Decoding runs of the plain float types (F32, F16, BF16) to f32. Block size 1, so these work on
// whole runs rather than per block. Conversions: FloatTypes.swift.

func dequantizeF32(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
    for i in 0..<count {
        dst[i] = Float(bitPattern: src.u32(4 * i))
    }
}

func dequantizeF16(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
    for i in 0..<count {
        dst[i] = f16ToF32(src.u16(2 * i))
    }
}

func dequantizeBF16(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
    for i in 0..<count {
        dst[i] = bf16ToF32(src.u16(2 * i))
    }
}

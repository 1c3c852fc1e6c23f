// Reference encoders for llama.cpp's activation-only formats Q8_1 and Q8_K (Q8_0: Quantize+Legacy.swift).
//
// Source: ggml-quants.c `quantize_row_q8_1_ref`, `quantize_row_q8_K_ref`, `nearest_int`; FORMATS.md §2.5.
// gguf-py has no quantizer for either, so KernelsTests checks their documented invariants instead of
// golden bytes. Fast kernels that want llama.cpp's exact numerics must reproduce these bytes.

/// Q8_1, 36 bytes: d f16, s f16, qs[32] int8. The codes and d are exactly Q8_0's; s = fp16(d * Σq)
/// with the *unrounded* f32 d, which lets Q4_1/Q5_1 dot products fold the weight min in one multiply.
func quantizeBlockQ8_1(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) {
    var amax: Float = 0
    for j in 0..<32 { amax = Swift.max(amax, abs(x[j])) }
    let d = amax / 127
    let id: Float = d != 0 ? 1 / d : 0
    var sum = 0
    for j in 0..<32 {
        let q = clampedCode(x[j] * id, .toNearestOrAwayFromZero, -128...127)
        block.storeByte(UInt8(bitPattern: Int8(q)), at: 4 + j)
        sum += q
    }
    block.storeU16(f32ToF16(d), at: 0)
    block.storeU16(f32ToF16(Float(sum) * d), at: 2)
}

/// Q8_K, 292 bytes: d f32, qs[256] int8, bsums[16] int16 (Σ of each 16 codes).
/// iscale = -127/v with v the signed absmax (first on ties), code = min(127, round-half-even(iscale*x)),
/// d = 1/iscale (so d is negative when v is positive and d*code recovers x). An all-zero block gets
/// d = 0 and zero codes; ggml leaves that block's bsums unwritten, this writes zeros.
func quantizeBlockQ8_K(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) {
    var amax: Float = 0
    var maxValue: Float = 0
    for j in 0..<256 where abs(x[j]) > amax {
        amax = abs(x[j])
        maxValue = x[j]
    }
    if amax == 0 {
        block.initializeMemory(as: UInt8.self, repeating: 0, count: 292)
        return
    }
    let iscale = -127 / maxValue
    for group in 0..<16 {
        var sum = 0
        for l in 0..<16 {
            let j = 16 * group + l
            // ggml's nearest_int (the 1.5*2^23 magic-number trick) is round-half-even for |v| < 2^22.
            let q = clampedCode(iscale * x[j], .toNearestOrEven, -128...127)
            block.storeByte(UInt8(bitPattern: Int8(q)), at: 4 + j)
            sum += q
        }
        block.storeU16(UInt16(bitPattern: Int16(sum)), at: 260 + 2 * group)
    }
    block.storeU32((1 / iscale).bitPattern, at: 0)
}

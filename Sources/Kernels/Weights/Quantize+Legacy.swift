// Reference block encoders for the legacy 32-element weight formats Q8_0, Q4_0, Q4_1, Q5_0, Q5_1.
//
// Source: ggml-quants.c `quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`, `quantize_row_q4_1_ref`,
// `quantize_row_q5_0_ref`, `quantize_row_q5_1_ref` (the same arithmetic as gguf-py's numpy port);
// layouts in FORMATS.md §2.3. The f32 arithmetic below keeps ggml's operation order so the bytes match:
// the scale is computed and inverted in f32 (`id = 1/d`), values are multiplied by `id` (never divided
// by d), and only the stored d and m are rounded to f16.
// Q4_0/Q5_0 take d from the signed value with the largest magnitude (the first one on ties) so that it
// maps to code 0 and the opposite extreme gets the extra code; Q4_1/Q5_1 span [min, max].

/// Q8_0: d = amax/127, q = roundf(x/d) (ties away from zero). Also llama.cpp's activation quantizer
/// for Q4_0/Q5_0/Q8_0 weights (its reference path; the AVX path rounds ties to even, FORMATS.md §2.5).
func quantizeBlockQ8_0(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) {
    var amax: Float = 0
    for j in 0..<32 { amax = Swift.max(amax, abs(x[j])) }
    let d = amax / 127
    let id: Float = d != 0 ? 1 / d : 0
    block.storeU16(f32ToF16(d), at: 0)
    for j in 0..<32 {
        let q = clampedCode(x[j] * id, .toNearestOrAwayFromZero, -128...127)
        block.storeByte(UInt8(bitPattern: Int8(q)), at: 2 + j)
    }
}

/// The signed value with the largest magnitude (the first such), or 0 for an all-zero block.
@inline(__always)
private func signedAbsMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var amax: Float = 0
    var maxValue: Float = 0
    for j in 0..<n where amax < abs(x[j]) {
        amax = abs(x[j])
        maxValue = x[j]
    }
    return maxValue
}

/// The smallest and largest value, starting from ggml's ±FLT_MAX.
@inline(__always)
private func minMax(_ x: UnsafePointer<Float>, _ n: Int) -> (min: Float, max: Float) {
    var lo = Float.greatestFiniteMagnitude
    var hi = -Float.greatestFiniteMagnitude
    for j in 0..<n {
        if x[j] < lo { lo = x[j] }
        if x[j] > hi { hi = x[j] }
    }
    return (lo, hi)
}

/// Q4_0: d = v/-8 (v the signed absmax), code = min(15, trunc(x/d + 8.5)).
func quantizeBlockQ4_0(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) {
    let d = signedAbsMax(x, 32) / -8
    let id: Float = d != 0 ? 1 / d : 0
    block.storeU16(f32ToF16(d), at: 0)
    for j in 0..<16 {
        let q0 = clampedCode(x[j] * id + 8.5, .towardZero, 0...15)
        let q1 = clampedCode(x[j + 16] * id + 8.5, .towardZero, 0...15)
        block.storeByte(UInt8(q0) | UInt8(q1) << 4, at: 2 + j)
    }
}

/// Q4_1: d = (max-min)/15, m = min, code = min(15, trunc((x-min)/d + 0.5)).
func quantizeBlockQ4_1(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) {
    let (lo, hi) = minMax(x, 32)
    let d = (hi - lo) / 15
    let id: Float = d != 0 ? 1 / d : 0
    block.storeU16(f32ToF16(d), at: 0)
    block.storeU16(f32ToF16(lo), at: 2)
    for j in 0..<16 {
        let q0 = clampedCode((x[j] - lo) * id + 0.5, .towardZero, 0...15)
        let q1 = clampedCode((x[j + 16] - lo) * id + 0.5, .towardZero, 0...15)
        block.storeByte(UInt8(q0) | UInt8(q1) << 4, at: 4 + j)
    }
}

/// Q5_0: d = v/-16 (v the signed absmax), code = min(31, trunc(x/d + 16.5)); fifth bits go to qh.
func quantizeBlockQ5_0(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) {
    let d = signedAbsMax(x, 32) / -16
    let id: Float = d != 0 ? 1 / d : 0
    block.storeU16(f32ToF16(d), at: 0)
    var qh: UInt32 = 0
    for j in 0..<16 {
        let q0 = UInt8(clampedCode(x[j] * id + 16.5, .towardZero, 0...31))
        let q1 = UInt8(clampedCode(x[j + 16] * id + 16.5, .towardZero, 0...31))
        block.storeByte((q0 & 0x0F) | (q1 & 0x0F) << 4, at: 6 + j)
        qh |= UInt32(q0 >> 4) << UInt32(j)
        qh |= UInt32(q1 >> 4) << UInt32(j + 16)
    }
    block.storeU32(qh, at: 2)
}

/// Q5_1: d = (max-min)/31, m = min, code = trunc((x-min)/d + 0.5) (at most 31); fifth bits go to qh.
func quantizeBlockQ5_1(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) {
    let (lo, hi) = minMax(x, 32)
    let d = (hi - lo) / 31
    let id: Float = d != 0 ? 1 / d : 0
    block.storeU16(f32ToF16(d), at: 0)
    block.storeU16(f32ToF16(lo), at: 2)
    var qh: UInt32 = 0
    for j in 0..<16 {
        let q0 = UInt8(clampedCode((x[j] - lo) * id + 0.5, .towardZero, 0...31))
        let q1 = UInt8(clampedCode((x[j + 16] - lo) * id + 0.5, .towardZero, 0...31))
        block.storeByte((q0 & 0x0F) | (q1 & 0x0F) << 4, at: 8 + j)
        qh |= UInt32(q0 >> 4) << UInt32(j)
        qh |= UInt32(q1 >> 4) << UInt32(j + 16)
    }
    block.storeU32(qh, at: 4)
}

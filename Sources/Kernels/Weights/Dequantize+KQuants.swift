// Block decoders for the 256-element K-quant super-blocks Q4_K, Q5_K, Q6_K.
//
// Source: ggml-quants.c `dequantize_row_q4_K`, `dequantize_row_q5_K`, `dequantize_row_q6_K` and
// `get_scale_min_k4`; layouts in FORMATS.md §2.4. Arithmetic order matches ggml and gguf-py exactly:
// Q4_K/Q5_K compute `d1 = d * sc`, `m1 = dmin * mn` once per 32-element sub-block, then
// `d1 * code - m1`; Q6_K computes `d * scale * code` left to right, i.e. `(d * scale) * code`.

/// The 6-bit scale and min of sub-block `j` (0..<8) from the 12-byte packed `scales` field.
@inline(__always)
func kQuantScaleMin(_ scales: UnsafeRawPointer, _ j: Int) -> (scale: UInt8, min: UInt8) {
    if j < 4 {
        return (scales.byte(j) & 63, scales.byte(j + 4) & 63)
    }
    return ((scales.byte(j + 4) & 0x0F) | ((scales.byte(j - 4) >> 6) << 4),
            (scales.byte(j + 4) >> 4) | ((scales.byte(j) >> 6) << 4))
}

/// Q4_K, 144 bytes: d f16, dmin f16, scales[12], qs[128].
/// Chunk g (64 elements) uses qs[32g..<32g+32]: low nibbles with sub-block 2g, high with 2g+1.
func dequantizeBlockQ4_K(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = block.f16(0)
    let dmin = block.f16(2)
    let scales = block + 4
    let qs = block + 16
    for g in 0..<4 {
        let (sc1, mn1) = kQuantScaleMin(scales, 2 * g)
        let (sc2, mn2) = kQuantScaleMin(scales, 2 * g + 1)
        let d1 = d * Float(sc1), m1 = dmin * Float(mn1)
        let d2 = d * Float(sc2), m2 = dmin * Float(mn2)
        for l in 0..<32 {
            let q = qs.byte(32 * g + l)
            y[64 * g + l] = d1 * Float(q & 0x0F) - m1
            y[64 * g + 32 + l] = d2 * Float(q >> 4) - m2
        }
    }
}

/// Q5_K, 176 bytes: d f16, dmin f16, scales[12], qh[32], qs[128].
/// As Q4_K, plus 16 when bit 2g (first half of chunk g) or 2g+1 (second half) of qh[l] is set.
func dequantizeBlockQ5_K(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = block.f16(0)
    let dmin = block.f16(2)
    let scales = block + 4
    let qh = block + 16
    let qs = block + 48
    for g in 0..<4 {
        let (sc1, mn1) = kQuantScaleMin(scales, 2 * g)
        let (sc2, mn2) = kQuantScaleMin(scales, 2 * g + 1)
        let d1 = d * Float(sc1), m1 = dmin * Float(mn1)
        let d2 = d * Float(sc2), m2 = dmin * Float(mn2)
        let bit1 = UInt8(1) << UInt8(2 * g), bit2 = UInt8(1) << UInt8(2 * g + 1)
        for l in 0..<32 {
            let q = qs.byte(32 * g + l)
            let h = qh.byte(l)
            y[64 * g + l] = d1 * Float((q & 0x0F) + (h & bit1 != 0 ? 16 : 0)) - m1
            y[64 * g + 32 + l] = d2 * Float((q >> 4) + (h & bit2 != 0 ? 16 : 0)) - m2
        }
    }
}

/// Q6_K, 210 bytes: ql[128], qh[64], scales[16] int8, d f16.
/// Half n (128 elements) uses ql[64n..<64n+64], qh[32n..<32n+32], scales[8n..<8n+8]; element i of the
/// half uses scales[8n + i/16]. Code = 4 low bits from ql, 2 high bits from qh, minus 32.
func dequantizeBlockQ6_K(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = block.f16(208)
    for n in 0..<2 {
        let ql = block + 64 * n
        let qh = block + 128 + 32 * n
        let sc = block + 192 + 8 * n
        let out = y + 128 * n
        for l in 0..<32 {
            let s = l / 16
            let h = qh.byte(l)
            let q1 = Int((ql.byte(l) & 0x0F) | ((h >> 0) & 3) << 4) - 32
            let q2 = Int((ql.byte(l + 32) & 0x0F) | ((h >> 2) & 3) << 4) - 32
            let q3 = Int((ql.byte(l) >> 4) | ((h >> 4) & 3) << 4) - 32
            let q4 = Int((ql.byte(l + 32) >> 4) | ((h >> 6) & 3) << 4) - 32
            out[l] = d * Float(sc.int8(s)) * Float(q1)
            out[l + 32] = d * Float(sc.int8(s + 2)) * Float(q2)
            out[l + 64] = d * Float(sc.int8(s + 4)) * Float(q3)
            out[l + 96] = d * Float(sc.int8(s + 6)) * Float(q4)
        }
    }
}

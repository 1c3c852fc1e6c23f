// Half-precision element conversions: IEEE binary16 (F16) and bfloat16 (BF16) to and from f32.
//
// F16 uses Swift's Float16, whose conversions are IEEE's (exact widening; round-to-nearest-even
// narrowing with overflow to infinity and gradual underflow to subnormals). That is what ggml does with
// F16C (`_cvtss_sh`/`_cvtph_ps`) and with its portable bit-twiddling fallback, and what numpy does,
// except for NaN payloads: a NaN always stays a NaN, but its payload bits may differ between them.
//
// BF16 follows ggml-impl.h (`ggml_compute_fp32_to_bf16` / `ggml_compute_bf16_to_fp32`), FORMATS.md §2.2:
// widening is a 16-bit shift; narrowing rounds to nearest even by adding 0x7FFF plus the lowest kept
// bit, and a NaN is truncated and forced quiet by setting bit 6 of the result (otherwise truncating a
// NaN whose payload lives only in the low 16 bits would turn it into an infinity).

/// The f32 value of IEEE binary16 `bits` (exact).
@inlinable
public func f16ToF32(_ bits: UInt16) -> Float {
    Float(Float16(bitPattern: bits))
}

/// `value` rounded to IEEE binary16 (round-to-nearest-even; overflow gives ±infinity).
@inlinable
public func f32ToF16(_ value: Float) -> UInt16 {
    Float16(value).bitPattern
}

/// The f32 value of bfloat16 `bits` (exact).
@inlinable
public func bf16ToF32(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// `value` rounded to bfloat16 exactly as ggml does (round-to-nearest-even; NaN kept quiet).
@inlinable
public func f32ToBF16(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if bits & 0x7FFF_FFFF > 0x7F80_0000 {
        return UInt16(truncatingIfNeeded: bits >> 16) | 64
    }
    // Cannot wrap: the largest non-NaN pattern is 0xFF80_0000 (-inf).
    return UInt16(truncatingIfNeeded: (bits &+ (0x7FFF &+ ((bits >> 16) & 1))) >> 16)
}

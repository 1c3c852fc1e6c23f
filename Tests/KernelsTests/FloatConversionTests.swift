// F16 and BF16 conversions (FloatTypes.swift): exhaustive decoding against an independent formula,
// round trips, hand-derived IEEE / ggml edge cases, and round-to-nearest-even checked against a
// double-precision nearest-neighbour search on random inputs. All comparisons are exact.

import Kernels
import Testing

@Suite struct FloatConversionTests {
    /// binary16 decoded from its definition in double: (-1)^s * 2^(e-15) * 1.m, or 2^-14 * 0.m.
    static func f16Definition(_ bits: UInt16) -> Double {
        let sign: Double = bits & 0x8000 != 0 ? -1 : 1
        let e = Int(bits >> 10) & 0x1F
        let m = Double(bits & 0x3FF)
        if e == 0x1F { return m == 0 ? sign * .infinity : .nan }
        if e == 0 { return sign * m * 0x1p-24 }
        return sign * (1024 + m) * Double(sign: .plus, exponent: e - 25, significand: 1)
    }

    @Test func f16DecodesEveryPatternByDefinition() {
        var wrong: [UInt16] = []
        for bits in UInt16.min...UInt16.max {
            let expected = Float(Self.f16Definition(bits))  // exact: every binary16 value is a binary32 value
            let got = f16ToF32(bits)
            if !(got.isNaN && expected.isNaN) && got.bitPattern != expected.bitPattern { wrong.append(bits) }
        }
        #expect(wrong.isEmpty, "\(wrong.count) patterns decode wrongly, e.g. \(wrong.prefix(5))")
    }

    @Test func f16RoundTripsEveryPattern() {
        for bits in UInt16.min...UInt16.max {
            let back = f32ToF16(f16ToF32(bits))
            if f16ToF32(bits).isNaN {
                #expect(f16ToF32(back).isNaN, "NaN \(bits) must stay NaN")
            } else if back != bits {
                Issue.record("f16 \(bits) round-trips to \(back)")
            }
        }
    }

    @Test(arguments: [
        // (f32 input, expected binary16 bits, why)
        (Float(1), UInt16(0x3C00), "one"),
        (-0.0, 0x8000, "negative zero keeps its sign"),
        (65504, 0x7BFF, "largest finite"),
        (65519.996, 0x7BFF, "just below the halfway point to 65536 rounds down"),
        (65520, 0x7C00, "halfway to 65536 (odd mantissa) rounds up: overflow to +inf"),
        (-1e5, 0xFC00, "overflow to -inf"),
        (.infinity, 0x7C00, "+inf"),
        (-.infinity, 0xFC00, "-inf"),
        (0x1p-14, 0x0400, "smallest normal"),
        (1023 * 0x1p-24, 0x03FF, "largest subnormal"),
        (0x1p-24, 0x0001, "smallest subnormal"),
        (0x1p-25, 0x0000, "half the smallest subnormal: tie, rounds to even (zero)"),
        (Float(0x1p-25).nextUp, 0x0001, "just above that tie rounds up"),
        (3 * 0x1p-25, 0x0002, "1.5 subnormal units: tie, rounds to even (2)"),
        (1 + 0x1p-11, 0x3C00, "1 + half an ulp: tie, rounds to even (down)"),
        (1 + 3 * 0x1p-11, 0x3C02, "1 + 1.5 ulp: tie, rounds to even (up)"),
        (-(1 + 3 * 0x1p-11), 0xBC02, "ties are symmetric in sign"),
        (Float(bitPattern: 0x0001_16C2), 0x0000, "f32 subnormal (about 1e-40) underflows to zero"),
    ] as [(Float, UInt16, String)])
    func f16EdgeCases(input: Float, expected: UInt16, why: String) {
        #expect(f32ToF16(input) == expected, "\(why)")
    }

    @Test func f16NaNStaysNaN() {
        for nan in [Float.nan, -Float.nan, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFFC1_2345)] {
            let bits = f32ToF16(nan)
            #expect(bits & 0x7C00 == 0x7C00 && bits & 0x03FF != 0, "\(nan.bitPattern) gave \(bits)")
        }
    }

    /// Round-to-nearest-even against a search: the result must be at least as near as both of its
    /// binary16 neighbours, and on an exact tie have an even significand. Random f32 values with
    /// exponents from below the f16 subnormal range to above its overflow point.
    @Test func f16RoundsToNearestEven() {
        var rng = SplitMix64(seed: 16)
        for _ in 0..<100_000 {
            let x = Float(sign: Bool.random(using: &rng) ? .minus : .plus,
                          exponent: Int.random(in: -26...15, using: &rng),
                          significand: Float.random(in: 1..<2, using: &rng))
            let bits = f32ToF16(x)
            if abs(x) >= 65520 {  // 65504 + half an ulp: IEEE rounds these to infinity
                #expect(bits & 0x7FFF == 0x7C00, "f16(\(x)) should overflow to inf, got \(bits)")
                continue
            }
            checkNearest(Double(x), bits, decode: { Self.f16Definition($0) }, label: "f16")
        }
    }

    // BF16

    @Test func bf16RoundTripsEveryPattern() {
        for bits in UInt16.min...UInt16.max {
            let value = bf16ToF32(bits)
            #expect(value.bitPattern == UInt32(bits) << 16)
            let back = f32ToBF16(value)
            if value.isNaN {
                #expect(bf16ToF32(back).isNaN)
            } else if back != bits {
                Issue.record("bf16 \(bits) round-trips to \(back)")
            }
        }
    }

    @Test(arguments: [
        (UInt32(0x3F80_8000), UInt16(0x3F80), "tie with even upper half stays"),
        (0x3F81_8000, 0x3F82, "tie with odd upper half rounds up to even"),
        (0xBF80_8000, 0xBF80, "negative tie"),
        (0x3F80_7FFF, 0x3F80, "just below the tie rounds down"),
        (0x3F80_8001, 0x3F81, "just above the tie rounds up"),
        (0x7F7F_FFFF, 0x7F80, "FLT_MAX rounds up to +inf, as in ggml"),
        (0x7F80_0000, 0x7F80, "+inf"),
        (0xFF80_0000, 0xFF80, "-inf"),
        (0x0001_16C2, 0x0001, "f32 subnormal 1e-40 stays a (bf16) subnormal"),
        (0x8000_0000, 0x8000, "negative zero"),
        (0x7F80_0001, 0x7FC0, "NaN with payload only in the low bits is kept quiet, not turned into inf"),
        (0x7F81_2345, 0x7FC1, "signalling NaN is truncated and quieted (bit 6 set)"),
        (0xFFC1_2345, 0xFFC1, "quiet negative NaN is truncated, sign kept"),
    ] as [(UInt32, UInt16, String)])
    func bf16EdgeCases(input: UInt32, expected: UInt16, why: String) {
        #expect(f32ToBF16(Float(bitPattern: input)) == expected, "\(why)")
    }

    @Test func bf16RoundsToNearestEven() {
        var rng = SplitMix64(seed: 30)
        for _ in 0..<100_000 {
            // Finite f32 values below the range where rounding overflows to inf.
            var x = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))
            if !x.isFinite || abs(x) >= 0x1.FFp127 { x = 1.5 }
            checkNearest(Double(x), f32ToBF16(x), decode: { Double(bf16ToF32($0)) }, label: "bf16")
        }
    }

    /// `bits` must decode to a value at least as near `x` as its two neighbours (same sign, ±1 in the
    /// bit pattern), and an exact tie must pick the even pattern.
    private func checkNearest(_ x: Double, _ bits: UInt16, decode: (UInt16) -> Double, label: String) {
        let got = decode(bits)
        let error = abs(x - got)
        for neighbour in [bits &- 1, bits &+ 1] where (neighbour ^ bits) & 0x8000 == 0 {
            let other = decode(neighbour)
            guard !other.isNaN else { continue }
            let otherError = abs(x - other)
            if otherError < error || (otherError == error && bits & 1 == 1) {
                Issue.record("\(label)(\(x)) = \(got) [\(bits)], but \(other) [\(neighbour)] is nearer or an even tie")
                return
            }
        }
    }
}

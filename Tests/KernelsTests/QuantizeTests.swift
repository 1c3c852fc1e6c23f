// Reference quantizers beyond the gguf-py goldens: the activation formats Q8_1 and Q8_K (gguf-py
// cannot make them, so these check their documented invariants, FORMATS.md §2.5), and the typed
// errors of the convenience entry points.

import Kernels
import Testing

private func f16At(_ b: [UInt8], _ i: Int) -> Float { f16ToF32(UInt16(b[i]) | UInt16(b[i + 1]) << 8) }
private func f32At(_ b: [UInt8], _ i: Int) -> Float {
    Float(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
}

@Suite struct ActivationQuantizerTests {
    /// Blocks of 32: random ones plus all-zero, one-huge-value, negative-only and exact-tie blocks.
    static func q8Blocks() -> [[Float]] {
        var rng = SplitMix64(seed: 81)
        var blocks = (0..<200).map { _ in rng.normals(32, scale: Float.random(in: 0.01...10, using: &rng)) }
        blocks.append([Float](repeating: 0, count: 32))
        var huge = rng.normals(32, scale: 0.01); huge[7] = 3e4; blocks.append(huge)
        blocks.append(rng.normals(32).map { -abs($0) - 0.1 })
        blocks.append([127, -2.5, 2.5, -3.5, 3.5, 0.5, -0.5, 1.5] + [Float](repeating: 1, count: 24))
        return blocks
    }

    /// Q8_1's d and codes are exactly Q8_0's (same ggml code); s = fp16(Σq · d) with the unrounded f32 d.
    @Test func q8_1MatchesQ8_0AndStoresSumWithUnroundedScale() throws {
        var sumUsesUnroundedScale = 0
        for x in Self.q8Blocks() {
            let q81 = try quantize(.q8_1, x)
            let q80 = try quantize(.q8_0, x)
            try #require(q81.count == 36 && q80.count == 34)
            #expect(Array(q81[0..<2]) == Array(q80[0..<2]), "d differs from Q8_0's")
            #expect(Array(q81[4..<36]) == Array(q80[2..<34]), "codes differ from Q8_0's")

            let codes = q81[4..<36].map { Int(Int8(bitPattern: $0)) }
            let dF32 = x.map(abs).max()! / 127
            let s = UInt16(q81[2]) | UInt16(q81[3]) << 8
            #expect(s == f32ToF16(Float(codes.reduce(0, +)) * dF32), "s must be fp16(Σq · d_f32)")
            if s != f32ToF16(Float(codes.reduce(0, +)) * f16At(q81, 0)) { sumUsesUnroundedScale += 1 }

            // Each code is round-half-away(x / d_f32), so the error against the stored f16 d is at most
            // half a step plus the f16 rounding of d over up to 127 steps.
            let d16 = f16At(q81, 0)
            for (xi, q) in zip(x, codes) {
                #expect(abs(q) <= 127)
                let bound = dF32 / 2 * (1 + 1e-6) + Float(abs(q)) * abs(d16 - dF32)
                #expect(abs(xi - Float(q) * d16) <= bound, "x=\(xi) q=\(q) d=\(d16)")
            }
        }
        // Shows the check above can tell the two definitions of s apart on this data.
        #expect(sumUsesUnroundedScale > 0)
    }

    static func q8KBlocks() -> [[Float]] {
        var rng = SplitMix64(seed: 82)
        var blocks = (0..<40).map { _ in rng.normals(256, scale: Float.random(in: 0.01...10, using: &rng)) }
        var negativeMax = rng.normals(256); negativeMax[100] = -9; blocks.append(negativeMax)
        var huge = rng.normals(256, scale: 0.01); huge[255] = 3e4; blocks.append(huge)
        return blocks
    }

    @Test func q8_KInvariants() throws {
        for x in Self.q8KBlocks() {
            let b = try quantize(.q8_K, x)
            try #require(b.count == 292)
            let d = f32At(b, 0)
            let codes = b[4..<260].map { Int(Int8(bitPattern: $0)) }
            let bsums = (0..<16).map { Int(Int16(bitPattern: UInt16(b[260 + 2 * $0]) | UInt16(b[261 + 2 * $0]) << 8)) }

            // The first value of largest magnitude, v, sets iscale = -127/v; d = 1/iscale is stored as f32.
            let v = x[x.indices.first { abs(x[$0]) == x.map(abs).max()! }!]
            let iscale = -127 / v
            #expect(d.bitPattern == (1 / iscale).bitPattern, "d must be 1/iscale in f32")
            #expect((d < 0) == (v > 0), "d has the opposite sign of v")
            #expect(codes[x.firstIndex(of: v)!] == -127, "v maps to code -127")
            for k in 0..<16 {
                #expect(bsums[k] == codes[16 * k..<16 * k + 16].reduce(0, +), "bsums[\(k)]")
            }
            for (xi, q) in zip(x, codes) {
                #expect((-127...127).contains(q))
                #expect(q == Int((iscale * xi).rounded(.toNearestOrEven)).clamped(max: 127))
                // Half a step, plus f32 rounding of iscale·x and of d (relative 2⁻²⁴ each, on ≤ 127 steps).
                #expect(abs(xi - Float(q) * d) <= abs(d) * (0.5 + 127 * 0x1p-22), "x=\(xi) q=\(q) d=\(d)")
            }
        }
    }

    /// nearest_int rounds half to even (unlike Q8_0's roundf): with v = -127, iscale = 1 and d = 1.
    @Test func q8_KRoundsTiesToEven() throws {
        var x = [Float](repeating: 0, count: 256)
        x[0] = -127
        x[1] = 2.5; x[2] = 3.5; x[3] = -2.5; x[4] = 0.5; x[5] = -0.5; x[6] = 1.5
        let b = try quantize(.q8_K, x)
        #expect(f32At(b, 0) == 1)
        #expect(b[4..<11].map { Int8(bitPattern: $0) } == [-127, 2, 4, -2, 0, 0, 2])
        #expect(Int16(bitPattern: UInt16(b[260]) | UInt16(b[261]) << 8) == -127 + 2 + 4 - 2 + 2)
    }

    @Test func q8_KZeroBlockIsAllZeroBytes() throws {
        let b = try quantize(.q8_K, [Float](repeating: 0, count: 512))
        #expect(b == [UInt8](repeating: 0, count: 584))
    }
}

private extension Int {
    func clamped(max upper: Int) -> Int { Swift.min(self, upper) }
}

@Suite struct QuantizeErrorTests {
    @Test func dequantizeRejectsPartialBlocks() throws {
        #expect(throws: KernelsError.partialBlockBytes(type: .q4_0, byteCount: 17)) {
            try dequantize(.q4_0, bytes: [UInt8](repeating: 0, count: 17))
        }
        #expect(throws: KernelsError.partialBlockBytes(type: .q4_0, byteCount: 37)) {
            try dequantize(.q4_0, bytes: [UInt8](repeating: 0, count: 37))
        }
        #expect(throws: KernelsError.partialBlockBytes(type: .q6_K, byteCount: 209)) {
            try dequantize(.q6_K, bytes: [UInt8](repeating: 0, count: 209))
        }
        #expect(throws: KernelsError.partialBlockBytes(type: .f32, byteCount: 6)) {
            try dequantize(.f32, bytes: [UInt8](repeating: 0, count: 6))
        }
        #expect(try dequantize(.q4_0, bytes: []) == [])
        #expect(try dequantize(.q4_0, bytes: [UInt8](repeating: 0, count: 36)).count == 64)

        let message = KernelsError.partialBlockBytes(type: .q4_0, byteCount: 17).description
        #expect(message.contains("17 bytes") && message.contains("18 bytes each") && message.contains("hint"))
    }

    @Test func dequantizeRejectsTypesItCannotDecode() {
        for type in TensorType.allCases where !type.isComputable {
            #expect(throws: KernelsError.notComputable(type)) {
                try dequantize(type, bytes: [UInt8](repeating: 0, count: type.blockBytes))
            }
        }
        #expect(KernelsError.notComputable(.q2_K).description.contains("Q4_K"))
    }

    @Test func quantizeRejectsBadInput() {
        #expect(throws: KernelsError.partialBlockElements(type: .q4_0, count: 31)) {
            try quantize(.q4_0, [Float](repeating: 1, count: 31))
        }
        #expect(throws: KernelsError.notQuantizable(.q6_K)) {
            try quantize(.q6_K, [Float](repeating: 1, count: 256))
        }
        var x = [Float](repeating: 1, count: 64)
        x[40] = .nan
        let error = #expect(throws: KernelsError.self) { try quantize(.q8_0, x) }
        guard case .nonFiniteValue(type: .q8_0, index: 40, value: let value)? = error else {
            Issue.record("expected nonFiniteValue at index 40, got \(String(describing: error))")
            return
        }
        #expect(value.isNaN)
        x[40] = 1
        x[63] = -.infinity
        #expect(throws: KernelsError.nonFiniteValue(type: .q4_1, index: 63, value: -.infinity)) {
            try quantize(.q4_1, x)
        }
    }

    /// The float types store NaN and infinities; the pointer entry point never traps on them.
    @Test func nonFiniteValuesDoNotTrap() throws {
        let specials: [Float] = [.nan, .infinity, -.infinity, 1]
        #expect(try dequantize(.f16, bytes: quantize(.f16, specials)).map(\.isNaN) == [true, false, false, false])
        #expect(try dequantize(.bf16, bytes: quantize(.bf16, specials)).dropFirst() == [.infinity, -.infinity, 1])
        let x = [Float](repeating: .nan, count: 16) + [Float](repeating: .infinity, count: 240)
        for type in [TensorType.q8_0, .q8_1, .q4_0, .q4_1, .q5_0, .q5_1, .q8_K] {
            var out = [UInt8](repeating: 0, count: type.byteCount(elements: 256)!)
            x.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBytes { quantize(type, src.baseAddress!, count: 256, into: $0.baseAddress!) }
            }
        }
    }
}

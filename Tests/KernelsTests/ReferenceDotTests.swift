// referenceDot against a double-precision dot of the dequantized row, for every computable type, on
// random rows of several lengths (1 to 40 blocks, so 32-element types cross the 256-element decode
// chunk at uneven points), with the row at an unaligned address.
//
// Tolerance, derived in the test: referenceDot sums exact double products left to right and rounds to
// f32 once; the test sums the same exact products right to left in double. Each double sum is within
// (n-1)·2⁻⁵³·Σ|pᵢ| of the exact dot, and the final f32 rounding adds at most 2⁻²⁴·|sum|, so
//     |ref - expected| ≤ 2⁻²⁴·|expected|·(1 + 2⁻²⁰) + 2n·2⁻⁵³·Σ|pᵢ|.
// A wrong block offset, element order or scale moves the result by far more than that.

import Kernels
import Testing

@Suite struct ReferenceDotTests {
    /// Random stored rows: quantized random normals for the types Kernels can quantize, random bytes
    /// with a modest f16 scale for the K-quants (every bit pattern of their packed fields is valid).
    static func randomRow(_ type: TensorType, count: Int, rng: inout SplitMix64) throws -> [UInt8] {
        if type.isQuantizable {
            return try quantize(type, rng.normals(count, scale: 0.1))
        }
        var row = rng.bytes(count / type.blockSize * type.blockBytes)
        for b in 0..<count / type.blockSize {
            let base = b * type.blockBytes
            let d = f32ToF16(Float.random(in: 1e-4..<5e-2, using: &rng))
            let dmin = f32ToF16(Float.random(in: 1e-4..<5e-2, using: &rng))
            let dOffset = type == .q6_K ? 208 : 0
            row[base + dOffset] = UInt8(d & 0xFF)
            row[base + dOffset + 1] = UInt8(d >> 8)
            if type != .q6_K {
                row[base + 2] = UInt8(dmin & 0xFF)
                row[base + 3] = UInt8(dmin >> 8)
            }
        }
        return row
    }

    static let blockCounts = [1, 3, 8, 9, 40]

    @Test(arguments: TensorType.allCases.filter(\.isComputable))
    func matchesDoubleDotOfDequantizedRow(type: TensorType) throws {
        var rng = SplitMix64(seed: UInt64(type.rawValue) &+ 1000)
        let counts = Self.blockCounts.map { $0 * type.blockSize } + (type.blockSize == 1 ? [255, 257] : [])
        for count in counts {
            let row = try Self.randomRow(type, count: count, rng: &rng)
            let x = rng.normals(count)
            let w = try dequantize(type, bytes: row)
            try #require(w.count == count)

            var expected = 0.0, magnitude = 0.0
            for i in (0..<count).reversed() {
                let p = Double(w[i]) * Double(x[i])
                expected += p
                magnitude += abs(p)
            }
            // The row one byte past an aligned address: every multi-byte field load is unaligned.
            let unaligned = [0] + row
            let got = unaligned.withUnsafeBytes { raw in
                x.withUnsafeBufferPointer { xp in
                    referenceDot(type, row: raw.baseAddress! + 1, xp.baseAddress!, count: count)
                }
            }
            let tolerance = 0x1p-24 * abs(expected) * (1 + 0x1p-20) + 2 * Double(count) * 0x1p-53 * magnitude
            #expect(abs(Double(got) - expected) <= tolerance,
                    "\(type) n=\(count): referenceDot \(got), double dot \(expected), tolerance \(tolerance)")
            #expect(magnitude > 0, "\(type) n=\(count): degenerate all-zero test row")
        }
    }

    @Test func emptyRowIsZero() {
        let x: [Float] = [1]
        let got = x.withUnsafeBufferPointer { xp in
            [UInt8](repeating: 0, count: 4).withUnsafeBytes { referenceDot(.q4_0, row: $0.baseAddress!, xp.baseAddress!, count: 0) }
        }
        #expect(got == 0)
    }
}

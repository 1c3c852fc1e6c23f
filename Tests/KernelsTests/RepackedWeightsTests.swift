// The 8-row repacked Q4_1 and Q8_0 copies (RepackedWeights, kernels_q4x8.c): decoding one gives exactly
// the stored rows' values, and the dequantize + sgemm path gives exactly the same products from either.
// (Its Q8 products are checked against the scalar reference in MatMulTests.q8MatchesSwiftReference.)
// Row counts that are not multiples of 8 exercise the zero-padded last group.

@testable import Kernels
import Testing

@Suite struct RepackedWeightsTests {
    @Test(arguments: [TensorType.q4_1, .q8_0], [1, 8, 13, 24, 67])
    func decodesToTheStoredValues(type: TensorType, rows: Int) throws {
        var rng = SplitMix64(seed: 0x48 &+ UInt64(rows))
        for cols in [32, 96, 576] {
            var bytes: [UInt8] = []
            for _ in 0..<rows { bytes += try ReferenceDotTests.randomRow(type, count: cols, rng: &rng) }
            try bytes.withUnsafeBytes { wb in
                let w = WeightMatrix(type: type, rows: rows, cols: cols, data: wb.baseAddress!)
                let p = try #require(w.withRepackedCopy().repacked)
                #expect(p.byteCount == (rows + 7) / 8 * 8 * w.rowBytes)
                // All rows at once, then an odd sub-range starting mid-group.
                for (r0, r1) in [(0, rows), (rows / 3, rows)] where r1 > r0 {
                    var got = [Float](repeating: .nan, count: (r1 - r0) * cols)
                    got.withUnsafeMutableBufferPointer { p.dequantize(rows: r0, r1, into: $0.baseAddress!) }
                    var want = [Float](repeating: 0, count: cols)
                    for r in r0..<r1 {
                        want.withUnsafeMutableBufferPointer { w.decodeRow(r, into: $0.baseAddress!) }
                        for i in 0..<cols where got[(r - r0) * cols + i].bitPattern != want[i].bitPattern {
                            Issue.record("rows=\(rows) cols=\(cols) r=\(r) i=\(i): \(got[(r - r0) * cols + i]) vs \(want[i])")
                            return
                        }
                    }
                }
            }
        }
    }

    @Test(arguments: [TensorType.q4_1, .q8_0])
    func sgemmFromTheCopyIsBitIdentical(type: TensorType) throws {
        var rng = SplitMix64(seed: 0x5E)
        let rows = 67, cols = 96, tokens = 33
        var bytes: [UInt8] = []
        for _ in 0..<rows { bytes += try ReferenceDotTests.randomRow(type, count: cols, rng: &rng) }
        let x = rng.normals(tokens * cols)
        let pool = ComputePool(threads: 2)
        bytes.withUnsafeBytes { wb in
            x.withUnsafeBufferPointer { xb in
                let w = WeightMatrix(type: type, rows: rows, cols: cols, data: wb.baseAddress!)
                var plain = [Float](repeating: .nan, count: tokens * rows), packed = plain
                plain.withUnsafeMutableBufferPointer {
                    matmul(w, xb.baseAddress!, tokens: tokens, $0.baseAddress!, pool: pool, strategy: .sgemm)
                }
                packed.withUnsafeMutableBufferPointer {
                    matmul(w.withRepackedCopy(), xb.baseAddress!, tokens: tokens, $0.baseAddress!, pool: pool,
                           strategy: .sgemm)
                }
                #expect(plain.map(\.bitPattern) == packed.map(\.bitPattern))
                #expect(!plain.contains { $0.isNaN })
            }
        }
    }
}

// matmulTransposed (column strips of decoded 256-row chunks and sgemm; from the repacked copy, row
// tiles and per-run accumulators) against matmulTransposedReference (double sums over `decodeRow`),
// for F32, F16, Q8_0 and Q4_1 weights, the stored layout and the 8-row repacked one, on 1 and 2
// threads, with and without accumulation.
//
// Shapes are awkward: 67, 131 and 300 rows (not multiples of the 64-row tile or the 256-row chunk, so
// the last is short), 1, 3, 5 and 9 blocks per row (one strip, strips of unequal width, four strips),
// 1, 5 and 17 tokens, and a dY row stride wider than the row count.

import Kernels
import Testing

@Suite struct MatMulTransposedTests {
    static let types: [TensorType] = [.f32, .f16, .q8_0, .q4_1]

    @Test(arguments: types) func matchesReference(type: TensorType) throws {
        var rng = SplitMix64(seed: 17)
        for rows in [67, 131, 300] {
            for blocks in [1, 3, 5, 9] {
                let cols = type.blockSize == 1 ? blocks * 11 : blocks * type.blockSize
                var bytes: [UInt8] = []
                for _ in 0..<rows { bytes += try ReferenceDotTests.randomRow(type, count: cols, rng: &rng) }
                for tokens in [1, 5, 17] {
                    let ys = rows + 3
                    let dy = rng.normals(tokens * ys)
                    let start = rng.normals(tokens * cols)
                    bytes.withUnsafeBytes { wb in
                        let stored = WeightMatrix(type: type, rows: rows, cols: cols, data: wb.baseAddress!)
                        let plan = ProductPlan(activations: .q8, repacksWeights: true)
                        let layouts = plan.repacks(type) ? [stored, plan.prepare(stored)] : [stored]
                        for w in layouts {
                            for threads in [1, 2] {
                                for accumulate in [false, true] {
                                    var got = start, want = start
                                    dy.withUnsafeBufferPointer { d in
                                        got.withUnsafeMutableBufferPointer {
                                            matmulTransposed(w, d.baseAddress!, tokens: tokens, dyStride: ys, $0.baseAddress!,
                                                             accumulate: accumulate, pool: ComputePool.shared(threads: threads))
                                        }
                                        want.withUnsafeMutableBufferPointer {
                                            matmulTransposedReference(w, d.baseAddress!, tokens: tokens, dyStride: ys, $0.baseAddress!,
                                                                      accumulate: accumulate)
                                        }
                                    }
                                    // Tolerance: f32 sums of `rows` products (plus one add per thread and the
                                    // accumulated start), at most about (rows + 8)·2⁻²⁴·Σ|dy·w| + the start's ulp;
                                    // a wrong row, tile offset or stride errs by a sizeable part of Σ|dy·w|.
                                    var row = [Float](repeating: 0, count: cols)
                                    var magnitude = [Double](repeating: 0, count: tokens * cols)
                                    for r in 0..<rows {
                                        row.withUnsafeMutableBufferPointer { w.decodeRow(r, into: $0.baseAddress!) }
                                        for t in 0..<tokens {
                                            for i in 0..<cols { magnitude[t * cols + i] += abs(Double(dy[t * ys + r]) * Double(row[i])) }
                                        }
                                    }
                                    var worst = 0.0
                                    for j in 0..<(tokens * cols) {
                                        let m = magnitude[j] + (accumulate ? abs(Double(start[j])) : 0)
                                        let tol = 2 * Double(rows + 8) * 0x1p-24 * m + 1e-30
                                        worst = max(worst, abs(Double(got[j]) - Double(want[j])) / tol)
                                    }
                                    #expect(worst <= 1, "\(type) \(rows)×\(cols) T=\(tokens) threads \(threads) acc \(accumulate) repacked \(w.repacked != nil): \(worst)× tolerance")
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

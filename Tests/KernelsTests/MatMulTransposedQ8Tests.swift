// matmulTransposedQ8 (W's transposed Q8_0 copy, dY quantized per row, the repacked Q8_0 kernels)
// against matmulTransposedQ8Reference (the same quantized operands, double sums), and the copy itself
// against ggml's Q8_0 quantizer applied to W's decoded columns.
//
// Shapes: 32, 96 and 320 W rows (1, 3 and 10 blocks per row of Wᵀ); W columns 33 (F32: Wᵀ's row count
// not a multiple of the kernel's 8-row groups), 96 and 288; 1, 5 (entries ~1e-9, as loss gradients) and 17 tokens; a dY row stride wider
// than the row count; 1 and 2 threads; both kernel paths; with and without accumulation.

import Kernels
import Testing

@Suite struct MatMulTransposedQ8Tests {
    static let types: [TensorType] = [.f32, .q8_0, .q4_1]

    static func weights(_ type: TensorType, rows: Int, cols: Int, rng: inout SplitMix64) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<rows { bytes += try ReferenceDotTests.randomRow(type, count: cols, rng: &rng) }
        return bytes
    }

    /// Row i of the copy, block b, is exactly quantize(.q8_0) of W[32b ..< 32b+32][i], decoded.
    @Test(arguments: types) func copyIsQ8_0OfTheColumns(type: TensorType) throws {
        var rng = SplitMix64(seed: 23)
        let rows = 96, cols = type == .f32 ? 33 : 96
        let bytes = try Self.weights(type, rows: rows, cols: cols, rng: &rng)
        try bytes.withUnsafeBytes { wb in
            let w = WeightMatrix(type: type, rows: rows, cols: cols, data: wb.baseAddress!)
            let t = TransposedQ8Weights(w)
            var decoded = [Float](repeating: 0, count: rows * cols)
            decoded.withUnsafeMutableBufferPointer { d in for r in 0..<rows { w.decodeRow(r, into: d.baseAddress! + r * cols) } }
            var got = [Float](repeating: 0, count: cols * rows)
            got.withUnsafeMutableBufferPointer { t.decodeTransposed(rows: 0, cols, into: $0.baseAddress!) }
            for i in 0..<cols {
                let column = (0..<rows).map { decoded[$0 * cols + i] }
                let want = try dequantize(.q8_0, bytes: quantize(.q8_0, column))
                #expect(Array(got[(i * rows)..<((i + 1) * rows)]) == want, "\(type): column \(i)")
            }
        }
    }

    @Test(arguments: types) func matchesReference(type: TensorType) throws {
        var rng = SplitMix64(seed: 29)
        for rows in [32, 96, 320] {
            for cols in type == .f32 ? [33, 96] : [96, 288] {
                let bytes = try Self.weights(type, rows: rows, cols: cols, rng: &rng)
                for (tokens, scale) in [(1, Float(1)), (5, 1e-9), (17, 1)] {
                    let ys = rows + 3
                    // 1e-9: the size of a loss gradient's entries, whose Q8_0 block scales would be f16
                    // zeros unscaled (gradientRowScale); the error bound below is relative, so it holds.
                    let dy = rng.normals(tokens * ys, scale: scale)
                    let dense = (0..<tokens).flatMap { dy[($0 * ys)..<($0 * ys + rows)] }  // the reference takes stride = rows
                    let start = rng.normals(tokens * cols)
                    try bytes.withUnsafeBytes { wb in
                        let w = WeightMatrix(type: type, rows: rows, cols: cols, data: wb.baseAddress!)
                        let t = TransposedQ8Weights(w, pool: ComputePool.shared(threads: 2))
                        var want = [Float](repeating: 0, count: tokens * cols)
                        dense.withUnsafeBufferPointer { d in
                            want.withUnsafeMutableBufferPointer { matmulTransposedQ8Reference(t, d.baseAddress!, tokens: tokens, $0.baseAddress!) }
                        }
                        // Tolerance: the kernel sums per block d_w·d_a·Σq_w·q_a in f32 (the integer dot is
                        // exact; two roundings in the scale product), then adds the rows/32 block terms in
                        // f32: at most about (rows/32 + 4)·2⁻²⁴·Σ_b|d_w·d_a·Σq_w·q_a| ≤ that times
                        // Σ|w_q·a_q|, doubled for slack. A wrong block, row group, stride or scale errs by
                        // a sizeable part of Σ|w_q·a_q|.
                        var wt = [Float](repeating: 0, count: cols * rows)
                        wt.withUnsafeMutableBufferPointer { t.decodeTransposed(rows: 0, cols, into: $0.baseAddress!) }
                        var magnitude = [Double](repeating: 0, count: tokens * cols)
                        for r in 0..<tokens {
                            let amax = (0..<rows).map { abs(Double(dense[r * rows + $0])) }.max()!
                            for i in 0..<cols {
                                // |a_q| ≤ |a| + one step (amax/127) per value: a bound on Σ|w_q·a_q|.
                                var m = 0.0
                                for j in 0..<rows { m += abs(Double(wt[i * rows + j])) * (abs(Double(dense[r * rows + j])) + amax / 127) }
                                magnitude[r * cols + i] = m
                            }
                        }
                        for threads in [1, 2] {
                            for path in KernelPath.allCases {
                                for accumulate in [false, true] {
                                    var got = start
                                    dy.withUnsafeBufferPointer { d in
                                        got.withUnsafeMutableBufferPointer {
                                            matmulTransposedQ8(t, d.baseAddress!, tokens: tokens, dyStride: ys, $0.baseAddress!,
                                                               accumulate: accumulate, pool: ComputePool.shared(threads: threads), kernels: path)
                                        }
                                    }
                                    var worst = 0.0
                                    for j in 0..<(tokens * cols) {
                                        let expected = Double(want[j]) + (accumulate ? Double(start[j]) : 0)
                                        let m = magnitude[j] + (accumulate ? abs(Double(start[j])) : 0)
                                        let tol = 2 * Double(rows / 32 + 4) * 0x1p-24 * m + 1e-30
                                        worst = max(worst, abs(Double(got[j]) - expected) / tol)
                                    }
                                    #expect(worst <= 1, "\(type) W \(rows)×\(cols) T=\(tokens) threads \(threads) \(path) acc \(accumulate): \(worst)× tolerance")
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

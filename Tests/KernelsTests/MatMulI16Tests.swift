// The int16-activation path of matmul (Q4_0, Q4_1, Q8_0; AVX2 and portable) against a double dot of
// the dequantized rows with the exact f32 activations, within the quantization bound stated below.

@testable import Kernels
import Testing

@Suite struct MatMulI16Tests {
    /// Tolerance per output, from the kernel's arithmetic (kernels_i16.c):
    ///  - quantization: each activation becomes q·d with d = amax_b/32767 (amax_b the block's largest
    ///    |x|), off by at most d/2 plus the f32 rounding of x·(32767/amax) (relative ~2⁻²³, bounded by
    ///    2⁻²²·|x|). The kernel multiplies integer codes by q exactly and scales by d_w·d, so the error is
    ///    Σ |d_w·code_i|·(d/2 + 2⁻²²|x_i|) with |d_w·code_i| ≤ |w_i| + |m_b| (m_b = 0 without a min);
    ///  - f32 summation of the block terms and the m·Σx terms: as in MatMulTests, 2(n+8)·2⁻²⁴ times
    ///    Σ|w x| + 2Σ|m||x|.
    /// For unit-normal activations the first part is ~1e-5 relative; a wrong nibble order, scale or
    /// stride errs by a sizeable fraction of Σ|wx|.
    @Test(arguments: [TensorType.q4_0, .q4_1, .q8_0])
    func matchesDoubleDotWithinQuantizationBound(type: TensorType) throws {
        var rng = SplitMix64(seed: 0x16 &+ UInt64(type.rawValue))
        let pool = ComputePool(threads: 2)
        for cols in [32, 96, 224, 288] {
            for tokens in MatMulTests.tokenCounts {
                let c = try MatMulTests.makeCase(type, rows: 13, cols: cols, tokens: tokens, rng: &rng)
                let ys = c.rows + 3
                c.weights.withUnsafeBytes { wb in
                    c.x.withUnsafeBufferPointer { xb in
                        let w = WeightMatrix(type: type, rows: c.rows, cols: cols, data: wb.baseAddress! + 1)
                        let x = xb.baseAddress! + 1
                        for path in KernelPath.allCases {
                            var y = [Float](repeating: .nan, count: tokens * ys)
                            y.withUnsafeMutableBufferPointer {
                                matmul(w, x, tokens: tokens, $0.baseAddress!, yStride: ys, pool: pool,
                                       strategy: .int16, kernels: path)
                            }
                            var decoded = [Float](repeating: 0, count: cols)
                            for r in 0..<c.rows {
                                decoded.withUnsafeMutableBufferPointer { w.decodeRow(r, into: $0.baseAddress!) }
                                for t in 0..<tokens {
                                    var exact = 0.0, magnitude = 0.0, quant = 0.0
                                    for b in 0..<(cols / 32) {
                                        var amax = 0.0
                                        for j in 0..<32 { amax = max(amax, abs(Double(x[t * cols + 32 * b + j]))) }
                                        let d = amax / 32767
                                        let m = MatMulTests.blockMin(type, w.row(r), block: b) ?? 0
                                        for j in 0..<32 {
                                            let i = 32 * b + j
                                            let xi = Double(x[t * cols + i]), wi = Double(decoded[i])
                                            exact += wi * xi
                                            magnitude += abs(wi * xi) + 2 * abs(m * xi)
                                            quant += (abs(wi) + abs(m)) * (d / 2 + 0x1p-22 * abs(xi))
                                        }
                                    }
                                    let tol = quant * 1.001 + 2 * Double(cols + 8) * 0x1p-24 * magnitude + 1e-30
                                    let got = Double(y[t * ys + r])
                                    #expect(abs(got - exact) <= tol, "\(path) \(type) cols=\(cols) T=\(tokens) r=\(r) t=\(t): got \(got), exact \(exact), tolerance \(tol)")
                                }
                            }
                            for t in 0..<tokens {
                                for r in c.rows..<ys { #expect(y[t * ys + r].isNaN, "\(path) wrote outside the rows") }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The int16 rounding error really is far below llama.cpp's int8 one on the same data (so the
    /// default numerics stay close to exact): on random normal activations, the worst relative error
    /// of int16 outputs must be under 1/50 of the int8 (matmulQ8) one. Expected ratio ~1/250 (the
    /// step sizes differ by 32767/127 = 258).
    @Test func int16ErrorIsFarBelowInt8() throws {
        var rng = SplitMix64(seed: 99)
        let rows = 64, cols = 576, tokens = 3
        let c = try MatMulTests.makeCase(.q4_1, rows: rows, cols: cols, tokens: tokens, rng: &rng)
        var e16 = 0.0, e8 = 0.0
        c.weights.withUnsafeBytes { wb in
            c.x.withUnsafeBufferPointer { xb in
                let w = WeightMatrix(type: .q4_1, rows: rows, cols: cols, data: wb.baseAddress! + 1)
                let x = xb.baseAddress! + 1
                var exact = [Float](repeating: 0, count: tokens * rows)
                var y16 = exact, y8 = exact
                exact.withUnsafeMutableBufferPointer { matmulReference(w, x, tokens: tokens, $0.baseAddress!) }
                y16.withUnsafeMutableBufferPointer { matmul(w, x, tokens: tokens, $0.baseAddress!, strategy: .int16) }
                y8.withUnsafeMutableBufferPointer { matmulQ8(w, x, tokens: tokens, $0.baseAddress!) }
                for i in 0..<(tokens * rows) {
                    e16 = max(e16, abs(Double(y16[i] - exact[i])))
                    e8 = max(e8, abs(Double(y8[i] - exact[i])))
                }
            }
        }
        #expect(e8 > 0)
        #expect(e16 < e8 / 50, "int16 max error \(e16), int8 max error \(e8)")
    }
}

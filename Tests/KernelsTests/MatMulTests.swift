// matmul (fused C kernels and dequantize + sgemm, AVX2 and portable) against a double-precision dot
// of the dequantized rows, for every computable type; matmulQ8 (C, AVX2 and portable) against the
// scalar Swift reference matmulQ8Reference.
//
// Shapes are deliberately awkward: row lengths of 1, 3, 7 and 9 blocks (and odd lengths for the
// block-size-1 float types), token counts 1, 2, 3, 5, 8, 17, 33 (not multiples of the 4-token tile),
// 13 or 67 rows (not multiples of any row tile), weights one byte past an aligned address, activations
// one float past one, and an output row stride wider than the row count.

@testable import Kernels
import Testing

@Suite struct MatMulTests {
    static let tokenCounts = [1, 2, 3, 5, 8, 17, 33]

    static func lengths(_ type: TensorType) -> [Int] {
        type.blockSize == 1 ? [1, 7, 33, 100] : [1, 3, 7, 9].map { $0 * type.blockSize }
    }

    /// The offset `m` of a block of a type with a per-block min (Q4_1, Q5_1), else nil.
    static func blockMin(_ type: TensorType, _ row: UnsafeRawPointer, block b: Int) -> Double? {
        switch type {
        case .q4_1, .q5_1:
            let bits = UInt16(row.load(fromByteOffset: b * type.blockBytes + 2, as: UInt8.self))
                | UInt16(row.load(fromByteOffset: b * type.blockBytes + 3, as: UInt8.self)) << 8
            return Double(f16ToF32(bits))
        default: return nil
        }
    }

    struct Case {
        var type: TensorType
        var rows: Int
        var cols: Int
        var tokens: Int
        var weights: [UInt8]  // one padding byte first
        var x: [Float]        // one padding float first
    }

    static func makeCase(_ type: TensorType, rows: Int, cols: Int, tokens: Int, rng: inout SplitMix64) throws -> Case {
        var weights: [UInt8] = [0x5A]
        for _ in 0..<rows { weights += try ReferenceDotTests.randomRow(type, count: cols, rng: &rng) }
        return Case(type: type, rows: rows, cols: cols, tokens: tokens, weights: weights,
                    x: [0] + rng.normals(tokens * cols))
    }

    /// Checks `run`'s output (stride ys = rows + 3) against double dots of the dequantized rows.
    ///
    /// Tolerance: every path sums f32 products in f32 (FMA or not, in some order), so the error is at
    /// most about n·2⁻²⁴·Σ|wᵢxᵢ| (n = row length; the usual bound for recursive summation, here used
    /// with a factor 2 for the f32 rounding of each product and the final horizontal sum). Q4_1/Q5_1
    /// kernels compute d·Σcode·x + m·Σx, whose terms can be larger than the wᵢxᵢ they stand for, so for
    /// them Σ|m|·|x| (twice: once for m·Σx and once for d·code = w - m) is added to the magnitude.
    /// A wrong scale, block offset, nibble order or token stride errs by a sizeable fraction of Σ|wx|.
    static func check(_ c: Case, label: String,
                      _ run: (WeightMatrix, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) {
        let ys = c.rows + 3
        var y = [Float](repeating: .nan, count: c.tokens * ys)
        c.weights.withUnsafeBytes { wb in
            c.x.withUnsafeBufferPointer { xb in
                let w = WeightMatrix(type: c.type, rows: c.rows, cols: c.cols, data: wb.baseAddress! + 1)
                let x = xb.baseAddress! + 1
                y.withUnsafeMutableBufferPointer { run(w, x, $0.baseAddress!, ys) }
                var decoded = [Float](repeating: 0, count: c.cols)
                var failures = 0
                for r in 0..<c.rows {
                    decoded.withUnsafeMutableBufferPointer { w.decodeRow(r, into: $0.baseAddress!) }
                    for t in 0..<c.tokens {
                        var exact = 0.0, magnitude = 0.0
                        for i in 0..<c.cols {
                            let p = Double(decoded[i]) * Double(x[t * c.cols + i])
                            exact += p
                            magnitude += abs(p)
                            let m = blockMin(c.type, w.row(r), block: i / c.type.blockSize)
                            if let m { magnitude += 2 * abs(m) * abs(Double(x[t * c.cols + i])) }
                        }
                        let got = Double(y[t * ys + r])
                        let tolerance = 2 * Double(c.cols + 8) * 0x1p-24 * magnitude + 1e-30
                        if !(abs(got - exact) <= tolerance) {
                            failures += 1
                            if failures <= 3 {
                                Issue.record("\(label) \(c.type) rows=\(c.rows) cols=\(c.cols) T=\(c.tokens) r=\(r) t=\(t): got \(got), exact \(exact), tolerance \(tolerance)")
                            }
                        }
                    }
                }
                // The padding columns of the output stride must be untouched.
                for t in 0..<c.tokens {
                    for r in c.rows..<ys where !y[t * ys + r].isNaN {
                        Issue.record("\(label) \(c.type): wrote outside the output rows (t=\(t), column \(r))")
                    }
                }
            }
        }
    }

    @Test(arguments: TensorType.allCases.filter(\.isComputable))
    func fusedAndSgemmMatchDoubleDot(type: TensorType) throws {
        var rng = SplitMix64(seed: 0xBEEF &+ UInt64(type.rawValue))
        let pool = ComputePool(threads: 2)
        for cols in Self.lengths(type) {
            for tokens in Self.tokenCounts {
                let c = try Self.makeCase(type, rows: 13, cols: cols, tokens: tokens, rng: &rng)
                for path in KernelPath.allCases {
                    for strategy in [MatMulStrategy.fused, .sgemm] {
                        Self.check(c, label: "\(path)/\(strategy)") { w, x, y, ys in
                            matmul(w, x, tokens: c.tokens, y, yStride: ys, pool: pool, strategy: strategy, kernels: path)
                        }
                    }
                }
            }
        }
    }

    /// More rows than one sgemm tile (64) and several fused tiles, with 1 and 2 threads and the default
    /// (automatic) strategy on both sides of the crossover.
    @Test(arguments: [TensorType.q4_1, .q8_0, .q4_K, .f16])
    func manyRowsAllStrategies(type: TensorType) throws {
        var rng = SplitMix64(seed: 77 &+ UInt64(type.rawValue))
        for tokens in [1, 5, MatMulTuning.sgemmMinTokens + 1] {
            let cols = type.blockSize == 1 ? 96 : 3 * type.blockSize
            let c = try Self.makeCase(type, rows: 67, cols: cols, tokens: tokens, rng: &rng)
            for threads in [1, 2] {
                Self.check(c, label: "automatic/threads=\(threads)") { w, x, y, ys in
                    matmul(w, x, tokens: c.tokens, y, yStride: ys, threads: threads)
                }
            }
        }
    }

    /// matmulQ8 (C kernels) against the scalar Swift reference. Both quantize the activations the same
    /// way (checked indirectly: a one-code difference moves a result by d_w·d_a·|code| ≫ tolerance) and
    /// compute exact integer block dots; only the float summation of the per-block terms
    /// d_w·d_a·sumᵢ (+ m·s) differs in order, so the difference is at most about
    /// 2·nb·2⁻²⁴·Σ_b |block term| (nb = blocks per row).
    @Test(arguments: [TensorType.q4_0, .q4_1, .q8_0])
    func q8MatchesSwiftReference(type: TensorType) throws {
        var rng = SplitMix64(seed: 0xC0FFEE &+ UInt64(type.rawValue))
        let pool = ComputePool(threads: 2)
        for cols in [32, 96, 224, 288] {
            for tokens in Self.tokenCounts {
                let c = try Self.makeCase(type, rows: 13, cols: cols, tokens: tokens, rng: &rng)
                let ys = c.rows + 3
                var expected = [Float](repeating: .nan, count: tokens * ys)
                c.weights.withUnsafeBytes { wb in
                    c.x.withUnsafeBufferPointer { xb in
                        let w = WeightMatrix(type: type, rows: c.rows, cols: cols, data: wb.baseAddress! + 1)
                        expected.withUnsafeMutableBufferPointer {
                            matmulQ8Reference(w, xb.baseAddress! + 1, tokens: tokens, $0.baseAddress!, yStride: ys)
                        }
                        // Magnitude: the exact f32 matmul of the same rows bounds Σ|block terms| loosely;
                        // use Σ|w|·|x| from the decoded rows plus the min terms.
                        var magnitude = [Double](repeating: 0, count: tokens * c.rows)
                        var decoded = [Float](repeating: 0, count: cols)
                        for r in 0..<c.rows {
                            decoded.withUnsafeMutableBufferPointer { w.decodeRow(r, into: $0.baseAddress!) }
                            for t in 0..<tokens {
                                var s = 0.0
                                for i in 0..<cols {
                                    let xi = Double(xb[1 + t * cols + i])
                                    s += abs(Double(decoded[i]) * xi) * 1.02
                                    if let m = Self.blockMin(type, w.row(r), block: i / 32) { s += 2 * abs(m * xi) }
                                }
                                magnitude[t * c.rows + r] = s
                            }
                        }
                        // Q4_1 and Q8_0 also run from their 8-row repacked copies (RepackedWeights), same bound.
                        let variants = RepackedWeights.supports(type) ? [w, w.withRepackedCopy()] : [w]
                        for path in KernelPath.allCases {
                          for (v, wv) in variants.enumerated() {
                            let label = v == 0 ? "\(path)" : "\(path) repacked"
                            var got = [Float](repeating: .nan, count: tokens * ys)
                            got.withUnsafeMutableBufferPointer {
                                matmulQ8(wv, xb.baseAddress! + 1, tokens: tokens, $0.baseAddress!, yStride: ys,
                                         pool: pool, kernels: path)
                            }
                            for t in 0..<tokens {
                                for r in 0..<c.rows {
                                    let tol = 2 * Double(cols / 32 + 2) * 0x1p-24 * magnitude[t * c.rows + r] + 1e-30
                                    let e = Double(expected[t * ys + r]), g = Double(got[t * ys + r])
                                    #expect(abs(g - e) <= tol, "\(label) \(type) cols=\(cols) T=\(tokens) r=\(r) t=\(t): got \(g), reference \(e), tolerance \(tol)")
                                }
                                for r in c.rows..<ys { #expect(got[t * ys + r].isNaN, "\(label) wrote outside the rows") }
                            }
                          }
                        }
                    }
                }
            }
        }
    }

    /// Activations that sit exactly on rounding ties of the quantizer (v·127/amax = k + 0.5) must
    /// round half to even in the C quantizer as in the Swift one: the two results are then equal up
    /// to summation order, while a half-away-from-zero rounding would move them by d_w·d_a per tie.
    @Test func q8QuantizerRoundsTiesToEven() throws {
        var rng = SplitMix64(seed: 5)
        let cols = 64
        var x = [Float](repeating: 0, count: 1 + cols)
        for i in 0..<cols {
            // amax = 127 in every block (element 0), so id = 1 and v·id = v: ties at ±(k + 0.5).
            x[1 + i] = i % 32 == 0 ? 127 : Float(Int.random(in: -60...60, using: &rng)) + 0.5
        }
        let c = try Self.makeCase(.q8_0, rows: 5, cols: cols, tokens: 1, rng: &rng)
        var expected = [Float](repeating: 0, count: 5), got = [Float](repeating: 0, count: 5)
        c.weights.withUnsafeBytes { wb in
            x.withUnsafeBufferPointer { xb in
                let w = WeightMatrix(type: .q8_0, rows: 5, cols: cols, data: wb.baseAddress! + 1)
                expected.withUnsafeMutableBufferPointer { matmulQ8Reference(w, xb.baseAddress! + 1, tokens: 1, $0.baseAddress!) }
                for path in KernelPath.allCases {
                    got.withUnsafeMutableBufferPointer { matmulQ8(w, xb.baseAddress! + 1, tokens: 1, $0.baseAddress!, kernels: path) }
                    var decoded = [Float](repeating: 0, count: cols)
                    for r in 0..<5 {
                        // Integer dots are exact; the f32 summation of the lane/block partial sums errs by
                        // at most ~8·2⁻²⁴·Σ|wᵢxᵢ|. One tie rounded the other way moves the result by
                        // |w_i| (d_a = 1), about 1/(64·30) of Σ|wx| ≫ that tolerance.
                        decoded.withUnsafeMutableBufferPointer { w.decodeRow(r, into: $0.baseAddress!) }
                        let magnitude = (0..<cols).reduce(0.0) { $0 + abs(Double(decoded[$1]) * Double(x[1 + $1])) }
                        let tol = 8 * 0x1p-24 * magnitude
                        #expect(abs(Double(got[r]) - Double(expected[r])) <= tol,
                                "\(path) row \(r): \(got[r]) vs \(expected[r]), tolerance \(tol)")
                    }
                }
            }
        }
    }

    /// The C decoders behind the sgemm path are bit-identical to Swift's `dequantize` (same arithmetic
    /// in the same order, no FMA contraction), for both compiled versions.
    @Test(arguments: TensorType.allCases.filter(\.isComputable))
    func sgemmPathDecoderIsExact(type: TensorType) throws {
        var rng = SplitMix64(seed: 900 &+ UInt64(type.rawValue))
        let cols = 7 * type.blockSize * (type.blockSize == 1 ? 5 : 1)
        let c = try Self.makeCase(type, rows: 3, cols: cols, tokens: 1, rng: &rng)
        let swiftDecoded = try dequantize(type, bytes: Array(c.weights.dropFirst()))
        for path in KernelPath.allCases {
            let got = c.weights.withUnsafeBytes { wb in
                dequantizeRows(type, wb.baseAddress! + 1, count: 3 * cols, kernels: path)
            }
            #expect(got.map(\.bitPattern) == swiftDecoded.map(\.bitPattern), "\(path) \(type)")
        }
    }

    @Test func cpuFeatureDetectionIsConsistent() {
        // On x86-64 hosts lorad targets, AVX2 is expected; elsewhere `best` must be portable. Either
        // way `.avx2.usable` must never select code the CPU cannot run.
        #expect(KernelPath.avx2.usable == KernelPath.best)
        #expect(KernelPath.portable.usable == .portable)
    }
}

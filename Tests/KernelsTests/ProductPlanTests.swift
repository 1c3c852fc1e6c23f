// ProductPlan, the one place that picks a product's kernel: which kernel each numerics, type, token
// count and repacked copy gets; `prepare` repacks exactly the types the plan repacks; `multiply` and
// `multiplyReference` are bit for bit the entry points they stand for (matmul / matmulQ8 and their
// references, whose accuracy MatMulTests checks).

@testable import Kernels
import Testing

@Suite struct ProductPlanTests {
    static let q8Stored = ProductPlan(activations: .q8)
    static let q8Repacked = ProductPlan(activations: .q8, repacksWeights: true)

    static func matrix(_ type: TensorType, rows: Int, cols: Int, rng: inout SplitMix64) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<rows { bytes += try ReferenceDotTests.randomRow(type, count: cols, rng: &rng) }
        return bytes
    }

    @Test func kernelChoices() throws {
        var rng = SplitMix64(seed: 0x91)
        for type in [TensorType.q4_0, .q4_1, .q8_0, .q6_K, .f16] {
            let bytes = try Self.matrix(type, rows: 9, cols: 256, rng: &rng)
            bytes.withUnsafeBytes { wb in
                let w = WeightMatrix(type: type, rows: 9, cols: 256, data: wb.baseAddress!)
                // f32 activations: the forced strategies, then the token-count crossover.
                #expect(ProductPlan(strategy: .fused).kernel(for: w, tokens: 100) == .fused)
                #expect(ProductPlan(strategy: .sgemm).kernel(for: w, tokens: 1) == .sgemm)
                if MatMulTuning.override == nil {
                    #expect(ProductPlan.f32.kernel(for: w, tokens: MatMulTuning.sgemmMinTokens - 1) == .fused)
                    #expect(ProductPlan.f32.kernel(for: w, tokens: MatMulTuning.sgemmMinTokens) == .sgemm)
                }
                // 8-bit activations only where the type has a Q8 path; the repacked copy only where
                // the plan made one.
                let stored = Self.q8Stored.prepare(w), packed = Self.q8Repacked.prepare(w)
                #expect(stored.repacked == nil)
                #expect((packed.repacked != nil) == (type == .q4_1 || type == .q8_0))
                #expect(Self.q8Repacked.repacks(type) == (type == .q4_1 || type == .q8_0))
                #expect(ProductPlan.f32.prepare(w).repacked == nil)
                if hasQ8Path(type) {
                    #expect(Self.q8Stored.kernel(for: stored, tokens: 64) == .q8)
                    #expect(Self.q8Repacked.kernel(for: packed, tokens: 1) == (packed.repacked != nil ? .q8Repacked : .q8))
                } else {
                    #expect(!Self.q8Repacked.quantizesActivations(type))
                    #expect(Self.q8Repacked.kernel(for: packed, tokens: 1) == ProductPlan.f32.kernel(for: w, tokens: 1))
                }
            }
        }
    }

    @Test(arguments: [TensorType.q4_1, .q8_0, .q4_0, .q5_K])
    func multiplyIsTheEntryPointItStandsFor(type: TensorType) throws {
        var rng = SplitMix64(seed: 0x92 &+ UInt64(type.rawValue))
        let rows = 19, cols = 256
        let pool = ComputePool(threads: 2)
        let bytes = try Self.matrix(type, rows: rows, cols: cols, rng: &rng)
        for tokens in [1, 3, MatMulTuning.sgemmMinTokens + 2] {
            let x = (0..<(tokens * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
            bytes.withUnsafeBytes { wb in
                let stored = WeightMatrix(type: type, rows: rows, cols: cols, data: wb.baseAddress!)
                x.withUnsafeBufferPointer { xb in
                    func run(_ body: (UnsafeMutablePointer<Float>) -> Void) -> [UInt32] {
                        var y = [Float](repeating: .nan, count: tokens * rows)
                        y.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
                        return y.map(\.bitPattern)
                    }
                    let xp = xb.baseAddress!
                    for strategy in [MatMulStrategy.fused, .sgemm] {
                        let plan = ProductPlan(strategy: strategy)
                        #expect(run { plan.multiply(stored, xp, tokens: tokens, $0, pool: pool) }
                                == run { matmul(stored, xp, tokens: tokens, $0, pool: pool, strategy: strategy) })
                    }
                    #expect(run { ProductPlan.f32.multiplyReference(stored, xp, tokens: tokens, $0) }
                            == run { matmulReference(stored, xp, tokens: tokens, $0) })
                    for plan in [Self.q8Stored, Self.q8Repacked] where hasQ8Path(type) {
                        let w = plan.prepare(stored)
                        #expect(run { plan.multiply(w, xp, tokens: tokens, $0, pool: pool) }
                                == run { matmulQ8(w, xp, tokens: tokens, $0, pool: pool) })
                        #expect(run { plan.multiplyReference(w, xp, tokens: tokens, $0) }
                                == run { matmulQ8Reference(w, xp, tokens: tokens, $0) })
                    }
                }
            }
        }
    }
}

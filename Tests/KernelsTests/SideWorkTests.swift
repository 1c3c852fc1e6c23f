// Side work (`SideWork`): items that run in a product's own pool call. Every item runs exactly once,
// the product is the same as without them, and the items still run when the product has nothing to
// do (zero tokens), on every driver: fused f32, sgemm, and the 8-bit path from stored rows and
// from a repacked copy.

import Synchronization
import Testing
@testable import Kernels

@Suite struct SideWorkTests {
    @Test(arguments: [1, 24])
    func everyItemRunsOnceBesideAnUnchangedProduct(tokens: Int) throws {
        let rows = 96, cols = 64, items = 37
        var rng = SplitMix64(seed: 5)
        let weights = (0..<(rows * cols)).map { _ in rng.nextUnitFloat() - 0.5 }
        let x = (0..<(tokens * cols)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let q8 = try quantize(.q8_0, weights)
        let pool = ComputePool(threads: 2)
        let f32Bytes = weights.withUnsafeBytes { Array($0) }
        for (name, bytes, type, repack) in [("f32", f32Bytes, TensorType.f32, false), ("q8_0", q8, .q8_0, false),
                                            ("q8_0 repacked", q8, .q8_0, true)] {
            bytes.withUnsafeBytes { wb in
                let plain = WeightMatrix(type: type, rows: rows, cols: cols, data: wb.baseAddress!)
                let w = repack ? plain.withRepackedCopy() : plain
                x.withUnsafeBufferPointer { xb in
                    // Each product with and without side work; each item counts its runs.
                    let products: [(String, (UnsafeMutablePointer<Float>, SideWork?) -> Void)] = [
                        ("fused", { matmul(w, xb.baseAddress!, tokens: tokens, $0, pool: pool, strategy: .fused, alongside: $1) }),
                        ("sgemm", { matmul(w, xb.baseAddress!, tokens: tokens, $0, pool: pool, strategy: .sgemm, alongside: $1) }),
                        ("q8", { matmulQ8(w, xb.baseAddress!, tokens: tokens, $0, pool: pool, alongside: $1) }),
                    ]
                    for (driver, product) in products where driver != "q8" || type == .q8_0 {
                        var plainY = [Float](repeating: 0, count: tokens * rows), sideY = plainY
                        plainY.withUnsafeMutableBufferPointer { product($0.baseAddress!, nil) }
                        let runs = Mutex([Int](repeating: 0, count: items))
                        let side = SideWork(count: items) { i in runs.withLock { $0[i] += 1 } }
                        sideY.withUnsafeMutableBufferPointer { product($0.baseAddress!, side) }
                        #expect(sideY == plainY, "\(name) \(driver): the product changed")
                        #expect(runs.withLock { $0 } == [Int](repeating: 1, count: items), "\(name) \(driver): an item did not run once")
                    }
                }
            }
        }
    }

    @Test func itemsRunWhenTheProductIsEmpty() throws {
        let data = [Float](repeating: 1, count: 64)
        let q8 = try quantize(.q8_0, data)
        let runs = Atomic<Int>(0)
        let pool = ComputePool(threads: 2)
        var y = [Float](repeating: 0, count: 1)
        data.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                data.withUnsafeBytes { wb in
                    let w = WeightMatrix(type: .f32, rows: 1, cols: 64, data: wb.baseAddress!)
                    matmul(w, xb.baseAddress!, tokens: 0, yb.baseAddress!, pool: pool,
                           alongside: SideWork(count: 3) { _ in runs.add(1, ordering: .relaxed) })
                }
                q8.withUnsafeBytes { wb in
                    let w = WeightMatrix(type: .q8_0, rows: 1, cols: 64, data: wb.baseAddress!)
                    matmulQ8(w, xb.baseAddress!, tokens: 0, yb.baseAddress!, pool: pool,
                             alongside: SideWork(count: 2) { _ in runs.add(1, ordering: .relaxed) })
                }
            }
        }
        #expect(runs.load(ordering: .relaxed) == 5)
    }
}

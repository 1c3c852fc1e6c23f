// The forward pass's copy of an adapter (LoRAKernelWeights): f16 when every value of a module is an
// f16, bf16 when every value is a bf16, f32 otherwise, Bᵀ tiled, and never a changed value. And the
// driver (`loraApply`) that runs many adapters' jobs on one projection: parallel over jobs and chunks
// of rows, serial over stacked jobs, DoRA factors applied, against the double-precision reference.

import Testing
@testable import Kernels

@Suite struct LoRAKernelWeightsTests {
    static func module(rank: Int = 3, inDim: Int = 10, outDim: Int = 13, seed: UInt64 = 7, scale: Float = 1,
                       dora: Bool = false, _ transform: (Float) -> Float = { $0 }) -> LoRAKernelWeights.Module {
        var rng = SplitMix64(seed: seed)
        let a = (0..<(rank * inDim)).map { _ in transform(rng.nextUnitFloat() - 0.5) }
        let b = (0..<(outDim * rank)).map { _ in transform(rng.nextUnitFloat() - 0.5) }
        let d = dora ? (0..<outDim).map { _ in 0.5 + rng.nextUnitFloat() } : nil
        return LoRAKernelWeights.Module(rank: rank, inDim: inDim, outDim: outDim, a: a, b: b, scale: scale, dora: d)
    }

    @Test func picksTheNarrowestExactTypeAndChangesNoValue() {
        let f16 = Self.module { f16ToF32(f32ToF16($0)) }
        // bf16 values scaled by 2^-20 keep 8 significant bits at magnitudes where f16's subnormal
        // spacing (2^-24) is too coarse for them: bf16 it must be.
        let bf16 = Self.module { Float(bitPattern: $0.bitPattern & 0xffff_0000) * 0x1p-20 }
        let f32 = Self.module { $0 + 1e-7 }
        let w = LoRAKernelWeights(slotCount: 8, modules: [(5, f32), (0, f16), (2, bf16)])
        #expect(w.element(slot: 0) == .f16)
        #expect(w.element(slot: 2) == .bf16)
        #expect(w.element(slot: 5) == .f32)
        #expect(w.element(slot: 1) == nil && w.decoded(slot: 1) == nil)
        for (slot, m) in [(0, f16), (2, bf16), (5, f32)] {
            let (a, bt) = w.decoded(slot: slot)!
            #expect(a == m.a, "slot \(slot): A changed")
            for o in 0..<m.outDim {
                for k in 0..<m.rank { #expect(bt[k * m.outDim + o] == m.b[o * m.rank + k], "slot \(slot): B changed") }
            }
        }
    }

    /// y += Σ over jobs of the module's term on the job's rows (DoRA: y = dora ⊙ (y + term)), serially
    /// in double precision from the unpacked values.
    static func reference(_ w: [LoRAKernelWeights.Module], _ jobs: [(module: Int, rows: [Int32], scales: [Float])],
                          x: [Float], y: inout [Float], inDim: Int, outDim: Int) {
        for job in jobs {
            let m = w[job.module]
            for (row, s) in zip(job.rows, job.scales) {
                let r = Int(row)
                var t = [Double](repeating: 0, count: m.rank)
                for k in 0..<m.rank {
                    for i in 0..<inDim { t[k] += Double(m.a[k * inDim + i]) * Double(x[r * inDim + i]) }
                }
                for o in 0..<outDim {
                    var acc = Double(y[r * outDim + o])
                    for k in 0..<m.rank { acc += Double(m.scale) * Double(s) * t[k] * Double(m.b[o * m.rank + k]) }
                    y[r * outDim + o] = Float(acc * Double(m.dora?[o] ?? 1))
                }
            }
        }
    }

    @Test(arguments: [true, false], KernelPath.allCases)
    func applyMatchesReference(_ disjoint: Bool, _ path: KernelPath) {
        let inDim = 37, outDim = 21, n = 40
        // Four adapters of different ranks; one DoRA (alone on its rows, as the model requires).
        let modules = [Self.module(rank: 8, inDim: inDim, outDim: outDim, seed: 1, scale: 2),
                       Self.module(rank: 3, inDim: inDim, outDim: outDim, seed: 2, scale: 0.5),
                       Self.module(rank: 16, inDim: inDim, outDim: outDim, seed: 3),
                       Self.module(rank: 4, inDim: inDim, outDim: outDim, seed: 4, dora: true)]
        let weights = modules.map { LoRAKernelWeights(slotCount: 1, modules: [(0, $0)]) }
        // Disjoint: rows split among the adapters, one job longer than a chunk of 8 rows. Stacked:
        // rows 0..<20 carry both adapter 0 and adapter 1, in that order.
        typealias Job = (module: Int, rows: [Int32], scales: [Float])
        let ramp: [Float] = (0..<19).map { Float($0) / 10 - 1 }
        let disjointPlan: [Job] = [(0, Array(0..<19), ramp), (1, [25, 19, 30], [1, -2, 0.25]),
                                   (2, Array((31..<40).reversed()), [Float](repeating: 1.5, count: 9)),
                                   (3, [20, 21, 22, 23, 24], [Float](repeating: 1, count: 5))]
        let stackedPlan: [Job] = [(0, Array(0..<20), [Float](repeating: 1, count: 20)),
                                  (1, Array(0..<20), [Float](repeating: -0.5, count: 20)),
                                  (2, Array(20..<40), [Float](repeating: 0.75, count: 20))]
        let plan = disjoint ? disjointPlan : stackedPlan
        var rng = SplitMix64(seed: 99)
        let x = (0..<(n * inDim)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let y0 = (0..<(n * outDim)).map { _ in rng.nextUnitFloat() - 0.5 }
        var want = y0
        Self.reference(modules, plan, x: x, y: &want, inDim: inDim, outDim: outDim)
        var got = y0
        let rows = plan.map { $0.rows }, scales = plan.map { $0.scales }
        let pool = ComputePool(threads: 2)
        func withJobs(_ i: Int, _ jobs: [LoRAJob], _ body: ([LoRAJob]) -> Void) {
            guard i < plan.count else { return body(jobs) }
            rows[i].withUnsafeBufferPointer { rb in
                scales[i].withUnsafeBufferPointer { sb in
                    let job = weights[plan[i].module].job(slot: 0, rows: rb.baseAddress!, scales: sb.baseAddress!,
                                                          count: rb.count)!
                    withJobs(i + 1, jobs + [job], body)
                }
            }
        }
        withJobs(0, []) { jobs in
            x.withUnsafeBufferPointer { xb in
                got.withUnsafeMutableBufferPointer { yb in
                    loraApply(jobs, disjoint: disjoint, x: xb.baseAddress!, xs: inDim, y: yb.baseAddress!, ys: outDim,
                              pool: pool, path: path)
                }
            }
        }
        // Tolerance: f32 sums of at most 37 + 16 products of O(1) values against a double reference,
        // a few ulps of O(10) partial sums: 1e-4 relative is far above that and far below any wrong term.
        for i in 0..<(n * outDim) {
            #expect(abs(got[i] - want[i]) <= 1e-4 * max(1, abs(want[i])), "disjoint \(disjoint) \(path) at \(i)")
        }
    }

    @Test func noJobForAMissingModuleOrNoRows() {
        let w = LoRAKernelWeights(slotCount: 4, modules: [(1, Self.module())])
        let rows: [Int32] = [0], scales: [Float] = [1]
        rows.withUnsafeBufferPointer { rb in
            scales.withUnsafeBufferPointer { sb in
                #expect(w.job(slot: 0, rows: rb.baseAddress!, scales: sb.baseAddress!, count: 1) == nil)
                #expect(w.job(slot: 1, rows: rb.baseAddress!, scales: sb.baseAddress!, count: 0) == nil)
                #expect(w.job(slot: 1, rows: rb.baseAddress!, scales: sb.baseAddress!, count: 1) != nil)
            }
        }
    }
}

// The attention kernel (both compiled paths) against its double-precision reference: odd position counts
// (1, 3, 17, 250: the 4-key and 8-lane loops' tails), head_dim 64 (SmolLM2) and 40 (a multiple of 8 that is
// not a whole 64-column strip) plus 20 (not a multiple of 8: the AVX2 entry falls back to portable), one to
// four heads per KV head (the kernel blocks three at a time), K and V as one head of wider rows, and the
// f16 rounding of llama.cpp numerics.

import Testing
import Kernels

@Suite struct AttentionKernelTests {
    struct Case {
        let heads: Int, n: Int, headDim: Int, kvHeads: Int
    }

    static let cases: [Case] = [1, 3, 17, 250].flatMap { n in
        [Case(heads: 1, n: n, headDim: 64, kvHeads: 3), Case(heads: 3, n: n, headDim: 64, kvHeads: 3),
         Case(heads: 4, n: n, headDim: 40, kvHeads: 2), Case(heads: 2, n: n, headDim: 20, kvHeads: 1)]
    }

    /// Runs the kernel and the reference on one random case; returns (kernel, reference).
    static func run(_ c: Case, path: KernelPath, roundToF16: Bool, seed: UInt64) -> ([Float], [Float]) {
        var rng = SplitMix64(seed: seed)
        let kvStride = c.kvHeads * c.headDim, kvHead = c.kvHeads - 1  // the last head: offset rows
        // Scores of a few units, so the softmax is neither flat nor one-hot.
        let q = (0..<(c.heads * c.headDim)).map { _ in (rng.nextUnitFloat() * 2 - 1) * 1.5 }
        let k = (0..<(c.n * kvStride)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let v = (0..<(c.n * kvStride)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let scale = 1 / Float(c.headDim).squareRoot()
        var got = [Float](repeating: .nan, count: c.heads * c.headDim), want = got
        var scratch = [Float](repeating: .nan, count: attentionScratchCount(heads: c.heads, count: c.n, headDim: c.headDim))
        q.withUnsafeBufferPointer { qb in
            k.withUnsafeBufferPointer { kb in
                v.withUnsafeBufferPointer { vb in
                    let kp = kb.baseAddress! + kvHead * c.headDim, vp = vb.baseAddress! + kvHead * c.headDim
                    scratch.withUnsafeMutableBufferPointer { sb in
                        got.withUnsafeMutableBufferPointer { ob in
                            attention(q: qb.baseAddress!, heads: c.heads, keys: kp, values: vp, kvStride: kvStride,
                                      count: c.n, headDim: c.headDim, scale: scale, roundToF16: roundToF16,
                                      scratch: sb.baseAddress!, out: ob.baseAddress!, path: path)
                        }
                    }
                    want.withUnsafeMutableBufferPointer { ob in
                        attentionReference(q: qb.baseAddress!, heads: c.heads, keys: kp, values: vp, kvStride: kvStride,
                                           count: c.n, headDim: c.headDim, scale: scale, roundToF16: roundToF16,
                                           out: ob.baseAddress!)
                    }
                }
            }
        }
        return (got, want)
    }

    /// f32 tolerance (|v| ≤ 1, so |out| ≤ 1): each weight carries a relative error of a few f32 ulps (the
    /// f32 dot of 64 products with |score| of a few units, ≤ 2 ulp from the vector exp, the f32 sum of
    /// the exps), ~1e-6 in all; the output is then a sum of n f32 products whose rounding is bounded by
    /// n · 2⁻²⁴ relative. So 4e-6 + n · 6e-8 (1.9e-5 at n = 250); observed errors are ~1e-7.
    static func f32Tolerance(_ n: Int) -> Float { 4e-6 + Float(n) * 6e-8 }

    @Test(arguments: KernelPath.allCases)
    func matchesReference(_ path: KernelPath) {
        for (i, c) in Self.cases.enumerated() {
            let (got, want) = Self.run(c, path: path, roundToF16: false, seed: UInt64(100 + i))
            let err = zip(got, want).map { abs($0 - $1) }.max()!
            #expect(err <= Self.f32Tolerance(c.n), "\(path) heads \(c.heads) n \(c.n) headDim \(c.headDim): error \(err)")
        }
    }

    /// With f16 rounding q is rounded identically by kernel and reference, but a weight p can round to
    /// the neighbouring f16 when the f32 and double p straddle a rounding midpoint: one f16 ulp, at most
    /// 2⁻¹¹ · p ≤ 4.9e-4 (|v| ≤ 1) for that weight. Such flips are rare (the window is ~1e-6 relative of
    /// a 2⁻¹¹ spacing), so the bound allows one flip of the largest weight on top of the f32 tolerance.
    @Test(arguments: KernelPath.allCases)
    func matchesReferenceWithF16Rounding(_ path: KernelPath) {
        for (i, c) in Self.cases.enumerated() {
            let (got, want) = Self.run(c, path: path, roundToF16: true, seed: UInt64(200 + i))
            let err = zip(got, want).map { abs($0 - $1) }.max()!
            #expect(err <= Self.f32Tolerance(c.n) + 4.9e-4, "\(path) heads \(c.heads) n \(c.n) headDim \(c.headDim): error \(err)")
        }
    }

    /// The rounding flag does something: f16 and f32 results differ by far more than the f32 tolerance
    /// (q rounded to 11 significant bits moves the scores by ~1e-3 relative).
    @Test(arguments: KernelPath.allCases)
    func f16RoundingChangesTheResult(_ path: KernelPath) {
        let c = Case(heads: 3, n: 17, headDim: 64, kvHeads: 3)
        let (f32, _) = Self.run(c, path: path, roundToF16: false, seed: 7)
        let (f16, _) = Self.run(c, path: path, roundToF16: true, seed: 7)
        let diff = zip(f32, f16).map { abs($0 - $1) }.max()!
        #expect(diff > 10 * Self.f32Tolerance(c.n))
    }

    /// One position: the weight is exactly 1, so the output is exactly that position's V row.
    @Test(arguments: KernelPath.allCases)
    func onePositionCopiesV(_ path: KernelPath) {
        let c = Case(heads: 3, n: 1, headDim: 64, kvHeads: 3)
        let (got, want) = Self.run(c, path: path, roundToF16: false, seed: 9)
        #expect(got == want)
    }

    /// No positions: zeros, not NaN from 0/0.
    @Test(arguments: KernelPath.allCases)
    func noPositionsGiveZeros(_ path: KernelPath) {
        var out = [Float](repeating: .nan, count: 64), scratch = [Float](repeating: 0, count: 64)
        let q = [Float](repeating: 1, count: 64), kv = [Float](repeating: 1, count: 64)
        attention(q: q, heads: 1, keys: kv, values: kv, kvStride: 64, count: 0, headDim: 64, scale: 0.125,
                  scratch: &scratch, out: &out, path: path)
        #expect(out == [Float](repeating: 0, count: 64))
    }
}

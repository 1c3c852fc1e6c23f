// The attention backward kernel (both compiled paths) against its double-precision reference: row
// counts 1, 5, 17 and 130 (the 4-key and 8-lane loops' tails, and a training-length segment), head_dim
// 64 (SmolLM2), 40 (a multiple of 8 under one 64-column strip) and 20 (not a multiple of 8: the AVX2
// entry falls back to portable), one to three query heads per KV head, q and K/V as one head of wider
// rows (strides), and outputs that start as garbage (every one must be overwritten).

import Testing
import Kernels

@Suite struct AttentionBackwardTests {
    struct Case {
        let heads: Int, n: Int, headDim: Int, kvHeads: Int
    }

    static let cases: [Case] = [1, 5, 17, 130].flatMap { n in
        [Case(heads: 3, n: n, headDim: 64, kvHeads: 3), Case(heads: 1, n: n, headDim: 64, kvHeads: 2),
         Case(heads: 2, n: n, headDim: 40, kvHeads: 2), Case(heads: 2, n: n, headDim: 20, kvHeads: 1)]
    }

    /// (kernel, reference) for dq, dk, dv of one random case, on the last KV head of the rows.
    static func run(_ c: Case, path: KernelPath, seed: UInt64) -> (got: [[Float]], want: [[Float]]) {
        var rng = SplitMix64(seed: seed)
        let kvStride = c.kvHeads * c.headDim, qStride = c.kvHeads * c.heads * c.headDim
        let kvOffset = (c.kvHeads - 1) * c.headDim, qOffset = (c.kvHeads - 1) * c.heads * c.headDim
        // Scores of a few units, so the softmax is neither flat nor one-hot.
        let q = (0..<(c.n * qStride)).map { _ in (rng.nextUnitFloat() * 2 - 1) * 1.5 }
        let dOut = (0..<(c.n * qStride)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let k = (0..<(c.n * kvStride)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let v = (0..<(c.n * kvStride)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let scale = 1 / Float(c.headDim).squareRoot()
        var out: [[[Float]]] = []
        for reference in [false, true] {
            var dq = [Float](repeating: 7, count: c.n * qStride)
            var dk = [Float](repeating: 7, count: c.n * kvStride), dv = dk
            var scratch = [Float](repeating: .nan, count: attentionBackwardScratchCount(count: c.n, headDim: c.headDim))
            q.withUnsafeBufferPointer { qb in
            dOut.withUnsafeBufferPointer { ob in
            k.withUnsafeBufferPointer { kb in
            v.withUnsafeBufferPointer { vb in
            dq.withUnsafeMutableBufferPointer { dqb in
            dk.withUnsafeMutableBufferPointer { dkb in
            dv.withUnsafeMutableBufferPointer { dvb in
            scratch.withUnsafeMutableBufferPointer { sb in
                let qp = qb.baseAddress! + qOffset, op = ob.baseAddress! + qOffset
                let kp = kb.baseAddress! + kvOffset, vp = vb.baseAddress! + kvOffset
                if reference {
                    attentionBackwardReference(q: qp, dOut: op, qStride: qStride, heads: c.heads, keys: kp, values: vp,
                                               kvStride: kvStride, count: c.n, headDim: c.headDim, scale: scale,
                                               dq: dqb.baseAddress! + qOffset, dk: dkb.baseAddress! + kvOffset,
                                               dv: dvb.baseAddress! + kvOffset)
                } else {
                    attentionBackward(q: qp, dOut: op, qStride: qStride, heads: c.heads, keys: kp, values: vp,
                                      kvStride: kvStride, count: c.n, headDim: c.headDim, scale: scale,
                                      scratch: sb.baseAddress!, dq: dqb.baseAddress! + qOffset,
                                      dk: dkb.baseAddress! + kvOffset, dv: dvb.baseAddress! + kvOffset, path: path)
                }
            }
            }
            }
            }
            }
            }
            }
            }
            out.append([dq, dk, dv])
        }
        return (out[0], out[1])
    }

    /// |q| ≤ 1.5, |k|, |v|, |do| ≤ 1: dv_j sums up to heads·n products p·do, dq and dk sums of n terms
    /// ds·k with |ds| ≤ 2·|dp|. Each f32 weight and dot carries a few ulps (≤ 2 ulp from the vector exp),
    /// each f32 sum of n terms up to n·2⁻²⁴ relative of its magnitude; so 2e-6·(1 + n/16) absolute
    /// (1.8e-5 at n = 130); observed: a quarter of it at worst.
    static func tolerance(_ n: Int) -> Float { 2e-6 * (1 + Float(n) / 16) }

    @Test(arguments: KernelPath.allCases)
    func matchesReference(_ path: KernelPath) {
        var worst: Float = 0
        for (i, c) in Self.cases.enumerated() {
            let (got, want) = Self.run(c, path: path, seed: UInt64(100 + i))
            for (name, g, w) in zip3(["dq", "dk", "dv"], got, want) {
                let err = zip(g, w).map { abs($0 - $1) }.max() ?? 0
                worst = max(worst, err / Self.tolerance(c.n))
                #expect(err <= Self.tolerance(c.n), "\(path) \(c) \(name): max error \(err)")
            }
        }
        print("attention backward \(path): worst error \(worst) of tolerance")
    }

    /// The gradient against a finite difference of the forward kernel itself (an independent check of
    /// the reference's formulas): d(Σ do·o)/d q for one element, in the f32 forward with a step that
    /// keeps rounding noise (~1e-7/h) far below the 2% bound.
    @Test func referenceMatchesAFiniteDifferenceOfTheForwardKernel() {
        let c = Case(heads: 2, n: 9, headDim: 16, kvHeads: 1)
        var rng = SplitMix64(seed: 5)
        let stride = c.heads * c.headDim
        let q = (0..<(c.n * stride)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let dOut = (0..<(c.n * stride)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let k = (0..<(c.n * c.headDim)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let v = (0..<(c.n * c.headDim)).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let scale: Float = 0.25
        /// Σ_i do_i · o_i with row i attending to rows 0...i.
        func objective(_ q: [Float], _ k: [Float], _ v: [Float]) -> Double {
            var total = 0.0
            for i in 0..<c.n {
                var o = [Float](repeating: 0, count: stride)
                q.withUnsafeBufferPointer { qb in
                    attentionReference(q: qb.baseAddress! + i * stride, heads: c.heads, keys: k, values: v, kvStride: c.headDim,
                                       count: i + 1, headDim: c.headDim, scale: scale, out: &o)
                }
                for j in 0..<stride { total += Double(o[j]) * Double(dOut[i * stride + j]) }
            }
            return total
        }
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
        attentionBackwardReference(q: q, dOut: dOut, qStride: stride, heads: c.heads, keys: k, values: v, kvStride: c.headDim,
                                   count: c.n, headDim: c.headDim, scale: scale, dq: &dq, dk: &dk, dv: &dv)
        let h: Float = 1e-2
        for index in [stride * 4 + 3, stride * 8 + c.headDim + 5] {
            var plus = q, minus = q
            plus[index] += h
            minus[index] -= h
            let fd = (objective(plus, k, v) - objective(minus, k, v)) / Double(2 * h)
            #expect(abs(Double(dq[index]) - fd) <= 0.02 * abs(fd) + 1e-4, "dq[\(index)] \(dq[index]) vs \(fd)")
        }
        var kPlus = k, kMinus = k, vPlus = v, vMinus = v
        kPlus[2 * c.headDim + 1] += h; kMinus[2 * c.headDim + 1] -= h
        vPlus[3 * c.headDim + 7] += h; vMinus[3 * c.headDim + 7] -= h
        let fdK = (objective(q, kPlus, v) - objective(q, kMinus, v)) / Double(2 * h)
        let fdV = (objective(q, k, vPlus) - objective(q, k, vMinus)) / Double(2 * h)
        #expect(abs(Double(dk[2 * c.headDim + 1]) - fdK) <= 0.02 * abs(fdK) + 1e-4, "dk \(dk[2 * c.headDim + 1]) vs \(fdK)")
        #expect(abs(Double(dv[3 * c.headDim + 7]) - fdV) <= 0.02 * abs(fdV) + 1e-4, "dv \(dv[3 * c.headDim + 7]) vs \(fdV)")
    }
}

private func zip3<A, B, C>(_ a: [A], _ b: [B], _ c: [C]) -> [(A, B, C)] {
    (0..<min(a.count, b.count, c.count)).map { (a[$0], b[$0], c[$0]) }
}

// The LoRA-rows kernel (both compiled paths, all three element types) against its double-precision
// reference, on random shapes that are not multiples of the vector width, ranks above the kernel's
// 64-rank chunk, rows in any order and repeated scales.

import Testing
import Kernels

@Suite struct LoRAKernelTests {
    static let shapes: [(rank: Int, inDim: Int, outDim: Int)] = [(1, 1, 1), (8, 576, 192), (4, 37, 21), (70, 129, 65), (16, 8, 1536)]

    @Test(arguments: [LoRAElement.f32, .f16, .bf16], KernelPath.allCases)
    func matchesReference(_ element: LoRAElement, _ path: KernelPath) {
        var rng = SplitMix64(seed: 42)
        for (rank, inDim, outDim) in Self.shapes {
            let n = 5
            let x = (0..<(n * inDim)).map { _ in rng.nextUnitFloat() * 2 - 1 }
            let y0 = (0..<(n * outDim)).map { _ in rng.nextUnitFloat() - 0.5 }
            let aF = (0..<(rank * inDim)).map { _ in rng.nextUnitFloat() * 0.2 - 0.1 }
            let bF = (0..<(rank * outDim)).map { _ in rng.nextUnitFloat() * 0.2 - 0.1 }
            let rows: [Int32] = [3, 0, 4]
            let scales: [Float] = [1.5, -0.25, 2]
            func bytes(_ v: [Float]) -> [UInt8] {
                switch element {
                case .f32: return v.withUnsafeBytes { Array($0) }
                case .f16: return v.map { f32ToF16($0) }.withUnsafeBytes { Array($0) }
                case .bf16: return v.map { UInt16($0.bitPattern >> 16) }.withUnsafeBytes { Array($0) }
                }
            }
            // The kernel reads Bᵀ tiled by 8 output columns; the reference reads it plain.
            let a = bytes(aF), bt = bytes(loraTiledBT(bF, rank: rank, outDim: outDim)), btPlain = bytes(bF)
            var got = y0, want = y0
            a.withUnsafeBytes { ab in
                bt.withUnsafeBytes { bb in
                    x.withUnsafeBufferPointer { xb in
                        rows.withUnsafeBufferPointer { rb in
                            scales.withUnsafeBufferPointer { sb in
                                got.withUnsafeMutableBufferPointer { yb in
                                    loraRows(element: element, a: ab.baseAddress!, bt: bb.baseAddress!, rank: rank, inDim: inDim,
                                             outDim: outDim, x: xb.baseAddress!, rows: rb.baseAddress!, scales: sb.baseAddress!,
                                             scale: 0.75, count: rows.count, y: yb.baseAddress!, path: path)
                                }
                            }
                        }
                        want.withUnsafeMutableBufferPointer { yb in
                            btPlain.withUnsafeBytes { pb in
                                loraRowsReference(element: element, a: ab.baseAddress!, bt: pb.baseAddress!, rank: rank,
                                                  inDim: inDim, outDim: outDim, x: xb.baseAddress!, rows: rows, scales: scales,
                                                  scale: 0.75, y: yb.baseAddress!)
                            }
                        }
                    }
                }
            }
            // Tolerance: f32 accumulation of at most 129 + 70 products of magnitude <= 0.2 against a double
            // reference: a few ulps of the partial sums, far below 1e-4 (the values are O(1)).
            for i in 0..<(n * outDim) {
                #expect(abs(got[i] - want[i]) <= 1e-4 * max(1, abs(want[i])), "\(element) \(path) shape \(rank)x\(inDim)x\(outDim) at \(i)")
            }
            // Rows not listed are untouched.
            for o in 0..<outDim {
                #expect(got[1 * outDim + o] == y0[1 * outDim + o])
                #expect(got[2 * outDim + o] == y0[2 * outDim + o])
            }
        }
    }
}

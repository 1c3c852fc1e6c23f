// Q4_1 matrices repacked 8 rows at a time for the Q8-activation kernels (layout and why in
// Sources/CKernels/kernels_q4x8.c). A WeightMatrix that carries one (`WeightMatrix.repacked`) runs its
// Q8 products and its dequantize + sgemm tiles from the copy; f32 fused products and `decodeRow`
// still read the stored rows, so nothing else changes.

internal import CKernels

/// An owned, immutable copy of a Q4_1 matrix in the 8-row interleaved layout.
public final class RepackedQ4_1: @unchecked Sendable {
    // @unchecked: the bytes are written once in init and only read afterwards; deinit frees them when
    // no WeightMatrix refers to the copy any more.
    public let rows: Int
    public let cols: Int
    let bytes: UnsafeMutableRawPointer
    public let byteCount: Int

    /// Repacks `w`, which must be Q4_1.
    public init(_ w: WeightMatrix) {
        precondition(w.type == .q4_1, "RepackedQ4_1 takes Q4_1 matrices, not \(w.type)")
        rows = w.rows
        cols = w.cols
        byteCount = Int(lorad_q4_1x8_bytes(Int64(w.rows), Int64(w.cols)))
        bytes = .allocate(byteCount: max(byteCount, 1), alignment: 64)
        lorad_q4_1x8_repack(w.data, Int64(w.rowBytes), Int64(w.rows), Int64(w.cols), bytes)
    }

    deinit { bytes.deallocate() }

    /// Groups of 8 rows (the last one may be partial).
    var groups: Int { (rows + 7) / 8 }

    /// Decodes rows r0..<r1 into `dst` (row-major), bit-identical to decoding the stored rows.
    func dequantize(rows r0: Int, _ r1: Int, into dst: UnsafeMutablePointer<Float>) {
        lorad_q4_1x8_dequantize(bytes, Int64(cols), Int64(rows), Int64(r0), Int64(r1), dst)
    }
}

extension WeightMatrix {
    /// This matrix with a repacked copy for the Q8 kernels, if its type has one (Q4_1); else itself.
    public func withRepackedCopy() -> WeightMatrix {
        guard type == .q4_1, rows > 0 else { return self }
        var w = self
        w.repacked = RepackedQ4_1(self)
        return w
    }
}

/// Y[t][r] = W[r] · Q8_1(X[t]) from the repacked copy: the driver for lorad_*_matmul_q8_q4_1x8.
func matmulQ8Repacked(_ p: RepackedQ4_1, _ x: UnsafePointer<Float>, tokens: Int, _ y: UnsafeMutablePointer<Float>,
                      ys: Int, pool: ComputePool?, path: KernelPath) {
    let nb = p.cols / 32
    let qa = UnsafeMutablePointer<lorad_q8_block>.allocate(capacity: tokens * nb)
    defer { qa.deallocate() }
    for t in 0..<tokens {
        if path == .avx2 {
            lorad_avx2_quantize_q8(x + t * p.cols, Int64(p.cols), qa + t * nb)
        } else {
            lorad_portable_quantize_q8(x + t * p.cols, Int64(p.cols), qa + t * nb)
        }
    }
    // Tiles of whole groups, about 4 per thread (see fusedTileRows).
    let tile = max(1, fusedTileRows(rows: p.rows, threads: pool?.threadCount ?? 1) / 8)
    let tiles = (p.groups + tile - 1) / tile
    let a = UnsafePointer(qa)
    let cols = Int64(p.cols), rows = Int64(p.rows), T = Int64(tokens), ys64 = Int64(ys)
    forEachTile(tiles, pool: pool) { i, _ in
        let g0 = Int64(i * tile), g1 = Int64(min(p.groups, i * tile + tile))
        if path == .avx2 {
            _ = lorad_avx2_matmul_q8_q4_1x8(p.bytes, cols, rows, g0, g1, a, T, y, ys64)
        } else {
            _ = lorad_portable_matmul_q8_q4_1x8(p.bytes, cols, rows, g0, g1, a, T, y, ys64)
        }
    }
}

// Q4_1 and Q8_0 matrices repacked 8 rows at a time for the Q8-activation kernels (layouts and why in
// Sources/CKernels/kernels_q4x8.c). A WeightMatrix that carries one (`WeightMatrix.repacked`) runs its
// Q8 products and its dequantize + sgemm tiles from the copy; f32 fused products and `decodeRow`
// still read the stored rows, so nothing else changes.

internal import CKernels

/// An owned, immutable copy of a Q4_1 or Q8_0 matrix in the 8-row interleaved layout.
public final class RepackedWeights: @unchecked Sendable {
    // @unchecked: the bytes are written once in init and only read afterwards; deinit frees them when
    // no WeightMatrix refers to the copy any more.
    public let type: TensorType
    public let rows: Int
    public let cols: Int
    let bytes: UnsafeMutableRawPointer
    public let byteCount: Int

    /// The types that have a repacked layout.
    public static func supports(_ type: TensorType) -> Bool { type == .q4_1 || type == .q8_0 }

    /// Repacks `w`, whose type must be `supports`ed.
    public init(_ w: WeightMatrix) {
        precondition(Self.supports(w.type), "RepackedWeights takes Q4_1 or Q8_0 matrices, not \(w.type)")
        type = w.type
        rows = w.rows
        cols = w.cols
        let r = Int64(w.rows), c = Int64(w.cols)
        byteCount = Int(w.type == .q4_1 ? lorad_q4_1x8_bytes(r, c) : lorad_q8_0x8_bytes(r, c))
        bytes = .allocate(byteCount: max(byteCount, 1), alignment: 64)
        if w.type == .q4_1 {
            lorad_q4_1x8_repack(w.data, Int64(w.rowBytes), r, c, bytes)
        } else {
            lorad_q8_0x8_repack(w.data, Int64(w.rowBytes), r, c, bytes)
        }
    }

    deinit { bytes.deallocate() }

    /// Decodes rows r0..<r1 into `dst` (row-major), bit-identical to decoding the stored rows.
    func dequantize(rows r0: Int, _ r1: Int, into dst: UnsafeMutablePointer<Float>) {
        if type == .q4_1 {
            lorad_q4_1x8_dequantize(bytes, Int64(cols), Int64(rows), Int64(r0), Int64(r1), dst)
        } else {
            lorad_q8_0x8_dequantize(bytes, Int64(cols), Int64(rows), Int64(r0), Int64(r1), dst)
        }
    }
}

extension WeightMatrix {
    /// This matrix with a repacked copy for the Q8 kernels, if its type has one (Q4_1, Q8_0); else itself.
    public func withRepackedCopy() -> WeightMatrix {
        guard RepackedWeights.supports(type), rows > 0 else { return self }
        var w = self
        w.repacked = RepackedWeights(self)
        return w
    }
}

/// Y[t][r] = W[r] · Q8(X[t]) from the repacked copy: the driver for lorad_*_matmul_q8_{q4_1,q8_0}x8.
func matmulQ8Repacked(_ p: RepackedWeights, _ x: UnsafePointer<Float>, tokens: Int, _ y: UnsafeMutablePointer<Float>,
                      ys: Int, pool: ComputePool?, path: KernelPath, side: SideWork? = nil) {
    let cols = Int64(p.cols), rows = Int64(p.rows), T = Int64(tokens), ys64 = Int64(ys)
    let kernel = switch (p.type, path) {
    case (.q4_1, .avx2): lorad_avx2_matmul_q8_q4_1x8
    case (.q4_1, _): lorad_portable_matmul_q8_q4_1x8
    case (_, .avx2): lorad_avx2_matmul_q8_q8_0x8
    default: lorad_portable_matmul_q8_q8_0x8
    }
    // Tiles of whole groups of 8 rows.
    quantizedTiles(rows: p.rows, cols: p.cols, x, tokens: tokens, pool: pool, side: side, rowAlign: 8,
                   quantize: path == .avx2 ? lorad_avx2_quantize_q8 : lorad_portable_quantize_q8) { r0, r1, a in
        _ = kernel(p.bytes, cols, rows, Int64(r0 / 8), Int64((r1 + 7) / 8), a, T, y, ys64)
    }
}

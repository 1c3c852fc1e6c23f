// Q4_1 and Q8_0 matrices repacked 8 rows at a time for the Q8-activation kernels (layouts and why in
// Sources/CKernels/kernels_q4x8.c). A WeightMatrix that carries one (`WeightMatrix.repacked`, given by
// `ProductPlan.prepare`) runs its Q8 products and its dequantize + sgemm tiles from the copy
// (ProductPlan.swift decides; the Q8 driver is in MatMulQ8.swift); f32 fused products and `decodeRow`
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

// The thin singular value decomposition of a dense row-major matrix in double, through LAPACK's
// dgesdd (which libopenblas carries), so callers outside Kernels never see OpenBLAS. The trainer's
// PiSSA initialisation needs the top singular vectors of full projection matrices (up to 1536 × 576
// on SmolLM2), far beyond what LoRA's small Jacobi SVD (LoRASVD.swift) is meant for.

internal import COpenBLAS

public struct ThinSVD: Sendable {
    /// k = min(rows, cols).
    public let rank: Int
    /// Singular values, descending (k).
    public let values: [Double]
    /// Left singular vectors as the columns of a rows × k row-major matrix.
    public let left: [Double]
    /// Right singular vectors as the rows of a k × cols row-major matrix.
    public let rightTransposed: [Double]
}

public enum SVDError: Error, Sendable, Equatable {
    /// LAPACK's dgesdd returned info ≠ 0 (negative: a bad argument; positive: no convergence).
    case lapack(info: Int)
}

/// M = U·diag(S)·Vᵀ for the row-major `rows` × `cols` matrix `m`.
public func thinSVD(_ m: [Double], rows: Int, cols: Int) throws(SVDError) -> ThinSVD {
    precondition(rows > 0 && cols > 0 && m.count == rows * cols, "thinSVD: the matrix needs rows × cols values")
    _ = ComputePool.singleThreadBLAS  // one thread: the same bits on every run
    // Row-major M is column-major Mᵀ (cols × rows). LAPACK factors Mᵀ = U'·S·V'ᵀ, so M = V'·S·U'ᵀ:
    // M's left vectors are the rows of V'ᵀ and its right vectors the columns of U'.
    var a = m
    var lm = Int32(cols), ln = Int32(rows)
    let k = min(rows, cols)
    var s = [Double](repeating: 0, count: k)
    var u = [Double](repeating: 0, count: cols * k)   // U': cols × k, column-major
    var vt = [Double](repeating: 0, count: k * rows)  // V'ᵀ: k × rows, column-major
    var lda = lm, ldu = lm, ldvt = Int32(k)
    var iwork = [Int32](repeating: 0, count: 8 * k)
    var info: Int32 = 0
    var jobz = CChar(UInt8(ascii: "S"))
    var query = 0.0, lwork: Int32 = -1
    dgesdd_(&jobz, &lm, &ln, &a, &lda, &s, &u, &ldu, &vt, &ldvt, &query, &lwork, &iwork, &info, 1)
    guard info == 0 else { throw .lapack(info: Int(info)) }
    lwork = Int32(query)
    var work = [Double](repeating: 0, count: max(1, Int(lwork)))
    dgesdd_(&jobz, &lm, &ln, &a, &lda, &s, &u, &ldu, &vt, &ldvt, &work, &lwork, &iwork, &info, 1)
    guard info == 0 else { throw .lapack(info: Int(info)) }
    // Left: M's row r, component i = V'ᵀ[i, r] = vt[i + r·k]; right: component i, column c = U'[c, i] = u[c + i·cols].
    var left = [Double](repeating: 0, count: rows * k)
    for r in 0..<rows { for i in 0..<k { left[r * k + i] = vt[i + r * k] } }
    return ThinSVD(rank: k, values: s, left: left, rightTransposed: u)
}

// The leading singular triplets of a dense row-major matrix in double, through LAPACK (which
// libopenblas carries), so callers outside Kernels never see OpenBLAS. The trainer's PiSSA
// initialisation needs the top r (a few to tens) of full projection matrices (up to 1536 × 576 on
// SmolLM2, 210 of them for rank 8 on every projection), far beyond LoRA's small Jacobi SVD
// (LoRASVD.swift). A full SVD (dgesdd) of each made a 1-step `lorad train --new --init pissa --rank 8
// --targets all` on SmolLM2 take 112 s against 6.4 s with --init lora (2 Zen 5 vCPUs shared with other
// builds, load ~9); instead the Gram matrix of the smaller side (G = MᵀM or M·Mᵀ, dgemm) gives its
// top r eigenpairs alone (dsyevr), σ_i = √λ_i, and the other side's vectors follow as M·v_i/σ_i (or
// Mᵀ·u_i/σ_i): 36 s on the same machine and load, with the same losses. Squaring the matrix costs accuracy only where λ_i is near the round-off of λ_1 (~1e-16
// relative in double), far below the f32 factors the trainer keeps.

internal import COpenBLAS

public struct SingularTriplets: Sendable {
    /// The number of triplets.
    public let count: Int
    /// Singular values, descending.
    public let values: [Double]
    /// Left singular vectors as the columns of a rows × count row-major matrix.
    public let left: [Double]
    /// Right singular vectors as the rows of a count × cols row-major matrix.
    public let rightTransposed: [Double]
}

public enum SVDError: Error, Sendable, Equatable {
    /// LAPACK's dsyevr returned info ≠ 0 (negative: a bad argument; positive: an internal failure).
    case lapack(info: Int)
}

/// M ≈ U_r·diag(S_r)·V_rᵀ: the `count` largest singular triplets of the row-major `rows` × `cols` matrix.
public func topSingularTriplets(_ m: [Double], rows: Int, cols: Int, count r: Int) throws(SVDError) -> SingularTriplets {
    precondition(rows > 0 && cols > 0 && m.count == rows * cols, "topSingularTriplets: the matrix needs rows × cols values")
    precondition(r >= 1 && r <= min(rows, cols), "topSingularTriplets: 1 ≤ count ≤ min(rows, cols)")
    _ = ComputePool.singleThreadBLAS  // one thread: the same bits on every run
    // Eigenvectors of the smaller side's Gram matrix: right vectors when cols ≤ rows, else left ones.
    let byColumns = cols <= rows
    let n = byColumns ? cols : rows, other = byColumns ? rows : cols
    var gram = [Double](repeating: 0, count: n * n)
    m.withUnsafeBufferPointer { mb in
        if byColumns {  // MᵀM, n = cols
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(n), Int32(n), Int32(rows), 1, mb.baseAddress, Int32(cols),
                        mb.baseAddress, Int32(cols), 0, &gram, Int32(n))
        } else {        // M·Mᵀ, n = rows
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(cols), 1, mb.baseAddress, Int32(cols),
                        mb.baseAddress, Int32(cols), 0, &gram, Int32(n))
        }
    }
    var jobz = CChar(UInt8(ascii: "V")), range = CChar(UInt8(ascii: "I")), uplo = CChar(UInt8(ascii: "U"))
    var nn = Int32(n), lda = Int32(n), ldz = Int32(n)
    var vl = 0.0, vu = 0.0, abstol = 0.0
    var il = Int32(n - r + 1), iu = Int32(n)
    var found: Int32 = 0, info: Int32 = 0
    var w = [Double](repeating: 0, count: n)
    var z = [Double](repeating: 0, count: n * r)  // column j: the eigenvector of w[j], ascending
    var isuppz = [Int32](repeating: 0, count: 2 * r)
    var workQuery = 0.0, iworkQuery: Int32 = 0, lwork: Int32 = -1, liwork: Int32 = -1
    dsyevr_(&jobz, &range, &uplo, &nn, &gram, &lda, &vl, &vu, &il, &iu, &abstol, &found, &w, &z, &ldz, &isuppz,
            &workQuery, &lwork, &iworkQuery, &liwork, &info, 1, 1, 1)
    guard info == 0 else { throw .lapack(info: Int(info)) }
    lwork = Int32(workQuery)
    liwork = iworkQuery
    var work = [Double](repeating: 0, count: max(1, Int(lwork)))
    var iwork = [Int32](repeating: 0, count: max(1, Int(liwork)))
    dsyevr_(&jobz, &range, &uplo, &nn, &gram, &lda, &vl, &vu, &il, &iu, &abstol, &found, &w, &z, &ldz, &isuppz,
            &work, &lwork, &iwork, &liwork, &info, 1, 1, 1)
    guard info == 0, found == Int32(r) else { throw .lapack(info: Int(info == 0 ? -100 : info)) }

    var values = [Double](repeating: 0, count: r)
    var left = [Double](repeating: 0, count: rows * r)
    var right = [Double](repeating: 0, count: r * cols)
    for i in 0..<r {
        let j = r - 1 - i  // descending
        let sigma = max(0, w[j]).squareRoot()
        values[i] = sigma
        // The Gram side's vector, and the other side's as M·v/σ (or Mᵀ·u/σ); zero when σ is.
        var paired = [Double](repeating: 0, count: other)
        for k in 0..<n {
            let e = z[j * n + k]
            if byColumns { right[i * cols + k] = e } else { left[k * r + i] = e }
        }
        if sigma > 0 {
            for o in 0..<other {
                var s = 0.0
                for k in 0..<n { s += (byColumns ? m[o * cols + k] : m[k * cols + o]) * z[j * n + k] }
                paired[o] = s / sigma
            }
        }
        for o in 0..<other {
            if byColumns { left[o * r + i] = paired[o] } else { right[i * cols + o] = paired[o] }
        }
    }
    return SingularTriplets(count: r, values: values, left: left, rightTransposed: right)
}

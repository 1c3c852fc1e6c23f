// A plain f32 matrix product for callers outside Kernels (the trainer's low-rank and attention
// gradients), so OpenBLAS stays behind this module's edge. Row-major, single-threaded OpenBLAS (the
// ComputePool provides the parallelism).

internal import COpenBLAS

/// C (m × n, row stride ldc) = alpha · op(A) · op(B) + beta · C, row-major; op(A) is m × k (A stored k × m
/// when `transA`), op(B) is k × n (B stored n × k when `transB`).
public func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                  _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
                  _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0 else { return }
    _ = ComputePool.singleThreadBLAS
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

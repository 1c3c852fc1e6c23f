// The transposed product on stored (possibly quantized) weights, for backpropagation through a frozen
// base: dX[t][i] (+)= Σ_r dY[t][r] · W[r][i], i.e. dX = dY·W (X = tokens × cols, dY = tokens × rows).
//
// No f32 copy of the matrix is ever made: a thread decodes a tile of weight rows (64 at a time, as the
// forward sgemm path does) into a scratch buffer and accumulates its contribution with one
// `cblas_sgemm`. Tiles of different rows all write every column of dX, so the tiles are cut into a
// fixed number of runs (two per pool thread), each summed in order into its own tokens × cols
// accumulator, and the accumulators are added at the end in run order: the result does not depend on
// which thread ran what, so a training step is reproducible bit for bit. `matmulTransposedReference` is the plain double-precision version the
// tests compare it with.

internal import CKernels
internal import COpenBLAS

/// dX = dY·W (`accumulate`: dX += dY·W) for `tokens` rows: dY is `tokens × w.rows` (row stride
/// `dyStride`, default `w.rows`), dX is `tokens × w.cols`. `w.type` must be computable. Runs on
/// `pool` when given. Deterministic for a given pool size (which sets the summation order).
public func matmulTransposed(_ w: WeightMatrix, _ dy: UnsafePointer<Float>, tokens: Int, dyStride: Int? = nil,
                             _ dx: UnsafeMutablePointer<Float>, accumulate: Bool = false, pool: ComputePool? = nil,
                             kernels: KernelPath = .best) {
    precondition(w.type.isComputable, "matmulTransposed: \(w.type) is not computable; the caller should have checked")
    _ = ComputePool.singleThreadBLAS
    let ys = dyStride ?? w.rows
    let n = tokens * w.cols
    if !accumulate { dx.update(repeating: 0, count: n) }
    guard tokens > 0, w.rows > 0 else { return }
    let type = w.type.computableKernelType
    let path = kernels.usable
    let nthreads = pool?.threadCount ?? 1
    let tile = 64
    let tiles = (w.rows + tile - 1) / tile
    let per = tile * w.cols
    let runs = min(tiles, 2 * nthreads), perRun = (tiles + runs - 1) / runs
    // Per thread a decoded tile; per run after the first a tokens × cols accumulator (run 0 adds into dX).
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: nthreads * per + (runs - 1) * n)
    defer { buffer.deallocate() }
    let accumulators = buffer + nthreads * per
    accumulators.update(repeating: 0, count: (runs - 1) * n)
    let body: (Int, Int) -> Void = { run, thread in
        let acc = run == 0 ? dx : accumulators + (run - 1) * n
        let wf = buffer + thread * per
        // min on both ends: with few tiles the last runs can be empty (5 tiles, 4 runs of 2).
        for i in min(tiles, run * perRun)..<min(tiles, (run + 1) * perRun) {
            let r0 = i * tile, rows = min(w.rows, r0 + tile) - r0
            if let p = w.repacked {
                p.dequantize(rows: r0, r0 + rows, into: wf)
            } else if path == .avx2 {
                _ = lorad_avx2_dequantize(type, w.row(r0), Int64(rows * w.cols), wf)
            } else {
                _ = lorad_portable_dequantize(type, w.row(r0), Int64(rows * w.cols), wf)
            }
            // acc (T × cols) += dY[:, r0 ..< r0+rows] (T × rows, ld ys) · Wf (rows × cols).
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(tokens), Int32(w.cols), Int32(rows),
                        1, dy + r0, Int32(ys), wf, Int32(w.cols), 1, acc, Int32(w.cols))
        }
    }
    if let pool { pool.parallelFor(runs, body) } else { for r in 0..<runs { body(r, 0) } }
    for r in 1..<runs {
        let acc = accumulators + (r - 1) * n
        for j in 0..<n { dx[j] += acc[j] }
    }
}

/// The plain reference for `matmulTransposed`: every output a double-precision sum over the decoded
/// rows (`dequantize`, the Swift decoder). Slow; for tests only.
public func matmulTransposedReference(_ w: WeightMatrix, _ dy: UnsafePointer<Float>, tokens: Int, dyStride: Int? = nil,
                                      _ dx: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
    let ys = dyStride ?? w.rows
    var row = [Float](repeating: 0, count: w.cols)
    var sums = [Double](repeating: 0, count: tokens * w.cols)
    for r in 0..<w.rows {
        row.withUnsafeMutableBufferPointer { w.decodeRow(r, into: $0.baseAddress!) }
        for t in 0..<tokens {
            let g = Double(dy[t * ys + r])
            for i in 0..<w.cols { sums[t * w.cols + i] += g * Double(row[i]) }
        }
    }
    for j in 0..<(tokens * w.cols) { dx[j] = Float(sums[j]) + (accumulate ? dx[j] : 0) }
}

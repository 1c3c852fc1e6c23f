// The transposed product on stored (possibly quantized) weights, for backpropagation through a frozen
// base: dX[t][i] (+)= Σ_r dY[t][r] · W[r][i], i.e. dX = dY·W (X = tokens × cols, dY = tokens × rows).
//
// No f32 copy of the matrix is ever made. The columns of dX are cut into strips of whole quantization
// blocks (at most 128 columns, a multiple of the pool's threads in number); a job owns one strip: it
// decodes that strip of 256 weight rows at a time into a scratch buffer (≤ 160 KB, in L2) and adds
// dY[:, rows]·Wf into its columns of dX with one `cblas_sgemm` (inner dimension 256, so each dX element
// is loaded and stored once per 256 multiply-adds). Every output element is summed over the same
// chunks in the same order whichever thread runs its strip, so a training step is reproducible bit for
// bit, with no per-thread accumulators to add up. A matrix with an 8-row repacked copy (q8 numerics)
// decodes whole rows from it instead (64-row tiles cut into fixed runs, each summed into its own
// accumulator, added in run order). `matmulTransposedReference` is the plain double-precision version
// the tests compare it with.

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
    if !accumulate { dx.update(repeating: 0, count: tokens * w.cols) }
    guard tokens > 0, w.rows > 0 else { return }
    if let p = w.repacked {
        matmulTransposedRepacked(w, p, dy, tokens: tokens, dyStride: ys, dx, pool: pool)
        return
    }
    let type = w.type.computableKernelType
    let path = kernels.usable
    let nthreads = pool?.threadCount ?? 1
    let blockSize = w.type.blockSize, blockBytes = w.type.blockBytes
    let blocks = w.cols / blockSize
    // Strips of whole blocks, at most ~128 columns, their count a multiple of the threads (so the
    // strips share out evenly) where there are enough blocks.
    let maxBlocks = max(1, 128 / blockSize)
    let strips = min(blocks, nthreads * max(1, (blocks + nthreads * maxBlocks - 1) / (nthreads * maxBlocks)))
    let widest = (blocks + strips - 1) / strips * blockSize
    let chunk = 256
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: nthreads * chunk * widest)
    defer { scratch.deallocate() }
    let body: (Int, Int) -> Void = { strip, thread in
        let b0 = strip * blocks / strips, b1 = (strip + 1) * blocks / strips
        let c0 = b0 * blockSize, width = (b1 - b0) * blockSize
        let wf = scratch + thread * chunk * widest
        var r0 = 0
        while r0 < w.rows {
            let rows = min(chunk, w.rows - r0)
            for r in 0..<rows {
                let src = w.row(r0 + r) + b0 * blockBytes
                if path == .avx2 {
                    _ = lorad_avx2_dequantize(type, src, Int64(width), wf + r * width)
                } else {
                    _ = lorad_portable_dequantize(type, src, Int64(width), wf + r * width)
                }
            }
            // dX[:, c0 ..< c0+width] (T × width, ld cols) += dY[:, r0 ..< r0+rows] (T × rows, ld ys) · Wf (rows × width).
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(tokens), Int32(width), Int32(rows),
                        1, dy + r0, Int32(ys), wf, Int32(width), 1, dx + c0, Int32(w.cols))
            r0 += rows
        }
    }
    if let pool { pool.parallelFor(strips, body) } else { for s in 0..<strips { body(s, 0) } }
}

/// dX += dY·W from the 8-row repacked copy, which decodes whole rows: 64-row tiles in a fixed number of
/// runs (two per pool thread), each summed in order into its own tokens × cols accumulator (run 0 into
/// dX), the accumulators added at the end in run order.
private func matmulTransposedRepacked(_ w: WeightMatrix, _ p: RepackedWeights, _ dy: UnsafePointer<Float>, tokens: Int,
                                      dyStride ys: Int, _ dx: UnsafeMutablePointer<Float>, pool: ComputePool?) {
    let n = tokens * w.cols
    let nthreads = pool?.threadCount ?? 1
    let tile = 64
    let tiles = (w.rows + tile - 1) / tile
    let per = tile * w.cols
    let runs = min(tiles, 2 * nthreads), perRun = (tiles + runs - 1) / runs
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
            p.dequantize(rows: r0, r0 + rows, into: wf)
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

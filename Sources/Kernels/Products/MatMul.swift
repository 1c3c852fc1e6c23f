// Weight × activation products on stored (possibly quantized) weights, f32 activations.
//
// A weight matrix (WeightMatrix.swift) is stored row-major as ggml does: `rows` output rows, each
// `cols` input elements long, in blocks along the input (FORMATS.md §1.4). `Y[t][r] = Σ_i W[r][i] · X[t][i]`.
//
// Two paths, both exact-weight f32 arithmetic (no activation quantization), chosen by token count
// in ProductPlan.swift (the one place that picks a product's kernel):
//  - fused (few tokens: decode and batched decode): the C kernels of Sources/CKernels/kernels_impl.h
//    decode each weight block in registers and dot it with up to 8 tokens at once;
//  - dequantize + sgemm (many tokens: prefill, big batches): a thread decodes a tile of weight rows to
//    f32 and multiplies it with all tokens through OpenBLAS `cblas_sgemm` (single-threaded; the pool
//    provides the parallelism, see ComputePool.swift).
// Both split output rows into tiles shared out over a ComputePool. AVX2/FMA/F16C versions are used when
// the CPU has them (checked once), otherwise the portable C twins. The plain reference for both is
// `referenceDot` (ReferenceDot.swift), against which KernelsTests checks every type and path.

internal import CKernels
internal import COpenBLAS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How `matmul` computes a product; `.automatic` picks by token count (see `MatMulTuning`).
public enum MatMulStrategy: Sendable, CaseIterable {
    case automatic
    /// Fused dequantize-and-dot kernels.
    case fused
    /// Tiles of weight rows dequantized to f32, then `cblas_sgemm` against all tokens.
    case sgemm
}

/// Crossover constants and path choices, measured on the reference machine: 2 vCPUs of an AMD EPYC
/// reporting family 25 model 1, i.e. Zen 3 with full-width 256-bit FMA, ~2.45 GHz (not Zen 1). The
/// machine was shared while tuning, so the scans use single-thread CPU time
/// (`lorad bench --kernels full`, its crossover lines; SmolLM2's Q4_1 layer shapes, GFLOP/s per thread).
public enum MatMulTuning {
    /// At and above this many tokens `.automatic` uses dequantize + sgemm instead of the f32 fused
    /// kernels. Scan with the final fused kernels (8-token tiles, nibbles widened from memory), 8
    /// layers' worth of distinct matrices so weights stream from memory:
    ///     T        8     16     24     32     48     64    128
    ///     fused   51.9   48.5   44.1   42.0   40.9   39.7   33.6
    ///     sgemm   30.3   44.7   53.7   58.1   65.4   68.6   80.9
    /// so fused below 20 tokens (16-sequence decode batches included), sgemm from 20.
    public static let sgemmMinTokens = 20
    /// Weight rows one sgemm call multiplies. Below 128 tokens, 64 rows × 576-1536 floats = 147-393 KB
    /// decoded per tile, within L2 (512 KB per core), enough work per call to amortize OpenBLAS's
    /// packing and enough tiles to balance two threads on 192-row matrices.
    ///
    /// With many tokens, bigger tiles amortize OpenBLAS's packing of X over more rows: one thread, CPU
    /// time per SmolLM2 pass at T=128: 462 ms (64 rows), 429 (256), 432 (1024); at T=512: 1728, 1647,
    /// 1538. So from 128 tokens on a tile is rows/(2·threads) (at least two tiles per thread for
    /// balance) clamped to 64...256.
    public static func sgemmTileRows(rows: Int, tokens: Int, threads: Int) -> Int {
        if tokens < 128 { return 64 }
        return max(64, min(256, rows / (2 * max(1, threads)) / 16 * 16))
    }
    /// A strategy forced for every `.automatic` call, from the environment variable
    /// LORAD_MATMUL_STRATEGY (fused or sgemm), read once: for checking model-level numerics
    /// and speed of one path (e.g. running LlamaGoldenTests with each). Unset or unknown: nil.
    public static let override: MatMulStrategy? = {
        guard let p = getenv("LORAD_MATMUL_STRATEGY") else { return nil }
        switch String(cString: p) {
        case "fused": return .fused
        case "sgemm": return .sgemm
        default: return nil
        }
    }()
}

/// Y[t][r] = W[r] · X[t] for t in 0..<tokens with f32 activations; X is `tokens × cols`, Y is
/// `tokens × rows` (row stride `yStride`, default `rows`). `ProductPlan(strategy:)` picks fused or
/// sgemm (see `ProductPlan.multiply` for `threads`, `pool` and `alongside`). `w.type` must be computable.
public func matmul(_ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int,
                   _ y: UnsafeMutablePointer<Float>, yStride: Int? = nil, threads: Int = 1,
                   pool: ComputePool? = nil, strategy: MatMulStrategy = .automatic,
                   kernels: KernelPath = .best, alongside side: SideWork? = nil) {
    precondition(w.type.isComputable, "matmul: \(w.type) is not computable; the caller should have checked")
    ProductPlan(strategy: strategy).multiply(w, x, tokens: tokens, y, yStride: yStride, threads: threads, pool: pool,
                                             kernels: kernels, alongside: side)
}

/// Rows per tile for the row-parallel kernels: 4 tiles per thread, as long contiguous runs of rows.
/// At one token the product streams weights from memory, and few long runs per thread keep the
/// hardware prefetchers on one stream each: a SmolLM2 pass on 2 threads took 6.0-6.2 ms with 1-4
/// tiles per thread against 7.2 ms with ≤ 64-row tiles (8+ per thread) and 7.9 ms with 16 per thread;
/// at 4 and 16 tokens 4 per thread was also the fastest (12.5 vs 13.3 ms, 45.5 vs 46.3 ms). Four
/// rather than one leaves the dynamic claiming something to even out a thread that was descheduled.
func fusedTileRows(rows: Int, threads: Int) -> Int {
    max(4, rows / max(1, threads * 4))
}

func matmulFused(_ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int,
                         _ y: UnsafeMutablePointer<Float>, ys: Int, pool: ComputePool?, path: KernelPath,
                         side: SideWork?) {
    let type = w.type.computableKernelType
    let nthreads = pool?.threadCount ?? 1
    let needsSums = w.type == .q4_1 || w.type == .q5_1
    let nsums = needsSums ? tokens * (w.cols / 32) : 0
    let scratchPer = Int(lorad_matmul_scratch_floats(type, Int64(w.cols)))
    // One allocation for the block sums and every thread's row scratch.
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, nsums + nthreads * scratchPer))
    defer { buffer.deallocate() }
    if needsSums {
        if path == .avx2 {
            lorad_avx2_block_sums32(x, Int64(w.cols), Int64(tokens), Int64(w.cols), buffer)
        } else {
            lorad_portable_block_sums32(x, Int64(w.cols), Int64(tokens), Int64(w.cols), buffer)
        }
    }
    let tile = fusedTileRows(rows: w.rows, threads: nthreads)
    let tiles = (w.rows + tile - 1) / tile
    let rb = Int64(w.rowBytes), cols = Int64(w.cols), T = Int64(tokens), ys64 = Int64(ys)
    let sums = UnsafePointer(buffer)
    forEachTile(tiles, pool: pool, alongside: side) { i, thread in
        let r0 = i * tile, r1 = min(w.rows, r0 + tile)
        let scratch = buffer + nsums + thread * scratchPer
        let ok = path == .avx2
            ? lorad_avx2_matmul_rows(type, w.data, rb, cols, Int64(r0), Int64(r1), x, cols, T, sums, scratch, y, ys64)
            : lorad_portable_matmul_rows(type, w.data, rb, cols, Int64(r0), Int64(r1), x, cols, T, sums, scratch, y, ys64)
        precondition(ok != 0, "matmul: no C kernel for computable type \(w.type)")
    }
}

func matmulSgemm(_ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int,
                         _ y: UnsafeMutablePointer<Float>, ys: Int, pool: ComputePool?, path: KernelPath,
                         side: SideWork?) {
    _ = ComputePool.singleThreadBLAS
    let type = w.type.computableKernelType
    let nthreads = pool?.threadCount ?? 1
    let tile = MatMulTuning.sgemmTileRows(rows: w.rows, tokens: tokens, threads: nthreads)
    let tiles = (w.rows + tile - 1) / tile
    let per = tile * w.cols
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: nthreads * per)  // ≤ 2 × 1.5 MB
    defer { buffer.deallocate() }
    forEachTile(tiles, pool: pool, alongside: side) { i, thread in
        let r0 = i * tile, n = min(w.rows, r0 + tile) - r0
        let wf = buffer + thread * per
        // Rows are contiguous, so a tile is one run of n·cols elements.
        if let p = w.repacked {
            p.dequantize(rows: r0, r0 + n, into: wf)
        } else if path == .avx2 {
            _ = lorad_avx2_dequantize(type, w.row(r0), Int64(n * w.cols), wf)
        } else {
            _ = lorad_portable_dequantize(type, w.row(r0), Int64(n * w.cols), wf)
        }
        // Y[t][r0 + j] = Σ_i X[t][i] · Wf[j][i]:  C (T × n, ldc ys) = X (T × cols) · Wfᵀ.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(n), Int32(w.cols),
                    1, x, Int32(w.cols), wf, Int32(w.cols), 0, y + r0, Int32(ys))
    }
}

/// Decodes `count` elements with the C decoders behind the sgemm path (bit-identical to `dequantize`).
func dequantizeRows(_ type: TensorType, _ src: UnsafeRawPointer, count: Int, kernels: KernelPath) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { out, n in
        if count > 0 {
            let t = type.computableKernelType
            _ = kernels.usable == .avx2 ? lorad_avx2_dequantize(t, src, Int64(count), out.baseAddress!)
                                        : lorad_portable_dequantize(t, src, Int64(count), out.baseAddress!)
        }
        n = count
    }
}

/// The plain reference for `matmul`: every output is `referenceDot` (double accumulation) of the
/// decoded row with the token's activations. Slow; for tests and benchmarks only.
public func matmulReference(_ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int,
                            _ y: UnsafeMutablePointer<Float>, yStride: Int? = nil) {
    let ys = yStride ?? w.rows
    for t in 0..<tokens {
        for r in 0..<w.rows {
            y[t * ys + r] = referenceDot(w.type, row: w.row(r), x + t * w.cols, count: w.cols)
        }
    }
}


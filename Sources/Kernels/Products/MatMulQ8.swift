// Weight × activation products with activations quantized to 8 bits, as llama.cpp's CPU backend
// does (FORMATS.md §2.5): each activation row is cut into 32-value blocks and quantized to Q8_1 (for
// Q4_1/Q5_1 weights) or Q8_0 (for Q4_0/Q5_0/Q8_0 weights), then each block pair is an exact integer
// dot scaled by the two block scales. Matching llama.cpp's rounding keeps lorad's logits within
// float-summation noise of llama.cpp's; the f32 path in MatMul.swift is the reference these are
// tested against.
//
// The activation quantizer copies ggml's AVX2 `quantize_row_q8_0/q8_1` (arch/x86/quants.c), which is
// what llama.cpp runs on this class of machine: id = 127/amax and round-half-to-even. ggml's scalar
// reference (Quantize+Activations.swift) uses 1/d and rounds half away from zero; the two differ
// only on exact ties.

internal import CKernels

/// Whether `matmulQ8` handles this weight type (others use the f32 path).
public func hasQ8Path(_ type: TensorType) -> Bool {
    switch type {
    case .q4_0, .q4_1, .q8_0: return true
    default: return false
    }
}

/// One quantized activation block: 32 codes, the scale d (f16-rounded, as stored by ggml) and, for
/// Q8_1, s = fp16(d_f32 · Σq).
struct Q8Block {
    var d: Float
    var s: Float
    var q: SIMD32<Int8>
}

/// Quantizes `count` values (a multiple of 32) into blocks, ggml AVX2 style.
func quantizeActivations(_ x: UnsafePointer<Float>, count: Int, into blocks: UnsafeMutablePointer<Q8Block>) {
    for b in 0..<(count / 32) {
        let v = x + b * 32
        var amax: Float = 0
        for j in 0..<32 { amax = max(amax, abs(v[j])) }
        let d = amax / 127
        let id: Float = amax != 0 ? 127 / amax : 0
        var q = SIMD32<Int8>()
        var sum: Int32 = 0
        for j in 0..<32 {
            let c = Int32((v[j] * id).rounded(.toNearestOrEven))
            q[j] = Int8(clamping: c)
            sum += c
        }
        blocks[b] = Q8Block(d: f16ToF32(f32ToF16(d)), s: f16ToF32(f32ToF16(d * Float(sum))), q: q)
    }
}

@inline(__always)
private func loadF16(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    f16ToF32(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

/// Σ over 32 lanes of a·b, exactly, in Int32.
@inline(__always)
private func dot32(_ a: SIMD32<Int8>, _ b: SIMD32<Int8>) -> Int32 {
    let lo = SIMD16<Int32>(truncatingIfNeeded: a.lowHalf) &* SIMD16<Int32>(truncatingIfNeeded: b.lowHalf)
    let hi = SIMD16<Int32>(truncatingIfNeeded: a.highHalf) &* SIMD16<Int32>(truncatingIfNeeded: b.highHalf)
    return (lo &+ hi).wrappedSum()
}

/// The 32 4-bit codes of a legacy block: low nibbles are elements 0-15, high nibbles 16-31.
@inline(__always)
private func nibbles(_ p: UnsafeRawPointer) -> SIMD32<Int8> {
    let raw = p.loadUnaligned(as: SIMD16<UInt8>.self)
    let lo = SIMD16<Int8>(truncatingIfNeeded: raw & 0x0F)
    let hi = SIMD16<Int8>(truncatingIfNeeded: raw &>> 4)
    return SIMD32(lowHalf: lo, highHalf: hi)
}

extension SIMD16<Int32> {
    @inline(__always) func wrappedSum() -> Int32 {
        let a = lowHalf &+ highHalf
        let b = a.lowHalf &+ a.highHalf
        let c = b.lowHalf &+ b.highHalf
        return c[0] &+ c[1]
    }
}

/// One weight row · one quantized activation row.
@inline(__always)
func dotQ8(_ type: TensorType, _ row: UnsafeRawPointer, _ a: UnsafePointer<Q8Block>, blocks: Int) -> Float {
    var acc: Float = 0
    switch type {
    case .q4_1:
        // vec_dot_q4_1_q8_1: d_w·d_a·Σ nib·q + m_w·s_a
        var mins: Float = 0
        for b in 0..<blocks {
            let w = row + b * 20
            let sumi = dot32(nibbles(w + 4), a[b].q)
            acc += loadF16(w, 0) * a[b].d * Float(sumi)
            mins += loadF16(w, 2) * a[b].s
        }
        return acc + mins
    case .q4_0:
        // vec_dot_q4_0_q8_0: d_w·d_a·Σ (nib-8)·q
        for b in 0..<blocks {
            let w = row + b * 18
            let sumi = dot32(nibbles(w + 2) &- 8, a[b].q)
            acc += loadF16(w, 0) * a[b].d * Float(sumi)
        }
        return acc
    case .q8_0:
        for b in 0..<blocks {
            let w = row + b * 34
            let sumi = dot32((w + 2).loadUnaligned(as: SIMD32<Int8>.self), a[b].q)
            acc += loadF16(w, 0) * a[b].d * Float(sumi)
        }
        return acc
    default:
        preconditionFailure("dotQ8: no Q8 path for \(type)")
    }
}

/// Y[t][r] = W[r] · Q8(X[t]) for weights with a Q8 path; see `ProductPlan.multiply` for the layout
/// and `pool`/`threads`. Runs from the repacked copy when the matrix carries one (ProductPlan decides).
///
/// Activations are quantized by the C port of the quantizer above (lorad_*_quantize_q8, same rounding),
/// and the block dots run in Sources/CKernels/kernels_q8.c: ggml's AVX2 maddubs kernels, or portable C.
/// `matmulQ8Reference` below is the scalar Swift version they are tested against.
public func matmulQ8(_ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int,
                     _ y: UnsafeMutablePointer<Float>, yStride: Int? = nil, threads: Int = 1,
                     pool: ComputePool? = nil, kernels: KernelPath = .best, alongside side: SideWork? = nil) {
    precondition(hasQ8Path(w.type) && w.cols % 32 == 0)
    ProductPlan(activations: .q8).multiply(w, x, tokens: tokens, y, yStride: yStride, threads: threads, pool: pool,
                                           kernels: kernels, alongside: side)
}

/// Y[t][r] = W[r] · Q8(X[t]) from the stored rows: the driver for lorad_*_matmul_q8_rows.
func matmulQ8Stored(_ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int, _ y: UnsafeMutablePointer<Float>,
                    ys: Int, pool: ComputePool?, path: KernelPath, side: SideWork?) {
    matmulQuantizedActivations(w, x, tokens: tokens, y, ys: ys, pool: pool, side: side,
                               quantize: path == .avx2 ? lorad_avx2_quantize_q8 : lorad_portable_quantize_q8,
                               rows: path == .avx2 ? lorad_avx2_matmul_q8_rows : lorad_portable_matmul_q8_rows)
}

/// Quantize every token row into 32-value blocks, then run the row kernel over tiles of weight rows
/// on the pool.
func matmulQuantizedActivations<Block>(
    _ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int, _ y: UnsafeMutablePointer<Float>, ys: Int,
    pool: ComputePool?, side: SideWork? = nil,
    quantize: (UnsafePointer<Float>, Int64, UnsafeMutablePointer<Block>) -> Void,
    rows: (lorad_ggml_type, UnsafeRawPointer, Int64, Int64, Int64, Int64, UnsafePointer<Block>, Int64,
           UnsafeMutablePointer<Float>, Int64) -> Int32
) {
    let type = w.type.computableKernelType
    let rb = Int64(w.rowBytes), cols = Int64(w.cols), T = Int64(tokens), ys64 = Int64(ys)
    quantizedTiles(rows: w.rows, cols: w.cols, x, tokens: tokens, pool: pool, side: side, quantize: quantize) { r0, r1, a in
        _ = rows(type, w.data, rb, cols, Int64(r0), Int64(r1), a, T, y, ys64)
    }
}

/// Quantizes every token row of x (tokens × cols) into 32-value blocks, then calls `product(r0, r1,
/// blocks)` for tiles of output rows (about 4 per thread, see fusedTileRows; a multiple of `rowAlign`
/// rows each) on the pool, with `side`'s items in the same call.
func quantizedTiles<Block>(rows: Int, cols: Int, _ x: UnsafePointer<Float>, tokens: Int, pool: ComputePool?,
                           side: SideWork? = nil, rowAlign: Int = 1, quantize: (UnsafePointer<Float>, Int64, UnsafeMutablePointer<Block>) -> Void,
                           _ product: (Int, Int, UnsafePointer<Block>) -> Void) {
    let nb = cols / 32
    let qa = UnsafeMutablePointer<Block>.allocate(capacity: tokens * nb)
    defer { qa.deallocate() }
    for t in 0..<tokens { quantize(x + t * cols, Int64(cols), qa + t * nb) }
    let tile = max(1, fusedTileRows(rows: rows, threads: pool?.threadCount ?? 1) / rowAlign) * rowAlign
    let tiles = (rows + tile - 1) / tile
    let a = UnsafePointer(qa)
    forEachTile(tiles, pool: pool, alongside: side) { i, _ in product(i * tile, min(rows, i * tile + tile), a) }
}

/// The scalar Swift reference for `matmulQ8` (single-threaded): `quantizeActivations` and `dotQ8`.
public func matmulQ8Reference(_ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int,
                              _ y: UnsafeMutablePointer<Float>, yStride: Int? = nil) {
    precondition(hasQ8Path(w.type) && w.cols % 32 == 0)
    let ys = yStride ?? w.rows
    let nb = w.cols / 32
    let qa = UnsafeMutablePointer<Q8Block>.allocate(capacity: max(1, tokens * nb))
    defer { qa.deallocate() }
    for t in 0..<tokens { quantizeActivations(x + t * w.cols, count: w.cols, into: qa + t * nb) }
    for r in 0..<w.rows {
        for t in 0..<tokens {
            y[t * ys + r] = dotQ8(w.type, w.row(r), qa + t * nb, blocks: nb)
        }
    }
}

/// Y[t][r] = W[r] · Q8(X[t]) from the repacked copy: the driver for lorad_*_matmul_q8_{q4_1,q8_0}x8.
func matmulQ8Repacked(_ p: RepackedWeights, _ x: UnsafePointer<Float>, tokens: Int, _ y: UnsafeMutablePointer<Float>,
                      ys: Int, pool: ComputePool?, path: KernelPath, side: SideWork?) {
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

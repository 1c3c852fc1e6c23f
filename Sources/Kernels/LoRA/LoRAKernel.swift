// The LoRA term of a linear layer for some rows of a batch: y[r] += s_r · B·(A·x[r]), with A and Bᵀ in
// f32, f16 or bf16 (LoRAKernelWeights.swift says why). The C kernel (kernels_impl.h, `lora_rows`) does
// the work; `loraRowsReference` is the plain version the tests compare it with.

internal import CKernels

/// Element types of a packed LoRA module.
public enum LoRAElement: Sendable {
    case f32, f16, bf16

    /// The C kernel's name for it (CKernels.h `lorad_lora_element`).
    var kernelElement: lorad_lora_element {
        switch self {
        case .f32: return LORAD_LORA_F32
        case .f16: return LORAD_LORA_F16
        case .bf16: return LORAD_LORA_BF16
        }
    }
}

/// Bᵀ (rank × outDim, row-major) in the kernel's layout: tiles of 8 output columns, tile ob holding
/// Bᵀ[k][8·ob + l] at ob·rank·8 + k·8 + l, zero past outDim (so the axpys read one sequential stream;
/// kernels_impl.h says why).
public func loraTiledBT(_ bt: [Float], rank: Int, outDim: Int) -> [Float] {
    precondition(bt.count == rank * outDim, "loraTiledBT: \(bt.count) values for \(rank) × \(outDim)")
    let tiles = (outDim + 7) / 8
    var out = [Float](repeating: 0, count: tiles * rank * 8)
    for k in 0..<rank {
        for o in 0..<outDim { out[(o / 8) * rank * 8 + k * 8 + o % 8] = bt[k * outDim + o] }
    }
    return out
}

/// y[rows[j] * outDim + o] += scale · scales[j] · Σ_k Bᵀ[k][o] · (Σ_i a[k * inDim + i] · x[rows[j] * inDim + i]),
/// with `bt` in the tiled layout of `loraTiledBT`. The C kernel's entry point for tests; the forward
/// pass reaches the same kernel through `LoRAJob` (LoRAKernelWeights.swift).
public func loraRows(element: LoRAElement, a: UnsafeRawPointer, bt: UnsafeRawPointer, rank: Int, inDim: Int, outDim: Int,
                     x: UnsafePointer<Float>, rows: UnsafePointer<Int32>, scales: UnsafePointer<Float>, scale: Float = 1,
                     count: Int, y: UnsafeMutablePointer<Float>, path: KernelPath = .best) {
    let done: Int32
    switch path.usable {
    case .avx2:
        done = lorad_avx2_lora_rows(element.kernelElement, a, bt, Int64(rank), Int64(inDim), Int64(outDim), x, Int64(inDim),
                                    rows, scales, scale, Int64(count), y, Int64(outDim))
    case .portable:
        done = lorad_portable_lora_rows(element.kernelElement, a, bt, Int64(rank), Int64(inDim), Int64(outDim), x, Int64(inDim),
                                        rows, scales, scale, Int64(count), y, Int64(outDim))
    }
    precondition(done == 1, "loraRows: element type \(element) not handled by the C kernel")
}

/// The same product in plain Swift, in double precision (the tests' reference); `bt` is plain
/// row-major Bᵀ (rank × outDim), not tiled.
public func loraRowsReference(element: LoRAElement, a: UnsafeRawPointer, bt: UnsafeRawPointer, rank: Int, inDim: Int,
                              outDim: Int, x: UnsafePointer<Float>, rows: [Int32], scales: [Float], scale: Float = 1,
                              y: UnsafeMutablePointer<Float>) {
    func value(_ p: UnsafeRawPointer, _ i: Int) -> Double {
        switch element {
        case .f32: return Double(p.load(fromByteOffset: 4 * i, as: Float.self))
        case .f16: return Double(f16ToF32(p.load(fromByteOffset: 2 * i, as: UInt16.self)))
        case .bf16: return Double(bf16ToF32(p.load(fromByteOffset: 2 * i, as: UInt16.self)))
        }
    }
    for (row, s) in zip(rows, scales) {
        let xr = x + Int(row) * inDim, yr = y + Int(row) * outDim
        var t = [Double](repeating: 0, count: rank)
        for k in 0..<rank {
            var acc = 0.0
            for i in 0..<inDim { acc += value(a, k * inDim + i) * Double(xr[i]) }
            t[k] = Double(scale) * Double(s) * acc
        }
        for o in 0..<outDim {
            var acc = Double(yr[o])
            for k in 0..<rank { acc += t[k] * value(bt, k * outDim + o) }
            yr[o] = Float(acc)
        }
    }
}

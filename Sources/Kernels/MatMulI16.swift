// The int16-activation path of `matmul` (Sources/CKernels/kernels_i16.c): for Q4_0, Q4_1 and Q8_0
// weights and few tokens, each activation block of 32 is quantized to int16 with its own f32 scale
// (error ≤ amax/65534 per value, relative 1.5e-5) and dotted with the weights' integer codes by
// vpmaddwd. It was written as a candidate default (on Zen 1, with half-width FMA, it should beat
// decoding weights to f32), but on the machine lorad was tuned on (Zen 3) it measured no faster than
// the exact f32 fused kernels, so `.automatic` does not use it (MatMulTuning.useInt16 has the numbers);
// it stays available as `MatMulStrategy.int16`, ~250× closer to exact than llama.cpp's int8
// activations. `referenceDot` is the reference it is tested against, with the quantization error
// bound stated in MatMulI16Tests.

internal import CKernels

/// Whether the int16-activation kernels handle this weight type.
public func hasI16Path(_ type: TensorType) -> Bool {
    switch type {
    case .q4_0, .q4_1, .q8_0: return true
    default: return false
    }
}

func matmulI16(_ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int,
               _ y: UnsafeMutablePointer<Float>, ys: Int, pool: ComputePool?, path: KernelPath,
               side: SideWork? = nil) {
    precondition(hasI16Path(w.type) && w.cols % 32 == 0)
    matmulQuantizedActivations(w, x, tokens: tokens, y, ys: ys, pool: pool, side: side,
                               quantize: path == .avx2 ? lorad_avx2_quantize_q16 : lorad_portable_quantize_q16,
                               rows: path == .avx2 ? lorad_avx2_matmul_q16_rows : lorad_portable_matmul_q16_rows)
}

// lorad's C kernels: SIMD code that Swift cannot express with per-function target features.
// Every AVX2 function has a portable twin; callers pick one with lorad_cpu_has_avx2_fma_f16c().
#ifndef LORAD_CKERNELS_H
#define LORAD_CKERNELS_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when the CPU (and the OS, for the YMM state) supports AVX2, FMA and F16C, else 0.
int lorad_cpu_has_avx2_fma_f16c(void);

/// Before the first BLAS call: when a DYNAMIC_ARCH OpenBLAS older than the CPU fell back to its
/// Prescott (SSE3) kernels and OPENBLAS_CORETYPE is unset, selects its Haswell or SkylakeX kernels as
/// CPUID allows (openblas_core.c). Returns 1 if it switched.
int lorad_openblas_prefer_native_core(void);
/// OpenBLAS's kernel family ("SkylakeX", "Haswell", "Prescott", ...).
const char *lorad_openblas_corename(void);

/// A spin-wait hint (x86 PAUSE); a no-op elsewhere.
static inline void lorad_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/// The weight types the kernels handle, by their ggml type ids: the values of ggml.h's `enum ggml_type`
/// that a GGUF tensor-info record stores (Sources/Kernels/Weights/TensorType.swift lists every id and
/// maps its cases to these in one place, `TensorType.kernelType`).
typedef enum {
    LORAD_TYPE_F32 = 0,
    LORAD_TYPE_F16 = 1,
    LORAD_TYPE_Q4_0 = 2,
    LORAD_TYPE_Q4_1 = 3,
    LORAD_TYPE_Q5_0 = 6,
    LORAD_TYPE_Q5_1 = 7,
    LORAD_TYPE_Q8_0 = 8,
    LORAD_TYPE_Q4_K = 12,
    LORAD_TYPE_Q5_K = 13,
    LORAD_TYPE_Q6_K = 14,
    LORAD_TYPE_BF16 = 30,
} lorad_ggml_type;

/// The element types of a LoRA module's A and Bᵀ (lorad_*_lora_rows); 16-bit values are raw bits.
/// Sources/Kernels/LoRA/LoRAKernel.swift maps `LoRAElement` to these.
typedef enum {
    LORAD_LORA_F32 = 0,
    LORAD_LORA_F16 = 1,
    LORAD_LORA_BF16 = 2,
} lorad_lora_element;

// ---- f32-activation kernels (kernels_impl.h, compiled twice: lorad_avx2_* and lorad_portable_*) ----
// Functions return 0 for a type they do not handle (the caller checks first).
// Lengths are in elements and must be whole blocks. No pointer needs alignment.

/// Decodes `count` elements of `type` at `src` into `dst` (same arithmetic as ggml's dequantize_row_*).
int lorad_avx2_dequantize(lorad_ggml_type type, const void *src, int64_t count, float *dst);
int lorad_portable_dequantize(lorad_ggml_type type, const void *src, int64_t count, float *dst);

/// sums[t * (cols/32) + b] = Σ of x[t * x_stride + 32b ..< 32b + 32], for t in 0..<tokens. These feed
/// the min terms of Q4_1 and Q5_1 (`m · Σx` once per block, shared by all rows).
void lorad_avx2_block_sums32(const float *x, int64_t cols, int64_t tokens, int64_t x_stride, float *sums);
void lorad_portable_block_sums32(const float *x, int64_t cols, int64_t tokens, int64_t x_stride, float *sums);

/// Size in floats of the scratch `lorad_*_matmul_rows` needs for `cols` (0 for fused types).
int64_t lorad_matmul_scratch_floats(lorad_ggml_type type, int64_t cols);

/// y[t * y_stride + r] = Σ_i W[r][i] · x[t * x_stride + i] for r in r0..<r1, t in 0..<tokens, where row
/// r of W starts at w + r * row_bytes. `sums` are the block sums above (read for Q4_1/Q5_1,
/// ignored otherwise); `scratch` holds lorad_matmul_scratch_floats(type, cols) floats.
int lorad_avx2_matmul_rows(lorad_ggml_type type, const void *w, int64_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                           const float *x, int64_t x_stride, int64_t tokens, const float *sums,
                           float *scratch, float *y, int64_t y_stride);
int lorad_portable_matmul_rows(lorad_ggml_type type, const void *w, int64_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                               const float *x, int64_t x_stride, int64_t tokens, const float *sums,
                               float *scratch, float *y, int64_t y_stride);

/// LoRA: y[rows[j] * y_stride + o] += scale · scales[j] · Σ_k Bt[k][o] · (A[k] · x[rows[j] * x_stride]) for j in
/// 0..<nrows. A is rank × in, row-major. Bt (B transposed, rank × out) is tiled by 8 output columns:
/// ceil(out/8) tiles of rank × 8 values, tile ob holding Bt[k][8·ob + l] at ob·rank·8 + k·8 + l (zero
/// past `out`). Both are of type `element`. Returns 0 for an element type not listed above.
int lorad_avx2_lora_rows(lorad_lora_element element, const void *a, const void *bt, int64_t rank, int64_t in, int64_t out,
                         const float *x, int64_t x_stride, const int32_t *rows, const float *scales, float scale,
                         int64_t nrows, float *y, int64_t y_stride);
int lorad_portable_lora_rows(lorad_lora_element element, const void *a, const void *bt, int64_t rank, int64_t in, int64_t out,
                             const float *x, int64_t x_stride, const int32_t *rows, const float *scales, float scale,
                             int64_t nrows, float *y, int64_t y_stride);

// ---- llama.cpp numerics: activations quantized to Q8_0/Q8_1 (kernels_q8.c) ----

/// One activation block as MatMulQ8.swift defines it: d (f16-rounded scale as f32), s (Q8_1 only:
/// fp16(d_f32 · Σq) as f32), 32 int8 codes.
typedef struct { float d; float s; int8_t q[32]; } lorad_q8_block;

/// Quantizes `count` (a multiple of 32) floats into count/32 blocks as ggml's AVX2 quantize_row_q8_0/1.
void lorad_avx2_quantize_q8(const float *x, int64_t count, lorad_q8_block *blocks);
void lorad_portable_quantize_q8(const float *x, int64_t count, lorad_q8_block *blocks);

/// y[t * y_stride + r] = W[r] · Q8(x_t) for Q4_0, Q4_1, Q8_0 (0 for other types); `a` holds tokens ×
/// (cols/32) blocks.
int lorad_avx2_matmul_q8_rows(lorad_ggml_type type, const void *w, int64_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                              const lorad_q8_block *a, int64_t tokens, float *y, int64_t y_stride);
int lorad_portable_matmul_q8_rows(lorad_ggml_type type, const void *w, int64_t row_bytes, int64_t cols, int64_t r0, int64_t r1,
                                  const lorad_q8_block *a, int64_t tokens, float *y, int64_t y_stride);

// ---- Q4_1 repacked 8 rows at a time, × Q8_1 activations (kernels_q4x8.c; layout described there) ----

/// Bytes of the repacked copy of a rows × cols Q4_1 matrix (rows padded to a multiple of 8).
int64_t lorad_q4_1x8_bytes(int64_t rows, int64_t cols);
/// Repacks a stored Q4_1 matrix (row r at w + r · row_bytes) into `dst` (lorad_q4_1x8_bytes bytes).
void lorad_q4_1x8_repack(const void *w, int64_t row_bytes, int64_t rows, int64_t cols, void *dst);
/// Decodes rows r0..<r1 of a repacked matrix into dst (row-major, cols floats each), bit-identical
/// to lorad_*_dequantize of the stored rows.
void lorad_q4_1x8_dequantize(const void *packed, int64_t cols, int64_t rows, int64_t r0, int64_t r1, float *dst);
/// y[t * y_stride + r] = W[r] · Q8_1(x_t) for the rows of groups g0..<g1 (rows 8·g0 ..< min(8·g1, rows));
/// `a` holds tokens × (cols/32) blocks from lorad_*_quantize_q8.
int lorad_avx2_matmul_q8_q4_1x8(const void *packed, int64_t cols, int64_t rows, int64_t g0, int64_t g1,
                                const lorad_q8_block *a, int64_t tokens, float *y, int64_t y_stride);
int lorad_portable_matmul_q8_q4_1x8(const void *packed, int64_t cols, int64_t rows, int64_t g0, int64_t g1,
                                    const lorad_q8_block *a, int64_t tokens, float *y, int64_t y_stride);

/// The same for Q8_0 weights repacked 8 rows at a time (272-byte groups) × Q8_0 activations.
int64_t lorad_q8_0x8_bytes(int64_t rows, int64_t cols);
void lorad_q8_0x8_repack(const void *w, int64_t row_bytes, int64_t rows, int64_t cols, void *dst);
void lorad_q8_0x8_dequantize(const void *packed, int64_t cols, int64_t rows, int64_t r0, int64_t r1, float *dst);
int lorad_avx2_matmul_q8_q8_0x8(const void *packed, int64_t cols, int64_t rows, int64_t g0, int64_t g1,
                                const lorad_q8_block *a, int64_t tokens, float *y, int64_t y_stride);
int lorad_portable_matmul_q8_q8_0x8(const void *packed, int64_t cols, int64_t rows, int64_t g0, int64_t g1,
                                    const lorad_q8_block *a, int64_t tokens, float *y, int64_t y_stride);

#ifdef __cplusplus
}
#endif

#include "CKernelsAttention.h"
#endif

// The f32-activation kernels of kernels_impl.h compiled for AVX2/FMA/F16C (per-function target
// attribute, so the rest of the binary stays baseline x86-64 and this code only runs after
// lorad_cpu_has_avx2_fma_f16c() said yes). Non-x86 builds get stubs that report "not handled".
#include "CKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#pragma STDC FP_CONTRACT ON
#define FN(name) lorad_avx2_##name
#define F16TOF32(h) _cvtsh_ss(h)
// Eight f16 values to f32 with one vcvtph2ps (the LoRA kernels' f16 storage).
#define F16X8(p) ((v8f)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p))))
// Two adjacent f16 fields (a block's d and m) converted with one vcvtph2ps.
#define F16PAIR(p, d, m)                                                                   \
    do {                                                                                   \
        uint32_t bits_;                                                                    \
        memcpy(&bits_, (p), 4);                                                            \
        const __m128 v_ = _mm_cvtph_ps(_mm_cvtsi32_si128((int)bits_));                     \
        *(d) = _mm_cvtss_f32(v_);                                                          \
        *(m) = _mm_cvtss_f32(_mm_movehdup_ps(v_));                                         \
    } while (0)
#include "kernels_impl.h"
#pragma clang attribute pop

#else
int lorad_avx2_dequantize(lorad_ggml_type type, const void *src, int64_t count, float *dst) { return 0; }
void lorad_avx2_block_sums32(const float *x, int64_t cols, int64_t tokens, int64_t xs, float *sums) {}
int lorad_avx2_matmul_rows(lorad_ggml_type type, const void *w, int64_t rb, int64_t cols, int64_t r0, int64_t r1,
                           const float *x, int64_t xs, int64_t T, const float *sums, float *scratch,
                           float *y, int64_t ys) { return 0; }
int lorad_avx2_lora_rows(lorad_lora_element element, const void *a, const void *bt, int64_t rank, int64_t in, int64_t out,
                         const float *x, int64_t xs, const int32_t *rows, const float *scales, float scale,
                         int64_t nrows, float *y, int64_t ys) { return 0; }
#endif

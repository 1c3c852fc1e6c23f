// Attention kernels (kernels_attention.c): softmax(scale · q·Kᵀ) · V for the query heads that share one
// KV head, over a sequence's cached positions. Included by CKernels.h.
#ifndef LORAD_CKERNELS_ATTENTION_H
#define LORAD_CKERNELS_ATTENTION_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Floats of scratch lorad_*_attention needs: one row of n scores and one f16-rounded copy of q per head.
int64_t lorad_attention_scratch_floats(int64_t heads, int64_t n, int64_t head_dim);

/// For h in 0..<heads: out[h·head_dim ..< (h+1)·head_dim] = Σ_j p_hj · v_j, where
/// p_hj = softmax_j(scale · q_h · k_j) over positions j in 0..<n, q_h = q + h·head_dim,
/// k_j = k + j·kv_stride, v_j = v + j·kv_stride (head_dim floats each). With round_f16 != 0, q and the
/// weights p are rounded to f16 first (round to nearest even), as llama.cpp does with an f16 KV cache.
/// `scratch` holds lorad_attention_scratch_floats(heads, n, head_dim) floats; no pointer needs alignment.
/// n < 1 writes zeros. The AVX2 version handles head_dim multiples of 8 and falls back to the
/// portable code for others.
void lorad_avx2_attention(const float *q, int64_t heads, const float *k, const float *v, int64_t kv_stride,
                          int64_t n, int64_t head_dim, float scale, int round_f16, float *scratch, float *out);
void lorad_portable_attention(const float *q, int64_t heads, const float *k, const float *v, int64_t kv_stride,
                              int64_t n, int64_t head_dim, float scale, int round_f16, float *scratch, float *out);

#ifdef __cplusplus
}
#endif

#endif

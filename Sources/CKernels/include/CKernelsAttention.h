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

/// Floats of scratch lorad_*_attention_backward needs for n positions: two rows of n weights.
int64_t lorad_attention_backward_scratch_floats(int64_t n, int64_t head_dim);

/// The backward pass of causal attention over one sequence of n rows, for the `heads` query heads that
/// share one KV head: row i of head h attends to rows 0...i with p_hij = softmax_j(scale · q_hi · k_j)
/// and o_hi = Σ_j p_hij · v_j. Given do (the gradient of o, laid out as q), writes
///   dq_hi = scale · Σ_j ds_hij · k_j,   dk_j = scale · Σ_h Σ_i ds_hij · q_hi,   dv_j = Σ_h Σ_i p_hij · do_hi,
/// with dp_hij = do_hi · v_j and ds_hij = p_hij · (dp_hij − Σ_j' p_hij' · dp_hij'). The weights are
/// recomputed (the forward pass keeps none). Row i of head h of q, do and dq is at
/// (base) + i·q_stride + h·head_dim; row j of k, v, dk and dv at (base) + j·kv_stride; head_dim floats
/// each. dq, dk and dv are overwritten (head_dim columns of n rows). Sums over i run in increasing i,
/// heads in order: the result is deterministic. `scratch` holds
/// lorad_attention_backward_scratch_floats(n, head_dim) floats. The AVX2 version handles head_dim
/// multiples of 8 and falls back to the portable code for others.
void lorad_avx2_attention_backward(const float *q, const float *dout, int64_t q_stride, int64_t heads, const float *k,
                                   const float *v, int64_t kv_stride, int64_t n, int64_t head_dim, float scale,
                                   float *scratch, float *dq, float *dk, float *dv);
void lorad_portable_attention_backward(const float *q, const float *dout, int64_t q_stride, int64_t heads,
                                       const float *k, const float *v, int64_t kv_stride, int64_t n, int64_t head_dim,
                                       float scale, float *scratch, float *dq, float *dk, float *dv);

#ifdef __cplusplus
}
#endif

#endif

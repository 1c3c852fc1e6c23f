// Decode attention: softmax(scale · q·Kᵀ) · V over a sequence's cached positions, for the query heads
// that share one KV head (grouped-query attention), in three passes per call: scores, softmax, P·V.
//
// Why this shape: for a decode step the work per head is n dots of length head_dim plus n rows of V, so
// it is bound by reading K and V. The AVX2 score pass runs 4 keys × (up to 3) heads as independent FMA
// chains, reads each key once for all heads of its group and reduces the 4 chains of a head to 4 scores
// with hadds. The P·V pass, per head, keeps 8 output vectors (64 columns) in registers as 8 independent
// FMA chains, so each V row is loaded once per head. exp is vectorized (the polynomial of ggml's
// ggml_v_expf / ARM optimized-routines' expf, ≤ 2 ulp on [-110, 0]); the portable twin calls libm's expf.
//
// Numerics beside the old Swift loop (and ggml): the dots sum in a different order, so scores differ by
// f32 rounding; with round_f16 the q values and the weights p are rounded to f16 exactly where llama.cpp
// rounds them (RNE, vcvtps2ph / the soft conversion below), so that mode keeps its semantics.
#include "CKernels.h"
#include <math.h>
#include <string.h>
#include "f16_soft.h"

#define MAX_GROUP 3  // heads per register-blocked pass; larger groups run in chunks of 3

int64_t lorad_attention_scratch_floats(int64_t heads, int64_t n, int64_t head_dim) {
    return heads * ((n > 0 ? n : 0) + head_dim);
}


static inline float att_round_f16(float x) { return lorad_f16_to_f32_soft(lorad_f32_to_f16_rne(x)); }

// ---------------------------------------------------------------- portable

void lorad_portable_attention(const float *q, int64_t heads, const float *k, const float *v, int64_t kv_stride,
                              int64_t n, int64_t head_dim, float scale, int round_f16, float *scratch, float *out) {
    if (n < 1) {
        memset(out, 0, (size_t)(heads * head_dim) * sizeof(float));
        return;
    }
    for (int64_t h = 0; h < heads; h++) {
        float *s = scratch + h * (n + head_dim), *qh = s + n;
        float *o = out + h * head_dim;
        for (int64_t i = 0; i < head_dim; i++) qh[i] = round_f16 ? att_round_f16(q[h * head_dim + i]) : q[h * head_dim + i];
        float m = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            const float *kj = k + j * kv_stride;
            // Eight partial sums, as a SIMD dot would keep them.
            float acc[8] = {0};
            int64_t i = 0;
            for (; i + 8 <= head_dim; i += 8)
                for (int l = 0; l < 8; l++) acc[l] += qh[i + l] * kj[i + l];
            for (; i < head_dim; i++) acc[0] += qh[i] * kj[i];
            const float d = (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))) * scale;
            s[j] = d;
            m = d > m ? d : m;
        }
        float sum = 0;
        for (int64_t j = 0; j < n; j++) {
            s[j] = expf(s[j] - m);
            sum += s[j];
        }
        const float inv = 1 / sum;
        for (int64_t i = 0; i < head_dim; i++) o[i] = 0;
        for (int64_t j = 0; j < n; j++) {
            const float p = round_f16 ? att_round_f16(s[j] * inv) : s[j] * inv;
            const float *vj = v + j * kv_stride;
            for (int64_t i = 0; i < head_dim; i++) o[i] += p * vj[i];
        }
    }
}

// ---------------------------------------------------------------- backward (training)
//
// Row by row, as FlashAttention-2's backward does but with a row's weights recomputed whole: for each
// head and query row i, its scores over keys 0...i, the softmax, dp_j = do_i·v_j, ds_j, then dq_i, and
// dk_j, dv_j accumulated in place. No T × T buffer and no work above the diagonal; K, V, dK and dV of
// one segment's KV head (n × head_dim each) stay in L2.

int64_t lorad_attention_backward_scratch_floats(int64_t n, int64_t head_dim) {
    (void)head_dim;
    return 2 * (n > 0 ? n : 0);
}

void lorad_portable_attention_backward(const float *q, const float *dout, int64_t q_stride, int64_t heads,
                                       const float *k, const float *v, int64_t kv_stride, int64_t n, int64_t head_dim,
                                       float scale, float *scratch, float *dq, float *dk, float *dv) {
    for (int64_t j = 0; j < n; j++)
        for (int64_t c = 0; c < head_dim; c++) dk[j * kv_stride + c] = dv[j * kv_stride + c] = 0;
    float *p = scratch, *dp = scratch + n;
    for (int64_t h = 0; h < heads; h++) {
        for (int64_t i = 0; i < n; i++) {
            const float *qi = q + i * q_stride + h * head_dim, *doi = dout + i * q_stride + h * head_dim;
            float *dqi = dq + i * q_stride + h * head_dim;
            float m = -INFINITY;
            for (int64_t j = 0; j <= i; j++) {
                const float *kj = k + j * kv_stride, *vj = v + j * kv_stride;
                float s = 0, d = 0;
                for (int64_t c = 0; c < head_dim; c++) {
                    s += qi[c] * kj[c];
                    d += doi[c] * vj[c];
                }
                p[j] = s * scale;
                dp[j] = d;
                m = p[j] > m ? p[j] : m;
            }
            float sum = 0;
            for (int64_t j = 0; j <= i; j++) {
                p[j] = expf(p[j] - m);
                sum += p[j];
            }
            const float inv = 1 / sum;
            float dot = 0;
            for (int64_t j = 0; j <= i; j++) {
                p[j] *= inv;
                dot += p[j] * dp[j];
            }
            for (int64_t c = 0; c < head_dim; c++) dqi[c] = 0;
            for (int64_t j = 0; j <= i; j++) {
                const float ds = p[j] * (dp[j] - dot) * scale;
                const float *kj = k + j * kv_stride;
                float *dkj = dk + j * kv_stride, *dvj = dv + j * kv_stride;
                for (int64_t c = 0; c < head_dim; c++) {
                    dqi[c] += ds * kj[c];
                    dkj[c] += ds * qi[c];
                    dvj[c] += p[j] * doi[c];
                }
            }
        }
    }
}

// ---------------------------------------------------------------- AVX2

#if defined(__x86_64__)
#include <immintrin.h>
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/// e^x for 8 lanes (ARM optimized-routines' expf algorithm, as in ggml's ggml_v_expf): x = n·ln2 + b,
/// e^b by a degree-5 polynomial, 2^n put into the exponent; lanes where 2^n would leave the normal
/// range are rebuilt from two scale factors (underflow to 0, overflow to inf).
ALWAYS_INLINE __m256 exp8(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    const __m256 kk = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1))));
    const __m256 absn = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    const __m256 c = _mm256_cmp_ps(absn, _mm256_set1_ps(126), _CMP_GT_OQ);
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
    if (!_mm256_movemask_ps(c)) return _mm256_fmadd_ps(j, kk, kk);
    const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                       _mm256_set1_epi32((int)0x82000000u));
    const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000)));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    const __m256 d = _mm256_cmp_ps(absn, _mm256_set1_ps(192), _CMP_GT_OQ);
    return _mm256_or_ps(_mm256_and_ps(d, _mm256_mul_ps(s1, s1)),
                        _mm256_andnot_ps(d, _mm256_or_ps(_mm256_and_ps(c, _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1)),
                                                         _mm256_andnot_ps(c, _mm256_fmadd_ps(kk, j, kk)))));
}

/// [Σa, Σb, Σc, Σd] of four 8-lane accumulators.
ALWAYS_INLINE __m128 reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
    const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

ALWAYS_INLINE float hsum8(__m256 a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// Lanes 0..<count set (count in 0...8), for the tail of a row.
ALWAYS_INLINE __m256i tail_mask(int64_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// s[h·ss + j] = scale · q_h·k_j for H heads (q_h at q + h·hd), j in 0..<n. H and hd are constants
/// where inlined, so the head_dim loop unrolls and (for one head) q stays in registers.
ALWAYS_INLINE void scores(const float *q, const float *k, int64_t ks, int64_t n, int64_t hd, int H, float scale,
                          float *s, int64_t ss) {
    const __m128 sc = _mm_set1_ps(scale);
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *k0 = k + j * ks, *k1 = k0 + ks, *k2 = k1 + ks, *k3 = k2 + ks;
        __m256 acc[MAX_GROUP][4];
        for (int h = 0; h < H; h++)
            for (int l = 0; l < 4; l++) acc[h][l] = _mm256_setzero_ps();
        for (int64_t i = 0; i < hd; i += 8) {
            const __m256 x0 = _mm256_loadu_ps(k0 + i), x1 = _mm256_loadu_ps(k1 + i);
            const __m256 x2 = _mm256_loadu_ps(k2 + i), x3 = _mm256_loadu_ps(k3 + i);
            for (int h = 0; h < H; h++) {
                const __m256 qv = _mm256_loadu_ps(q + h * hd + i);
                acc[h][0] = _mm256_fmadd_ps(qv, x0, acc[h][0]);
                acc[h][1] = _mm256_fmadd_ps(qv, x1, acc[h][1]);
                acc[h][2] = _mm256_fmadd_ps(qv, x2, acc[h][2]);
                acc[h][3] = _mm256_fmadd_ps(qv, x3, acc[h][3]);
            }
        }
        for (int h = 0; h < H; h++)
            _mm_storeu_ps(s + h * ss + j, _mm_mul_ps(reduce4(acc[h][0], acc[h][1], acc[h][2], acc[h][3]), sc));
    }
    for (; j < n; j++) {
        const float *kj = k + j * ks;
        __m256 acc[MAX_GROUP];
        for (int h = 0; h < H; h++) acc[h] = _mm256_setzero_ps();
        for (int64_t i = 0; i < hd; i += 8) {
            const __m256 x = _mm256_loadu_ps(kj + i);
            for (int h = 0; h < H; h++) acc[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * hd + i), x, acc[h]);
        }
        for (int h = 0; h < H; h++) s[h * ss + j] = hsum8(acc[h]) * scale;
    }
}

/// Replaces the n scores at s by their softmax weights (f16-rounded when asked).
ALWAYS_INLINE void softmax(float *s, int64_t n, int round_f16) {
    __m256 m8 = _mm256_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) m8 = _mm256_max_ps(m8, _mm256_loadu_ps(s + j));
    float m = -INFINITY;
    {
        float lanes[8];
        _mm256_storeu_ps(lanes, m8);
        for (int l = 0; l < 8; l++) m = lanes[l] > m ? lanes[l] : m;
        for (; j < n; j++) m = s[j] > m ? s[j] : m;
    }
    const __m256 mv = _mm256_set1_ps(m);
    __m256 sum8 = _mm256_setzero_ps();
    for (j = 0; j + 8 <= n; j += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
        _mm256_storeu_ps(s + j, e);
        sum8 = _mm256_add_ps(sum8, e);
    }
    if (j < n) {
        const __m256i mask = tail_mask(n - j);
        const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(s + j, mask), mv)),
                                       _mm256_castsi256_ps(mask));
        _mm256_maskstore_ps(s + j, mask, e);
        sum8 = _mm256_add_ps(sum8, e);
    }
    const __m256 inv = _mm256_set1_ps(1 / hsum8(sum8));
    for (j = 0; j < n; j += 8) {
        const __m256i mask = tail_mask(n - j < 8 ? n - j : 8);
        __m256 p = _mm256_mul_ps(_mm256_maskload_ps(s + j, mask), inv);
        if (round_f16) p = _mm256_cvtph_ps(_mm256_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm256_maskstore_ps(s + j, mask, p);
    }
}

/// o[c0 ..< c0 + 8A] = Σ_j p_j · v_j[c0 ..< c0 + 8A]: one column strip of A accumulators (independent
/// FMA chains), so each strip of a V row is loaded once and used for all A chains.
ALWAYS_INLINE void pv_strip(const float *p, const float *v, int64_t vs, int64_t n, int64_t c0, int A, float *o) {
    __m256 acc[8];
    for (int a = 0; a < A; a++) acc[a] = _mm256_setzero_ps();
    const float *vj = v + c0;
    for (int64_t j = 0; j < n; j++, vj += vs) {
        const __m256 pj = _mm256_broadcast_ss(p + j);
        for (int a = 0; a < A; a++) acc[a] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8 * a), acc[a]);
    }
    for (int a = 0; a < A; a++) _mm256_storeu_ps(o + c0 + 8 * a, acc[a]);
}

/// o = Σ_j p_j · v_j over head_dim in strips of 64 columns (8 accumulators: enough chains to hide FMA
/// latency), then one narrower strip. One head at a time: strips shared by 2-3 heads (fewer columns per
/// pass, so two passes over each V row) measured slower once V comes from DRAM.
ALWAYS_INLINE void pv(const float *p, const float *v, int64_t vs, int64_t n, int64_t hd, float *o) {
    int64_t c0 = 0;
    for (; c0 + 64 <= hd; c0 += 64) pv_strip(p, v, vs, n, c0, 8, o);
    // A constant width per case so the accumulators stay in registers.
    switch ((hd - c0) / 8) {
    case 0: break;
    case 1: pv_strip(p, v, vs, n, c0, 1, o); break;
    case 2: pv_strip(p, v, vs, n, c0, 2, o); break;
    case 3: pv_strip(p, v, vs, n, c0, 3, o); break;
    case 4: pv_strip(p, v, vs, n, c0, 4, o); break;
    case 5: pv_strip(p, v, vs, n, c0, 5, o); break;
    case 6: pv_strip(p, v, vs, n, c0, 6, o); break;
    default: pv_strip(p, v, vs, n, c0, 7, o); break;
    }
}

/// H (constant) heads: scores, softmax, P·V. q has already been rounded if asked.
ALWAYS_INLINE void group(const float *q, const float *k, const float *v, int64_t ks, int64_t n, int64_t hd, int H,
                         float scale, int round_f16, float *s, float *o) {
    if (hd == 64) scores(q, k, ks, n, 64, H, scale, s, n);
    else scores(q, k, ks, n, hd, H, scale, s, n);
    for (int h = 0; h < H; h++) {
        softmax(s + h * n, n, round_f16);
        if (hd == 64) pv(s + h * n, v, ks, n, 64, o + h * 64);
        else pv(s + h * n, v, ks, n, hd, o + h * hd);
    }
}

void lorad_avx2_attention(const float *q, int64_t heads, const float *k, const float *v, int64_t kv_stride,
                          int64_t n, int64_t head_dim, float scale, int round_f16, float *scratch, float *out) {
    if (head_dim % 8 != 0 || n < 1) {
        lorad_portable_attention(q, heads, k, v, kv_stride, n, head_dim, scale, round_f16, scratch, out);
        return;
    }
    // Scratch: heads × n scores, then heads × head_dim of f16-rounded q.
    float *s = scratch, *qr = scratch + heads * n;
    if (round_f16) {
        int64_t i = 0;
        for (; i + 8 <= heads * head_dim; i += 8)
            _mm256_storeu_ps(qr + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(q + i),
                                                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
        q = qr;
    }
    for (int64_t h0 = 0; h0 < heads; h0 += MAX_GROUP) {
        const int64_t H = heads - h0 < MAX_GROUP ? heads - h0 : MAX_GROUP;
        const float *qh = q + h0 * head_dim;
        float *sh = s + h0 * n, *oh = out + h0 * head_dim;
        switch (H) {
        case 1: group(qh, k, v, kv_stride, n, head_dim, 1, scale, round_f16, sh, oh); break;
        case 2: group(qh, k, v, kv_stride, n, head_dim, 2, scale, round_f16, sh, oh); break;
        default: group(qh, k, v, kv_stride, n, head_dim, 3, scale, round_f16, sh, oh); break;
        }
    }
}

/// d[j·ds ..] += a_j · x for j in 0..<n (head_dim hd, a multiple of 8): x (8·A floats, A ≤ 8) in
/// registers, one row of d loaded and stored per j.
ALWAYS_INLINE void axpy_rows(const float *a, const float *x, int64_t n, int A, float *d, int64_t ds) {
    __m256 xv[8];
    for (int c = 0; c < A; c++) xv[c] = _mm256_loadu_ps(x + 8 * c);
    for (int64_t j = 0; j < n; j++) {
        const __m256 aj = _mm256_broadcast_ss(a + j);
        float *dj = d + j * ds;
        for (int c = 0; c < A; c++) _mm256_storeu_ps(dj + 8 * c, _mm256_fmadd_ps(aj, xv[c], _mm256_loadu_ps(dj + 8 * c)));
    }
}

/// One head of the backward pass (see lorad_avx2_attention_backward), head_dim hd (a multiple of 8,
/// a constant where inlined).
ALWAYS_INLINE void backward_head(const float *q, const float *dout, int64_t qs, const float *k, const float *v, int64_t ks,
                                 int64_t n, int64_t hd, float scale, float *p, float *dp, float *dq, float *dk, float *dv) {
    const __m256 sc = _mm256_set1_ps(scale);
    for (int64_t i = 0; i < n; i++) {
        const float *qi = q + i * qs, *doi = dout + i * qs;
        float *dqi = dq + i * qs;
        const int64_t m = i + 1;
        scores(qi, k, ks, m, hd, 1, scale, p, m);
        softmax(p, m, 0);
        scores(doi, v, ks, m, hd, 1, 1, dp, m);
        __m256 dot8 = _mm256_setzero_ps();
        int64_t j = 0;
        for (; j + 8 <= m; j += 8) dot8 = _mm256_fmadd_ps(_mm256_loadu_ps(p + j), _mm256_loadu_ps(dp + j), dot8);
        float dot = hsum8(dot8);
        for (; j < m; j++) dot += p[j] * dp[j];
        // dp becomes scale · ds.
        const __m256 dotv = _mm256_set1_ps(dot);
        for (j = 0; j + 8 <= m; j += 8)
            _mm256_storeu_ps(dp + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(p + j),
                                                                 _mm256_sub_ps(_mm256_loadu_ps(dp + j), dotv)), sc));
        for (; j < m; j++) dp[j] = p[j] * (dp[j] - dot) * scale;
        pv(dp, k, ks, m, hd, dqi);
        for (int64_t c0 = 0; c0 < hd; c0 += 64) {
            const int A = (int)((hd - c0 < 64 ? hd - c0 : 64) / 8);
            axpy_rows(dp, qi + c0, m, A, dk + c0, ks);
            axpy_rows(p, doi + c0, m, A, dv + c0, ks);
        }
    }
}

void lorad_avx2_attention_backward(const float *q, const float *dout, int64_t q_stride, int64_t heads, const float *k,
                                   const float *v, int64_t kv_stride, int64_t n, int64_t head_dim, float scale,
                                   float *scratch, float *dq, float *dk, float *dv) {
    if (head_dim % 8 != 0) {
        lorad_portable_attention_backward(q, dout, q_stride, heads, k, v, kv_stride, n, head_dim, scale, scratch, dq, dk, dv);
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        memset(dk + j * kv_stride, 0, (size_t)head_dim * sizeof(float));
        memset(dv + j * kv_stride, 0, (size_t)head_dim * sizeof(float));
    }
    float *p = scratch, *dp = scratch + n;
    for (int64_t h = 0; h < heads; h++) {
        const int64_t o = h * head_dim;
        if (head_dim == 64) backward_head(q + o, dout + o, q_stride, k, v, kv_stride, n, 64, scale, p, dp, dq + o, dk, dv);
        else backward_head(q + o, dout + o, q_stride, k, v, kv_stride, n, head_dim, scale, p, dp, dq + o, dk, dv);
    }
}

#pragma clang attribute pop
#else
void lorad_avx2_attention(const float *q, int64_t heads, const float *k, const float *v, int64_t kv_stride,
                          int64_t n, int64_t head_dim, float scale, int round_f16, float *scratch, float *out) {
    lorad_portable_attention(q, heads, k, v, kv_stride, n, head_dim, scale, round_f16, scratch, out);
}
void lorad_avx2_attention_backward(const float *q, const float *dout, int64_t q_stride, int64_t heads, const float *k,
                                   const float *v, int64_t kv_stride, int64_t n, int64_t head_dim, float scale,
                                   float *scratch, float *dq, float *dk, float *dv) {
    lorad_portable_attention_backward(q, dout, q_stride, heads, k, v, kv_stride, n, head_dim, scale, scratch, dq, dk, dv);
}
#endif

// llama.cpp-numerics kernels: activations quantized to Q8_0/Q8_1 blocks (as ggml's AVX2
// quantize_row_q8_0/q8_1: d = amax/127, id = 127/amax, round half to even, d stored as f16 and, for
// Q8_1, s = fp16(d · Σq)), and weight-block × activation-block integer dots for Q4_0, Q4_1 and Q8_0.
//
// The AVX2 dots are ports of ggml's ggml_vec_dot_q4_0_q8_0 / q4_1_q8_1 / q8_0_q8_0 (arch/x86/quants.c):
// nibbles unpacked to bytes, _mm256_maddubs_epi16 (unsigned × signed bytes, pairwise into int16; for
// signed × signed the sign of x is moved onto y first) and _mm256_madd_epi16 with ones give 8 exact
// int32 partial sums per block, converted to float and accumulated as d_w·d_a·sum with FMA. The integer
// block dot is exact, so results differ from MatMulQ8.swift's scalar version only in float summation
// order. The portable twins do the integer dot with plain C loops.
#include "CKernels.h"
#include <string.h>
#include "f16_soft.h"
#include <math.h>

#pragma clang fp contract(off)
static inline void quantize_q8(const float *x, int64_t count, lorad_q8_block *blocks) {
    for (int64_t b = 0; b < count / 32; b++) {
        const float *v = x + 32 * b;
        float amax = 0;
        for (int j = 0; j < 32; j++) { const float a = fabsf(v[j]); amax = amax > a ? amax : a; }
        const float d = amax / 127.0f;
        const float id = amax != 0 ? 127.0f / amax : 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) {
            int32_t c = (int32_t)nearbyintf(v[j] * id);  // default rounding mode: half to even
            sum += c;
            blocks[b].q[j] = (int8_t)(c > 127 ? 127 : c < -128 ? -128 : c);
        }
        blocks[b].d = lorad_f16_to_f32_soft(lorad_f32_to_f16_rne(d));
        blocks[b].s = lorad_f16_to_f32_soft(lorad_f32_to_f16_rne(d * (float)sum));
    }
}

void lorad_portable_quantize_q8(const float *x, int64_t count, lorad_q8_block *blocks) {
    quantize_q8(x, count, blocks);
}

// ---------------------------------------------------------------- portable dots

static float dot_block_portable(lorad_ggml_type type, const uint8_t *w, const lorad_q8_block *a) {
    int32_t sumi = 0;
    switch (type) {
    case LORAD_TYPE_Q4_0:
        for (int j = 0; j < 16; j++)
            sumi += ((w[2 + j] & 0x0F) - 8) * a->q[j] + ((w[2 + j] >> 4) - 8) * a->q[j + 16];
        return lorad_f16_at(w) * a->d * (float)sumi;
    case LORAD_TYPE_Q4_1:
        for (int j = 0; j < 16; j++) sumi += (w[4 + j] & 0x0F) * a->q[j] + (w[4 + j] >> 4) * a->q[j + 16];
        return lorad_f16_at(w) * a->d * (float)sumi;
    default:  // LORAD_TYPE_Q8_0
        for (int j = 0; j < 32; j++) sumi += (int8_t)w[2 + j] * a->q[j];
        return lorad_f16_at(w) * a->d * (float)sumi;
    }
}

int lorad_portable_matmul_q8_rows(lorad_ggml_type type, const void *w, int64_t rb, int64_t cols, int64_t r0, int64_t r1,
                                  const lorad_q8_block *a, int64_t T, float *y, int64_t ys) {
    if (type != LORAD_TYPE_Q4_0 && type != LORAD_TYPE_Q4_1 && type != LORAD_TYPE_Q8_0) return 0;
    const int bb = type == LORAD_TYPE_Q4_0 ? 18 : type == LORAD_TYPE_Q4_1 ? 20 : 34;
    const int64_t nb = cols / 32;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w + r * rb;
        for (int64_t t = 0; t < T; t++) {
            const lorad_q8_block *at = a + t * nb;
            float acc = 0, mins = 0;
            for (int64_t b = 0; b < nb; b++) {
                acc += dot_block_portable(type, row + b * bb, at + b);
                if (type == LORAD_TYPE_Q4_1) mins += lorad_f16_at(row + b * bb + 2) * at[b].s;
            }
            y[t * ys + r] = acc + mins;
        }
    }
    return 1;
}

// ---------------------------------------------------------------- AVX2 (ggml ports)

#if defined(__x86_64__)
#include <immintrin.h>
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

/// ggml's AVX2 quantize_row_q8_1: the same products v · id and round-half-to-even as quantize_q8
/// above, 8 lanes at a time (so the blocks are bit-identical), without a libm call per value.
void lorad_avx2_quantize_q8(const float *x, int64_t count, lorad_q8_block *blocks) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < count / 32; b++) {
        const float *v = x + 32 * b;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
        __m256 v2 = _mm256_loadu_ps(v + 16), v3 = _mm256_loadu_ps(v + 24);
        __m256 m = _mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1));
        m = _mm256_max_ps(m, _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = amax != 0 ? 127.0f / amax : 0.0f;
        const __m256 mul = _mm256_set1_ps(id);
        const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s4 = _mm_add_epi32(_mm256_extracti128_si256(s, 1), _mm256_castsi256_si128(s));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
        const int32_t sum = _mm_cvtsi128_si32(s4);
        // packs saturate exactly as the scalar clamp does; the permute undoes packs' lane interleave.
        __m256i q = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        q = _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)blocks[b].q, q);
        blocks[b].d = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
        blocks[b].s = _cvtsh_ss(_cvtss_sh(d * (float)sum, _MM_FROUND_TO_NEAREST_INT));
    }
}

static inline __m256i bytes_from_nibbles_32(const uint8_t *p) {
    const __m128i tmp = _mm_loadu_si128((const __m128i *)p);
    const __m256i bytes = _mm256_set_m128i(_mm_srli_epi16(tmp, 4), tmp);
    return _mm256_and_si256(_mm256_set1_epi8(0x0F), bytes);
}
static inline __m256 sum_i16_pairs_float(__m256i x) {
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), x));
}
static inline __m256 mul_sum_us8_pairs_float(__m256i ax, __m256i sy) {
    return sum_i16_pairs_float(_mm256_maddubs_epi16(ax, sy));
}
static inline __m256 mul_sum_i8_pairs_float(__m256i x, __m256i y) {
    return mul_sum_us8_pairs_float(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}
static inline float hsum_float_8(__m256 x) {
    __m128 res = _mm256_extractf128_ps(x, 1);
    res = _mm_add_ps(res, _mm256_castps256_ps128(x));
    res = _mm_add_ps(res, _mm_movehl_ps(res, res));
    res = _mm_add_ss(res, _mm_movehdup_ps(res));
    return _mm_cvtss_f32(res);
}

/// One row × NT (1..4) tokens; weights unpacked once per block and reused for every token.
static inline __attribute__((always_inline)) void q8_tile(lorad_ggml_type type, int bb, const uint8_t *row, int64_t nb,
                                                          const lorad_q8_block *a, float *out, int64_t ys,
                                                          const int NT) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    float mins[4] = {0, 0, 0, 0};
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *w = row + b * bb;
        const float dw = _cvtsh_ss(*(const uint16_t *)w);
        __m256i qx;
        if (type == LORAD_TYPE_Q4_0) qx = _mm256_sub_epi8(bytes_from_nibbles_32(w + 2), _mm256_set1_epi8(8));
        else if (type == LORAD_TYPE_Q4_1) qx = bytes_from_nibbles_32(w + 4);
        else qx = _mm256_loadu_si256((const __m256i *)(w + 2));
        // For signed weights move the sign onto the activations once per block (shared by the tokens).
        const __m256i ax = type == LORAD_TYPE_Q4_1 ? qx : _mm256_sign_epi8(qx, qx);
        const float mw = type == LORAD_TYPE_Q4_1 ? _cvtsh_ss(*(const uint16_t *)(w + 2)) : 0;
        for (int k = 0; k < NT; k++) {
            const lorad_q8_block *ab = a + k * nb + b;
            const __m256i qy = _mm256_loadu_si256((const __m256i *)ab->q);
            const __m256i sy = type == LORAD_TYPE_Q4_1 ? qy : _mm256_sign_epi8(qy, qx);
            const __m256 q = mul_sum_us8_pairs_float(ax, sy);
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * ab->d), q, acc[k]);
            if (type == LORAD_TYPE_Q4_1) mins[k] += mw * ab->s;
        }
    }
    for (int k = 0; k < NT; k++) out[k * ys] = hsum_float_8(acc[k]) + mins[k];
}

#define Q8_ROWS(NAME, TYPE, BB)                                                                          \
    static void NAME(const uint8_t *w, int64_t rb, int64_t nb, int64_t r0, int64_t r1,                   \
                     const lorad_q8_block *a, int64_t T, float *y, int64_t ys) {                         \
        for (int64_t r = r0; r < r1; r++) {                                                              \
            const uint8_t *row = w + r * rb;                                                             \
            int64_t t = 0;                                                                               \
            for (; t + 4 <= T; t += 4) q8_tile(TYPE, BB, row, nb, a + t * nb, y + t * ys + r, ys, 4);    \
            for (; t + 2 <= T; t += 2) q8_tile(TYPE, BB, row, nb, a + t * nb, y + t * ys + r, ys, 2);    \
            for (; t < T; t++) q8_tile(TYPE, BB, row, nb, a + t * nb, y + t * ys + r, ys, 1);            \
        }                                                                                                \
    }
Q8_ROWS(q8rows_q4_0, LORAD_TYPE_Q4_0, 18)
Q8_ROWS(q8rows_q4_1, LORAD_TYPE_Q4_1, 20)
Q8_ROWS(q8rows_q8_0, LORAD_TYPE_Q8_0, 34)

int lorad_avx2_matmul_q8_rows(lorad_ggml_type type, const void *w, int64_t rb, int64_t cols, int64_t r0, int64_t r1,
                              const lorad_q8_block *a, int64_t T, float *y, int64_t ys) {
    const uint8_t *wb = (const uint8_t *)w;
    switch (type) {
    case LORAD_TYPE_Q4_0: q8rows_q4_0(wb, rb, cols / 32, r0, r1, a, T, y, ys); return 1;
    case LORAD_TYPE_Q4_1: q8rows_q4_1(wb, rb, cols / 32, r0, r1, a, T, y, ys); return 1;
    case LORAD_TYPE_Q8_0: q8rows_q8_0(wb, rb, cols / 32, r0, r1, a, T, y, ys); return 1;
    default: return 0;
    }
}
#pragma clang attribute pop
#else
void lorad_avx2_quantize_q8(const float *x, int64_t count, lorad_q8_block *blocks) { quantize_q8(x, count, blocks); }
int lorad_avx2_matmul_q8_rows(lorad_ggml_type type, const void *w, int64_t rb, int64_t cols, int64_t r0, int64_t r1,
                              const lorad_q8_block *a, int64_t T, float *y, int64_t ys) { return 0; }
#endif

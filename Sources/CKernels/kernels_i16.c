// Weight × activation dots with activations quantized to int16 (MatMulStrategy.int16; an option, not
// the default: on Zen 3 it measured no faster than the exact f32 fused kernels, see MatMulTuning).
//
// Each 32-value activation block is stored as q = round_half_even(x · 32767/amax) with its f32 scale
// d = amax/32767 and the exact f32 block sum s = Σx. The rounding error per value is at most d/2 =
// amax/65534 (relative 1.5e-5 of the block's largest value), ~250× below llama.cpp's int8 activations,
// and far below what the 0.02-nat logit budget allows (see MatMulI16Tests for the stated bound).
// Weights are widened from 4/8 bits to int16 and multiplied with vpmaddwd (16 int16 pairs summed
// pairwise into 8 exact int32), so a 32-element block costs 2 vpmaddwd + 1 convert + 1 FMA per token
// instead of 4 int→float conversions + 5 FMAs for the f32 path. Block results (exact integers) are
// scaled by d_w·d_x in f32; Q4_1's offset term is m·s per block.
//
// Supported weight types: Q4_0, Q4_1, Q8_0 (the AVX2 and the portable twin compute the same exact
// integer block dots; only the f32 summation order differs).
#include "CKernels.h"
#include <math.h>
#include <string.h>
#include "f16_soft.h"


#pragma clang fp contract(off)
static inline void quantize_q16(const float *x, int64_t count, lorad_q16_block *blocks) {
    for (int64_t b = 0; b < count / 32; b++) {
        const float *v = x + 32 * b;
        float amax = 0, s = 0;
        for (int j = 0; j < 32; j++) { const float a = fabsf(v[j]); amax = amax > a ? amax : a; }
        for (int j = 0; j < 32; j++) s += v[j];
        const float id = amax != 0 ? 32767.0f / amax : 0.0f;
        for (int j = 0; j < 32; j++) {
            const int32_t c = (int32_t)nearbyintf(v[j] * id);
            blocks[b].q[j] = (int16_t)(c > 32767 ? 32767 : c < -32767 ? -32767 : c);
        }
        blocks[b].d = amax / 32767.0f;
        blocks[b].s = s;
    }
}

void lorad_portable_quantize_q16(const float *x, int64_t count, lorad_q16_block *blocks) {
    quantize_q16(x, count, blocks);
}

int lorad_portable_matmul_q16_rows(int type, const void *w, int64_t rb, int64_t cols, int64_t r0, int64_t r1,
                                   const lorad_q16_block *a, int64_t T, float *y, int64_t ys) {
    if (type != 2 && type != 3 && type != 8) return 0;
    const int bb = type == 2 ? 18 : type == 3 ? 20 : 34;
    const int64_t nb = cols / 32;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w + r * rb;
        for (int64_t t = 0; t < T; t++) {
            const lorad_q16_block *at = a + t * nb;
            float acc = 0, mins = 0;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + b * bb;
                int32_t sumi = 0;
                if (type == 2) {
                    for (int j = 0; j < 16; j++)
                        sumi += ((blk[2 + j] & 0x0F) - 8) * at[b].q[j] + ((blk[2 + j] >> 4) - 8) * at[b].q[j + 16];
                } else if (type == 3) {
                    for (int j = 0; j < 16; j++)
                        sumi += (blk[4 + j] & 0x0F) * at[b].q[j] + (blk[4 + j] >> 4) * at[b].q[j + 16];
                    mins += lorad_f16_at(blk + 2) * at[b].s;
                } else {
                    for (int j = 0; j < 32; j++) sumi += (int8_t)blk[2 + j] * at[b].q[j];
                }
                acc += lorad_f16_at(blk) * at[b].d * (float)sumi;
            }
            y[t * ys + r] = acc + mins;
        }
    }
    return 1;
}

#if defined(__x86_64__)
#include <immintrin.h>
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

void lorad_avx2_quantize_q16(const float *x, int64_t count, lorad_q16_block *blocks) {
    quantize_q16(x, count, blocks);
}

static inline float hsum8_i16(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/// One row × NT (1..8) tokens: the widened weights stay in two registers for all NT tokens.
static inline __attribute__((always_inline)) void q16_tile(int type, int bb, const uint8_t *row, int64_t nb,
                                                           const lorad_q16_block *a, float *out, int64_t ys,
                                                           const int NT) {
    __m256 acc[8];
    float mins[8];
    for (int k = 0; k < NT; k++) { acc[k] = _mm256_setzero_ps(); mins[k] = 0; }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + b * bb;
        const float dw = _cvtsh_ss(*(const uint16_t *)blk);
        __m256i w0, w1;  // elements 0-15 and 16-31 as int16
        if (type == 8) {
            w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 2)));
            w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 18)));
        } else {
            const __m128i q = _mm_loadu_si128((const __m128i *)(blk + (type == 3 ? 4 : 2)));
            const __m128i m4 = _mm_set1_epi8(0x0F);
            w0 = _mm256_cvtepu8_epi16(_mm_and_si128(q, m4));
            w1 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(q, 4), m4));
            if (type == 2) {
                w0 = _mm256_sub_epi16(w0, _mm256_set1_epi16(8));
                w1 = _mm256_sub_epi16(w1, _mm256_set1_epi16(8));
            }
        }
        const float mw = type == 3 ? _cvtsh_ss(*(const uint16_t *)(blk + 2)) : 0;
        for (int k = 0; k < NT; k++) {
            const lorad_q16_block *ab = a + k * nb + b;
            const __m256i p = _mm256_add_epi32(
                _mm256_madd_epi16(w0, _mm256_loadu_si256((const __m256i *)ab->q)),
                _mm256_madd_epi16(w1, _mm256_loadu_si256((const __m256i *)(ab->q + 16))));
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * ab->d), _mm256_cvtepi32_ps(p), acc[k]);
            if (type == 3) mins[k] += mw * ab->s;
        }
    }
    for (int k = 0; k < NT; k++) out[k * ys] = hsum8_i16(acc[k]) + mins[k];
}

#define Q16_ROWS(NAME, TYPE, BB)                                                                         \
    static void NAME(const uint8_t *w, int64_t rb, int64_t nb, int64_t r0, int64_t r1,                   \
                     const lorad_q16_block *a, int64_t T, float *y, int64_t ys) {                        \
        for (int64_t r = r0; r < r1; r++) {                                                              \
            const uint8_t *row = w + r * rb;                                                             \
            int64_t t = 0;                                                                               \
            for (; t + 8 <= T; t += 8) q16_tile(TYPE, BB, row, nb, a + t * nb, y + t * ys + r, ys, 8);   \
            for (; t + 4 <= T; t += 4) q16_tile(TYPE, BB, row, nb, a + t * nb, y + t * ys + r, ys, 4);   \
            for (; t < T; t++) q16_tile(TYPE, BB, row, nb, a + t * nb, y + t * ys + r, ys, 1);           \
        }                                                                                                \
    }
Q16_ROWS(q16rows_q4_0, 2, 18)
Q16_ROWS(q16rows_q4_1, 3, 20)
Q16_ROWS(q16rows_q8_0, 8, 34)

int lorad_avx2_matmul_q16_rows(int type, const void *w, int64_t rb, int64_t cols, int64_t r0, int64_t r1,
                               const lorad_q16_block *a, int64_t T, float *y, int64_t ys) {
    const uint8_t *wb = (const uint8_t *)w;
    switch (type) {
    case 2: q16rows_q4_0(wb, rb, cols / 32, r0, r1, a, T, y, ys); return 1;
    case 3: q16rows_q4_1(wb, rb, cols / 32, r0, r1, a, T, y, ys); return 1;
    case 8: q16rows_q8_0(wb, rb, cols / 32, r0, r1, a, T, y, ys); return 1;
    default: return 0;
    }
}
#pragma clang attribute pop
#else
void lorad_avx2_quantize_q16(const float *x, int64_t count, lorad_q16_block *blocks) { quantize_q16(x, count, blocks); }
int lorad_avx2_matmul_q16_rows(int type, const void *w, int64_t rb, int64_t cols, int64_t r0, int64_t r1,
                               const lorad_q16_block *a, int64_t T, float *y, int64_t ys) { return 0; }
#endif

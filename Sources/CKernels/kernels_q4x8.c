// Q4_1 weights repacked 8 rows at a time ("Q4_1x8"), multiplied by Q8_1 activations.
//
// Why: with the stored layout each (row, block, token) dot needs its own unpack, maddubs, madd,
// int→float conversion and two scalar scale products, ~9 vector ops per 32 weights per token; that
// is what limits a 16-sequence decode batch (the weights are already in cache there). Interleaving 8
// rows lets one maddubs multiply 4 weights of each of 8 rows by 4 broadcast activations, the 8
// maddubs of a block add up in int16 without overflow (8 · 2 · 15 · 128 = 30720 < 32767), and a
// single madd, conversion and two FMAs then finish the block for all 8 rows: ~3.5 ops per 32 weights
// per token. It is the idea of ggml's Q4_0 8x8 repack (ggml-cpu/repack.cpp), done for Q4_1, which
// llama.cpp does not repack.
//
// Layout, per group of 8 rows g and block b (32 elements), 160 bytes at (g · blocks + b) · 160:
//   [0, 16)    d of rows 8g … 8g+7, f16
//   [16, 32)   m of the same rows, f16
//   [32, 160)  4 chunks of 32 bytes; chunk c, byte 4i + j = byte 4c + j of row i's 16 code bytes,
//              so its low nibble is element 4c + j and its high nibble element 16 + 4c + j.
// A group past the last row is padded with zero blocks (d = m = 0), and its rows are never written.
//
// Integer block dots are exact, so results equal matmul_q8_rows' up to float summation order: per
// row, (d_w·d_a)·Σq + m_w·s_a is accumulated block after block.
//
// Q8_0 ("Q8_0x8", for the tied embedding / LM head, ~20% of a token's multiply-adds) gets the same
// treatment with 272-byte groups: d of the 8 rows (f16, 16 bytes), then 8 chunks of 32 bytes, chunk k
// byte 4i + j = code 4k + j of row i. Signed × signed bytes need ggml's sign trick (|w| unsigned,
// the sign moved onto the activations), and a pair sum can reach 2 · 127 · 128, so each maddubs is
// widened with its own madd: ~5 ops per 4 weights × 8 rows instead of the stored layout's ~8 per 32.
#include "CKernels.h"
#include <string.h>
#include "f16_soft.h"

#define GROUP_BYTES 160
#define GROUP8_BYTES 272

// What differs between the two layouts, for the repack and decode code they share: the stored block
// (d, [m,] codes), the packed group (8 d's, [8 m's,] then the interleaved 4-byte code chunks).
typedef struct {
    int q4;              // 1: Q4_1 (nibble codes and a min m), 0: Q8_0 (signed byte codes)
    int64_t group_bytes; // packed bytes per 8 rows × one block
    int64_t src_block;   // stored bytes per block
    int src_codes;       // offset of the codes in a stored block
    int dst_codes;       // offset of the code chunks in a packed group
    int chunks;          // 4-byte code chunks per row and block
} x8_layout;

static const x8_layout Q4_1X8 = {1, GROUP_BYTES, 20, 4, 32, 4};
static const x8_layout Q8_0X8 = {0, GROUP8_BYTES, 34, 2, 16, 8};

static void repack_x8(const x8_layout *L, const void *w, int64_t row_bytes, int64_t rows, int64_t cols, void *dst) {
    const int64_t nb = cols / 32, groups = (rows + 7) / 8;
    uint8_t *out = (uint8_t *)dst;
    for (int64_t g = 0; g < groups; g++) {
        for (int64_t b = 0; b < nb; b++, out += L->group_bytes) {
            memset(out, 0, (size_t)L->group_bytes);
            for (int i = 0; i < 8 && 8 * g + i < rows; i++) {
                const uint8_t *src = (const uint8_t *)w + (8 * g + i) * row_bytes + b * L->src_block;
                memcpy(out + 2 * i, src, 2);
                if (L->q4) memcpy(out + 16 + 2 * i, src + 2, 2);
                for (int c = 0; c < L->chunks; c++) memcpy(out + L->dst_codes + 32 * c + 4 * i, src + L->src_codes + 4 * c, 4);
            }
        }
    }
}

/// Code e of row i in a packed block. Q4_1: chunk (e mod 16) / 4, byte 4i + e mod 4, nibble e / 16.
/// Q8_0: chunk e / 4, byte 4i + e mod 4.
static inline int code_at(const x8_layout *L, const uint8_t *blk, int i, int e) {
    if (L->q4) {
        const uint8_t byte = blk[32 + 32 * ((e & 15) >> 2) + 4 * i + (e & 3)];
        return e < 16 ? byte & 0x0F : byte >> 4;
    }
    return (int8_t)blk[16 + 32 * (e >> 2) + 4 * i + (e & 3)];
}

static void dequantize_x8(const x8_layout *L, const void *packed, int64_t cols, int64_t rows, int64_t r0, int64_t r1,
                          float *dst) {
    // The same arithmetic as the stored-layout decoders (kernels_impl.h): q · d (+ m), not fused.
#pragma clang fp contract(off)
    const int64_t nb = cols / 32;
    for (int64_t r = r0; r < r1 && r < rows; r++) {
        const int i = (int)(r & 7);
        const uint8_t *grp = (const uint8_t *)packed + (r >> 3) * nb * L->group_bytes;
        float *y = dst + (r - r0) * cols;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = grp + b * L->group_bytes;
            const float d = lorad_f16_at(blk + 2 * i);
            if (L->q4) {
                const float m = lorad_f16_at(blk + 16 + 2 * i);
                for (int e = 0; e < 32; e++) y[32 * b + e] = (float)code_at(L, blk, i, e) * d + m;
            } else {
                for (int e = 0; e < 32; e++) y[32 * b + e] = (float)code_at(L, blk, i, e) * d;
            }
        }
    }
}

int64_t lorad_q4_1x8_bytes(int64_t rows, int64_t cols) { return (rows + 7) / 8 * (cols / 32) * GROUP_BYTES; }
int64_t lorad_q8_0x8_bytes(int64_t rows, int64_t cols) { return (rows + 7) / 8 * (cols / 32) * GROUP8_BYTES; }

void lorad_q4_1x8_repack(const void *w, int64_t row_bytes, int64_t rows, int64_t cols, void *dst) {
    repack_x8(&Q4_1X8, w, row_bytes, rows, cols, dst);
}
void lorad_q8_0x8_repack(const void *w, int64_t row_bytes, int64_t rows, int64_t cols, void *dst) {
    repack_x8(&Q8_0X8, w, row_bytes, rows, cols, dst);
}
void lorad_q4_1x8_dequantize(const void *packed, int64_t cols, int64_t rows, int64_t r0, int64_t r1, float *dst) {
    dequantize_x8(&Q4_1X8, packed, cols, rows, r0, r1, dst);
}
void lorad_q8_0x8_dequantize(const void *packed, int64_t cols, int64_t rows, int64_t r0, int64_t r1, float *dst) {
    dequantize_x8(&Q8_0X8, packed, cols, rows, r0, r1, dst);
}

/// The plain reference of both layouts (and the kernel for CPUs without AVX2): row by row, token by
/// token, Σ_b d_w·d_a·Σ code·q (+ m_w·s_a for Q4_1).
static void portable_x8(const x8_layout *L, const void *packed, int64_t cols, int64_t rows, int64_t g0, int64_t g1,
                        const lorad_q8_block *a, int64_t T, float *y, int64_t ys) {
    const int64_t nb = cols / 32, gb = L->group_bytes;
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *grp = (const uint8_t *)packed + g * nb * gb;
        for (int i = 0; i < 8 && 8 * g + i < rows; i++) {
            for (int64_t t = 0; t < T; t++) {
                float acc = 0;
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *blk = grp + b * gb;
                    const lorad_q8_block *ab = a + t * nb + b;
                    int32_t sumi = 0;
                    for (int e = 0; e < 32; e++) sumi += code_at(L, blk, i, e) * ab->q[e];
                    acc += lorad_f16_at(blk + 2 * i) * ab->d * (float)sumi;
                    if (L->q4) acc += lorad_f16_at(blk + 16 + 2 * i) * ab->s;
                }
                y[t * ys + 8 * g + i] = acc;
            }
        }
    }
}

int lorad_portable_matmul_q8_q4_1x8(const void *packed, int64_t cols, int64_t rows, int64_t g0, int64_t g1,
                                    const lorad_q8_block *a, int64_t T, float *y, int64_t ys) {
    portable_x8(&Q4_1X8, packed, cols, rows, g0, g1, a, T, y, ys);
    return 1;
}

int lorad_portable_matmul_q8_q8_0x8(const void *packed, int64_t cols, int64_t rows, int64_t g0, int64_t g1,
                                    const lorad_q8_block *a, int64_t T, float *y, int64_t ys) {
    portable_x8(&Q8_0X8, packed, cols, rows, g0, g1, a, T, y, ys);
    return 1;
}

#if defined(__x86_64__)
#include <immintrin.h>
#ifndef PF_AHEAD
#define PF_AHEAD 2048
#endif
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

/// Writes group g's 8 results for each of NT tokens, leaving out the padding rows past `rows`.
static inline __attribute__((always_inline)) void store_group(const __m256 *acc, int NT, int64_t g, int64_t rows,
                                                              float *y, int64_t ys) {
    const int64_t r = 8 * g;
    for (int k = 0; k < NT; k++) {
        if (r + 8 <= rows) {
            _mm256_storeu_ps(y + k * ys + r, acc[k]);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, acc[k]);
            for (int i = 0; r + i < rows; i++) y[k * ys + r + i] = tmp[i];
        }
    }
}

/// Group g (8 rows) × NT (1..4) tokens starting at `a`, results to y (token stride ys).
static inline __attribute__((always_inline)) void q4x8_tile(const uint8_t *packed, int64_t nb, int64_t rows,
                                                            int64_t g, const lorad_q8_block *a,
                                                            float *y, int64_t ys, const int NT) {
    const __m256i low = _mm256_set1_epi8(0x0F);
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *blk = packed + g * nb * GROUP_BYTES;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; b++, blk += GROUP_BYTES) {
        _mm_prefetch((const char *)(blk + PF_AHEAD), _MM_HINT_NTA);
        _mm_prefetch((const char *)(blk + PF_AHEAD + 64), _MM_HINT_NTA);
        _mm_prefetch((const char *)(blk + PF_AHEAD + 128), _MM_HINT_NTA);
        __m256i s16[4];
        for (int c = 0; c < 4; c++) {
            const __m256i chunk = _mm256_loadu_si256((const __m256i *)(blk + 32 + 32 * c));
            const __m256i lo = _mm256_and_si256(chunk, low);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(chunk, 4), low);
            for (int k = 0; k < NT; k++) {
                const int8_t *q = a[k * nb + b].q;
                int32_t ql, qh;
                memcpy(&ql, q + 4 * c, 4);
                memcpy(&qh, q + 16 + 4 * c, 4);
                const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(ql)),
                                                   _mm256_maddubs_epi16(hi, _mm256_set1_epi32(qh)));
                s16[k] = c == 0 ? p : _mm256_add_epi16(s16[k], p);
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        const __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16)));
        for (int k = 0; k < NT; k++) {
            const lorad_q8_block *ab = a + k * nb + b;
            const __m256 sumi = _mm256_cvtepi32_ps(_mm256_madd_epi16(s16[k], ones));
            acc[k] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(ab->d)), sumi, acc[k]);
            acc[k] = _mm256_fmadd_ps(mw, _mm256_set1_ps(ab->s), acc[k]);
        }
    }
    store_group(acc, NT, g, rows, y, ys);
}

/// Q8_0x8: group g × NT (1..4) tokens.
static inline __attribute__((always_inline)) void q8x8_tile(const uint8_t *packed, int64_t nb, int64_t rows,
                                                            int64_t g, const lorad_q8_block *a,
                                                            float *y, int64_t ys, const int NT) {
    const __m256i ones = _mm256_set1_epi16(1);
    const uint8_t *blk = packed + g * nb * GROUP8_BYTES;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; b++, blk += GROUP8_BYTES) {
        for (int l = 0; l < GROUP8_BYTES; l += 64) _mm_prefetch((const char *)(blk + PF_AHEAD + l), _MM_HINT_NTA);
        __m256i s32[4];
        for (int k = 0; k < 8; k++) {
            const __m256i wq = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * k));
            const __m256i aw = _mm256_sign_epi8(wq, wq);
            for (int t = 0; t < NT; t++) {
                int32_t q4;
                memcpy(&q4, a[t * nb + b].q + 4 * k, 4);
                const __m256i sx = _mm256_sign_epi8(_mm256_set1_epi32(q4), wq);
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), ones);
                s32[t] = k == 0 ? p : _mm256_add_epi32(s32[t], p);
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        for (int t = 0; t < NT; t++) {
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(a[t * nb + b].d)),
                                     _mm256_cvtepi32_ps(s32[t]), acc[t]);
        }
    }
    store_group(acc, NT, g, rows, y, ys);
}

// The entry points: groups outermost, so a group's weights (nb · 160 or 272 bytes) stay in L1 while
// every tile of up to 4 tokens uses them.
#define X8_DRIVER(NAME, TILE)                                                                            \
    int NAME(const void *packed, int64_t cols, int64_t rows, int64_t g0, int64_t g1,                     \
             const lorad_q8_block *a, int64_t T, float *y, int64_t ys) {                                 \
        const uint8_t *p = (const uint8_t *)packed;                                                      \
        const int64_t nb = cols / 32;                                                                    \
        for (int64_t g = g0; g < g1; g++) {                                                              \
            int64_t t = 0;                                                                               \
            for (; t + 4 <= T; t += 4) TILE(p, nb, rows, g, a + t * nb, y + t * ys, ys, 4);              \
            if (T - t == 3) TILE(p, nb, rows, g, a + t * nb, y + t * ys, ys, 3);                         \
            else if (T - t == 2) TILE(p, nb, rows, g, a + t * nb, y + t * ys, ys, 2);                    \
            else if (T - t == 1) TILE(p, nb, rows, g, a + t * nb, y + t * ys, ys, 1);                    \
        }                                                                                                \
        return 1;                                                                                        \
    }
X8_DRIVER(lorad_avx2_matmul_q8_q4_1x8, q4x8_tile)
X8_DRIVER(lorad_avx2_matmul_q8_q8_0x8, q8x8_tile)
#pragma clang attribute pop
#else
int lorad_avx2_matmul_q8_q8_0x8(const void *packed, int64_t cols, int64_t rows, int64_t g0, int64_t g1,
                                const lorad_q8_block *a, int64_t T, float *y, int64_t ys) {
    return lorad_portable_matmul_q8_q8_0x8(packed, cols, rows, g0, g1, a, T, y, ys);
}
int lorad_avx2_matmul_q8_q4_1x8(const void *packed, int64_t cols, int64_t rows, int64_t g0, int64_t g1,
                                const lorad_q8_block *a, int64_t T, float *y, int64_t ys) {
    return lorad_portable_matmul_q8_q4_1x8(packed, cols, rows, g0, g1, a, T, y, ys);
}
#endif

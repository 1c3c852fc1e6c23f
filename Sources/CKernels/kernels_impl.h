// The f32-activation kernels, written once and compiled twice: kernels_avx2.c includes this file with
// every function targeted at AVX2/FMA/F16C (clang then lowers the 8-lane vectors below to YMM
// registers and fuses `a*b + c` into FMA), kernels_portable.c includes it for baseline x86-64 (SSE2)
// or any other CPU. The including file defines FN(name) (the exported name) and F16TOF32(u16).
//
// Decoders follow ggml-quants.c `dequantize_row_*` with the same f32 arithmetic in the same order
// (contraction to FMA switched off there), so they are bit-identical to Sources/Kernels/Weights/Dequantize*.swift.
// Dots: for the 32-element legacy types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) each block is decoded to its
// integer codes as floats in registers and dotted with up to 4 tokens at once:
//     W·x over a block = d · Σ code_j·x_j (+ m · Σ x_j for Q4_1/Q5_1, with Σx precomputed per token)
// so a block costs 4 code conversions + 4 FMAs + 1 FMA per token, with no store of decoded weights.
// With 8 tokens at once the block is instead decoded to weights in registers (w = d·code + m) and
// each token costs 4 FMAs.
// Other types (F32, F16, BF16, K-quants) decode a whole row into an L1-resident scratch once and dot it
// with each token, 4 tokens per pass over the row.

#include "CKernels.h"
#include <string.h>
#include <math.h>

// The helpers below pass 8-lane vectors by value but are always inlined, so the portable build's
// "AVX vector without AVX changes the ABI" warning does not apply.
#pragma clang diagnostic ignored "-Wpsabi"

typedef float v8f __attribute__((vector_size(32)));
typedef float v8f_u __attribute__((vector_size(32), aligned(1)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef uint32_t v8u32 __attribute__((vector_size(32)));
typedef uint8_t v16u8 __attribute__((vector_size(16)));
typedef uint8_t v16u8_u __attribute__((vector_size(16), aligned(1)));
typedef int8_t v16i8 __attribute__((vector_size(16)));
typedef uint8_t v8u8 __attribute__((vector_size(8)));
typedef uint8_t v8u8_u __attribute__((vector_size(8), aligned(1)));
typedef int8_t v8i8 __attribute__((vector_size(8)));
typedef int8_t v8i8_u __attribute__((vector_size(8), aligned(1)));

#define INL static inline __attribute__((always_inline))

INL uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
INL uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
INL float f16at(const uint8_t *p) { return F16TOF32(rd16(p)); }
INL v8f ld8(const float *p) { return *(const v8f_u *)p; }
INL float hsum8(v8f v) {
    float s0 = (v[0] + v[4]) + (v[1] + v[5]);
    float s1 = (v[2] + v[6]) + (v[3] + v[7]);
    return s0 + s1;
}
INL float bf16tof32(uint16_t h) { uint32_t b = (uint32_t)h << 16; float f; memcpy(&f, &b, 4); return f; }

// ---------------------------------------------------------------- decoders (exact, as ggml)

static void decode_row(lorad_ggml_type type, const uint8_t *src, int64_t count, float *y) {
#pragma clang fp contract(off)
    switch (type) {
    case LORAD_TYPE_F32: memcpy(y, src, (size_t)count * 4); return;
    case LORAD_TYPE_F16: for (int64_t i = 0; i < count; i++) y[i] = F16TOF32(rd16(src + 2 * i)); return;
    case LORAD_TYPE_BF16: for (int64_t i = 0; i < count; i++) y[i] = bf16tof32(rd16(src + 2 * i)); return;
    case LORAD_TYPE_Q4_0:
        for (int64_t b = 0; b < count / 32; b++, src += 18, y += 32) {
            const float d = f16at(src);
            for (int j = 0; j < 16; j++) {
                y[j] = (float)((src[2 + j] & 0x0F) - 8) * d;
                y[j + 16] = (float)((src[2 + j] >> 4) - 8) * d;
            }
        }
        return;
    case LORAD_TYPE_Q4_1:
        for (int64_t b = 0; b < count / 32; b++, src += 20, y += 32) {
            const float d = f16at(src), m = f16at(src + 2);
            for (int j = 0; j < 16; j++) {
                y[j] = (float)(src[4 + j] & 0x0F) * d + m;
                y[j + 16] = (float)(src[4 + j] >> 4) * d + m;
            }
        }
        return;
    case LORAD_TYPE_Q5_0:
        for (int64_t b = 0; b < count / 32; b++, src += 22, y += 32) {
            const float d = f16at(src);
            const uint32_t qh = rd32(src + 2);
            for (int j = 0; j < 16; j++) {
                const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
                y[j] = (float)(((src[6 + j] & 0x0F) | h0) - 16) * d;
                y[j + 16] = (float)(((src[6 + j] >> 4) | h1) - 16) * d;
            }
        }
        return;
    case LORAD_TYPE_Q5_1:
        for (int64_t b = 0; b < count / 32; b++, src += 24, y += 32) {
            const float d = f16at(src), m = f16at(src + 2);
            const uint32_t qh = rd32(src + 4);
            for (int j = 0; j < 16; j++) {
                const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
                y[j] = (float)((src[8 + j] & 0x0F) | h0) * d + m;
                y[j + 16] = (float)((src[8 + j] >> 4) | h1) * d + m;
            }
        }
        return;
    case LORAD_TYPE_Q8_0:
        for (int64_t b = 0; b < count / 32; b++, src += 34, y += 32) {
            const float d = f16at(src);
            for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)src[2 + j] * d;
        }
        return;
    case LORAD_TYPE_Q4_K:
    case LORAD_TYPE_Q5_K:
        for (int64_t b = 0; b < count / 256; b++, y += 256) {
            const uint8_t *blk = src + b * (type == LORAD_TYPE_Q4_K ? 144 : 176);
            const float d = f16at(blk), dmin = f16at(blk + 2);
            const uint8_t *sc = blk + 4;
            const uint8_t *qh = blk + 16;
            const uint8_t *qs = blk + (type == LORAD_TYPE_Q4_K ? 16 : 48);
            for (int g = 0; g < 4; g++) {
                float dd[2], mm[2];
                for (int h = 0; h < 2; h++) {
                    const int j = 2 * g + h;
                    uint8_t s, mn;
                    if (j < 4) { s = sc[j] & 63; mn = sc[j + 4] & 63; }
                    else { s = (sc[j + 4] & 0x0F) | ((sc[j - 4] >> 6) << 4); mn = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4); }
                    dd[h] = d * (float)s;
                    mm[h] = dmin * (float)mn;
                }
                const uint8_t u1 = (uint8_t)(1u << (2 * g)), u2 = (uint8_t)(2u << (2 * g));
                for (int l = 0; l < 32; l++) {
                    const uint8_t q = qs[32 * g + l];
                    int lo = q & 0x0F, hi = q >> 4;
                    if (type == LORAD_TYPE_Q5_K) { lo += (qh[l] & u1) ? 16 : 0; hi += (qh[l] & u2) ? 16 : 0; }
                    y[64 * g + l] = dd[0] * (float)lo - mm[0];
                    y[64 * g + 32 + l] = dd[1] * (float)hi - mm[1];
                }
            }
        }
        return;
    case LORAD_TYPE_Q6_K:
        for (int64_t b = 0; b < count / 256; b++, y += 256) {
            const uint8_t *blk = src + b * 210;
            const float d = f16at(blk + 208);
            for (int n = 0; n < 2; n++) {
                const uint8_t *ql = blk + 64 * n, *qh = blk + 128 + 32 * n;
                const int8_t *sc = (const int8_t *)(blk + 192 + 8 * n);
                float *out = y + 128 * n;
                for (int l = 0; l < 32; l++) {
                    const int s = l / 16;
                    const int q1 = (int)((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    const int q2 = (int)((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    out[l] = d * (float)sc[s] * (float)q1;
                    out[l + 32] = d * (float)sc[s + 2] * (float)q2;
                    out[l + 64] = d * (float)sc[s + 4] * (float)q3;
                    out[l + 96] = d * (float)sc[s + 6] * (float)q4;
                }
            }
        }
        return;
    }
}

static int known_type(int type) {
    switch (type) {
    case LORAD_TYPE_F32: case LORAD_TYPE_F16: case LORAD_TYPE_BF16: case LORAD_TYPE_Q4_0: case LORAD_TYPE_Q4_1: case LORAD_TYPE_Q5_0: case LORAD_TYPE_Q5_1:
    case LORAD_TYPE_Q8_0: case LORAD_TYPE_Q4_K: case LORAD_TYPE_Q5_K: case LORAD_TYPE_Q6_K: return 1;
    default: return 0;
    }
}

int FN(dequantize)(lorad_ggml_type type, const void *src, int64_t count, float *dst) {
    if (!known_type(type)) return 0;
    decode_row(type, (const uint8_t *)src, count, dst);
    return 1;
}

void FN(block_sums32)(const float *x, int64_t cols, int64_t tokens, int64_t xs, float *sums) {
    const int64_t nb = cols / 32;
    for (int64_t t = 0; t < tokens; t++) {
        for (int64_t b = 0; b < nb; b++) {
            const float *p = x + t * xs + 32 * b;
            sums[t * nb + b] = hsum8((ld8(p) + ld8(p + 8)) + (ld8(p + 16) + ld8(p + 24)));
        }
    }
}

// ---------------------------------------------------------------- fused legacy-block kernels

/// 16 where bit (first + lane) of qh is set, else 0: the fifth bit of 8 Q5 codes.
INL v8i q5_high(uint32_t qh, int first) {
    const v8u32 sh = (v8u32){0, 1, 2, 3, 4, 5, 6, 7} + (uint32_t)first;
    const v8u32 all = (v8u32){0, 0, 0, 0, 0, 0, 0, 0} + qh;
    return (v8i)(((all >> sh) & 1) << 4);
}

/// Codes (as floats) of one 32-element block in element order, its scale d and min m (0 if none).
INL void decode_codes(lorad_ggml_type type, const uint8_t *b, v8f c[4], float *d, float *m) {
    switch (type) {
    case LORAD_TYPE_Q4_0: {
        const v8i a0 = __builtin_convertvector(*(const v8u8_u *)(b + 2), v8i);
        const v8i a1 = __builtin_convertvector(*(const v8u8_u *)(b + 10), v8i);
        c[0] = __builtin_convertvector((a0 & 0x0F) - 8, v8f);
        c[1] = __builtin_convertvector((a1 & 0x0F) - 8, v8f);
        c[2] = __builtin_convertvector((a0 >> 4) - 8, v8f);
        c[3] = __builtin_convertvector((a1 >> 4) - 8, v8f);
        *d = f16at(b); *m = 0;
        return;
    }
    case LORAD_TYPE_Q4_1: {
        // Widen 8 bytes at a time straight from memory (vpmovzxbd m64) and split the nibbles in
        // 32-bit lanes: fewer instructions than splitting bytes first and shuffling halves.
        const v8i a0 = __builtin_convertvector(*(const v8u8_u *)(b + 4), v8i);
        const v8i a1 = __builtin_convertvector(*(const v8u8_u *)(b + 12), v8i);
        c[0] = __builtin_convertvector(a0 & 0x0F, v8f);
        c[1] = __builtin_convertvector(a1 & 0x0F, v8f);
        c[2] = __builtin_convertvector(a0 >> 4, v8f);
        c[3] = __builtin_convertvector(a1 >> 4, v8f);
        F16PAIR(b, d, m);
        return;
    }
    case LORAD_TYPE_Q5_0:
    case LORAD_TYPE_Q5_1: {
        const int off = type == LORAD_TYPE_Q5_0 ? 2 : 4;
        const uint32_t qh = rd32(b + off);
        const v8i a0 = __builtin_convertvector(*(const v8u8_u *)(b + off + 4), v8i);
        const v8i a1 = __builtin_convertvector(*(const v8u8_u *)(b + off + 12), v8i);
        const int32_t bias = type == LORAD_TYPE_Q5_0 ? 16 : 0;
        c[0] = __builtin_convertvector(((a0 & 0x0F) | q5_high(qh, 0)) - bias, v8f);
        c[1] = __builtin_convertvector(((a1 & 0x0F) | q5_high(qh, 8)) - bias, v8f);
        c[2] = __builtin_convertvector(((a0 >> 4) | q5_high(qh, 16)) - bias, v8f);
        c[3] = __builtin_convertvector(((a1 >> 4) | q5_high(qh, 24)) - bias, v8f);
        *d = f16at(b); *m = type == LORAD_TYPE_Q5_1 ? f16at(b + 2) : 0;
        return;
    }
    default: { // LORAD_TYPE_Q8_0
        for (int k = 0; k < 4; k++) c[k] = __builtin_convertvector(*(const v8i8_u *)(b + 2 + 8 * k), v8f);
        *d = f16at(b); *m = 0;
        return;
    }
    }
}

/// NT tokens (1..4) × one row of a legacy type; out[k * ys] receives token k's dot.
INL void legacy_tile(lorad_ggml_type type, int bb, const uint8_t *row, int64_t nb, const float *x, int64_t xs,
                     const float *sums, float *out, int64_t ys, const int NT) {
    const int has_min = type == LORAD_TYPE_Q4_1 || type == LORAD_TYPE_Q5_1;
    v8f acc[4] = {{0}, {0}, {0}, {0}};
    float macc[4] = {0, 0, 0, 0};
    for (int64_t b = 0; b < nb; b++) {
        // Non-temporal prefetch 2 KiB ahead, as the repacked Q8 kernels do (kernels_q4x8.c).
        __builtin_prefetch(row + b * bb + 2048, 0, 0);
        v8f c[4];
        float d, m;
        decode_codes(type, row + b * bb, c, &d, &m);
        for (int k = 0; k < NT; k++) {
            const float *xp = x + k * xs + 32 * b;
            const v8f s = c[0] * ld8(xp) + c[1] * ld8(xp + 8) + c[2] * ld8(xp + 16) + c[3] * ld8(xp + 24);
            acc[k] += s * d;
            if (has_min) macc[k] += m * sums[k * nb + b];
        }
    }
    for (int k = 0; k < NT; k++) out[k * ys] = hsum8(acc[k]) + macc[k];
}

/// 8 tokens × one row: with this many tokens it pays to decode the block to weights first
/// (w = d·code + m, 4 FMAs) and then do 4 FMAs per token, with no per-token scale or min work.
INL void legacy_tile8(lorad_ggml_type type, int bb, const uint8_t *row, int64_t nb, const float *x, int64_t xs,
                      float *out, int64_t ys) {
    v8f acc[8] = {{0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}};
    for (int64_t b = 0; b < nb; b++) {
        v8f c[4];
        float d, m;
        decode_codes(type, row + b * bb, c, &d, &m);
        const v8f w0 = c[0] * d + m, w1 = c[1] * d + m, w2 = c[2] * d + m, w3 = c[3] * d + m;
        for (int k = 0; k < 8; k++) {
            const float *xp = x + k * xs + 32 * b;
            acc[k] += w0 * ld8(xp) + w1 * ld8(xp + 8) + w2 * ld8(xp + 16) + w3 * ld8(xp + 24);
        }
    }
    for (int k = 0; k < 8; k++) out[k * ys] = hsum8(acc[k]);
}

#define LEGACY_ROWS(NAME, TYPE, BB)                                                                      \
    static void NAME(const uint8_t *w, int64_t rb, int64_t cols, int64_t r0, int64_t r1, const float *x, \
                     int64_t xs, int64_t T, const float *sums, float *y, int64_t ys) {                   \
        const int64_t nb = cols / 32;                                                                    \
        for (int64_t r = r0; r < r1; r++) {                                                              \
            const uint8_t *row = w + r * rb;                                                             \
            int64_t t = 0;                                                                               \
            for (; t + 8 <= T; t += 8)                                                                   \
                legacy_tile8(TYPE, BB, row, nb, x + t * xs, xs, y + t * ys + r, ys);                     \
            for (; t + 4 <= T; t += 4)                                                                   \
                legacy_tile(TYPE, BB, row, nb, x + t * xs, xs, sums + t * nb, y + t * ys + r, ys, 4);    \
            for (; t + 2 <= T; t += 2)                                                                   \
                legacy_tile(TYPE, BB, row, nb, x + t * xs, xs, sums + t * nb, y + t * ys + r, ys, 2);    \
            for (; t < T; t++)                                                                           \
                legacy_tile(TYPE, BB, row, nb, x + t * xs, xs, sums + t * nb, y + t * ys + r, ys, 1);    \
        }                                                                                                \
    }
LEGACY_ROWS(rows_q4_0, LORAD_TYPE_Q4_0, 18)
LEGACY_ROWS(rows_q4_1, LORAD_TYPE_Q4_1, 20)
LEGACY_ROWS(rows_q5_0, LORAD_TYPE_Q5_0, 22)
LEGACY_ROWS(rows_q5_1, LORAD_TYPE_Q5_1, 24)
LEGACY_ROWS(rows_q8_0, LORAD_TYPE_Q8_0, 34)

// ---------------------------------------------------------------- decode-then-dot for the rest

/// NT tokens × one decoded row `wr` of n floats.
INL void dense_tile(const float *wr, int64_t n, const float *x, int64_t xs, float *out, int64_t ys, const int NT) {
    v8f acc[4] = {{0}, {0}, {0}, {0}};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const v8f wv = ld8(wr + i);
        for (int k = 0; k < NT; k++) acc[k] += wv * ld8(x + k * xs + i);
    }
    for (int k = 0; k < NT; k++) {
        float s = hsum8(acc[k]);
        for (int64_t j = i; j < n; j++) s += wr[j] * x[k * xs + j];
        out[k * ys] = s;
    }
}

static void rows_dense(lorad_ggml_type type, const uint8_t *w, int64_t rb, int64_t cols, int64_t r0, int64_t r1,
                       const float *x, int64_t xs, int64_t T, float *scratch, float *y, int64_t ys) {
    for (int64_t r = r0; r < r1; r++) {
        const float *wr;
        if (type == LORAD_TYPE_F32) {
            wr = (const float *)(const void *)(w + r * rb);  // read with unaligned vector loads only
        } else {
            decode_row(type, w + r * rb, cols, scratch);
            wr = scratch;
        }
        int64_t t = 0;
        for (; t + 4 <= T; t += 4) dense_tile(wr, cols, x + t * xs, xs, y + t * ys + r, ys, 4);
        for (; t + 2 <= T; t += 2) dense_tile(wr, cols, x + t * xs, xs, y + t * ys + r, ys, 2);
        for (; t < T; t++) dense_tile(wr, cols, x + t * xs, xs, y + t * ys + r, ys, 1);
    }
}

int FN(matmul_rows)(lorad_ggml_type type, const void *w, int64_t rb, int64_t cols, int64_t r0, int64_t r1,
                    const float *x, int64_t xs, int64_t T, const float *sums, float *scratch,
                    float *y, int64_t ys) {
    const uint8_t *wb = (const uint8_t *)w;
    switch (type) {
    case LORAD_TYPE_Q4_0: rows_q4_0(wb, rb, cols, r0, r1, x, xs, T, sums, y, ys); return 1;
    case LORAD_TYPE_Q4_1: rows_q4_1(wb, rb, cols, r0, r1, x, xs, T, sums, y, ys); return 1;
    case LORAD_TYPE_Q5_0: rows_q5_0(wb, rb, cols, r0, r1, x, xs, T, sums, y, ys); return 1;
    case LORAD_TYPE_Q5_1: rows_q5_1(wb, rb, cols, r0, r1, x, xs, T, sums, y, ys); return 1;
    case LORAD_TYPE_Q8_0: rows_q8_0(wb, rb, cols, r0, r1, x, xs, T, sums, y, ys); return 1;
    default:
        if (!known_type(type)) return 0;
        rows_dense(type, wb, rb, cols, r0, r1, x, xs, T, scratch, y, ys);
        return 1;
    }
}

// ---------------------------------------------------------------- LoRA rows
// y[r] += scale · s_r · Bᵀᵀ·(A·x[r]) for the listed rows: A is rank × in, Bᵀ is rank × out (tiled, below),
// both in one element type (f32, f16 or bf16 bits; LoRAKernelWeights.swift says why). The rank is taken
// 64 at a time so t stays on the stack.
// The element type is fixed per call, so each type gets its own loop (no switch in the inner loops).

#ifndef F16X8
INL v8f f16x8_generic(const uint16_t *p) {
    v8f v;
    for (int i = 0; i < 8; i++) v[i] = F16TOF32(p[i]);
    return v;
}
#define F16X8(p) f16x8_generic(p)
#endif

typedef uint16_t v8u16_u __attribute__((vector_size(16), aligned(1)));
INL v8f bf16x8(const uint16_t *p) {
    v8u32 w = __builtin_convertvector(*(const v8u16_u *)p, v8u32) << 16;
    v8f f;
    memcpy(&f, &w, 32);
    return f;
}
INL v8f lora_ld8_f32(const void *b, int64_t i) { return ld8((const float *)b + i); }
INL float lora_ld1_f32(const void *b, int64_t i) { return ((const float *)b)[i]; }
INL v8f lora_ld8_f16(const void *b, int64_t i) { return F16X8((const uint16_t *)b + i); }
INL float lora_ld1_f16(const void *b, int64_t i) { return F16TOF32(((const uint16_t *)b)[i]); }
INL v8f lora_ld8_bf16(const void *b, int64_t i) { return bf16x8((const uint16_t *)b + i); }
INL float lora_ld1_bf16(const void *b, int64_t i) { return bf16tof32(((const uint16_t *)b)[i]); }

// A is rank × in, row-major. Bᵀ is tiled by 8 output columns: tile ob holds, for k = 0..rank-1, the
// 8 values Bᵀ[k][8·ob .. 8·ob+7] (zero past `out`), so the axpys read one sequential stream instead
// of `rank` streams `out` apart, which the hardware prefetcher follows better (one adapter on one row:
// 0.43 -> 0.38 ms a step in a stand-alone test, with the 2 KiB prefetch 0.33 ms). Both streams are
// prefetched 2 KiB ahead: near the end of A that is the start of the module's Bᵀ, near the end of Bᵀ
// the next module's A in the adapter's block (LoRAKernelWeights.swift); past the last module it is
// outside the block, which a prefetch never faults on.
#define LORA_ROWS(NAME, LD8, LD1, ESIZE)                                                               \
static void NAME(const void *a, const void *bt, int64_t rank, int64_t in, int64_t out, const float *x,  \
                 int64_t xs, const int32_t *rows, const float *scales, float scale, int64_t nrows, float *y,    \
                 int64_t ys) {                                                                              \
    const char *ab = (const char *)a, *bb = (const char *)bt;                                          \
    for (int64_t j = 0; j < nrows; j++) {                                                              \
        const float *xr = x + (int64_t)rows[j] * xs;                                                   \
        float *yr = y + (int64_t)rows[j] * ys;                                                         \
        for (int64_t k0 = 0; k0 < rank; k0 += 64) {                                                    \
            const int64_t kn = rank - k0 < 64 ? rank - k0 : 64;                                        \
            float t[64];                                                                               \
            for (int64_t k = 0; k < kn; k++) {                                                         \
                const int64_t off = (k0 + k) * in;                                                     \
                v8f acc0 = {0}, acc1 = {0};                                                            \
                int64_t i = 0;                                                                         \
                for (; i + 16 <= in; i += 16) {                                                        \
                    __builtin_prefetch(ab + (off + i) * ESIZE + 2048, 0, 3);                           \
                    acc0 += LD8(a, off + i) * ld8(xr + i);                                             \
                    acc1 += LD8(a, off + i + 8) * ld8(xr + i + 8);                                     \
                }                                                                                      \
                for (; i + 8 <= in; i += 8) acc0 += LD8(a, off + i) * ld8(xr + i);                     \
                float sum = hsum8(acc0 + acc1);                                                        \
                for (; i < in; i++) sum += LD1(a, off + i) * xr[i];                                    \
                t[k] = scale * scales[j] * sum;                                                        \
            }                                                                                          \
            for (int64_t o = 0; o < out; o += 8) {                                                     \
                const int64_t tile = (o / 8) * rank * 8 + k0 * 8;                                      \
                __builtin_prefetch(bb + tile * ESIZE + 2048, 0, 3);                                    \
                v8f acc = {0}, acc1 = {0};                                                             \
                int64_t k = 0;                                                                         \
                for (; k + 2 <= kn; k += 2) {                                                          \
                    acc += t[k] * LD8(bt, tile + k * 8);                                               \
                    acc1 += t[k + 1] * LD8(bt, tile + k * 8 + 8);                                      \
                }                                                                                      \
                if (k < kn) acc += t[k] * LD8(bt, tile + k * 8);                                       \
                acc += acc1;                                                                           \
                if (o + 8 <= out) {                                                                    \
                    *(v8f_u *)(yr + o) = ld8(yr + o) + acc;                                            \
                } else {                                                                               \
                    for (int64_t l = 0; o + l < out; l++) yr[o + l] += acc[l];                         \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
    }                                                                                                  \
}

LORA_ROWS(lora_rows_f32, lora_ld8_f32, lora_ld1_f32, 4)
LORA_ROWS(lora_rows_f16, lora_ld8_f16, lora_ld1_f16, 2)
LORA_ROWS(lora_rows_bf16, lora_ld8_bf16, lora_ld1_bf16, 2)

int FN(lora_rows)(lorad_lora_element element, const void *a, const void *bt, int64_t rank, int64_t in, int64_t out,
                  const float *x, int64_t xs, const int32_t *rows, const float *scales, float scale, int64_t nrows,
                  float *y, int64_t ys) {
    switch (element) {
    case LORAD_LORA_F32: lora_rows_f32(a, bt, rank, in, out, x, xs, rows, scales, scale, nrows, y, ys); return 1;
    case LORAD_LORA_F16: lora_rows_f16(a, bt, rank, in, out, x, xs, rows, scales, scale, nrows, y, ys); return 1;
    case LORAD_LORA_BF16: lora_rows_bf16(a, bt, rank, in, out, x, xs, rows, scales, scale, nrows, y, ys); return 1;
    default: return 0;
    }
}

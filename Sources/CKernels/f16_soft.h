// IEEE binary16 to f32 in plain C, exactly (subnormals, infinities and NaN payloads included), and f32
// to binary16 rounding to nearest even, for code that cannot assume F16C. Private to CKernels; shared
// by the portable, Q8 and attention kernels.
#ifndef LORAD_F16_SOFT_H
#define LORAD_F16_SOFT_H
#include <stdint.h>
#include <string.h>

static inline float lorad_f16_to_f32_soft(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    uint32_t bits;
    if (exp == 0) {
        float f = (float)man * 5.9604644775390625e-8f;  // man · 2⁻²⁴, exact
        memcpy(&bits, &f, 4);
        bits |= sign;
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
/// The f16 stored at `p` (any alignment), as f32.
static inline float lorad_f16_at(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return lorad_f16_to_f32_soft(v); }
/// f32 → IEEE binary16 bits, round to nearest even (F. Giesen's float_to_half_fast3_rtne; NaN → 0x7E00).
static inline uint16_t lorad_f32_to_f16_rne(float ff) {
    const uint32_t f32infty = 255u << 23, f16max = (127u + 16) << 23;
    const uint32_t denorm_magic_u = ((127u - 15) + (23 - 10) + 1) << 23;
    uint32_t f;
    memcpy(&f, &ff, 4);
    const uint32_t sign = f & 0x80000000u;
    f ^= sign;
    uint16_t o;
    if (f >= f16max) {
        o = f > f32infty ? 0x7E00 : 0x7C00;
    } else if (f < (113u << 23)) {
        float fl, dm;
        memcpy(&fl, &f, 4);
        memcpy(&dm, &denorm_magic_u, 4);
        fl += dm;
        memcpy(&f, &fl, 4);
        o = (uint16_t)(f - denorm_magic_u);
    } else {
        const uint32_t mant_odd = (f >> 13) & 1;
        f += ((uint32_t)(15 - 127) << 23) + 0xFFF;
        f += mant_odd;
        o = (uint16_t)(f >> 13);
    }
    return o | (uint16_t)(sign >> 16);
}

#endif

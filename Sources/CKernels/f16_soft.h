// IEEE binary16 to f32 in plain C, exactly (subnormals, infinities and NaN payloads included), for
// code that cannot assume F16C. Private to CKernels; shared by the portable, Q8 and int16 kernels.
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
#endif

// The f32-activation kernels of kernels_impl.h compiled for the baseline CPU (SSE2 on x86-64): the
// portable twins of kernels_avx2.c, used when the CPU lacks AVX2/FMA/F16C and by tests.
#include "CKernels.h"
#include <string.h>

/// IEEE binary16 to f32, exactly (subnormals, infinities and NaN payloads included), without F16C.
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

#define FN(name) lorad_portable_##name
#define F16TOF32(h) lorad_f16_to_f32_soft(h)
#define F16PAIR(p, d, m) (*(d) = f16at(p), *(m) = f16at((p) + 2))
#include "kernels_impl.h"

int64_t lorad_matmul_scratch_floats(int type, int64_t cols) {
    switch (type) {
    case 2: case 3: case 6: case 7: case 8: case 0: return 0;  // fused, or F32 read in place
    default: return cols;
    }
}

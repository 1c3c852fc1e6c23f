// The f32-activation kernels of kernels_impl.h compiled for the baseline CPU (SSE2 on x86-64): the
// portable twins of kernels_avx2.c, used when the CPU lacks AVX2/FMA/F16C and by tests.
#include "CKernels.h"
#include <string.h>
#include "f16_soft.h"


#define FN(name) lorad_portable_##name
#define F16TOF32(h) lorad_f16_to_f32_soft(h)
#define F16PAIR(p, d, m) (*(d) = f16at(p), *(m) = f16at((p) + 2))
#include "kernels_impl.h"

int64_t lorad_matmul_scratch_floats(lorad_ggml_type type, int64_t cols) {
    switch (type) {
    case LORAD_TYPE_Q4_0: case LORAD_TYPE_Q4_1: case LORAD_TYPE_Q5_0: case LORAD_TYPE_Q5_1: case LORAD_TYPE_Q8_0:
        return 0;  // fused: blocks decoded in registers
    case LORAD_TYPE_F32: return 0;  // read in place
    default: return cols;
    }
}

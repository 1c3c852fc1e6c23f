// lorad's C kernels: SIMD code that Swift cannot express with per-function target features.
// Every AVX2 function has a portable twin; callers pick one with lorad_cpu_has_avx2_fma_f16c().
#ifndef LORAD_CKERNELS_H
#define LORAD_CKERNELS_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when the CPU (and the OS, for the YMM state) supports AVX2, FMA and F16C, else 0.
int lorad_cpu_has_avx2_fma_f16c(void);

#ifdef __cplusplus
}
#endif
#endif

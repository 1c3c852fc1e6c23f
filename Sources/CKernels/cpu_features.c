// CPU feature detection for choosing kernels at run time (a binary built here must not die with
// SIGILL on an x86-64 without AVX2). Checks CPUID leaf 1 (FMA, F16C, OSXSAVE, AVX), XGETBV for the
// OS saving YMM registers, and leaf 7 (AVX2). Non-x86 builds report no support.
#include "CKernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static int detect(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(fma && osxsave && avx && f16c)) return 0;
    unsigned int xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    if ((xlo & 0x6) != 0x6) return 0;  // XMM and YMM state enabled by the OS
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 5) & 1;  // AVX2
}

int lorad_cpu_has_avx2_fma_f16c(void) {
    static int cached = -1;
    if (cached < 0) cached = detect();
    return cached;
}
#else
int lorad_cpu_has_avx2_fma_f16c(void) { return 0; }
#endif

// Which kernels OpenBLAS runs. A DYNAMIC_ARCH OpenBLAS (Debian's) picks its kernels from CPUID when it
// loads, and a release older than the CPU falls back to its oldest x86-64 kernels: 0.3.21 (Debian 12)
// runs Zen 5 (AMD family 0x1A) and Intel's family 6 model 207 (both seen on these machines) on
// "Prescott", SSE3 code that made the trainer's sgemm-bound steps ~3.5-4x slower than the same
// library's SkylakeX (AVX-512) kernels. So,
// before the first BLAS call, if nobody chose a core (OPENBLAS_CORETYPE unset) and OpenBLAS fell back
// to Prescott on a CPU whose AVX2/FMA (and AVX-512 F/DQ/BW/VL, with the OS saving ZMM state) CPUID
// shows, we set OPENBLAS_CORETYPE to Haswell or SkylakeX and re-run OpenBLAS's dynamic initialisation,
// exactly what the variable does when set before start. The variable stays set (child processes then
// make the same choice; unsetting it could race another thread's getenv). The OpenBLAS functions are
// weak: a build of OpenBLAS for one target has none of them and is left alone.
#include "CKernels.h"
#include <stdlib.h>
#include <strings.h>

extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));

#if defined(__x86_64__)
#include <cpuid.h>

/// 2: AVX-512 F/DQ/BW/VL usable, 1: AVX2 + FMA usable, 0: neither.
static int vector_level(void) {
    if (!lorad_cpu_has_avx2_fma_f16c()) return 0;
    unsigned int a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    const int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    unsigned int xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    const int zmm = (xlo & 0xE6) == 0xE6;  // SSE, AVX, opmask, ZMM upper halves and ZMM16-31 saved
    return f && dq && bw && vl && zmm ? 2 : 1;
}
#else
static int vector_level(void) { return 0; }
#endif

int lorad_openblas_prefer_native_core(void) {
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit || !openblas_get_corename) return 0;
    if (getenv("OPENBLAS_CORETYPE")) return 0;
    const char *name = openblas_get_corename();
    if (!name || strcasecmp(name, "Prescott") != 0) return 0;
    const int level = vector_level();
    if (level == 0) return 0;
    setenv("OPENBLAS_CORETYPE", level == 2 ? "SkylakeX" : "Haswell", 0);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    return 1;
}

const char *lorad_openblas_corename(void) {
    return openblas_get_corename ? openblas_get_corename() : "unknown";
}

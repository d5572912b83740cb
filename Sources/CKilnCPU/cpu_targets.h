// Instruction sets for the CPU loops, chosen per function with the `target` attribute (the package is
// built for the baseline instruction set, with no build flags) and picked at run time: portable C, AVX2 +
// FMA where kiln_cpu_vector_level() says so, and AVX-512 on top of that where the processor has it.
#ifndef KILN_CPU_TARGETS_H
#define KILN_CPU_TARGETS_H

#include "kiln_cpu.h"

#if defined(__x86_64__) && !defined(KILN_PORTABLE_ONLY)
#include <immintrin.h>
#define KILN_HAS_X86 1
#define KILN_AVX2 __attribute__((target("avx2,fma")))
#define KILN_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline
#define KILN_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#define KILN_AVX512_INLINE __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"), always_inline)) static inline

// Whether the processor has the AVX-512 subsets the loops use (F, VL, DQ, BW) and `KILN_CPU_VECTORS` asks
// for neither `avx2` nor `portable`; decided once (loops.c).
int kiln_avx512_usable(void);

// 2: AVX-512, 1: AVX2 + FMA, 0: baseline. `kiln_cpu_vector_level` (spline.c) holds the AVX2 + FMA decision
// that CPUBackend.setWideVectors changes; AVX-512 comes on top of it.
static inline __attribute__((always_inline)) int kiln_loop_level(void) {
    int level = kiln_cpu_vector_level();
    return level >= 1 && kiln_avx512_usable() ? 2 : level;
}
#else
#define KILN_HAS_X86 0
#endif

#endif

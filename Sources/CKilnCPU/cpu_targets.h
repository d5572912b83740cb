// Instruction sets for the CPU loops, chosen per function with the `target` attribute (the package is
// built for the baseline instruction set, with no build flags) and picked at run time by
// kiln_cpu_vector_level(): 0 portable C, 1 AVX2 + FMA, 2 AVX-512 (with AVX2 + FMA).
#ifndef KILN_CPU_TARGETS_H
#define KILN_CPU_TARGETS_H

#if defined(__x86_64__)
#include <immintrin.h>
#define KILN_HAS_X86 1
#define KILN_AVX2 __attribute__((target("avx2,fma")))
#define KILN_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline
#define KILN_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define KILN_AVX512_INLINE __attribute__((target("avx512f,avx2,fma"), always_inline)) static inline
#else
#define KILN_HAS_X86 0
#endif

#endif

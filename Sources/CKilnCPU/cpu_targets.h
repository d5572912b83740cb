// Instruction sets for the CPU loops, chosen per function with the `target` attribute (the package is
// built for the baseline instruction set, with no build flags) and picked at run time: portable C, AVX2 +
// FMA where kiln_cpu_vector_level() says so, and AVX-512 on top of that where the processor has it.
#ifndef KILN_CPU_TARGETS_H
#define KILN_CPU_TARGETS_H

#if defined(__x86_64__)
#include <immintrin.h>
#define KILN_HAS_X86 1
#define KILN_AVX2 __attribute__((target("avx2,fma")))
#define KILN_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline
#define KILN_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#define KILN_AVX512_INLINE __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"), always_inline)) static inline
#else
#define KILN_HAS_X86 0
#endif

#endif

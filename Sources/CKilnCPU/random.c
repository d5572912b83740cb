// The random family's CPU loop (Kernels/random.cl is the OpenCL twin): counter-based uniform numbers, so
// element i depends only on (seed, offset + i) and every device and thread split gives the same values.
#include "loops.h"

// SplitMix64's finalizer (Steele, Lea & Flood, 2014).
KILN_INLINE uint64_t splitmix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

KILN_INLINE float uniform_at(uint64_t seed, uint64_t counter) {
    return (float)(splitmix64(seed ^ splitmix64(counter)) >> 40) * (1.0f / 16777216.0f);
}

// Element by element, except with AVX-512, whose 64-bit lane multiply (DQ) makes the vectorized loop twice
// as fast; without it the compiler's emulated multiply gains nothing over scalar code (and loses on the
// baseline), so there is no AVX2 version.
static void random_uniform_scalar(float *out, ptrdiff_t begin, ptrdiff_t end, uint64_t seed, uint64_t offset) {
    _Pragma("clang loop vectorize(disable)") for (ptrdiff_t i = begin; i < end; i++) out[i] = uniform_at(seed, offset + (uint64_t)i);
}

#if KILN_X86_VERSIONS
KILN_TARGET_AVX512 static void random_uniform_avx512(float *out, ptrdiff_t begin, ptrdiff_t end, uint64_t seed, uint64_t offset) {
    KILN_ASSUME_SAFE for (ptrdiff_t i = begin; i < end; i++) out[i] = uniform_at(seed, offset + (uint64_t)i);
}
#endif

void kiln_random_uniform(float *out, ptrdiff_t begin, ptrdiff_t end, uint64_t seed, uint64_t offset) {
#if KILN_X86_VERSIONS
    if (kiln_loop_level() == 2) {
        random_uniform_avx512(out, begin, end, seed, offset);
        return;
    }
#endif
    random_uniform_scalar(out, begin, end, seed, offset);
}

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

KILN_INLINE void random_uniform_body(float *out, ptrdiff_t begin, ptrdiff_t end, uint64_t seed, uint64_t offset) {
    KILN_ASSUME_SAFE for (ptrdiff_t i = begin; i < end; i++) {
        const uint64_t bits = splitmix64(seed ^ splitmix64(offset + (uint64_t)i));
        out[i] = (float)(bits >> 40) * (1.0f / 16777216.0f);
    }
}

KILN_LOOP_VERSIONS(random_uniform, (float *out, ptrdiff_t begin, ptrdiff_t end, uint64_t seed, uint64_t offset),
                   (out, begin, end, seed, offset))

void kiln_random_uniform(float *out, ptrdiff_t begin, ptrdiff_t end, uint64_t seed, uint64_t offset) {
    KILN_DISPATCH(random_uniform, (out, begin, end, seed, offset))
}

// Private to CKilnCPU: how the family loops (elementwise.c, reduce.c, rows.c, embedding.c, random.c,
// optimizer.c) are compiled in several versions and chosen at run time, and the vectorizable float math
// they share.
//
// Each loop is written once, as plain C in an always-inline `<name>_body` function. KILN_LOOP_VERSIONS
// compiles that body three times: for the baseline instruction set (SSE2 on x86-64; the package is built
// for it, and the library's manifest may not pass -m flags), for AVX2 + FMA and for AVX-512, each with the
// `target` attribute on the function alone. The compiler vectorizes each version for its own target;
// element-wise loops carry `#pragma clang loop vectorize(assume_safety)`, which is right because an output
// either is its input exactly or does not overlap it (what every primitive promises), so no run-time
// overlap check can send an in-place call down the scalar path. KILN_DISPATCH picks the version at each
// call: AVX-512 where the processor has it and the loop gains from it, AVX2 + FMA where it has those, and
// the baseline otherwise or when `KILN_CPU_VECTORS=portable` (CPUBackend.setWideVectors(false)).
// Every version rounds exactly as the portable one: `a·b + c` is never contracted into one FMA, and sums
// keep the order of the Swift loops these replace (lanes spelled out, fixed by the shapes, never by the
// thread count). So the bits do not depend on the processor, the vector level (which a test may switch
// while others run) or the thread count, and equal those of the Swift loops; the wider versions only
// run more lanes at once.
#ifndef KILN_CPU_LOOPS_H
#define KILN_CPU_LOOPS_H

#include "kiln_cpu.h"
#include "cpu_targets.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

#define KILN_INLINE static inline __attribute__((always_inline))
#define KILN_ASSUME_SAFE _Pragma("clang loop vectorize(assume_safety)")

// x86-64 gets the AVX2 and AVX-512 versions (KILN_PORTABLE_ONLY compiles the other platforms' path, to
// check it on x86-64).
#if defined(__x86_64__) && !defined(KILN_PORTABLE_ONLY)
#define KILN_X86_VERSIONS 1
#define KILN_TARGET_AVX2 KILN_AVX2
#define KILN_TARGET_AVX512 KILN_AVX512

#define KILN_LOOP_VERSIONS(name, parameters, arguments)                                    \
    static void name##_portable parameters { name##_body arguments; }                       \
    KILN_TARGET_AVX2 static void name##_avx2 parameters { name##_body arguments; }         \
    KILN_TARGET_AVX512 static void name##_avx512 parameters { name##_body arguments; }

// Only the baseline and AVX2 + FMA versions, for loops that AVX-512 does not speed up (memory-bound ones).
#define KILN_LOOP_VERSIONS_AVX2(name, parameters, arguments)                               \
    static void name##_portable parameters { name##_body arguments; }                       \
    KILN_TARGET_AVX2 static void name##_avx2 parameters { name##_body arguments; }

// Calls the best version of `name` the processor and the settings allow.
#define KILN_DISPATCH(name, arguments)                      \
    switch (kiln_loop_level()) {                            \
    case 2: name##_avx512 arguments; break;                 \
    case 1: name##_avx2 arguments; break;                   \
    default: name##_portable arguments; break;              \
    }

// As KILN_DISPATCH, for loops defined with KILN_LOOP_VERSIONS_AVX2.
#define KILN_DISPATCH_AVX2(name, arguments)                 \
    if (kiln_loop_level() >= 1) name##_avx2 arguments;      \
    else name##_portable arguments;
#else
#define KILN_X86_VERSIONS 0
#define KILN_LOOP_VERSIONS(name, parameters, arguments) \
    static void name##_portable parameters { name##_body arguments; }
#define KILN_LOOP_VERSIONS_AVX2(name, parameters, arguments) KILN_LOOP_VERSIONS(name, parameters, arguments)
#define KILN_DISPATCH(name, arguments) name##_portable arguments;
#define KILN_DISPATCH_AVX2(name, arguments) name##_portable arguments;
#endif

// MARK: - Vectorizable float math

// √x, correctly rounded, without the C library's errno path (which keeps sqrtf out of vector loops).
#if __has_builtin(__builtin_elementwise_sqrt)
#define kiln_sqrt(x) __builtin_elementwise_sqrt(x)
#else
#define kiln_sqrt(x) sqrtf(x)
#endif

KILN_INLINE float kiln_float_from_bits(uint32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

KILN_INLINE uint32_t kiln_bits_from_float(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

// e^x with a relative error of about 2 ulp, branch-free so that loops calling it vectorize: x = n·ln 2 + r
// with |r| ≤ ln 2 / 2 (ln 2 split in two so n·ln2_high is exact, Cody & Waite), e^r by a degree-7
// polynomial (Cephes' `expf` coefficients), then scaled by 2^n through the exponent bits. Below −87.33
// gives 0, above 88.72 +∞, NaN stays NaN.
KILN_INLINE float kiln_exp(float x) {
    const float low = -87.33f, high = 88.72f;
    const float clamped = x < low ? low : (x > high ? high : x);
    const float rounding = 12582912.0f;  // 1.5 · 2²³: adding it rounds to an integer in the low mantissa bits
    const float shifted = clamped * 1.4426950408889634f + rounding;
    const float n = shifted - rounding;
    const float r = clamped - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float er = 1.0f + r + r * r * p;
    const uint32_t integer = kiln_bits_from_float(shifted) - kiln_bits_from_float(rounding);
    float result = er * kiln_float_from_bits((integer + 127u) << 23);
    result = x > high ? INFINITY : result;
    result = x < low ? 0.0f : result;
    return x != x ? x : result;
}

// σ(x) = 1 / (1 + e^−x) without overflow for either sign, through kiln_exp.
KILN_INLINE float kiln_sigmoid(float x) {
    const float e = kiln_exp(-fabsf(x));
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

// σ(x) through the C library's expf, for the scalar tails of loops whose bulk uses kiln_sigmoid.
KILN_INLINE float kiln_sigmoid_libm(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    const float e = expf(x);
    return e / (1.0f + e);
}

#endif

// The CPU scan loops (see include/kiln_cpu_scan.h), the C twin of Kernels/scan.cl. The loops are
// written once in scan_loops.h and included here three times: portable C (eight-float lanes the compiler
// vectorizes for the baseline instruction set), AVX2 + FMA, and AVX-512 for the loops that carry values
// down the rows, where wider vectors change nothing but speed. The loops that sum along a row keep
// 8-lane accumulators on every processor (AVX-512 runs their AVX2 versions), so both wide versions give
// the same bits. The per-step bookkeeping and the split across cores stay in CPUBackend+Scan.swift.
#include "kiln_cpu.h"
#include "kiln_cpu_scan.h"
#include "cpu_targets.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

// MARK: - Portable C: eight-float lanes

// The compiler's generic vectors (two SSE registers on baseline x86-64, as Swift's SIMD8<Float> was);
// `a·b + c` stays two roundings, as in the Swift loops these replace. The helpers are always inlined, so
// no 32-byte vector crosses a call (what -Wpsabi warns about for baseline x86-64).
#pragma STDC FP_CONTRACT OFF
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpsabi"
typedef float lanes8 __attribute__((vector_size(32)));
typedef int32_t lanes8i __attribute__((vector_size(32)));
#define KILN_PORTABLE __attribute__((always_inline)) static inline

KILN_PORTABLE lanes8 p_load(const float *p) {
    lanes8 x;
    memcpy(&x, p, sizeof x);
    return x;
}
KILN_PORTABLE void p_store(float *p, lanes8 x) { memcpy(p, &x, sizeof x); }
KILN_PORTABLE lanes8 p_set(float x) { return (lanes8){x, x, x, x, x, x, x, x}; }
KILN_PORTABLE lanes8 p_add(lanes8 a, lanes8 b) { return a + b; }
KILN_PORTABLE lanes8 p_sub(lanes8 a, lanes8 b) { return a - b; }
KILN_PORTABLE lanes8 p_mul(lanes8 a, lanes8 b) { return a * b; }
KILN_PORTABLE lanes8 p_madd(lanes8 a, lanes8 b, lanes8 c) { return a * b + c; }
KILN_PORTABLE lanes8 p_nmadd(lanes8 a, lanes8 b, lanes8 c) { return c - a * b; }
// `value` where `mask` is set (all ones), else `otherwise`.
KILN_PORTABLE lanes8 p_blend(lanes8i mask, lanes8 value, lanes8 otherwise) {
    return (lanes8)((mask & (lanes8i)value) | (~mask & (lanes8i)otherwise));
}
KILN_PORTABLE lanes8 p_min(lanes8 a, lanes8 b) { return p_blend(a < b, a, b); }
KILN_PORTABLE lanes8 p_max(lanes8 a, lanes8 b) { return p_blend(a > b, a, b); }
KILN_PORTABLE lanes8 p_exp_scale(lanes8 shifted) {
    // The low bits of `shifted` hold n; move n + 127 into the exponent field.
    const lanes8i bits = (lanes8i)shifted - 0x4B400000;
    return (lanes8)((bits + 127) << 23);
}
// The sum of the lanes: the two halves added, then their halves, then the last two.
KILN_PORTABLE float p_sum(lanes8 x) {
    const float four[4] = {x[0] + x[4], x[1] + x[5], x[2] + x[6], x[3] + x[7]};
    const float two[2] = {four[0] + four[2], four[1] + four[3]};
    return two[0] + two[1];
}

#define V lanes8
#define LANES 8
#define VARIANT(name) name##_portable
#define TARGET
#define REDUCTIONS 1
#define vload p_load
#define vstore p_store
#define vset p_set
#define vzero() p_set(0.0f)
#define vsub p_sub
#define vmul p_mul
#define vmin p_min
#define vmax p_max
#define vmadd p_madd
#define vnmadd p_nmadd
#define vload_n(p, n) p_load(p)
#define vstore_n(p, x, n) p_store(p, x)
#define vsum p_sum
#define vexp_scale p_exp_scale
#define vselect_below(x, limit, value, otherwise) p_blend((x) < p_set(limit), value, otherwise)
#define vselect_above(x, limit, value, otherwise) p_blend((x) > p_set(limit), value, otherwise)
#define vadd p_add
#define vsum16(a) p_sum(p_add((a)[0], (a)[1]))
#define GEMM_ROWS 4
#include "scan_loops.h"
#include "scan_chunked_loops.h"
#include "scan_variant_end.h"
#pragma clang diagnostic pop

#if KILN_HAS_X86
// MARK: - AVX2 + FMA

KILN_AVX2_INLINE float avx2_sum(__m256 x) {
    const __m128 four = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    const __m128 two = _mm_add_ps(four, _mm_movehl_ps(four, four));
    return _mm_cvtss_f32(_mm_add_ss(two, _mm_shuffle_ps(two, two, 1)));
}
// The 8 × 8 block at src (rows lds floats apart) transposed into dst (rows ldd apart): unpacks, shuffles
// and 128-bit permutes, no arithmetic, so the values move bit for bit.
KILN_AVX2_INLINE void avx2_transpose8(const float *src, ptrdiff_t lds, float *dst, ptrdiff_t ldd) {
    const __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds), r2 = _mm256_loadu_ps(src + 2 * lds),
                 r3 = _mm256_loadu_ps(src + 3 * lds), r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds),
                 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
                 t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
                 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),
                 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)),
                 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2)),
                 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
}
KILN_AVX2_INLINE __m256 avx2_exp_scale(__m256 shifted) {
    const __m256i bits = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(127)), 23));
}

#define V __m256
#define LANES 8
#define VARIANT(name) name##_avx2
#define TARGET KILN_AVX2
#define REDUCTIONS 1
#define vload _mm256_loadu_ps
#define vstore _mm256_storeu_ps
#define vset _mm256_set1_ps
#define vzero _mm256_setzero_ps
#define vsub _mm256_sub_ps
#define vmul _mm256_mul_ps
#define vmin _mm256_min_ps
#define vmax _mm256_max_ps
#define vmadd _mm256_fmadd_ps
#define vnmadd _mm256_fnmadd_ps
#define vload_n(p, n) _mm256_loadu_ps(p)
#define vstore_n(p, x, n) _mm256_storeu_ps(p, x)
#define vsum avx2_sum
#define vexp_scale avx2_exp_scale
#define vselect_below(x, limit, value, otherwise) _mm256_blendv_ps(otherwise, value, _mm256_cmp_ps(x, _mm256_set1_ps(limit), _CMP_LT_OQ))
#define vselect_above(x, limit, value, otherwise) _mm256_blendv_ps(otherwise, value, _mm256_cmp_ps(x, _mm256_set1_ps(limit), _CMP_GT_OQ))
#define vadd _mm256_add_ps
#define vsum16(a) avx2_sum(_mm256_add_ps((a)[0], (a)[1]))
#define GEMM_ROWS 4
#define TRANSPOSE8 avx2_transpose8
#include "scan_loops.h"
#include "scan_chunked_loops.h"
#include "scan_variant_end.h"

// MARK: - AVX-512 (the loops down the rows; a last block of 8 columns goes through a mask)

KILN_AVX512_INLINE __m512 avx512_exp_scale(__m512 shifted) {
    const __m512i bits = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(0x4B400000));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(127)), 23));
}
KILN_AVX512_INLINE __mmask16 avx512_mask(ptrdiff_t n) { return (__mmask16)((1u << n) - 1); }
// The sum of 16 lanes in the order of the 8-lane versions: the halves added (lanes k and k + 8, as the
// AVX2 version's two accumulators), then avx2_sum's tree.
KILN_AVX512_INLINE float avx512_sum16(__m512 x) {
    return avx2_sum(_mm256_add_ps(_mm512_castps512_ps256(x), _mm512_extractf32x8_ps(x, 1)));
}

#define V __m512
#define LANES 16
#define VARIANT(name) name##_avx512
#define TARGET KILN_AVX512
#define REDUCTIONS 0
#define vload _mm512_loadu_ps
#define vstore _mm512_storeu_ps
#define vset _mm512_set1_ps
#define vzero _mm512_setzero_ps
#define vsub _mm512_sub_ps
#define vmul _mm512_mul_ps
#define vmin _mm512_min_ps
#define vmax _mm512_max_ps
#define vmadd _mm512_fmadd_ps
#define vnmadd _mm512_fnmadd_ps
#define vload_n(p, n) _mm512_maskz_loadu_ps(avx512_mask(n), p)
#define vstore_n(p, x, n) _mm512_mask_storeu_ps(p, avx512_mask(n), x)
#define vexp_scale avx512_exp_scale
#define vselect_below(x, limit, value, otherwise) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(limit), _CMP_LT_OQ), otherwise, value)
#define vselect_above(x, limit, value, otherwise) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(limit), _CMP_GT_OQ), otherwise, value)
#define vadd _mm512_add_ps
#define vsum16(a) avx512_sum16((a)[0])
#define GEMM_ROWS 8
#define TRANSPOSE8 avx2_transpose8
#include "scan_loops.h"
#include "scan_chunked_loops.h"
#include "scan_variant_end.h"
#endif

// MARK: - Entry points: the version for the level in use

#if KILN_HAS_X86
// The version of a loop for the level in use (`wide`: the AVX-512 version where the loop has one of its
// own, else its AVX2 version).
#define VERSION(wide, name) (kiln_loop_level() == 0 ? name##_portable : kiln_loop_level() == 1 ? name##_avx2 : name##_##wide)
#else
#define VERSION(wide, name) name##_portable
#endif

void kiln_scan_decay_add_and_read(float *state, ptrdiff_t rows, ptrdiff_t width, const float *decay, const float *key,
                                  const float *update, const float *query, float *output) {
    VERSION(avx512, decay_add_and_read)(state, rows, width, decay, key, update, query, output);
}

void kiln_scan_decay_add(float *state, ptrdiff_t rows, ptrdiff_t width, const float *decay, const float *key,
                         const float *update) {
    VERSION(avx512, decay_add)(state, rows, width, decay, key, update);
}

void kiln_scan_decay_add_and_dot(const float *previous, float *next, ptrdiff_t rows, ptrdiff_t width, const float *decay,
                                 const float *key, const float *update, const float *against, float scale, float *dots) {
    VERSION(avx2, decay_add_and_dot)(previous, next, rows, width, decay, key, update, against, scale, dots);
}

void kiln_scan_column_sums(const float *state, ptrdiff_t rows, ptrdiff_t width, const float *weights, float scale,
                           float *sums) {
    VERSION(avx512, column_sums)(state, rows, width, weights, scale, sums);
}

void kiln_scan_add_outer_and_column_sums(float *gradient, ptrdiff_t rows, ptrdiff_t width, const float *query,
                                         const float *output_gradient, const float *key, float *sums) {
    VERSION(avx512, add_outer_and_column_sums)(gradient, rows, width, query, output_gradient, key, sums);
}

void kiln_scan_linear_reverse(float *gradient, const float *before, ptrdiff_t rows, ptrdiff_t width, const float *decay,
                              const float *query, const float *output_gradient, const float *key, const float *value,
                              float *value_sums, float *key_gradient, float *gate_gradient) {
    VERSION(avx2, linear_reverse)(gradient, before, rows, width, decay, query, output_gradient, key, value, value_sums, key_gradient, gate_gradient);
}

float kiln_scan_delta_reverse(float *gradient, const float *before, ptrdiff_t rows, ptrdiff_t width, float gamma,
                              const float *key, const float *update, const float *removal_gradient, float *key_gradient) {
    return VERSION(avx2, delta_reverse)(gradient, before, rows, width, gamma, key, update, removal_gradient, key_gradient);
}

void kiln_scan_exp(const float *x, float *y, ptrdiff_t count) {
    VERSION(avx512, exp)(x, y, count);
}


// MARK: - The chunked form (scan_chunked_loops.h): every loop has an AVX-512 version

void kiln_scan_chunk_linear_forward(const kiln_scan_chunk *chunk, float *state, int write_output, float *workspace) {
    VERSION(avx512, chunk_linear_forward)(chunk, state, write_output, workspace);
}

void kiln_scan_chunk_linear_backward(const kiln_scan_chunk *chunk, const float *start_state, const float *end_state,
                                     float *state_gradient, float *workspace) {
    VERSION(avx512, chunk_linear_backward)(chunk, start_state, end_state, state_gradient, workspace);
}

void kiln_scan_chunk_delta_forward(const kiln_scan_chunk *chunk, float *state, int write_output, float *workspace,
                                   float *factors) {
    VERSION(avx512, chunk_delta_forward)(chunk, state, write_output, workspace, factors);
}

void kiln_scan_chunk_delta_backward(const kiln_scan_chunk *chunk, const float *start_state, float *state_gradient,
                                    float *workspace, const float *factors) {
    VERSION(avx512, chunk_delta_backward)(chunk, start_state, state_gradient, workspace, factors);
}

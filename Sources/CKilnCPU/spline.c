// The CPU spline loops (see include/kiln_cpu.h). Each spline loop has a portable version and, on x86-64, an AVX2 + FMA
// version compiled for that target alone (cpu_targets.h), picked at run time (AVX-512 processors run the
// AVX2 versions). Summation orders are fixed by the shapes and the data, never by timing, so results
// repeat.
#include "kiln_cpu.h"
#include "cpu_targets.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>


static inline ptrdiff_t tile_width(ptrdiff_t column, ptrdiff_t outputs) {
    ptrdiff_t left = outputs - column;
    return left >= 32 ? 32 : (left >= 8 ? 8 : 1);
}

static inline ptrdiff_t min_index(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }

// MARK: - Forward

// One column tile of the forward for samples [begin, end); `tile` is a constant in each caller, so the
// compiler unrolls and vectorizes the loops over columns.
__attribute__((always_inline)) static inline void forward_tile_portable(
    ptrdiff_t begin, ptrdiff_t end, ptrdiff_t width, ptrdiff_t rows, ptrdiff_t block_start, ptrdiff_t block_end,
    ptrdiff_t batch, ptrdiff_t outputs, const float *tile_rows, ptrdiff_t column, const ptrdiff_t tile,
    const int32_t *starts, const float *values, const float *silu, float *out) {
    const ptrdiff_t rows_per_input = rows + 1;
    for (ptrdiff_t b = begin; b < end; b++) {
        float *target = out + b * outputs + column;
        float sums[32];
        for (ptrdiff_t c = 0; c < tile; c++) sums[c] = block_start > 0 ? target[c] : 0.0f;
        for (ptrdiff_t i = block_start; i < block_end; i++) {
            const ptrdiff_t index = i * batch + b;
            const float *input_rows = tile_rows + i * rows_per_input * tile;
            const float *line = input_rows + rows * tile;
            const float s = silu[index];
            for (ptrdiff_t c = 0; c < tile; c++) sums[c] += s * line[c];
            const ptrdiff_t start = starts[index];
            if (start < 0) continue;
            const float *weight = values + index * width;
            for (ptrdiff_t r = 0; r < width; r++) {
                line = input_rows + (start + r) * tile;
                const float w = weight[r];
                for (ptrdiff_t c = 0; c < tile; c++) sums[c] += w * line[c];
            }
        }
        for (ptrdiff_t c = 0; c < tile; c++) target[c] = sums[c];
    }
}

static void forward_portable(ptrdiff_t begin, ptrdiff_t end, ptrdiff_t width, ptrdiff_t rows, ptrdiff_t input_block,
                             ptrdiff_t batch, ptrdiff_t inputs, ptrdiff_t outputs, const float *weights,
                             const int32_t *starts, const float *values, const float *silu, float *out) {
    const ptrdiff_t rows_per_input = rows + 1;
    for (ptrdiff_t block_start = 0; block_start < inputs; block_start += input_block) {
        const ptrdiff_t block_end = min_index(inputs, block_start + input_block);
        ptrdiff_t tile;
        for (ptrdiff_t column = 0; column < outputs; column += tile) {
            tile = tile_width(column, outputs);
            const float *tile_rows = weights + inputs * rows_per_input * column;
            if (tile == 32)
                forward_tile_portable(begin, end, width, rows, block_start, block_end, batch, outputs, tile_rows, column, 32, starts, values, silu, out);
            else if (tile == 8)
                forward_tile_portable(begin, end, width, rows, block_start, block_end, batch, outputs, tile_rows, column, 8, starts, values, silu, out);
            else
                forward_tile_portable(begin, end, width, rows, block_start, block_end, batch, outputs, tile_rows, column, 1, starts, values, silu, out);
        }
    }
}

#if KILN_HAS_X86
// Adds weight · line[0..<32] into four accumulators.
#define FMA4(a, w, line)                                                    \
    do {                                                                    \
        a##0 = _mm256_fmadd_ps(w, _mm256_loadu_ps((line)), a##0);         \
        a##1 = _mm256_fmadd_ps(w, _mm256_loadu_ps((line) + 8), a##1);     \
        a##2 = _mm256_fmadd_ps(w, _mm256_loadu_ps((line) + 16), a##2);    \
        a##3 = _mm256_fmadd_ps(w, _mm256_loadu_ps((line) + 24), a##3);    \
    } while (0)

// `width` is a constant in each caller, so the loops over the k + 1 rows unroll.
KILN_AVX2_INLINE void forward_avx2_body(ptrdiff_t begin, ptrdiff_t end, const ptrdiff_t width, ptrdiff_t rows,
                                        ptrdiff_t input_block, ptrdiff_t batch, ptrdiff_t inputs, ptrdiff_t outputs,
                                        const float *weights, const int32_t *starts, const float *values,
                                        const float *silu, float *out) {
    const ptrdiff_t rows_per_input = rows + 1;
    for (ptrdiff_t block_start = 0; block_start < inputs; block_start += input_block) {
        const ptrdiff_t block_end = min_index(inputs, block_start + input_block);
        ptrdiff_t tile;
        for (ptrdiff_t column = 0; column < outputs; column += tile) {
            tile = tile_width(column, outputs);
            const float *tile_rows = weights + inputs * rows_per_input * column;
            ptrdiff_t b = begin;
            if (tile == 32) {
                // Two samples at a time: eight independent accumulators, and the SiLU row's loads shared.
                for (; b + 1 < end; b += 2) {
                    float *t = out + b * outputs + column, *u = t + outputs;
                    __m256 a0, a1, a2, a3, c0, c1, c2, c3;
                    if (block_start > 0) {
                        a0 = _mm256_loadu_ps(t); a1 = _mm256_loadu_ps(t + 8);
                        a2 = _mm256_loadu_ps(t + 16); a3 = _mm256_loadu_ps(t + 24);
                        c0 = _mm256_loadu_ps(u); c1 = _mm256_loadu_ps(u + 8);
                        c2 = _mm256_loadu_ps(u + 16); c3 = _mm256_loadu_ps(u + 24);
                    } else {
                        a0 = a1 = a2 = a3 = c0 = c1 = c2 = c3 = _mm256_setzero_ps();
                    }
                    for (ptrdiff_t i = block_start; i < block_end; i++) {
                        const ptrdiff_t index = i * batch + b;
                        const float *input_rows = tile_rows + i * rows_per_input * 32;
                        const float *line = input_rows + rows * 32;
                        const __m256 l0 = _mm256_loadu_ps(line), l1 = _mm256_loadu_ps(line + 8);
                        const __m256 l2 = _mm256_loadu_ps(line + 16), l3 = _mm256_loadu_ps(line + 24);
                        const __m256 s = _mm256_set1_ps(silu[index]), z = _mm256_set1_ps(silu[index + 1]);
                        a0 = _mm256_fmadd_ps(s, l0, a0); a1 = _mm256_fmadd_ps(s, l1, a1);
                        a2 = _mm256_fmadd_ps(s, l2, a2); a3 = _mm256_fmadd_ps(s, l3, a3);
                        c0 = _mm256_fmadd_ps(z, l0, c0); c1 = _mm256_fmadd_ps(z, l1, c1);
                        c2 = _mm256_fmadd_ps(z, l2, c2); c3 = _mm256_fmadd_ps(z, l3, c3);
                        const ptrdiff_t first = starts[index], second = starts[index + 1];
                        if (first >= 0) {
                            const float *weight = values + index * width;
                            const float *row = input_rows + first * 32;
                            for (ptrdiff_t r = 0; r < width; r++, row += 32) {
                                const __m256 w = _mm256_set1_ps(weight[r]);
                                FMA4(a, w, row);
                            }
                        }
                        if (second >= 0) {
                            const float *weight = values + (index + 1) * width;
                            const float *row = input_rows + second * 32;
                            for (ptrdiff_t r = 0; r < width; r++, row += 32) {
                                const __m256 w = _mm256_set1_ps(weight[r]);
                                FMA4(c, w, row);
                            }
                        }
                    }
                    _mm256_storeu_ps(t, a0); _mm256_storeu_ps(t + 8, a1);
                    _mm256_storeu_ps(t + 16, a2); _mm256_storeu_ps(t + 24, a3);
                    _mm256_storeu_ps(u, c0); _mm256_storeu_ps(u + 8, c1);
                    _mm256_storeu_ps(u + 16, c2); _mm256_storeu_ps(u + 24, c3);
                }
                for (; b < end; b++) {
                    float *t = out + b * outputs + column;
                    __m256 a0, a1, a2, a3;
                    if (block_start > 0) {
                        a0 = _mm256_loadu_ps(t); a1 = _mm256_loadu_ps(t + 8);
                        a2 = _mm256_loadu_ps(t + 16); a3 = _mm256_loadu_ps(t + 24);
                    } else {
                        a0 = a1 = a2 = a3 = _mm256_setzero_ps();
                    }
                    for (ptrdiff_t i = block_start; i < block_end; i++) {
                        const ptrdiff_t index = i * batch + b;
                        const float *input_rows = tile_rows + i * rows_per_input * 32;
                        const __m256 s = _mm256_set1_ps(silu[index]);
                        FMA4(a, s, input_rows + rows * 32);
                        const ptrdiff_t first = starts[index];
                        if (first < 0) continue;
                        const float *weight = values + index * width;
                        const float *row = input_rows + first * 32;
                        for (ptrdiff_t r = 0; r < width; r++, row += 32) {
                            const __m256 w = _mm256_set1_ps(weight[r]);
                            FMA4(a, w, row);
                        }
                    }
                    _mm256_storeu_ps(t, a0); _mm256_storeu_ps(t + 8, a1);
                    _mm256_storeu_ps(t + 16, a2); _mm256_storeu_ps(t + 24, a3);
                }
            } else if (tile == 8) {
                for (; b < end; b++) {
                    float *t = out + b * outputs + column;
                    __m256 a = block_start > 0 ? _mm256_loadu_ps(t) : _mm256_setzero_ps();
                    for (ptrdiff_t i = block_start; i < block_end; i++) {
                        const ptrdiff_t index = i * batch + b;
                        const float *input_rows = tile_rows + i * rows_per_input * 8;
                        a = _mm256_fmadd_ps(_mm256_set1_ps(silu[index]), _mm256_loadu_ps(input_rows + rows * 8), a);
                        const ptrdiff_t first = starts[index];
                        if (first < 0) continue;
                        const float *weight = values + index * width;
                        const float *row = input_rows + first * 8;
                        for (ptrdiff_t r = 0; r < width; r++, row += 8)
                            a = _mm256_fmadd_ps(_mm256_set1_ps(weight[r]), _mm256_loadu_ps(row), a);
                    }
                    _mm256_storeu_ps(t, a);
                }
            } else {
                for (; b < end; b++) {
                    float *t = out + b * outputs + column;
                    float a = block_start > 0 ? t[0] : 0.0f;
                    for (ptrdiff_t i = block_start; i < block_end; i++) {
                        const ptrdiff_t index = i * batch + b;
                        const float *input_rows = tile_rows + i * rows_per_input;
                        a += silu[index] * input_rows[rows];
                        const ptrdiff_t first = starts[index];
                        if (first < 0) continue;
                        const float *weight = values + index * width;
                        for (ptrdiff_t r = 0; r < width; r++) a += weight[r] * input_rows[first + r];
                    }
                    t[0] = a;
                }
            }
        }
    }
}

KILN_AVX2 static void forward_avx2(ptrdiff_t begin, ptrdiff_t end, ptrdiff_t width, ptrdiff_t rows,
                                   ptrdiff_t input_block, ptrdiff_t batch, ptrdiff_t inputs, ptrdiff_t outputs,
                                   const float *weights, const int32_t *starts, const float *values,
                                   const float *silu, float *out) {
    switch (width) {
    case 2: forward_avx2_body(begin, end, 2, rows, input_block, batch, inputs, outputs, weights, starts, values, silu, out); break;
    case 3: forward_avx2_body(begin, end, 3, rows, input_block, batch, inputs, outputs, weights, starts, values, silu, out); break;
    case 4: forward_avx2_body(begin, end, 4, rows, input_block, batch, inputs, outputs, weights, starts, values, silu, out); break;
    case 5: forward_avx2_body(begin, end, 5, rows, input_block, batch, inputs, outputs, weights, starts, values, silu, out); break;
    case 6: forward_avx2_body(begin, end, 6, rows, input_block, batch, inputs, outputs, weights, starts, values, silu, out); break;
    default: forward_avx2_body(begin, end, width, rows, input_block, batch, inputs, outputs, weights, starts, values, silu, out); break;
    }
}
#endif

void kiln_spline_forward_range(ptrdiff_t begin, ptrdiff_t end, ptrdiff_t width, ptrdiff_t rows, ptrdiff_t input_block,
                               ptrdiff_t batch, ptrdiff_t inputs, ptrdiff_t outputs, const float *weights,
                               const int32_t *starts, const float *values, const float *silu, float *out) {
#if KILN_HAS_X86
    if (kiln_cpu_vector_level() >= 1) {
        forward_avx2(begin, end, width, rows, input_block, batch, inputs, outputs, weights, starts, values, silu, out);
        return;
    }
#endif
    forward_portable(begin, end, width, rows, input_block, batch, inputs, outputs, weights, starts, values, silu, out);
}

// MARK: - Input gradient

// Dot products of `a` with `count` (1 to 4) rows of `length` floats.
static void dots_portable(const float *a, const float *const *rows, ptrdiff_t count, ptrdiff_t length, float *result) {
    for (ptrdiff_t q = 0; q < count; q++) {
        const float *row = rows[q];
        float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        ptrdiff_t j = 0;
        for (; j + 8 <= length; j += 8)
            for (int l = 0; l < 8; l++) partial[l] += a[j + l] * row[j + l];
        float total = 0;
        for (int l = 0; l < 8; l++) total += partial[l];
        for (; j < length; j++) total += a[j] * row[j];
        result[q] = total;
    }
}

#if KILN_HAS_X86
KILN_AVX2_INLINE float horizontal_sum(__m256 v) {
    __m128 low = _mm256_castps256_ps128(v), high = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(low, high);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

// Four dot products sharing the loads of `a` (missing rows point at row 0 and are ignored); two sets of
// accumulators hide the FMA latency.
KILN_AVX2 static void dots_avx2(const float *a, const float *const *rows, ptrdiff_t count, ptrdiff_t length, float *result) {
    const float *r0 = rows[0], *r1 = count > 1 ? rows[1] : r0, *r2 = count > 2 ? rows[2] : r0, *r3 = count > 3 ? rows[3] : r0;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
    ptrdiff_t j = 0;
    for (; j + 16 <= length; j += 16) {
        const __m256 x = _mm256_loadu_ps(a + j), y = _mm256_loadu_ps(a + j + 8);
        s0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r0 + j), s0);
        s1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r1 + j), s1);
        s2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r2 + j), s2);
        s3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r3 + j), s3);
        t0 = _mm256_fmadd_ps(y, _mm256_loadu_ps(r0 + j + 8), t0);
        t1 = _mm256_fmadd_ps(y, _mm256_loadu_ps(r1 + j + 8), t1);
        t2 = _mm256_fmadd_ps(y, _mm256_loadu_ps(r2 + j + 8), t2);
        t3 = _mm256_fmadd_ps(y, _mm256_loadu_ps(r3 + j + 8), t3);
    }
    for (; j + 8 <= length; j += 8) {
        const __m256 x = _mm256_loadu_ps(a + j);
        s0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r0 + j), s0);
        s1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r1 + j), s1);
        s2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r2 + j), s2);
        s3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(r3 + j), s3);
    }
    float sums[4] = {
        horizontal_sum(_mm256_add_ps(s0, t0)), horizontal_sum(_mm256_add_ps(s1, t1)),
        horizontal_sum(_mm256_add_ps(s2, t2)), horizontal_sum(_mm256_add_ps(s3, t3)),
    };
    for (; j < length; j++) {
        sums[0] += a[j] * r0[j];
        sums[1] += a[j] * r1[j];
        sums[2] += a[j] * r2[j];
        sums[3] += a[j] * r3[j];
    }
    for (ptrdiff_t q = 0; q < count; q++) result[q] = sums[q];
}
#endif

void kiln_spline_input_gradient_range(ptrdiff_t begin, ptrdiff_t end, ptrdiff_t input_block, ptrdiff_t batch,
                                      ptrdiff_t inputs, ptrdiff_t outputs, ptrdiff_t order, ptrdiff_t rows_per_input,
                                      ptrdiff_t base_row, const float *derivative_rows, const int32_t *starts,
                                      const float *values, const float *silu_gradient, const float *dy, float *dx) {
    void (*dots)(const float *, const float *const *, ptrdiff_t, ptrdiff_t, float *) = dots_portable;
#if KILN_HAS_X86
    if (kiln_cpu_vector_level() >= 1) dots = dots_avx2;
#endif
    for (ptrdiff_t block_start = 0; block_start < inputs; block_start += input_block) {
        const ptrdiff_t block_end = min_index(inputs, block_start + input_block);
        for (ptrdiff_t b = begin; b < end; b++) {
            const float *dy_row = dy + b * outputs;
            for (ptrdiff_t i = block_start; i < block_end; i++) {
                const ptrdiff_t index = i * batch + b;
                const float *input_rows = derivative_rows + i * rows_per_input * outputs;
                // The SiLU row, then the `order` (at most 5) derivative rows, four dot products at a time.
                const float *rows[8];
                float coefficients[8], products[4];
                rows[0] = input_rows + base_row * outputs;
                coefficients[0] = silu_gradient[index];
                ptrdiff_t count = 1;
                const ptrdiff_t start = starts[index];
                if (start >= 0) {
                    const float *weight = values + index * order;
                    for (ptrdiff_t r = 0; r < order && count < 8; r++, count++) {
                        rows[count] = input_rows + (start + r) * outputs;
                        coefficients[count] = weight[r];
                    }
                }
                float total = 0;
                for (ptrdiff_t first = 0; first < count; first += 4) {
                    const ptrdiff_t group = min_index(4, count - first);
                    dots(dy_row, rows + first, group, outputs, products);
                    for (ptrdiff_t q = 0; q < group; q++) total += coefficients[first + q] * products[q];
                }
                dx[b * inputs + i] = total;
            }
        }
    }
}

// MARK: - Sums over the batch

__attribute__((always_inline)) static inline void accumulate_tile_portable(
    const int32_t *samples, ptrdiff_t count, const float *weights, const float *tile_base, const ptrdiff_t tile, float *target) {
    float partial[32];
    for (ptrdiff_t c = 0; c < tile; c++) partial[c] = 0;
    for (ptrdiff_t p = 0; p < count; p++) {
        const float *row = tile_base + (ptrdiff_t)samples[p] * tile;
        const float w = weights[p];
        for (ptrdiff_t c = 0; c < tile; c++) partial[c] += w * row[c];
    }
    for (ptrdiff_t c = 0; c < tile; c++) target[c] += partial[c];
}

static void accumulate_portable(const int32_t *samples, ptrdiff_t count, const float *values, ptrdiff_t value_stride,
                                ptrdiff_t width, const float *tiled_dy, ptrdiff_t batch, ptrdiff_t outputs, float *sums) {
    ptrdiff_t tile;
    for (ptrdiff_t column = 0; column < outputs; column += tile) {
        tile = tile_width(column, outputs);
        const float *tile_base = tiled_dy + batch * column;
        for (ptrdiff_t r = 0; r < width; r++) {
            const float *weights = values + r * value_stride;
            float *target = sums + r * outputs + column;
            if (tile == 32) accumulate_tile_portable(samples, count, weights, tile_base, 32, target);
            else if (tile == 8) accumulate_tile_portable(samples, count, weights, tile_base, 8, target);
            else accumulate_tile_portable(samples, count, weights, tile_base, 1, target);
        }
    }
}

#if KILN_HAS_X86
KILN_AVX2 static void accumulate_avx2(const int32_t *samples, ptrdiff_t count, const float *values, ptrdiff_t value_stride,
                                      ptrdiff_t width, const float *tiled_dy, ptrdiff_t batch, ptrdiff_t outputs, float *sums) {
    ptrdiff_t tile;
    for (ptrdiff_t column = 0; column < outputs; column += tile) {
        tile = tile_width(column, outputs);
        const float *tile_base = tiled_dy + batch * column;
        if (tile != 32) {
            for (ptrdiff_t r = 0; r < width; r++) {
                const float *weights = values + r * value_stride;
                float *target = sums + r * outputs + column;
                if (tile == 8) {
                    __m256 a = _mm256_setzero_ps(), e = a;
                    ptrdiff_t p = 0;
                    for (; p + 1 < count; p += 2) {
                        a = _mm256_fmadd_ps(_mm256_set1_ps(weights[p]), _mm256_loadu_ps(tile_base + (ptrdiff_t)samples[p] * 8), a);
                        e = _mm256_fmadd_ps(_mm256_set1_ps(weights[p + 1]), _mm256_loadu_ps(tile_base + (ptrdiff_t)samples[p + 1] * 8), e);
                    }
                    if (p < count) a = _mm256_fmadd_ps(_mm256_set1_ps(weights[p]), _mm256_loadu_ps(tile_base + (ptrdiff_t)samples[p] * 8), a);
                    _mm256_storeu_ps(target, _mm256_add_ps(_mm256_loadu_ps(target), _mm256_add_ps(a, e)));
                } else {
                    float a = 0;
                    for (ptrdiff_t p = 0; p < count; p++) a += weights[p] * tile_base[samples[p]];
                    target[0] += a;
                }
            }
            continue;
        }
        ptrdiff_t r = 0;
        // Two rows at a time share each sample's four loads of dy.
        for (; r + 1 < width; r += 2) {
            const float *w0 = values + r * value_stride, *w1 = w0 + value_stride;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
            for (ptrdiff_t p = 0; p < count; p++) {
                const float *row = tile_base + (ptrdiff_t)samples[p] * 32;
                const __m256 l0 = _mm256_loadu_ps(row), l1 = _mm256_loadu_ps(row + 8);
                const __m256 l2 = _mm256_loadu_ps(row + 16), l3 = _mm256_loadu_ps(row + 24);
                const __m256 x = _mm256_set1_ps(w0[p]), y = _mm256_set1_ps(w1[p]);
                a0 = _mm256_fmadd_ps(x, l0, a0); a1 = _mm256_fmadd_ps(x, l1, a1);
                a2 = _mm256_fmadd_ps(x, l2, a2); a3 = _mm256_fmadd_ps(x, l3, a3);
                c0 = _mm256_fmadd_ps(y, l0, c0); c1 = _mm256_fmadd_ps(y, l1, c1);
                c2 = _mm256_fmadd_ps(y, l2, c2); c3 = _mm256_fmadd_ps(y, l3, c3);
            }
            float *t = sums + r * outputs + column, *u = t + outputs;
            _mm256_storeu_ps(t, _mm256_add_ps(_mm256_loadu_ps(t), a0));
            _mm256_storeu_ps(t + 8, _mm256_add_ps(_mm256_loadu_ps(t + 8), a1));
            _mm256_storeu_ps(t + 16, _mm256_add_ps(_mm256_loadu_ps(t + 16), a2));
            _mm256_storeu_ps(t + 24, _mm256_add_ps(_mm256_loadu_ps(t + 24), a3));
            _mm256_storeu_ps(u, _mm256_add_ps(_mm256_loadu_ps(u), c0));
            _mm256_storeu_ps(u + 8, _mm256_add_ps(_mm256_loadu_ps(u + 8), c1));
            _mm256_storeu_ps(u + 16, _mm256_add_ps(_mm256_loadu_ps(u + 16), c2));
            _mm256_storeu_ps(u + 24, _mm256_add_ps(_mm256_loadu_ps(u + 24), c3));
        }
        if (r < width) {
            // One row: even and odd samples in two sets of accumulators.
            const float *w0 = values + r * value_stride;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
            ptrdiff_t p = 0;
            for (; p + 1 < count; p += 2) {
                const __m256 x = _mm256_set1_ps(w0[p]), y = _mm256_set1_ps(w0[p + 1]);
                const float *row = tile_base + (ptrdiff_t)samples[p] * 32, *next = tile_base + (ptrdiff_t)samples[p + 1] * 32;
                FMA4(a, x, row);
                FMA4(c, y, next);
            }
            if (p < count) {
                const __m256 x = _mm256_set1_ps(w0[p]);
                FMA4(a, x, tile_base + (ptrdiff_t)samples[p] * 32);
            }
            float *t = sums + r * outputs + column;
            _mm256_storeu_ps(t, _mm256_add_ps(_mm256_loadu_ps(t), _mm256_add_ps(a0, c0)));
            _mm256_storeu_ps(t + 8, _mm256_add_ps(_mm256_loadu_ps(t + 8), _mm256_add_ps(a1, c1)));
            _mm256_storeu_ps(t + 16, _mm256_add_ps(_mm256_loadu_ps(t + 16), _mm256_add_ps(a2, c2)));
            _mm256_storeu_ps(t + 24, _mm256_add_ps(_mm256_loadu_ps(t + 24), _mm256_add_ps(a3, c3)));
        }
    }
}
#endif

void kiln_spline_accumulate_group(const int32_t *samples, ptrdiff_t count, const float *values, ptrdiff_t value_stride,
                                  ptrdiff_t width, const float *tiled_dy, ptrdiff_t batch, ptrdiff_t outputs, float *sums) {
#if KILN_HAS_X86
    if (kiln_cpu_vector_level() >= 1) {
        accumulate_avx2(samples, count, values, value_stride, width, tiled_dy, batch, outputs, sums);
        return;
    }
#endif
    accumulate_portable(samples, count, values, value_stride, width, tiled_dy, batch, outputs, sums);
}

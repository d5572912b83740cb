// The CPU backend's innermost spline loops, in C so that they can use AVX2 and FMA where the processor
// has them (chosen at run time; the package is built for the baseline instruction set) and portable C
// elsewhere. Only KilnBackend imports this module; every layout is described in CPUBackend+Spline.swift.
#ifndef KILN_CPU_H
#define KILN_CPU_H

#include <stddef.h>
#include <stdint.h>

/// The loops in use: 1 for AVX2 + FMA, 0 for portable C.
int kiln_cpu_vector_level(void);

/// Asks for a level (0 or 1); the processor's support caps it. Returns the level now in use.
int kiln_cpu_set_vector_level(int level);

/// The spline forward for samples [begin, end): out[b, :] = Σ_i silu[i, b] · row `rows` of input i +
/// Σ_r values[i, b, r] · row starts[i, b] + r of input i, where the rows of input i for the column tile
/// [s, s + w) sit at weights + inputs · (rows + 1) · s + i · (rows + 1) · w, w = 32, 8 or 1 (32 while 32
/// columns remain, then 8, then 1). Inputs are visited in blocks of `input_block`.
void kiln_spline_forward_range(ptrdiff_t begin, ptrdiff_t end, ptrdiff_t width, ptrdiff_t rows,
                               ptrdiff_t input_block, ptrdiff_t batch, ptrdiff_t inputs, ptrdiff_t outputs,
                               const float *weights, const int32_t *starts, const float *values,
                               const float *silu, float *out);

/// The spline input gradient for samples [begin, end): dx[b, i] = silu_gradient[i, b] · (dy[b, :] · row
/// base_row of input i) + Σ_r values[i, b, r] · (dy[b, :] · row starts[i, b] + r of input i), where the
/// rows of input i are `rows_per_input` rows of `outputs` floats at derivative_rows + i · rows_per_input ·
/// outputs and r runs over 0..<order (order ≤ 5, the limit of SplineShape). A negative start leaves only the first term.
void kiln_spline_input_gradient_range(ptrdiff_t begin, ptrdiff_t end, ptrdiff_t input_block,
                                      ptrdiff_t batch, ptrdiff_t inputs, ptrdiff_t outputs, ptrdiff_t order,
                                      ptrdiff_t rows_per_input, ptrdiff_t base_row,
                                      const float *derivative_rows, const int32_t *starts,
                                      const float *values, const float *silu_gradient, const float *dy,
                                      float *dx);

/// Adds, for r in 0..<width, Σ_p values[r · value_stride + p] · dy[samples[p], :] to row r of `sums`
/// (rows `outputs` apart), summing over p in an order fixed by `count` alone; dy is in column tiles: the tile of columns
/// [s, s + w) starts at tiled_dy + batch · s and holds [batch][w].
void kiln_spline_accumulate_group(const int32_t *samples, ptrdiff_t count, const float *values,
                                  ptrdiff_t value_stride, ptrdiff_t width, const float *tiled_dy,
                                  ptrdiff_t batch, ptrdiff_t outputs, float *sums);

#endif

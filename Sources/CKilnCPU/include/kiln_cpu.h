// The CPU backend's inner loops, one C file per op family named after its Kernels/*.cl twin, in C so
// that they can use AVX2 + FMA (and AVX-512) where the processor has them, chosen at run time (the package
// is built for the baseline instruction set), and portable C elsewhere (see loops.h). The Swift files in
// Sources/Backend/CPU split the work across cores and call these on disjoint ranges. Only KilnBackend
// imports this module. Op codes are those of UnaryOp.code, BinaryOp, ReductionOp (Sources/Backend/Families)
// and of the #defines in Kernels/*.cl.
#ifndef KILN_CPU_H
#define KILN_CPU_H

#include <stddef.h>
#include <stdint.h>

/// The loops in use: 1 for AVX2 + FMA, 0 for portable C.
int kiln_cpu_vector_level(void);

/// Asks for a level (0 or 1); the processor's support caps it. Returns the level now in use.
int kiln_cpu_set_vector_level(int level);

/// Whether the family loops (not the spline loops) run AVX-512 versions where those pay: the processor
/// has AVX-512 F/VL/DQ/BW, wide vectors are on, and KILN_CPU_VECTORS is not `avx2`.
int kiln_cpu_uses_avx512(void);

// MARK: - blas_core.c (OpenBLAS's kernel set)

enum {
    KILN_BLAS_UNKNOWN = 0,     ///< the OpenBLAS in use does not say which kernels it runs
    KILN_BLAS_KEPT = 1,        ///< OpenBLAS's own choice stands
    KILN_BLAS_USER_CHOICE = 2, ///< OPENBLAS_CORETYPE is set: the user's choice stands
    KILN_BLAS_CORRECTED = 3,   ///< OpenBLAS had fallen back to kernels without AVX2 on a processor with it; now the
                               ///< processor's (see blas_core.c)
};

/// Checks OpenBLAS's kernel set and corrects a fallback to pre-AVX2 kernels (blas_core.c); call once, before
/// the first BLAS call. Writes the set in use to `chosen` and OpenBLAS's own choice to `detected` (each
/// `capacity` bytes, NUL-terminated) and returns one of the KILN_BLAS_ values.
int kiln_blas_check_kernels(char *chosen, char *detected, size_t capacity);

// MARK: - elementwise.c (Kernels/elementwise.cl)

/// y[i] = op(x[i]) for i < count, with the op's two parameters a and b (UnaryOp.parameters). y may be x.
void kiln_unary(int op, float a, float b, const float *x, float *y, ptrdiff_t count);

/// dx[i] = dy[i] · op′(x[i]) for i < count, from the input x or the output y. dx may be dy.
void kiln_unary_backward(int op, float a, float b, const float *x, const float *y, const float *dy, float *dx,
                         ptrdiff_t count);

/// out[row · inner + j] = a[...] ∘ b[...] for rows [row_begin, row_end) of a problem whose leading
/// `outer_rank` dimensions have sizes outer_shape and whose last has `inner` elements; a_strides and
/// b_strides hold outer_rank + 1 strides (the last for the inner dimension; 0 broadcasts).
void kiln_binary(int op, ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t inner, ptrdiff_t outer_rank,
                 const ptrdiff_t *outer_shape, const float *a, ptrdiff_t a_offset, const ptrdiff_t *a_strides,
                 const float *b, ptrdiff_t b_offset, const ptrdiff_t *b_strides, float *out);

/// The strided copy of rows [row_begin, row_end), laid out as in kiln_binary (the regions do not overlap).
void kiln_copy_strided(ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t inner, ptrdiff_t outer_rank,
                       const ptrdiff_t *outer_shape, const float *source, ptrdiff_t source_offset,
                       const ptrdiff_t *source_strides, float *destination, ptrdiff_t destination_offset,
                       const ptrdiff_t *destination_strides);

// MARK: - reduce.c (Kernels/reduce.cl)

/// y[o] = op over x[o, 0..<length] for rows [begin, end) of x [outer, length] (inner = 1). Sums run in
/// double precision, element by element in order; max and min need length ≥ 1.
void kiln_reduce_rows(int op, const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t length);

/// y[o, i] = op over l of x[o, l, i] for x [outer, length, inner], over the column blocks [begin, end):
/// block number `block` covers o = block / blocks_per_row and the `block_width` columns starting at
/// (block % blocks_per_row) · block_width (fewer at the row's end). Sums run in double precision over l in
/// order.
void kiln_reduce_columns(int op, const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t length,
                         ptrdiff_t inner, ptrdiff_t block_width);

// MARK: - rows.c (Kernels/rows.cl)
// Each works on rows [begin, end) of row-major [rows, columns] matrices.

void kiln_softmax(const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns);
void kiln_softmax_backward(const float *y, const float *dy, float *dx, ptrdiff_t begin, ptrdiff_t end,
                           ptrdiff_t columns);
void kiln_log_softmax(const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns);
void kiln_log_softmax_backward(const float *y, const float *dy, float *dx, ptrdiff_t begin, ptrdiff_t end,
                               ptrdiff_t columns);
/// losses[r] = logsumexp(x[r]) − x[r, labels[r]], 0 for a label outside [0, columns).
void kiln_cross_entropy(const float *logits, const int32_t *labels, float *losses, ptrdiff_t begin,
                        ptrdiff_t end, ptrdiff_t columns);
/// dlogits[r] = (softmax(x[r]) − onehot(labels[r])) · loss_gradient[r], zero for an ignored row.
void kiln_cross_entropy_backward(const float *logits, const int32_t *labels, const float *loss_gradient,
                                 float *logits_gradient, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns);
void kiln_rms_norm(const float *x, const float *weight, float *y, float *inverse_rms, ptrdiff_t begin,
                   ptrdiff_t end, ptrdiff_t columns, float epsilon);
/// The input gradient of rows [begin, end).
void kiln_rms_norm_backward_input(const float *x, const float *weight, const float *inverse_rms,
                                  const float *dy, float *dx, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns);
/// weight_gradient[c] = Σ_r dy[r, c] · x[r, c] · inverse_rms[r] for columns [begin, end), rows in order.
void kiln_rms_norm_backward_weight(const float *x, const float *inverse_rms, const float *dy,
                                   float *weight_gradient, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t rows,
                                   ptrdiff_t columns);

// MARK: - embedding.c (Kernels/embedding.cl)

/// out[n, :] = table[indices[n], :] for n in [begin, end); an index outside [0, table_rows) gives zeros.
void kiln_gather_rows(const float *table, ptrdiff_t table_rows, const int32_t *indices, float *out,
                      ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns);

/// table[indices[n], c] += source[n, c] for columns c in [begin, end) and every n < index_count in
/// increasing order; out-of-range indices are skipped.
void kiln_scatter_add_rows(const float *source, const int32_t *indices, ptrdiff_t index_count, float *table,
                           ptrdiff_t table_rows, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns);

// MARK: - random.c (Kernels/random.cl)

/// out[i] = (splitmix64(seed ^ splitmix64(offset + i)) >> 40) / 2²⁴ for i in [begin, end).
void kiln_random_uniform(float *out, ptrdiff_t begin, ptrdiff_t end, uint64_t seed, uint64_t offset);

// MARK: - optimizer.c (Kernels/optimizer.cl)
// Each updates elements [0, count) of the pointers it is given; `scale` multiplies the gradient first.

/// SGD: g ← g·scale + weight_decay·p; with momentum (velocity not NULL) v ← momentum·v + g and
/// g ← nesterov ? g + momentum·v : v; then p ← p − learning_rate·g.
void kiln_sgd_step(ptrdiff_t count, float learning_rate, float momentum, int nesterov, float weight_decay,
                   float scale, float *parameter, const float *gradient, float *velocity);

/// Adam / AdamW: g ← g·scale + l2·p, m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
/// p ← p·decay − step_size·m / (√v·correction2 + ε).
void kiln_adam_step(ptrdiff_t count, float step_size, float beta1, float beta2, float epsilon,
                    float correction2, float decay, float l2, float scale, float *parameter,
                    const float *gradient, float *first_moment, float *second_moment);

/// Adam-atan2: Adam's moments of g·scale, then p ← p·decay − learning_rate·a·atan2(m·correction1,
/// b·√v·correction2).
void kiln_adam_atan2_step(ptrdiff_t count, float learning_rate, float beta1, float beta2, float correction1,
                          float correction2, float a, float b, float decay, float scale, float *parameter,
                          const float *gradient, float *first_moment, float *second_moment);

// MARK: - spline.c (Kernels/spline.cl)

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

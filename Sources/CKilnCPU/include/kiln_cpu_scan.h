// The CPU backend's innermost scan loops (the scan family; the layouts and the math are in
// CPUBackend+Scan.swift and Families/Scan.swift). States are padded [rows, width] matrices, width a
// multiple of 8; every pointer is to floats. Portable C, AVX2 + FMA or AVX-512 is chosen at run time
// (AVX-512 on top of kiln_cpu_vector_level in kiln_cpu.h, unless KILN_CPU_VECTORS=avx2); the sums along
// a row run in 8-lane accumulators in every version, so the wide versions give the same bits as each
// other.
#ifndef KILN_CPU_SCAN_H
#define KILN_CPU_SCAN_H

#include <stddef.h>

/// S[k] = d[k]·S[k] + key[k]·update for every row k, and output = Sᵀ query of the new state.
void kiln_scan_decay_add_and_read(float *state, ptrdiff_t rows, ptrdiff_t width, const float *decay, const float *key,
                                  const float *update, const float *query, float *output);

/// S[k] = d[k]·S[k] + key[k]·update for every row k.
void kiln_scan_decay_add(float *state, ptrdiff_t rows, ptrdiff_t width, const float *decay, const float *key,
                         const float *update);

/// next[k] = d[k]·previous[k] + key[k]·update for every row k, and dots[k] = scale · next[k]·against.
void kiln_scan_decay_add_and_dot(const float *previous, float *next, ptrdiff_t rows, ptrdiff_t width, const float *decay,
                                 const float *key, const float *update, const float *against, float scale, float *dots);

/// sums = scale · Sᵀ weights.
void kiln_scan_column_sums(const float *state, ptrdiff_t rows, ptrdiff_t width, const float *weights, float scale,
                           float *sums);

/// G[k] += query[k]·dO for every row k, and sums = Gᵀ key.
void kiln_scan_add_outer_and_column_sums(float *gradient, ptrdiff_t rows, ptrdiff_t width, const float *query,
                                         const float *output_gradient, const float *key, float *sums);

/// One reverse step of (gated) linear attention: G[k] += query[k]·dO, key_gradient[k] = G[k]·value,
/// value_sums = Gᵀ key, gate_gradient[k] = d[k] · G[k]·before[k] (when gate_gradient is not NULL), then
/// G[k] *= d[k].
void kiln_scan_linear_reverse(float *gradient, const float *before, ptrdiff_t rows, ptrdiff_t width, const float *decay,
                              const float *query, const float *output_gradient, const float *key, const float *value,
                              float *value_sums, float *key_gradient, float *gate_gradient);

/// One reverse step of the delta rule after kiln_scan_add_outer_and_column_sums: key_gradient[k] =
/// G[k]·update + γ·before[k]·dw, dS′[k] = G[k] + key[k]·dw, G[k] = γ·dS′[k]; returns γ · Σ_k dS′[k]·before[k].
float kiln_scan_delta_reverse(float *gradient, const float *before, ptrdiff_t rows, ptrdiff_t width, float gamma,
                              const float *key, const float *update, const float *removal_gradient, float *key_gradient);

/// y[i] = exp(x[i]) for i < count (about 2 ulp; 0 below −87.3, infinity above 88.37).
void kiln_scan_exp(const float *x, float *y, ptrdiff_t count);

// MARK: - The chunked form (scan_chunked_loops.h)
//
// One chunk of at most KILN_SCAN_CHUNK_LENGTH steps of one (batch, head) pair at a time; the caller walks
// the chunks (CPUBackend+ScanChunked.swift). States are padded [keys, kiln_scan_padded(values)] matrices
// whose padding columns are zero. The math is in the comment at the top of scan_chunked_loops.h.

/// The most steps per chunk (C; the row length of the chunk's C × C matrices), and the steps per
/// sub-chunk (the blocks of the GLA products and of the triangular solve).
#define KILN_SCAN_CHUNK_LENGTH 64
#define KILN_SCAN_SUB_CHUNK_LENGTH 16

/// The steps per chunk the CPU backend walks at these sizes: 32 or 64 (see scan_chunked_loops.h).
ptrdiff_t kiln_scan_chunk_length(ptrdiff_t keys, ptrdiff_t values);

/// One chunk's operands: row pointers at the chunk's first step, with the distance between consecutive
/// steps' rows (in floats). Log-space gates (not decays). NULL output_gradient means dO = 0; NULL
/// gate_gradient is not computed. Forward passes read only the inputs and write `output`.
typedef struct {
    ptrdiff_t length;        // steps in this chunk, 1 ... KILN_SCAN_CHUNK_LENGTH
    ptrdiff_t keys, values;  // K and V
    ptrdiff_t key_stride;    // between q, k, per-key gate rows: heads · K
    ptrdiff_t value_stride;  // between v, o, dO rows: heads · V
    ptrdiff_t head_stride;   // between beta and per-head gate values: heads
    int gate;                // 0 none, 1 per head, 2 per key (the delta rule: 0 or 1)
    float scale;
    const float *query, *key, *value, *gate_values, *beta;
    float *output;
    const float *output_gradient;
    float *query_gradient, *key_gradient, *value_gradient, *gate_gradient, *beta_gradient;
} kiln_scan_chunk;

/// Columns of a padded state row: `values` rounded up to a multiple of 16.
ptrdiff_t kiln_scan_padded(ptrdiff_t values);

/// Floats of scratch memory one chunk call needs at these sizes (the same for every chunk function).
ptrdiff_t kiln_scan_chunk_workspace_count(ptrdiff_t keys, ptrdiff_t values);

/// (Gated) linear attention, one chunk forward: `state` (S at the chunk's start) becomes S at its end,
/// and, when `write_output` is not 0, the chunk's outputs are written.
void kiln_scan_chunk_linear_forward(const kiln_scan_chunk *chunk, float *state, int write_output, float *workspace);

/// (Gated) linear attention, one chunk backward: from S at the chunk's start and end and
/// `state_gradient` (dL/dS at the chunk's end, which becomes dL/dS at its start), the chunk's dq, dk, dv
/// and gate gradient.
void kiln_scan_chunk_linear_backward(const kiln_scan_chunk *chunk, const float *start_state, const float *end_state,
                                     float *state_gradient, float *workspace);

/// Floats of one delta-rule chunk's saved factors for chunks of up to `length` steps (K Kᵀ, N and U:
/// 2 · length · 64 + length · V, V rounded up to 16).
ptrdiff_t kiln_scan_chunk_delta_factor_count(ptrdiff_t keys, ptrdiff_t values, ptrdiff_t length);

/// The (gated) delta rule, one chunk forward, in the WY/UT form (as kiln_scan_chunk_linear_forward).
/// `factors`: NULL, or kiln_scan_chunk_delta_factor_count floats (for a length of at least this chunk's;
/// they need not be zeroed) where the chunk's factors are written, for kiln_scan_chunk_delta_backward
/// from the same start state.
void kiln_scan_chunk_delta_forward(const kiln_scan_chunk *chunk, float *state, int write_output, float *workspace,
                                   float *factors);

/// The (gated) delta rule, one chunk backward (as kiln_scan_chunk_linear_backward, with dbeta).
/// `factors`: what kiln_scan_chunk_delta_forward wrote for this chunk and this `start_state` (required).
void kiln_scan_chunk_delta_backward(const kiln_scan_chunk *chunk, const float *start_state, float *state_gradient,
                                    float *workspace, const float *factors);

#endif

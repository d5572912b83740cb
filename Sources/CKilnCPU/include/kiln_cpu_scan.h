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

#endif

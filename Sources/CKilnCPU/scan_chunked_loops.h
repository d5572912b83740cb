// The chunked form of the scans (fla's algorithms: Yang et al. 2024, "Gated Linear Attention Transformers
// with Hardware-Efficient Training" and "Parallelizing Linear Transformers with the Delta Rule over
// Sequence Length"; Yang, Kautz & Hatamizadeh 2025 for the gated delta rule), one chunk of at most
// C = 64 steps of one (batch, head) pair per call. scan.c includes this file once per instruction set,
// right after scan_loops.h, with the same vector macros plus
//   vadd(a, b)   a + b
//   vsum16(acc)  the sum of a 16-float block held in acc[0 ... 16 / LANES − 1], in the 8-lane order
//   GEMM_ROWS    rows of a matrix-product register tile (4 with 8 lanes, 8 with AVX-512's 32 registers)
// The per-chunk bookkeeping (which chunk, the saved states, the split across cores) is in
// CPUBackend+ScanChunked.swift.
//
// Chunk length (kiln_scan_chunk_length, a tuning choice of the CPU backend; the math is the same for any
// L ≤ C = 64, a chunk of 32 steps is a "partial" chunk of the same loops): the CPU walks chunks of 32
// steps when K ≤ 64 and V ≤ 64, and of 64 (fla's C) otherwise. Per step the chunked form costs about
// a·C·D multiply-adds within the chunk and b·K·V across chunks; at D = 64 the first dominates, and 32
// steps do about a quarter fewer multiply-adds in all. Measured (bench/RESULTS.md, "Chunks of 32 at
// D ≤ 64, and fewer passes"; bench/scan-chunks), forward + backward, T = 4096, B 1, H 4, one thread, the
// two lengths alternated in one process: chunks of 32 take 0.88 to 0.93 of the time of chunks of 64 for
// DeltaNet and per-key GLA at D = 64, and 0.98 to 1.01 at D = 128, where the chunk stays 64. Sub-chunks
// stay 16 steps either way.
//
// Notation, per chunk: steps i = 0 … L−1 (L ≤ C), Q̃ = scale·q, K, V the chunk's rows, S0 the state at
// the chunk's start; G the cumulative log gate within the chunk (G_i = g_0 + … + g_i ≤ 0, per key or per
// head; 0 without a gate), so every exp(G_i − G_j) with j ≤ i is ≤ 1, and no decay is ever divided by.
//
// (Gated) linear attention (GLA):
//   A_ij = Σ_k Q̃_ik K_jk exp(G_ik − G_jk) for j ≤ i (0 above),   Q̄ = Q̃ ⊙ exp(G),   K̄ = K ⊙ exp(G_L − G)
//   O = Q̄ S0 + A V,   S_end = diag(exp(G_L)) S0 + K̄ᵀ V          (G_L: the last row)
// With per-key gates A is built in sub-chunks of 16 (as fla): an off-diagonal block (I > J) is the
// product of Q̃_I ⊙ exp(G_I − G_n) and K_J ⊙ exp(G_n − G_J), G_n the first row of block I, so both
// exponents are ≤ 0; a diagonal block is element-wise, with pairwise decays exp(G_i − G_j), j ≤ i.
// Every per-key factor (exp(G), exp(G_L − G), exp(G_L), the blocks' factors and pairwise decays) is a
// running product of the steps' decays d = exp(g) ∈ [0, 1]: one exp per gate value, a multiplication
// per factor, each within about L ulp of exp of the cumulative sum (whose own rounding, |G| · L ulp,
// is larger under strong gates); products below FLT_MIN are set to 0, so none is subnormal. With a
// per-head gate (or none) the decay is one scalar per pair:
// A = (Q̃ Kᵀ) ⊙ Γ, Γ_ij = exp(G_i − G_j).
// Backward, with dS = ∂L/∂S_end:
//   dA = dO Vᵀ (lower),  dV = Aᵀ dO + K̄ dS,  dS0 = Q̄ᵀ dO + diag(exp(G_L)) dS
//   dQ̃ = exp(G) ⊙ (dO S0ᵀ) + [dA through the blocks, as A],  dK = exp(G_L − G) ⊙ (V dSᵀ) + [dAᵀ, as A]
//   ∂L/∂G_i = Q̃_i ⊙ dQ̃_i − K_i ⊙ dK_i, plus rowsum(dS ⊙ S_end) on the last row; dg is its reverse
//   cumulative sum within the chunk (a per-head gate sums it over keys).
//
// The delta rule (DeltaNet in the WY/UT form; a per-head gate γ = exp(g) for gated DeltaNet):
//   Γ_ij = exp(G_i − G_j) (j ≤ i),  A = strictly lower part of diag(β) (Γ ⊙ K Kᵀ),  N = (I + A)⁻¹
//   (blocked forward substitution: 16 × 16 diagonal blocks row by row, then N_IJ = −N_II Σ_M A_IM N_MJ),
//   T = N diag(β),  W = T diag(exp(G)) K,  U = T V − W S0  (the chunk's u_t, as the recurrence has them)
//   P = (Q̃ Kᵀ) ⊙ Γ (j ≤ i),  O = diag(exp(G)) Q̃ S0 + P U,  S_end = exp(G_L) S0 + (diag(exp(G_L − G)) K)ᵀ U
// Backward: dU = Pᵀ dO + K̄ dS, dP = dO Uᵀ, dW = −dU S0ᵀ, dV = Tᵀ dU, dT = dW (diag(e^G) K)ᵀ + dU Vᵀ,
// dβ_j = Σ_i dT_ij N_ij + Σ_k dA_jk Γ_jk (K Kᵀ)_jk, dA = −Nᵀ (dT diag(β)) Nᵀ, and dK from P, K̄, W and
// K Kᵀ; the gate's gradient collects every place exp(G) appears and is reverse-summed as GLA's.
//
// Matrices live in one scratch area per call (`workspace`, zeroed once by the caller): rows of Kp or Vp
// floats (K and V rounded up to 16) and C × C matrices with rows of C floats, of which the first
// Ln = L rounded up to 16 columns are computed. Rows past L are zero in every loaded input, so products
// over them add nothing. Each output element of a product sums its terms in order with FMAs, so the AVX2
// and AVX-512 versions give the same bits; the few sums along a row run in 16-float blocks (vsum16).

#ifndef KILN_SCAN_CHUNKED_SHARED
#define KILN_SCAN_CHUNKED_SHARED

#define CHUNK KILN_SCAN_CHUNK_LENGTH
#define SUB KILN_SCAN_SUB_CHUNK_LENGTH
#define GEMM_FULL 0
#define GEMM_LOWER 1  // op(a)[i][l] = 0 for l > i: only l ≤ i is summed
#define GEMM_UPPER 2  // op(a)[i][l] = 0 for l < i
#define GEMM_OUT_LOWER 3  // only c's lower triangle is wanted: register tiles wholly above it are not written
// Helpers without vector types, shared by every version (inlined, so each is compiled for its caller).
#define KILN_PORTABLE_SHARED static inline __attribute__((always_inline))

KILN_PORTABLE_SHARED ptrdiff_t round_up(ptrdiff_t x, ptrdiff_t multiple) { return (x + multiple - 1) / multiple * multiple; }

ptrdiff_t kiln_scan_padded(ptrdiff_t values) { return round_up(values, 16); }

ptrdiff_t kiln_scan_chunk_length(ptrdiff_t keys, ptrdiff_t values) {
    return keys <= 64 && values <= 64 ? 32 : CHUNK;  // see "Chunk length" at the top of this file
}

ptrdiff_t kiln_scan_chunk_delta_factor_count(ptrdiff_t keys, ptrdiff_t values, ptrdiff_t length) {
    (void)keys;
    return 2 * length * CHUNK + length * round_up(values, 16);
}

ptrdiff_t kiln_scan_chunk_workspace_count(ptrdiff_t keys, ptrdiff_t values) {
    const ptrdiff_t kp = round_up(keys, 16), vp = round_up(values, 16);
    ptrdiff_t widest = kp > vp ? kp : vp;
    if (widest < CHUNK) widest = CHUNK;
    return 48 * CHUNK * widest + 4 * kp * vp + 32 * CHUNK;
}

/// Bump allocation from a call's scratch area, in 64-byte pieces.
typedef struct {
    float *next, *end;
} chunk_arena;

KILN_PORTABLE_SHARED float *take(chunk_arena *arena, ptrdiff_t count) {
    float *piece = arena->next;
    arena->next += round_up(count, 16);
    if (arena->next > arena->end) abort();  // kiln_scan_chunk_workspace_count is too small: a bug here
    return piece;
}

/// Rows ahead that chunk_load and chunk_store prefetch. A chunk's rows are one (batch, head) pair's steps,
/// H · K or H · V floats apart in the [B, T, H, ·] tensors, so with a few heads a 4 KiB page holds only a
/// few rows and the hardware's stream prefetchers (which stop at page boundaries) miss on most rows.
#define CHUNK_PREFETCH_ROWS 8

/// Prefetches the cache lines of src[0 ..< cols] (for writing when `write`).
KILN_PORTABLE_SHARED void chunk_prefetch_row(const float *src, ptrdiff_t cols, int write) {
    for (ptrdiff_t c = 0; c < cols; c += 16) {
        if (write) __builtin_prefetch(src + c, 1);
        else __builtin_prefetch(src + c, 0);
    }
    if (write) __builtin_prefetch(src + cols - 1, 1);  // the last line when the row straddles one more
    else __builtin_prefetch(src + cols - 1, 0);
}

/// dst[r][c] = scale · src[r · stride + c] for r < rows, c < cols; zero for c in [cols, width) and for rows
/// in [rows, padded_rows). A NULL src gives zeros.
KILN_PORTABLE_SHARED void chunk_load(const float *src, ptrdiff_t stride, ptrdiff_t rows, ptrdiff_t cols, float scale,
                                     float *dst, ptrdiff_t width, ptrdiff_t padded_rows) {
    if (src != NULL && cols > 0)
        for (ptrdiff_t r = 0; r < rows && r < CHUNK_PREFETCH_ROWS; r++) chunk_prefetch_row(src + r * stride, cols, 0);
    for (ptrdiff_t r = 0; r < padded_rows; r++) {
        float *out = dst + r * width;
        if (src == NULL || r >= rows) {
            memset(out, 0, (size_t)width * sizeof(float));
            continue;
        }
        if (r + CHUNK_PREFETCH_ROWS < rows && cols > 0) chunk_prefetch_row(src + (r + CHUNK_PREFETCH_ROWS) * stride, cols, 0);
        const float *in = src + r * stride;
        for (ptrdiff_t c = 0; c < cols; c++) out[c] = scale * in[c];
        for (ptrdiff_t c = cols; c < width; c++) out[c] = 0.0f;
    }
}

/// dst[r · stride + c] = scale · src[r][c] for r < rows, c < cols.
KILN_PORTABLE_SHARED void chunk_store(const float *src, ptrdiff_t width, ptrdiff_t rows, ptrdiff_t cols, float scale,
                                      float *dst, ptrdiff_t stride) {
    if (cols > 0)
        for (ptrdiff_t r = 0; r < rows && r < CHUNK_PREFETCH_ROWS; r++) chunk_prefetch_row(dst + r * stride, cols, 1);
    for (ptrdiff_t r = 0; r < rows; r++) {
        if (r + CHUNK_PREFETCH_ROWS < rows && cols > 0) chunk_prefetch_row(dst + (r + CHUNK_PREFETCH_ROWS) * stride, cols, 1);
        const float *in = src + r * width;
        float *out = dst + r * stride;
        for (ptrdiff_t c = 0; c < cols; c++) out[c] = scale * in[c];
    }
}

/// dst[c][r] = src[r][c] for c < cols and r < rows, zero for r in [rows, padded_rows).
KILN_PORTABLE_SHARED void chunk_transpose(const float *src, ptrdiff_t lds, ptrdiff_t rows, ptrdiff_t padded_rows,
                                          ptrdiff_t cols, float *dst, ptrdiff_t ldd) {
    for (ptrdiff_t c = 0; c < cols; c++) {
        float *out = dst + c * ldd;
        for (ptrdiff_t r = 0; r < rows; r++) out[r] = src[r * lds + c];
        for (ptrdiff_t r = rows; r < padded_rows; r++) out[r] = 0.0f;
    }
}

/// x[r][c] *= factor[r] (one scalar per row) for r < rows, c < width.
KILN_PORTABLE_SHARED void chunk_scale_rows(float *x, ptrdiff_t width, ptrdiff_t rows, const float *factor) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float f = factor[r];
        float *row = x + r * width;
        for (ptrdiff_t c = 0; c < width; c++) row[c] *= f;
    }
}

/// out = x ⊙ y element by element (count floats).
KILN_PORTABLE_SHARED void chunk_multiply(const float *x, const float *y, float *out, ptrdiff_t count) {
    for (ptrdiff_t i = 0; i < count; i++) out[i] = x[i] * y[i];
}

/// out += x ⊙ y element by element.
KILN_PORTABLE_SHARED void chunk_multiply_add(const float *x, const float *y, float *out, ptrdiff_t count) {
    for (ptrdiff_t i = 0; i < count; i++) out[i] += x[i] * y[i];
}

/// The state row scaling S[k] *= d[k] of a [rows, width] state.
KILN_PORTABLE_SHARED void chunk_decay_state(float *state, ptrdiff_t rows, ptrdiff_t width, const float *decay) {
    chunk_scale_rows(state, width, rows, decay);
}

/// x[i] *= factor for i < count (a per-head decay of a whole state).
KILN_PORTABLE_SHARED void chunk_decay_state_scalar(float *x, ptrdiff_t count, float factor) {
    for (ptrdiff_t i = 0; i < count; i++) x[i] *= factor;
}

/// A [rows, CHUNK] matrix's columns j > i set to zero (j < width), or j ≥ i when `strict`.
KILN_PORTABLE_SHARED void chunk_mask_upper(float *x, ptrdiff_t rows, ptrdiff_t width, int strict) {
    for (ptrdiff_t i = 0; i < rows; i++)
        for (ptrdiff_t j = strict ? i : i + 1; j < width; j++) x[i * CHUNK + j] = 0.0f;
}

/// The (per head) cumulative log gate of a chunk: cumulative[i] = g_0 + … + g_i (zero without a gate).
KILN_PORTABLE_SHARED void chunk_head_gates(const kiln_scan_chunk *x, float *cumulative) {
    float total = 0.0f;
    for (ptrdiff_t i = 0; i < x->length; i++) {
        if (x->gate == 1) total += x->gate_values[i * x->head_stride];
        cumulative[i] = total;
    }
}

/// The prepared operands of a (gated) linear-attention chunk (see the top of this file).
typedef struct {
    ptrdiff_t L, K, Vd, Kp, Vp, Ln, blocks;
    float *q, *k, *v;       // Q̃, K [Ln, Kp], V [Ln, Vp]
    float *g, *decay;       // per key: the log gates g and each step's decays exp(g) [C, Kp]
    float *eg, *fk;         // exp(G), exp(G_L − G) [C, Kp] (a per-head gate's rows filled with one value)
    float *qbar, *kbar;     // Q̃ ⊙ exp(G), K ⊙ exp(G_L − G) [Ln, Kp]
    float *b;               // exp(G_L) [Kp]
    float *gamma;           // per head or none: Γ [C, C], 0 above the diagonal
    float *a;               // A [C, C], 0 above the diagonal
    float *kt;              // scratch [Kp, C]
    float *fq, *qhat;       // per key, block I at row n: exp(G_I − G_n), Q̃_I ⊙ that [C, Kp]
    float *fn, *khat;       // per key, block I's n rows (linear_block_rows): exp(G_n − G_j), K_j ⊙ that (j < n)
    float *ones;            // [Kp] running products of decays (a diagonal block's scratch row)
} linear_chunk;

/// The prepared operands of a (gated) delta-rule chunk.
typedef struct {
    ptrdiff_t L, K, Vd, Kp, Vp, Ln;
    int gated;              // a per-head gate; without one Γ, exp(G) and exp(G_L − G) are ones: never formed,
                            // multiplied by or stored (ek, kbar and qbar are k and q themselves)
    float *q, *k, *v;       // Q̃, K [Ln, Kp], V [Ln, Vp]
    float *beta;            // [C]
    float *gh, *eg, *fk;    // [C]: G, exp(G), exp(G_L − G)
    float bl;               // exp(G_L)
    float *gamma;           // Γ [C, C] (gated only), 0 above the diagonal
    float *kt;              // Kᵀ [Kp, C]
    float *kk;              // K Kᵀ [C, C]
    float *a, *n, *t;       // A (strictly lower), N = (I + A)⁻¹, T = N diag(β) [C, C]
    float *ek;              // diag(exp(G)) K [Ln, Kp]
    float *y, *u;           // V − diag(exp(G)) K S0 [C, Vp] (scratch), U [C, Vp]
    float *kbar;            // diag(exp(G_L − G)) K [Ln, Kp]
    float *qbar;            // diag(exp(G)) Q̃ [Ln, Kp]
    float *qk, *p;          // Q̃ Kᵀ and P = Q̃ Kᵀ ⊙ Γ (j ≤ i) [C, C]
    float *scratch;         // [SUB, C] for the triangular solve
} delta_chunk;
#endif

// MARK: - Products

/// chunk_transpose, in 8 × 8 blocks of AVX shuffles where the instruction set has them (TRANSPOSE8): the
/// same values, moved.
TARGET static void VARIANT(transpose)(const float *src, ptrdiff_t lds, ptrdiff_t rows, ptrdiff_t padded_rows, ptrdiff_t cols,
                                      float *dst, ptrdiff_t ldd) {
#ifdef TRANSPOSE8
    const ptrdiff_t rows8 = rows / 8 * 8, cols8 = cols / 8 * 8;
    for (ptrdiff_t r = 0; r < rows8; r += 8)
        for (ptrdiff_t c = 0; c < cols8; c += 8) TRANSPOSE8(src + r * lds + c, lds, dst + c * ldd + r, ldd);
    for (ptrdiff_t c = 0; c < cols; c++) {  // the rows past the blocks, the columns past them, the padding
        float *out = dst + c * ldd;
        for (ptrdiff_t r = c < cols8 ? rows8 : 0; r < rows; r++) out[r] = src[r * lds + c];
        for (ptrdiff_t r = rows; r < padded_rows; r++) out[r] = 0.0f;
    }
#else
    chunk_transpose(src, lds, rows, padded_rows, cols, dst, ldd);
#endif
}

/// One register tile of `gemm`: rows × (n0 + n1) columns (the second vector only when `two`).
TARGET static inline __attribute__((always_inline)) void VARIANT(gemm_tile)(
    const int rows, const int two, const ptrdiff_t n0, const ptrdiff_t n1, const ptrdiff_t lo, const ptrdiff_t hi,
    const float alpha, const float *a, const ptrdiff_t ars, const ptrdiff_t acs, const float *b, const ptrdiff_t ldb,
    float *c, const ptrdiff_t ldc, const int accumulate) {
    (void)n0;
    (void)n1;  // used by the 16-lane version only
    V acc0[GEMM_ROWS], acc1[GEMM_ROWS];
    for (int r = 0; r < rows; r++) {
        acc0[r] = vzero();
        acc1[r] = vzero();
    }
    for (ptrdiff_t l = lo; l < hi; l++) {
        const float *row = b + l * ldb;
        const V b0 = vload_n(row, n0);
        const V b1 = two ? vload_n(row + LANES, n1) : vzero();
        const float *column = a + l * acs;
        for (int r = 0; r < rows; r++) {
            const V x = vset(column[r * ars]);
            acc0[r] = vmadd(x, b0, acc0[r]);
            if (two) acc1[r] = vmadd(x, b1, acc1[r]);
        }
    }
    const V factor = vset(alpha);
    const int scaled = alpha != 1.0f;  // x · 1 = x: the same bits without the multiplication
    for (int r = 0; r < rows; r++) {
        float *out = c + r * ldc;
        V x0 = scaled ? vmul(acc0[r], factor) : acc0[r];
        if (accumulate) x0 = vadd(vload_n(out, n0), x0);
        vstore_n(out, x0, n0);
        if (two) {
            V x1 = scaled ? vmul(acc1[r], factor) : acc1[r];
            if (accumulate) x1 = vadd(vload_n(out + LANES, n1), x1);
            vstore_n(out + LANES, x1, n1);
        }
    }
}

/// c[i][j] = (accumulate ? c[i][j] : 0) + alpha · Σ_l op(a)[i][l] · b[l][j] for i < m, j < n (n a multiple
/// of 8), with op(a)[i][l] = a[i · ars + l · acs] (a transposed is ars = 1) and rows of b and c ldb and ldc
/// floats apart. `triangle` skips the terms a triangular op(a) has as zeros, or (GEMM_OUT_LOWER) the
/// register tiles of c (or a tile's second vector) whose every column j is > every row i: those c[i][j]
/// are left as they were, and the caller masks them (each computed element has the same terms in the
/// same order either way).
TARGET static void VARIANT(gemm)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t depth, float alpha, const float *a, ptrdiff_t ars,
                                 ptrdiff_t acs, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate,
                                 int triangle) {
    for (ptrdiff_t j = 0; j < n; j += 2 * LANES) {
        const ptrdiff_t width = n - j;
        const ptrdiff_t n0 = width < LANES ? width : LANES;
        const ptrdiff_t rest = width - n0;
        const ptrdiff_t whole_n1 = rest < LANES ? rest : LANES;
        for (ptrdiff_t i = 0; i < m;) {
            const int rows = m - i >= GEMM_ROWS ? GEMM_ROWS : 1;
            ptrdiff_t n1 = whole_n1;
            if (triangle == GEMM_OUT_LOWER) {
                if (j > i + rows - 1) {  // the whole tile above the diagonal
                    i += rows;
                    continue;
                }
                if (j + LANES > i + rows - 1) n1 = 0;  // its second vector's columns all above it
            }
            ptrdiff_t lo = 0, hi = depth;
            if (triangle == GEMM_LOWER && i + rows < depth) hi = i + rows;
            if (triangle == GEMM_UPPER) lo = i < depth ? i : depth;
            const float *ai = a + i * ars;
            float *ci = c + i * ldc + j;
            if (rows == GEMM_ROWS) {
                if (n1 > 0) VARIANT(gemm_tile)(GEMM_ROWS, 1, n0, n1, lo, hi, alpha, ai, ars, acs, b + j, ldb, ci, ldc, accumulate);
                else VARIANT(gemm_tile)(GEMM_ROWS, 0, n0, 0, lo, hi, alpha, ai, ars, acs, b + j, ldb, ci, ldc, accumulate);
            } else {
                if (n1 > 0) VARIANT(gemm_tile)(1, 1, n0, n1, lo, hi, alpha, ai, ars, acs, b + j, ldb, ci, ldc, accumulate);
                else VARIANT(gemm_tile)(1, 0, n0, 0, lo, hi, alpha, ai, ars, acs, b + j, ldb, ci, ldc, accumulate);
            }
            i += rows;
        }
    }
}

/// Σ x[c] · y[c] for c < n (a multiple of 16), in 16-float blocks.
TARGET static float VARIANT(chunk_dot)(const float *x, const float *y, ptrdiff_t n) {
    V acc[16 / LANES];
    for (int v = 0; v < 16 / LANES; v++) acc[v] = vzero();
    for (ptrdiff_t c = 0; c < n; c += 16)
        for (int v = 0; v < 16 / LANES; v++) acc[v] = vmadd(vload(x + c + v * LANES), vload(y + c + v * LANES), acc[v]);
    return vsum16(acc);
}

/// Σ x[c] for c < n (a multiple of 16), in 16-float blocks.
TARGET static float VARIANT(chunk_sum)(const float *x, ptrdiff_t n) {
    V acc[16 / LANES];
    for (int v = 0; v < 16 / LANES; v++) acc[v] = vzero();
    for (ptrdiff_t c = 0; c < n; c += 16)
        for (int v = 0; v < 16 / LANES; v++) acc[v] = vadd(acc[v], vload(x + c + v * LANES));
    return vsum16(acc);
}

/// Γ [C, C] for per-head cumulative gates gh (L of them): exp(gh_i − gh_j) for j ≤ i < L, 0 for j > i (j < Ln).
TARGET static void VARIANT(chunk_pair_decays)(const float *gh, ptrdiff_t L, ptrdiff_t Ln, float *gamma) {
    for (ptrdiff_t i = 0; i < L; i++) {
        float *row = gamma + i * CHUNK;
        for (ptrdiff_t j = 0; j <= i; j++) row[j] = gh[i] - gh[j];
        VARIANT(exp)(row, row, i + 1);  // every element through exp_lanes, whatever the count
        for (ptrdiff_t j = i + 1; j < Ln; j++) row[j] = 0.0f;
    }
}

/// x ⊙ y with products below FLT_MIN set to 0: running products of decays (numbers in [0, 1]) never
/// become subnormal, which x86 cores multiply slowly (a microcode assist per operation) when strong gates
/// drive them down; exp_lanes returns 0 there too.
TARGET static inline __attribute__((always_inline)) V VARIANT(mul_flushed)(V x, V y) {
    const V product = vmul(x, y);
    return vselect_below(product, FLT_MIN, vzero(), product);
}

/// Running products down the rows of d [rows, Kp]: out_i = out_{i−1} ⊙ d_i, with out_0 = d_0, or 1 when
/// `first_is_one` (Kp a multiple of 16).
TARGET static void VARIANT(chunk_prefix_products)(const float *d, ptrdiff_t rows, ptrdiff_t Kp, float *out, int first_is_one) {
    for (ptrdiff_t c = 0; c < Kp; c++) out[c] = first_is_one ? 1.0f : d[c];
    for (ptrdiff_t i = 1; i < rows; i++)
        for (ptrdiff_t c = 0; c < Kp; c += LANES)
            vstore(out + i * Kp + c, VARIANT(mul_flushed)(vload(out + (i - 1) * Kp + c), vload(d + i * Kp + c)));
}

/// Running products up the rows: out_i = out_{i+1} ⊙ d_{i+1} for i < rows − 1, with out_{rows−1} = 1, or
/// the row `last` when given.
TARGET static void VARIANT(chunk_suffix_products)(const float *d, ptrdiff_t rows, ptrdiff_t Kp, float *out, const float *last) {
    for (ptrdiff_t c = 0; c < Kp; c++) out[(rows - 1) * Kp + c] = last != NULL ? last[c] : 1.0f;
    for (ptrdiff_t i = rows - 2; i >= 0; i--)
        for (ptrdiff_t c = 0; c < Kp; c += LANES)
            vstore(out + i * Kp + c, VARIANT(mul_flushed)(vload(out + (i + 1) * Kp + c), vload(d + (i + 1) * Kp + c)));
}

// MARK: - (Gated) linear attention

/// The first row of sub-chunk I's fn and khat: the blocks before it have 16, 32, … rows.
#define linear_block_rows(block) (SUB * (block) * ((block) - 1) / 2)

/// The block factors of sub-chunk I (I ≥ 1) with n = 16·I: fq = exp(G_{n+r} − G_n), qhat = Q̃ ⊙ fq for its
/// rows, fn = exp(G_n − G_j), khat = K ⊙ fn for the rows j < n before it, as running products of the
/// steps' decays (fq_{n+r} = d_{n+1} ⋯ d_{n+r}, fn_j = d_{j+1} ⋯ d_n). Each block has its own rows, so a
/// chunk's backward pass reuses what its linear_prepare computed.
TARGET static void VARIANT(linear_block_factors)(linear_chunk *p, ptrdiff_t block) {
    const ptrdiff_t n = block * SUB, rows = p->L - n < SUB ? p->L - n : SUB, Kp = p->Kp;
    float *fq = p->fq + n * Kp, *fn = p->fn + linear_block_rows(block) * Kp;
    VARIANT(chunk_prefix_products)(p->decay + n * Kp, rows, Kp, fq, 1);
    chunk_multiply(p->q + n * Kp, fq, p->qhat + n * Kp, rows * Kp);
    VARIANT(chunk_suffix_products)(p->decay, n, Kp, fn, p->decay + n * Kp);
    chunk_multiply(p->k, fn, p->khat + linear_block_rows(block) * Kp, n * Kp);
}

/// Loads a linear-attention chunk and computes the factors (Q̄ and the per-head Γ only when `need_query`;
/// A is linear_scores').
TARGET static void VARIANT(linear_prepare)(const kiln_scan_chunk *x, linear_chunk *p, chunk_arena *w, int need_query) {
    const ptrdiff_t L = x->length, K = x->keys, Vd = x->values;
    const ptrdiff_t Kp = round_up(K, 16), Vp = round_up(Vd, 16), Ln = round_up(L, 16);
    p->L = L, p->K = K, p->Vd = Vd, p->Kp = Kp, p->Vp = Vp, p->Ln = Ln, p->blocks = (L + SUB - 1) / SUB;
    p->q = take(w, CHUNK * Kp), p->k = take(w, CHUNK * Kp), p->v = take(w, CHUNK * Vp);
    p->g = take(w, CHUNK * Kp), p->decay = take(w, CHUNK * Kp), p->eg = take(w, CHUNK * Kp), p->fk = take(w, CHUNK * Kp);
    p->qbar = take(w, CHUNK * Kp), p->kbar = take(w, CHUNK * Kp), p->b = take(w, Kp);
    p->gamma = take(w, CHUNK * CHUNK), p->a = take(w, CHUNK * CHUNK), p->kt = take(w, Kp * CHUNK);
    const ptrdiff_t block_rows = linear_block_rows(CHUNK / SUB);
    p->fq = take(w, CHUNK * Kp), p->qhat = take(w, CHUNK * Kp), p->fn = take(w, block_rows * Kp), p->khat = take(w, block_rows * Kp);
    p->ones = take(w, Kp);

    chunk_load(x->key, x->key_stride, L, K, 1.0f, p->k, Kp, Ln);
    chunk_load(x->value, x->value_stride, L, Vd, 1.0f, p->v, Vp, Ln);
    if (need_query) chunk_load(x->query, x->key_stride, L, K, x->scale, p->q, Kp, Ln);

    if (x->gate == 2) {
        // One exp per gate value, the steps' decays d = exp(g); every factor is a running product of them:
        // exp(G_L − G_i) = d_{i+1} ⋯ d_{L−1}, exp(G_L) = d_0 · exp(G_L − G_0), exp(G_i) = d_0 ⋯ d_i.
        chunk_load(x->gate_values, x->key_stride, L, K, 1.0f, p->g, Kp, L);
        VARIANT(exp)(p->g, p->decay, L * Kp);
        VARIANT(chunk_suffix_products)(p->decay, L, Kp, p->fk, NULL);
        for (ptrdiff_t c = 0; c < Kp; c += LANES) vstore(p->b + c, VARIANT(mul_flushed)(vload(p->decay + c), vload(p->fk + c)));
        if (need_query) VARIANT(chunk_prefix_products)(p->decay, L, Kp, p->eg, 0);
    } else {
        float *gh = p->fq;  // scratch until the blocks need it (they do not: per-head gates have no blocks)
        chunk_head_gates(x, gh);
        float *row = gh + CHUNK;
        for (ptrdiff_t i = 0; i < L; i++) row[i] = gh[L - 1] - gh[i];
        VARIANT(exp)(row, row, L);
        float last = gh[L - 1];
        VARIANT(exp)(&last, &last, 1);
        for (ptrdiff_t i = 0; i < L; i++)
            for (ptrdiff_t c = 0; c < Kp; c++) p->fk[i * Kp + c] = row[i];
        for (ptrdiff_t c = 0; c < Kp; c++) p->b[c] = last;
        if (need_query) {
            VARIANT(exp)(gh, row, L);
            for (ptrdiff_t i = 0; i < L; i++)
                for (ptrdiff_t c = 0; c < Kp; c++) p->eg[i * Kp + c] = row[i];
            VARIANT(chunk_pair_decays)(gh, L, Ln, p->gamma);
        }
    }
    chunk_multiply(p->k, p->fk, p->kbar, L * Kp);
    memset(p->kbar + L * Kp, 0, (size_t)((Ln - L) * Kp) * sizeof(float));
    if (!need_query) return;
    chunk_multiply(p->q, p->eg, p->qbar, L * Kp);
    memset(p->qbar + L * Kp, 0, (size_t)((Ln - L) * Kp) * sizeof(float));
}

/// One diagonal block of A at row n (`rows` ≤ 16 steps), and with `da` its dQ̃ and dK terms (see
/// linear_scores), for Kp = 16 · `groups` ≤ 64: the running decays e, the key row and its gradient stay
/// in registers. The same operations in the same order as linear_scores' loop for other widths.
TARGET static inline __attribute__((always_inline)) void VARIANT(linear_diagonal_block)(linear_chunk *p, ptrdiff_t n, ptrdiff_t rows,
                                                                                       const float *da, float *dq, float *dk, const int groups) {
    enum { most = 64 / LANES, per_group = 16 / LANES };
    const int nv = groups * per_group;
    const ptrdiff_t Kp = p->Kp;
    for (ptrdiff_t s = 0; s < rows; s++) {
        V e[most], kv[most], dkv[most];
        const float *kj = p->k + (n + s) * Kp;
        float *dkj = da != NULL ? dk + (n + s) * Kp : NULL;
        for (int v = 0; v < nv; v++) {
            e[v] = vset(1.0f);
            kv[v] = vload(kj + v * LANES);
            dkv[v] = dkj != NULL ? vload(dkj + v * LANES) : vzero();
        }
        for (ptrdiff_t r = s; r < rows; r++) {
            const float *decay = p->decay + (n + r) * Kp, *qi = p->q + (n + r) * Kp;
            if (r > s)
                for (int v = 0; v < nv; v++) e[v] = VARIANT(mul_flushed)(e[v], vload(decay + v * LANES));
            V acc[per_group];
            for (int u = 0; u < per_group; u++) acc[u] = vzero();
            for (int g = 0; g < groups; g++)
                for (int u = 0; u < per_group; u++) {
                    const int v = g * per_group + u;
                    acc[u] = vmadd(vmul(kv[v], e[v]), vload(qi + v * LANES), acc[u]);
                }
            p->a[(n + r) * CHUNK + n + s] = vsum16(acc);
            if (da == NULL) continue;
            const V weight = vset(da[(n + r) * CHUNK + n + s]);
            float *dqi = dq + (n + r) * Kp;
            for (int v = 0; v < nv; v++) {
                const V ev = vmul(e[v], weight);
                vstore(dqi + v * LANES, vmadd(ev, kv[v], vload(dqi + v * LANES)));
                dkv[v] = vmadd(ev, vload(qi + v * LANES), dkv[v]);
            }
        }
        if (dkj != NULL)
            for (int v = 0; v < nv; v++) vstore(dkj + v * LANES, dkv[v]);
    }
}

/// A, lower triangular (zero above the diagonal), from what linear_prepare computed with `need_query`.
/// In a backward pass (`da`: dA, lower) a per-key gate's diagonal blocks also add their terms to dQ̃
/// (`dq`) and dK (`dk`), from the same pairwise decays: dq_i += Σ_j dA_ij e_ij ⊙ k_j and
/// dk_j += Σ_i dA_ij e_ij ⊙ q̃_i, e_ij = exp(G_i − G_j), within each block.
TARGET static void VARIANT(linear_scores)(const kiln_scan_chunk *x, linear_chunk *p, const float *da, float *dq, float *dk) {
    const ptrdiff_t L = p->L, K = p->K, Kp = p->Kp, Ln = p->Ln;
    float *a = p->a;
    if (x->gate != 2) {
        VARIANT(transpose)(p->k, Kp, L, Ln, K, p->kt, CHUNK);
        VARIANT(gemm)(L, Ln, K, 1.0f, p->q, Kp, 1, p->kt, CHUNK, a, CHUNK, 0, GEMM_FULL);
        for (ptrdiff_t i = 0; i < L; i++)
            for (ptrdiff_t j = 0; j < Ln; j++) a[i * CHUNK + j] *= p->gamma[i * CHUNK + j];
        return;
    }
    for (ptrdiff_t i = 0; i < L; i++) memset(a + i * CHUNK, 0, (size_t)Ln * sizeof(float));
    for (ptrdiff_t block = 0; block < p->blocks; block++) {
        const ptrdiff_t n = block * SUB, rows = L - n < SUB ? L - n : SUB;
        if (block > 0) {
            VARIANT(linear_block_factors)(p, block);
            VARIANT(transpose)(p->khat + linear_block_rows(block) * Kp, Kp, n, n, K, p->kt, CHUNK);
            VARIANT(gemm)(rows, n, K, 1.0f, p->qhat + n * Kp, Kp, 1, p->kt, CHUNK, a + n * CHUNK, CHUNK, 0, GEMM_FULL);
        }
        // The diagonal block: e = exp(G_i − G_j) as the running product of the decays of steps j+1 … i.
        switch (Kp) {  // register-held rows at the common head sizes
        case 16: VARIANT(linear_diagonal_block)(p, n, rows, da, dq, dk, 1); continue;
        case 32: VARIANT(linear_diagonal_block)(p, n, rows, da, dq, dk, 2); continue;
        case 48: VARIANT(linear_diagonal_block)(p, n, rows, da, dq, dk, 3); continue;
        case 64: VARIANT(linear_diagonal_block)(p, n, rows, da, dq, dk, 4); continue;
        default: break;
        }
        for (ptrdiff_t s = 0; s < rows; s++) {
            float *e = p->ones;
            for (ptrdiff_t c = 0; c < Kp; c++) e[c] = 1.0f;
            const float *kj = p->k + (n + s) * Kp;
            float *dkj = da != NULL ? dk + (n + s) * Kp : NULL;
            for (ptrdiff_t r = s; r < rows; r++) {
                if (r > s)
                    for (ptrdiff_t c = 0; c < Kp; c += LANES) vstore(e + c, VARIANT(mul_flushed)(vload(e + c), vload(p->decay + (n + r) * Kp + c)));
                const float *qi = p->q + (n + r) * Kp;
                V acc[16 / LANES];
                for (int v = 0; v < 16 / LANES; v++) acc[v] = vzero();
                for (ptrdiff_t c = 0; c < Kp; c += 16)
                    for (int v = 0; v < 16 / LANES; v++) {
                        const ptrdiff_t o = c + v * LANES;
                        acc[v] = vmadd(vmul(vload(kj + o), vload(e + o)), vload(qi + o), acc[v]);
                    }
                a[(n + r) * CHUNK + n + s] = vsum16(acc);
                if (da == NULL) continue;
                const V weight = vset(da[(n + r) * CHUNK + n + s]);
                float *dqi = dq + (n + r) * Kp;
                for (ptrdiff_t c = 0; c < Kp; c += LANES) {
                    const V ev = vmul(vload(e + c), weight);
                    vstore(dqi + c, vmadd(ev, vload(kj + c), vload(dqi + c)));
                    vstore(dkj + c, vmadd(ev, vload(qi + c), vload(dkj + c)));
                }
            }
        }
    }
}

TARGET static void VARIANT(chunk_linear_forward)(const kiln_scan_chunk *x, float *state, int write_output, float *workspace) {
    chunk_arena w = {workspace, workspace + kiln_scan_chunk_workspace_count(x->keys, x->values)};
    linear_chunk p;
    VARIANT(linear_prepare)(x, &p, &w, write_output);
    const ptrdiff_t L = p.L, K = p.K, Kp = p.Kp, Vp = p.Vp;
    if (write_output) {
        VARIANT(linear_scores)(x, &p, NULL, NULL, NULL);
        float *o = take(&w, CHUNK * Vp);
        VARIANT(gemm)(L, Vp, K, 1.0f, p.qbar, Kp, 1, state, Vp, o, Vp, 0, GEMM_FULL);
        VARIANT(gemm)(L, Vp, L, 1.0f, p.a, CHUNK, 1, p.v, Vp, o, Vp, 1, GEMM_LOWER);
        chunk_store(o, Vp, L, p.Vd, 1.0f, x->output, x->value_stride);
    }
    chunk_decay_state(state, K, Vp, p.b);
    VARIANT(gemm)(K, Vp, L, 1.0f, p.kbar, 1, Kp, p.v, Vp, state, Vp, 1, GEMM_FULL);
}

/// The gate gradient of a chunk from dG [L, Kp] (∂L/∂G, already including the final-state term on the
/// last row): its reverse cumulative sum, per key or summed over keys for a per-head gate.
TARGET static void VARIANT(chunk_gate_gradient)(const kiln_scan_chunk *x, float *dg, ptrdiff_t Kp) {
    const ptrdiff_t L = x->length;
    if (x->gate == 2) {
        for (ptrdiff_t i = L - 2; i >= 0; i--)
            for (ptrdiff_t c = 0; c < Kp; c++) dg[i * Kp + c] += dg[(i + 1) * Kp + c];
        chunk_store(dg, Kp, L, x->keys, 1.0f, x->gate_gradient, x->key_stride);
        return;
    }
    float total = 0.0f;
    for (ptrdiff_t i = L - 1; i >= 0; i--) {
        total += VARIANT(chunk_sum)(dg + i * Kp, Kp);
        x->gate_gradient[i * x->head_stride] = total;
    }
}

TARGET static void VARIANT(chunk_linear_backward)(const kiln_scan_chunk *x, const float *start_state, const float *end_state,
                                                  float *state_gradient, float *workspace) {
    chunk_arena w = {workspace, workspace + kiln_scan_chunk_workspace_count(x->keys, x->values)};
    linear_chunk p;
    VARIANT(linear_prepare)(x, &p, &w, 1);
    const ptrdiff_t L = p.L, K = p.K, Vd = p.Vd, Kp = p.Kp, Vp = p.Vp, Ln = p.Ln;
    float *ds = state_gradient;
    float *dout = take(&w, CHUNK * Vp), *vt = take(&w, Vp * CHUNK), *da = take(&w, CHUNK * CHUNK);
    float *dv = take(&w, CHUNK * Vp), *s0t = take(&w, Vp * Kp), *dst = take(&w, Vp * Kp);
    float *dq = take(&w, CHUNK * Kp), *dk = take(&w, CHUNK * Kp), *tmp = take(&w, CHUNK * Kp);

    chunk_load(x->output_gradient, x->value_stride, L, Vd, 1.0f, dout, Vp, Ln);
    VARIANT(transpose)(p.v, Vp, L, Ln, Vd, vt, CHUNK);
    VARIANT(gemm)(L, Ln, Vd, 1.0f, dout, Vp, 1, vt, CHUNK, da, CHUNK, 0, GEMM_OUT_LOWER);
    chunk_mask_upper(da, L, Ln, 0);

    // dQ̃ = exp(G) ⊙ (dO S0ᵀ) + intra; dK = intra + exp(G_L − G) ⊙ (V dSᵀ). With per-key gates A's
    // diagonal blocks add their intra terms as they are built.
    VARIANT(transpose)(start_state, Vp, K, Kp, Vp, s0t, Kp);
    VARIANT(gemm)(L, Kp, Vd, 1.0f, dout, Vp, 1, s0t, Kp, dq, Kp, 0, GEMM_FULL);
    chunk_multiply(dq, p.eg, dq, L * Kp);
    memset(dk, 0, (size_t)(L * Kp) * sizeof(float));
    VARIANT(linear_scores)(x, &p, x->gate == 2 ? da : NULL, dq, dk);

    // dV = Aᵀ dO + K̄ dS.
    VARIANT(gemm)(L, Vp, L, 1.0f, p.a, 1, CHUNK, dout, Vp, dv, Vp, 0, GEMM_UPPER);
    VARIANT(gemm)(L, Vp, K, 1.0f, p.kbar, Kp, 1, ds, Vp, dv, Vp, 1, GEMM_FULL);
    chunk_store(dv, Vp, L, Vd, 1.0f, x->value_gradient, x->value_stride);

    if (x->gate == 2) {
        for (ptrdiff_t block = 0; block < p.blocks; block++) {
            const ptrdiff_t n = block * SUB, rows = L - n < SUB ? L - n : SUB;
            if (block > 0) {
                // The block's factors, as linear_prepare left them.
                const float *fn = p.fn + linear_block_rows(block) * Kp, *khat = p.khat + linear_block_rows(block) * Kp;
                VARIANT(gemm)(rows, Kp, n, 1.0f, da + n * CHUNK, CHUNK, 1, khat, Kp, tmp, Kp, 0, GEMM_FULL);
                chunk_multiply_add(tmp, p.fq + n * Kp, dq + n * Kp, rows * Kp);
                VARIANT(gemm)(n, Kp, rows, 1.0f, da + n * CHUNK, 1, CHUNK, p.qhat + n * Kp, Kp, tmp, Kp, 0, GEMM_FULL);
                chunk_multiply_add(tmp, fn, dk, n * Kp);
            }
        }
    } else {
        for (ptrdiff_t i = 0; i < L; i++)
            for (ptrdiff_t j = 0; j < Ln; j++) da[i * CHUNK + j] *= p.gamma[i * CHUNK + j];
        VARIANT(gemm)(L, Kp, L, 1.0f, da, CHUNK, 1, p.k, Kp, dq, Kp, 1, GEMM_LOWER);
        VARIANT(gemm)(L, Kp, L, 1.0f, da, 1, CHUNK, p.q, Kp, dk, Kp, 1, GEMM_UPPER);
    }
    VARIANT(transpose)(ds, Vp, K, Kp, Vp, dst, Kp);
    VARIANT(gemm)(L, Kp, Vd, 1.0f, p.v, Vp, 1, dst, Kp, tmp, Kp, 0, GEMM_FULL);
    chunk_multiply_add(tmp, p.fk, dk, L * Kp);

    if (x->gate_gradient != NULL && x->gate != 0) {
        float *dg = tmp;
        for (ptrdiff_t c = 0; c < L * Kp; c++) dg[c] = p.q[c] * dq[c] - p.k[c] * dk[c];
        float *last = dg + (L - 1) * Kp;
        for (ptrdiff_t r = 0; r < K; r++) last[r] += VARIANT(chunk_dot)(ds + r * Vp, end_state + r * Vp, Vp);
        VARIANT(chunk_gate_gradient)(x, dg, Kp);
    }
    chunk_store(dq, Kp, L, K, x->scale, x->query_gradient, x->key_stride);
    chunk_store(dk, Kp, L, K, 1.0f, x->key_gradient, x->key_stride);

    // dS0 = diag(exp(G_L)) dS + Q̄ᵀ dO.
    chunk_decay_state(ds, K, Vp, p.b);
    VARIANT(gemm)(K, Vp, L, 1.0f, p.qbar, 1, Kp, dout, Vp, ds, Vp, 1, GEMM_FULL);
}

// MARK: - The (gated) delta rule

/// N = (I + A)⁻¹ for a strictly lower-triangular A [L, C]: each 16 × 16 diagonal block by forward
/// substitution, then the blocks left of it, N_IJ = −N_II Σ_M A_IM N_MJ, as two products per block row.
TARGET static void VARIANT(unit_lower_inverse)(const float *a, float *n, float *scratch, ptrdiff_t L, ptrdiff_t Ln) {
    for (ptrdiff_t i = 0; i < L; i++) memset(n + i * CHUNK, 0, (size_t)Ln * sizeof(float));
    for (ptrdiff_t block = 0; block * SUB < L; block++) {
        const ptrdiff_t first = block * SUB, rows = L - first < SUB ? L - first : SUB;
        // Row i of the block from the rows above it, 16 columns at once: n_ij = −Σ_{m<i} a_im n_mj. The
        // terms with m < j are a_im · (+0) (n_mj = 0 above the diagonal), so each sum is the scalar loop's
        // Σ_{m=j}^{i−1}, multiplied and added in the same order (no FMA): the same bits.
        for (ptrdiff_t i = first; i < first + rows; i++) {
            V acc[SUB / LANES];
            for (int v = 0; v < SUB / LANES; v++) acc[v] = vzero();
            for (ptrdiff_t m = first; m < i; m++) {
                const V x = vset(a[i * CHUNK + m]);
                for (int v = 0; v < SUB / LANES; v++) acc[v] = vadd(acc[v], vmul(x, vload(n + m * CHUNK + first + v * LANES)));
            }
            float sums[SUB];
            for (int v = 0; v < SUB / LANES; v++) vstore(sums + v * LANES, acc[v]);
            for (ptrdiff_t j = first; j < i; j++) n[i * CHUNK + j] = -sums[j - first];
            n[i * CHUNK + i] = 1.0f;
        }
        if (block == 0) continue;
        VARIANT(gemm)(rows, first, first, 1.0f, a + first * CHUNK, CHUNK, 1, n, CHUNK, scratch, CHUNK, 0, GEMM_FULL);
        VARIANT(gemm)(rows, first, rows, -1.0f, n + first * CHUNK + first, CHUNK, 1, scratch, CHUNK, n + first * CHUNK, CHUNK, 0, GEMM_LOWER);
    }
}

/// Loads a delta-rule chunk and computes T and U = T V − W S0 (and Q̄, P when `need_query`). With
/// `factors` (kiln_scan_chunk_delta_factor_count floats) K Kᵀ, N and U live there: computed and written
/// when `reuse` is 0, else (factors required) read as an earlier call from the same `state` wrote them,
/// and T = N diag(β) formed again (the same bits). W is never formed: U = T (V − diag(e^G) K S0), and the
/// backward pass needs Wᵀ dU only, as (diag(e^G) K)ᵀ (Tᵀ dU). Keeping only K Kᵀ, N and U halves the
/// saved bytes, which the backward chunks read from memory: their products with the saved W and T had
/// run at about half the speed of the same products on cached operands (rdtsc per call).
TARGET static void VARIANT(delta_prepare)(const kiln_scan_chunk *x, delta_chunk *p, chunk_arena *w, const float *state,
                                          int need_query, float *factors, int reuse) {
    const ptrdiff_t L = x->length, K = x->keys, Vd = x->values;
    const ptrdiff_t Kp = round_up(K, 16), Vp = round_up(Vd, 16), Ln = round_up(L, 16);
    const int gated = x->gate == 1;
    p->L = L, p->K = K, p->Vd = Vd, p->Kp = Kp, p->Vp = Vp, p->Ln = Ln, p->gated = gated;
    p->q = take(w, CHUNK * Kp), p->k = take(w, CHUNK * Kp), p->v = take(w, CHUNK * Vp), p->beta = take(w, CHUNK);
    p->gh = take(w, CHUNK), p->eg = take(w, CHUNK), p->fk = take(w, CHUNK);
    p->gamma = take(w, CHUNK * CHUNK), p->kt = take(w, Kp * CHUNK), p->a = take(w, CHUNK * CHUNK);
    if (factors != NULL) {  // rows i < L of each (the layout of kiln_scan_chunk_delta_factor_count)
        p->kk = factors, p->n = factors + L * CHUNK, p->u = factors + 2 * L * CHUNK;
    } else {
        p->kk = take(w, CHUNK * CHUNK), p->n = take(w, CHUNK * CHUNK), p->u = take(w, CHUNK * Vp);
    }
    p->t = take(w, CHUNK * CHUNK), p->y = take(w, CHUNK * Vp);
    p->ek = take(w, CHUNK * Kp), p->kbar = take(w, CHUNK * Kp);
    p->qbar = take(w, CHUNK * Kp), p->qk = take(w, CHUNK * CHUNK), p->p = take(w, CHUNK * CHUNK);
    p->scratch = take(w, SUB * CHUNK);
    if (reuse && factors == NULL) abort();  // a backward chunk reads what the checkpoint sweep saved: a bug here

    chunk_load(x->key, x->key_stride, L, K, 1.0f, p->k, Kp, Ln);
    chunk_load(x->value, x->value_stride, L, Vd, 1.0f, p->v, Vp, Ln);
    if (need_query) chunk_load(x->query, x->key_stride, L, K, x->scale, p->q, Kp, Ln);
    for (ptrdiff_t i = 0; i < CHUNK; i++) p->beta[i] = i < L ? x->beta[i * x->head_stride] : 0.0f;
    chunk_head_gates(x, p->gh);
    for (ptrdiff_t i = 0; i < L; i++) p->fk[i] = p->gh[L - 1] - p->gh[i];
    VARIANT(exp)(p->fk, p->fk, L);
    VARIANT(exp)(p->gh, p->eg, L);
    p->bl = p->eg[L - 1];
    VARIANT(transpose)(p->k, Kp, L, Ln, K, p->kt, CHUNK);
    // Without a gate every factor exp(·) is exp(0) = 1 exactly, and x · 1 = x: skipping them keeps the bits.
    if (gated) {
        VARIANT(chunk_pair_decays)(p->gh, L, Ln, p->gamma);
        memcpy(p->ek, p->k, (size_t)(Ln * Kp) * sizeof(float));
        chunk_scale_rows(p->ek, Kp, L, p->eg);
    } else {
        p->ek = p->k;
    }

    if (!reuse) {
        // K Kᵀ, A, N = (I + A)⁻¹ and T = N diag(β).
        // Only K Kᵀ's strictly lower part is ever read (A, dβ and the gate's terms through A).
        VARIANT(gemm)(L, Ln, K, 1.0f, p->k, Kp, 1, p->kt, CHUNK, p->kk, CHUNK, 0, GEMM_OUT_LOWER);
        const float *beta = p->beta;
        for (ptrdiff_t i = 0; i < L; i++) {
            float *a = p->a + i * CHUNK;
            const float *gamma = p->gamma + i * CHUNK, *kk = p->kk + i * CHUNK;
            const float bi = beta[i];
            if (gated)
                for (ptrdiff_t j = 0; j < i; j++) a[j] = bi * (gamma[j] * kk[j]);
            else
                for (ptrdiff_t j = 0; j < i; j++) a[j] = bi * kk[j];
            for (ptrdiff_t j = i; j < Ln; j++) a[j] = 0.0f;
        }
        VARIANT(unit_lower_inverse)(p->a, p->n, p->scratch, L, Ln);
        for (ptrdiff_t i = 0; i < L; i++) chunk_multiply(p->n + i * CHUNK, beta, p->t + i * CHUNK, Ln);

        // U = T V − W S0 with W = T diag(exp(G)) K, as U = T (V − diag(exp(G)) K S0): W itself is never
        // needed (the backward pass takes Wᵀ dU as (diag(e^G) K)ᵀ dV), and one triangular product fewer.
        memcpy(p->y, p->v, (size_t)(Ln * Vp) * sizeof(float));
        VARIANT(gemm)(L, Vp, K, -1.0f, p->ek, Kp, 1, state, Vp, p->y, Vp, 1, GEMM_FULL);
        VARIANT(gemm)(L, Vp, L, 1.0f, p->t, CHUNK, 1, p->y, Vp, p->u, Vp, 0, GEMM_LOWER);
    } else {
        for (ptrdiff_t i = 0; i < L; i++) chunk_multiply(p->n + i * CHUNK, p->beta, p->t + i * CHUNK, Ln);
    }
    // K̄ = diag(exp(G_L − G)) K.
    if (gated) {
        memcpy(p->kbar, p->k, (size_t)(Ln * Kp) * sizeof(float));
        chunk_scale_rows(p->kbar, Kp, L, p->fk);
    } else {
        p->kbar = p->k;
    }
    if (!need_query) return;
    if (!gated) {  // Q̄ = Q̃ and P = Q̃ Kᵀ (lower)
        p->qbar = p->q;
        VARIANT(gemm)(L, Ln, K, 1.0f, p->q, Kp, 1, p->kt, CHUNK, p->p, CHUNK, 0, GEMM_OUT_LOWER);
        chunk_mask_upper(p->p, L, Ln, 0);
        return;
    }
    memcpy(p->qbar, p->q, (size_t)(Ln * Kp) * sizeof(float));
    chunk_scale_rows(p->qbar, Kp, L, p->eg);
    VARIANT(gemm)(L, Ln, K, 1.0f, p->q, Kp, 1, p->kt, CHUNK, p->qk, CHUNK, 0, GEMM_OUT_LOWER);
    for (ptrdiff_t i = 0; i < L; i++) {
        const float *qk = p->qk + i * CHUNK, *gamma = p->gamma + i * CHUNK;
        float *pi = p->p + i * CHUNK;
        for (ptrdiff_t j = 0; j <= i; j++) pi[j] = qk[j] * gamma[j];
        for (ptrdiff_t j = i + 1; j < Ln; j++) pi[j] = 0.0f;
    }
}

TARGET static void VARIANT(chunk_delta_forward)(const kiln_scan_chunk *x, float *state, int write_output, float *workspace,
                                                float *factors) {
    chunk_arena w = {workspace, workspace + kiln_scan_chunk_workspace_count(x->keys, x->values)};
    delta_chunk p;
    VARIANT(delta_prepare)(x, &p, &w, state, write_output, factors, 0);
    const ptrdiff_t L = p.L, K = p.K, Kp = p.Kp, Vp = p.Vp;
    if (write_output) {
        float *o = take(&w, CHUNK * Vp);
        VARIANT(gemm)(L, Vp, K, 1.0f, p.qbar, Kp, 1, state, Vp, o, Vp, 0, GEMM_FULL);
        VARIANT(gemm)(L, Vp, L, 1.0f, p.p, CHUNK, 1, p.u, Vp, o, Vp, 1, GEMM_LOWER);
        chunk_store(o, Vp, L, p.Vd, 1.0f, x->output, x->value_stride);
    }
    if (p.gated) chunk_decay_state_scalar(state, K * Vp, p.bl);
    VARIANT(gemm)(K, Vp, L, 1.0f, p.kbar, 1, Kp, p.u, Vp, state, Vp, 1, GEMM_FULL);
}

/// Adds a [L, C] matrix's row sums to dg[i] and subtracts its column sums from dg[j]: the gate
/// gradient of a term through Γ_ij = exp(G_i − G_j), given E_ij = (∂L/∂Γ_ij) Γ_ij.
TARGET static void VARIANT(chunk_pair_gate_terms)(const float *e, ptrdiff_t L, ptrdiff_t Ln, float *dg, float *columns) {
    for (ptrdiff_t j = 0; j < Ln; j++) columns[j] = 0.0f;
    for (ptrdiff_t i = 0; i < L; i++) {
        dg[i] += VARIANT(chunk_sum)(e + i * CHUNK, Ln);
        for (ptrdiff_t j = 0; j < Ln; j++) columns[j] += e[i * CHUNK + j];
    }
    for (ptrdiff_t j = 0; j < L; j++) dg[j] -= columns[j];
}

TARGET static void VARIANT(chunk_delta_backward)(const kiln_scan_chunk *x, const float *start_state, float *state_gradient,
                                                 float *workspace, const float *factors) {
    chunk_arena w = {workspace, workspace + kiln_scan_chunk_workspace_count(x->keys, x->values)};
    delta_chunk p;
    // The saved factors, only read when reused (the cast drops a const the callee keeps).
    VARIANT(delta_prepare)(x, &p, &w, start_state, 1, (float *)factors, 1);
    const ptrdiff_t L = p.L, K = p.K, Vd = p.Vd, Kp = p.Kp, Vp = p.Vp, Ln = p.Ln;
    const int gated = p.gated && x->gate_gradient != NULL;  // the gate's gradient is wanted
    float *ds = state_gradient;
    float *dout = take(&w, CHUNK * Vp), *du = take(&w, CHUNK * Vp), *ut = take(&w, Vp * CHUNK);
    float *dp = take(&w, CHUNK * CHUNK), *s0t = take(&w, Vp * Kp), *dst = take(&w, Vp * Kp);
    float *dqi = take(&w, CHUNK * Kp), *dq = take(&w, CHUNK * Kp), *dk = take(&w, CHUNK * Kp);
    float *dkend = take(&w, CHUNK * Kp), *dw = take(&w, CHUNK * Kp);
    float *dv = take(&w, CHUNK * Vp), *ddk = take(&w, CHUNK * Kp), *ekt = take(&w, Kp * CHUNK);
    float *vt = take(&w, Vp * CHUNK), *dt = take(&w, CHUNK * CHUNK), *dn = take(&w, CHUNK * CHUNK);
    float *xm = take(&w, CHUNK * CHUNK), *nt = take(&w, CHUNK * CHUNK), *da = take(&w, CHUNK * CHUNK);
    float *dg = take(&w, CHUNK), *dbeta = take(&w, CHUNK), *columns = take(&w, CHUNK);
    for (ptrdiff_t i = 0; i < CHUNK; i++) dg[i] = dbeta[i] = 0.0f;

    chunk_load(x->output_gradient, x->value_stride, L, Vd, 1.0f, dout, Vp, Ln);
    // dU = Pᵀ dO + K̄ dS; dP = dO Uᵀ (lower).
    VARIANT(gemm)(L, Vp, L, 1.0f, p.p, 1, CHUNK, dout, Vp, du, Vp, 0, GEMM_UPPER);
    VARIANT(gemm)(L, Vp, K, 1.0f, p.kbar, Kp, 1, ds, Vp, du, Vp, 1, GEMM_FULL);
    VARIANT(transpose)(p.u, Vp, L, Ln, Vd, ut, CHUNK);
    VARIANT(gemm)(L, Ln, Vd, 1.0f, dout, Vp, 1, ut, CHUNK, dp, CHUNK, 0, GEMM_OUT_LOWER);
    chunk_mask_upper(dp, L, Ln, 0);
    if (gated) {
        chunk_multiply(dp, p.p, da, L * CHUNK);  // E = dP ⊙ Q̃Kᵀ ⊙ Γ (da as scratch)
        VARIANT(chunk_pair_gate_terms)(da, L, Ln, dg, columns);
    }
    if (p.gated) chunk_multiply(dp, p.gamma, dp, L * CHUNK);

    // dQ̃ = diag(exp(G)) dO S0ᵀ + (dP ⊙ Γ) K;  dK = (dP ⊙ Γ)ᵀ Q̃ + diag(exp(G_L − G)) U dSᵀ.
    VARIANT(transpose)(start_state, Vp, K, Kp, Vp, s0t, Kp);
    if (p.gated) {
        VARIANT(gemm)(L, Kp, Vd, 1.0f, dout, Vp, 1, s0t, Kp, dqi, Kp, 0, GEMM_FULL);
        memcpy(dq, dqi, (size_t)(L * Kp) * sizeof(float));
        chunk_scale_rows(dq, Kp, L, p.eg);
    } else {
        VARIANT(gemm)(L, Kp, Vd, 1.0f, dout, Vp, 1, s0t, Kp, dq, Kp, 0, GEMM_FULL);
    }
    VARIANT(gemm)(L, Kp, L, 1.0f, dp, CHUNK, 1, p.k, Kp, dq, Kp, 1, GEMM_LOWER);
    VARIANT(gemm)(L, Kp, L, 1.0f, dp, 1, CHUNK, p.q, Kp, dk, Kp, 0, GEMM_UPPER);
    VARIANT(transpose)(ds, Vp, K, Kp, Vp, dst, Kp);
    VARIANT(gemm)(L, Kp, Vd, 1.0f, p.u, Vp, 1, dst, Kp, dkend, Kp, 0, GEMM_FULL);
    if (gated) {
        float tau_total = 0.0f;
        for (ptrdiff_t i = 0; i < L; i++) {
            const float tau = p.fk[i] * VARIANT(chunk_dot)(p.k + i * Kp, dkend + i * Kp, Kp);
            dg[i] += VARIANT(chunk_dot)(p.qbar + i * Kp, dqi + i * Kp, Kp) - tau;
            tau_total += tau;
        }
        float state_term = 0.0f;
        for (ptrdiff_t r = 0; r < K; r++) state_term += VARIANT(chunk_dot)(ds + r * Vp, start_state + r * Vp, Vp);
        dg[L - 1] += tau_total + p.bl * state_term;
    }
    if (p.gated) chunk_scale_rows(dkend, Kp, L, p.fk);
    for (ptrdiff_t c = 0; c < L * Kp; c++) dk[c] += dkend[c];

    // dW = −dU S0ᵀ; dV = Tᵀ dU; dS0 = exp(G_L) dS + Q̄ᵀ dO − Wᵀ dU, with Wᵀ dU = (diag(e^G) K)ᵀ dV.
    VARIANT(gemm)(L, Kp, Vd, -1.0f, du, Vp, 1, s0t, Kp, dw, Kp, 0, GEMM_FULL);
    VARIANT(gemm)(L, Vp, L, 1.0f, p.t, 1, CHUNK, du, Vp, dv, Vp, 0, GEMM_UPPER);
    chunk_store(dv, Vp, L, Vd, 1.0f, x->value_gradient, x->value_stride);
    // dS is read for the last time above: dS0 takes its place.
    if (p.gated) chunk_decay_state_scalar(ds, K * Vp, p.bl);
    VARIANT(gemm)(K, Vp, L, 1.0f, p.qbar, 1, Kp, dout, Vp, ds, Vp, 1, GEMM_FULL);
    VARIANT(gemm)(K, Vp, L, -1.0f, p.ek, 1, Kp, dv, Vp, ds, Vp, 1, GEMM_FULL);

    // d(diag(e^G) K) = Tᵀ dW; dT = dW (diag(e^G) K)ᵀ + dU Vᵀ (lower).
    VARIANT(gemm)(L, Kp, L, 1.0f, p.t, 1, CHUNK, dw, Kp, ddk, Kp, 0, GEMM_UPPER);
    if (gated)
        for (ptrdiff_t i = 0; i < L; i++) dg[i] += VARIANT(chunk_dot)(p.ek + i * Kp, ddk + i * Kp, Kp);
    if (p.gated) chunk_scale_rows(ddk, Kp, L, p.eg);
    for (ptrdiff_t c = 0; c < L * Kp; c++) dk[c] += ddk[c];
    if (p.gated) VARIANT(transpose)(p.ek, Kp, L, Ln, K, ekt, CHUNK);
    else ekt = p.kt;  // (diag(e^G) K)ᵀ = Kᵀ
    VARIANT(transpose)(p.v, Vp, L, Ln, Vd, vt, CHUNK);
    VARIANT(gemm)(L, Ln, K, 1.0f, dw, Kp, 1, ekt, CHUNK, dt, CHUNK, 0, GEMM_OUT_LOWER);
    VARIANT(gemm)(L, Ln, Vd, 1.0f, du, Vp, 1, vt, CHUNK, dt, CHUNK, 1, GEMM_OUT_LOWER);
    chunk_mask_upper(dt, L, Ln, 0);

    // dβ_j = Σ_i dT_ij N_ij; dN = dT diag(β) (strictly lower); dA = −Nᵀ dN Nᵀ (strictly lower).
    for (ptrdiff_t i = 0; i < L; i++)
        for (ptrdiff_t j = 0; j <= i; j++) dbeta[j] += dt[i * CHUNK + j] * p.n[i * CHUNK + j];
    for (ptrdiff_t i = 0; i < L; i++)
        for (ptrdiff_t j = 0; j < Ln; j++) dn[i * CHUNK + j] = j < i ? dt[i * CHUNK + j] * p.beta[j] : 0.0f;
    VARIANT(gemm)(L, Ln, L, 1.0f, p.n, 1, CHUNK, dn, CHUNK, xm, CHUNK, 0, GEMM_UPPER);
    VARIANT(transpose)(p.n, CHUNK, L, Ln, Ln, nt, CHUNK);
    VARIANT(gemm)(L, Ln, L, -1.0f, xm, CHUNK, 1, nt, CHUNK, da, CHUNK, 0, GEMM_OUT_LOWER);
    chunk_mask_upper(da, L, Ln, 1);

    // Through A_ij = β_i Γ_ij (K Kᵀ)_ij: dβ_i, the gate, and dK += dB K + dBᵀ K with dB = dA ⊙ β_i Γ.
    for (ptrdiff_t i = 0; i < L; i++) {
        float sum = 0.0f;
        if (p.gated)
            for (ptrdiff_t j = 0; j < i; j++) sum += da[i * CHUNK + j] * (p.gamma[i * CHUNK + j] * p.kk[i * CHUNK + j]);
        else
            for (ptrdiff_t j = 0; j < i; j++) sum += da[i * CHUNK + j] * p.kk[i * CHUNK + j];
        dbeta[i] += sum;
    }
    if (gated) {
        float *e = dn;  // scratch: E = dA ⊙ β_i (K Kᵀ) ⊙ Γ
        for (ptrdiff_t i = 0; i < L; i++)
            for (ptrdiff_t j = 0; j < Ln; j++)
                e[i * CHUNK + j] = j < i ? da[i * CHUNK + j] * (p.beta[i] * p.kk[i * CHUNK + j]) * p.gamma[i * CHUNK + j] : 0.0f;
        VARIANT(chunk_pair_gate_terms)(e, L, Ln, dg, columns);
    }
    for (ptrdiff_t i = 0; i < L; i++) {
        if (p.gated)
            for (ptrdiff_t j = 0; j < Ln; j++) da[i * CHUNK + j] *= p.beta[i] * p.gamma[i * CHUNK + j];
        else
            for (ptrdiff_t j = 0; j < Ln; j++) da[i * CHUNK + j] *= p.beta[i];
    }
    VARIANT(gemm)(L, Kp, L, 1.0f, da, CHUNK, 1, p.k, Kp, dk, Kp, 1, GEMM_LOWER);
    VARIANT(gemm)(L, Kp, L, 1.0f, da, 1, CHUNK, p.k, Kp, dk, Kp, 1, GEMM_UPPER);

    chunk_store(dq, Kp, L, K, x->scale, x->query_gradient, x->key_stride);
    chunk_store(dk, Kp, L, K, 1.0f, x->key_gradient, x->key_stride);
    for (ptrdiff_t i = 0; i < L; i++) x->beta_gradient[i * x->head_stride] = dbeta[i];
    if (gated) {
        float total = 0.0f;
        for (ptrdiff_t i = L - 1; i >= 0; i--) {
            total += dg[i];
            x->gate_gradient[i * x->head_stride] = total;
        }
    }
}

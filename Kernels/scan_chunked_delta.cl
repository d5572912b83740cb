// The chunked form of the (gated) delta rule, DeltaNet in the WY/UT form (the scan family,
// Sources/Backend/Families/Scan.swift; the recurrent form is scan.cl, linear attention and GLA chunked are
// scan_chunked.cl), forward and backward. Kernels, in the order the host launches them:
//   delta_chunk_prepare          per (key, chunk): G, Q̄ = scale·q ⊙ exp(G), K̄ = k ⊙ exp(G_L − G), exp(G_L)
//   delta_chunk_matrices         per (j, i, chunk): Γ, KG = Γ ⊙ K Kᵀ (strictly lower), P = Γ ⊙ Q̃ Kᵀ (lower)
//   delta_chunk_inverse          per (column, chunk): N = (I + A)⁻¹, A = diag(β) KG
//   delta_chunk_triangular       per (column, row, chunk): W = T diag(exp(G)) K and U = T V, T = N diag(β)
//                                (backward: Pᵀ dO, dV = Tᵀ dU, Tᵀ dW)
//   delta_chunk_carry_forward    per (v, pair): chunk after chunk, U′ = U − W S_c, S_{c+1} = exp(G_L) S_c + K̄ᵀ U′
//   delta_chunk_output           per (v, i, chunk): O = Q̄ S_c + P U′
//   backward: delta_chunk_carry_backward (dU and dL/dS at every chunk boundary, last chunk first),
//   delta_chunk_state_products, delta_chunk_pair_gradients, delta_chunk_inverse_gradient (two steps),
//   delta_chunk_row_gradients, delta_chunk_gate_gradient, delta_chunk_key_gradients.
//
// Math (Yang et al. 2024, "Parallelizing Linear Transformers with the Delta Rule over Sequence Length";
// Yang, Kautz & Hatamizadeh 2025 for the gate), per (batch b, head h) pair and chunk c of L ≤ CHUNK steps
// i = 0 … L−1, exactly as the CPU's chunked loops (Sources/CKilnCPU/scan_chunked_loops.h): Q̃ = scale·q;
// G_i = g_0 + … + g_i the per-head gate's cumulative log within the chunk (0 without a gate), so every
// exponent below is ≤ 0 and no decay is ever divided by (gates of logsigmoid(x)/0.1 underflow, never
// overflow); Γ_ij = exp(G_i − G_j) for j ≤ i, 0 above; S_c the state at the chunk's start.
//   A = strictly lower part of diag(β) (Γ ⊙ K Kᵀ),   N = (I + A)⁻¹,   T = N diag(β)
//   W = T diag(exp(G)) K,   U′ = T V − W S_c          (the chunk's u_t, as the recurrence has them)
//   P = Γ ⊙ Q̃ Kᵀ (j ≤ i),   O = Q̄ S_c + P U′,   S_{c+1} = exp(G_L) S_c + K̄ᵀ U′
// N comes from forward substitution in float32, one column per work-item: column j of (I + A)⁻¹ solves
// (I + A) x = e_j, x_i = −Σ_{j≤m<i} A_im x_m, and the columns are independent. (The CPU blocks this into
// 16 × 16 diagonal blocks and products between them, which is the same recurrence with its sums grouped
// for a register-tiled product; one work-item per column needs no grouping and no barrier.)
// Backward, with D_{c+1} = dL/dS_{c+1} (dS_T for the last chunk) and dO (0 when absent):
//   dU = Pᵀ dO + K̄ D_{c+1},   D_c = exp(G_L) D_{c+1} + Q̄ᵀ dO − Wᵀ dU      (the carry, last chunk first)
//   dP = dO U′ᵀ (j ≤ i),  dW = −dU S_cᵀ,  dV = Tᵀ dU,  dT = dW (diag(exp(G)) K)ᵀ + dU Vᵀ (j ≤ i)
//   dβ_j = Σ_{i≥j} dT_ij N_ij + Σ_{m<j} dA_jm KG_jm,   dA = −Nᵀ (dT diag(β)) Nᵀ (strictly lower)
//   dQ̃_i = exp(G_i) (S_c dO_i) + Σ_{j≤i} dP_ij Γ_ij K_j
//   dK_j = Σ_{i≥j} dP_ij Γ_ij Q̃_i + exp(G_L − G_j) D_{c+1} U′_j + exp(G_j) (Tᵀ dW)_j
//          + Σ_{m<j} dB_jm K_m + Σ_{i>j} dB_ij K_i,   dB_ij = dA_ij β_i Γ_ij
//   ∂L/∂G_i (per head): every place exp(G) appears — the row sums minus the column sums of dP ⊙ P and of
//   dA ⊙ diag(β) KG (through Γ), Q̄_i · (S_c dO_i), exp(G_i) K_i · (Tᵀ dW)_i, −τ_i with τ_i = K̄_i · (D_{c+1} U′_i),
//   and on the last row Σ τ + exp(G_L) Σ D_{c+1} ⊙ S_c; dg is its reverse cumulative sum within the chunk.
//
// Why a file of its own: the delta rule shares no kernel with linear attention and GLA (its chunk needs a
// triangular inverse and a carry that is itself a product, U′ = U − W S), and a program per algorithm
// keeps each one's build short on PoCL (about 1.3 s cold per program); like scan_chunked.cl it needs no
// compile-time key dimension, so it is built once per device. Its few index macros (SIZES, CHUNK_OF, ROW,
// STATE) repeat scan_chunked.cl's on purpose: a program is built from one file, and the program cache
// keys on that file's hash alone, so an #include'd header could go stale in the cache.
//
// Layouts (row-major, float32): q, k, Q̄, K̄, W and the key-sized gradients [B, T, H, K]; v, o, U′, dU
// [B, T, H, V]; β, the gate and G [B, T, H]; states [B, H, K, V]. A pair is p = b·H + h; its chunk c is
// pc = p·NC + c (NC = ⌈T / CHUNK⌉). Scratch the host allocates: exp(G_L) [B·H·NC]; the chunk matrices
// Γ, KG, P, N (and, backward, dP, dT, X, dA) [B·H·NC, CHUNK, CHUNK], T·CHUNK floats per pair and matrix
// (no [T, T] matrix); the states and their gradients at every chunk boundary [B·H, NC + 1, K, V],
// O(T / CHUNK · K · V).
//
// Launch geometry (GPU-shaped): every kernel but the two carries and the per-chunk gate sum runs one
// work-item per element of a chunk's matrix for every chunk at once, global = [round_up(n0, G), n1, B·H·NC],
// local = [G, 1, 1] (G: ScanTuning.chunkedGroupSize; dimension 0 is the contiguous one, so neighbouring
// work-items read neighbouring floats); edges are guarded. The carries run one work-item per state column
// v of each pair (global [round_up(V, G), 1, B·H]) and loop over the chunks: the only sequential part,
// NC steps of two products of a chunk (C × K by K, then K × C by C) per column. No local memory, no
// barriers (PoCL turns each barrier into a loop over work-items).
//
// -D options:
//   CHUNK  steps per chunk (64, as fla; the host passes its own value and sizes every matrix with it).

#ifndef CHUNK
#define CHUNK 64
#endif

// Sizes of every kernel, passed as the first arguments; `gated` is 1 with a per-head gate.
#define SIZES int B, int T, int H, int K, int V, int gated
#define CHUNKS ((T + CHUNK - 1) / CHUNK)

// The pair, chunk, first step and length of chunk `pc`.
#define CHUNK_OF(pc)                       \
    const int p_ = (pc) / CHUNKS;          \
    const int c = (pc) % CHUNKS;           \
    const int b = p_ / H, h = p_ % H;      \
    const int t0 = c * CHUNK;              \
    const int L = min(CHUNK, T - t0);      \
    (void)b; (void)h; (void)L

// Index of (b, t0 + i, h) in a [B, T, H] layout.
#define ROW(i) ((b * T + t0 + (i)) * H + h)

// Element (i, j) of chunk pc's matrix in a [B·H·NC, CHUNK, CHUNK] buffer.
#define MAT(buffer, pc, i, j) ((buffer)[((size_t)(pc) * CHUNK + (i)) * CHUNK + (j)])

// State `slot` (0 … NC) of pair p in a [B·H, NC + 1, K, V] buffer.
#define STATE(buffer, p, slot) ((buffer) + ((size_t)(p) * (CHUNKS + 1) + (slot)) * K * V)

// G, Q̄ = scale·q ⊙ exp(G), K̄ = k ⊙ exp(G_L − G) of one key of one chunk, and exp(G_L).
// global = [K, 1, B·H·NC].
kernel void delta_chunk_prepare(SIZES, float scale, global const float *q, global const float *key, global const float *gate,
                                global float *gcum, global float *qbar, global float *kbar, global float *decay_total) {
    const int k = get_global_id(0), pc = get_global_id(2);
    if (k >= K) return;
    CHUNK_OF(pc);
    float g = 0.0f;
    for (int i = 0; i < L; i++) {
        const int row = ROW(i);
        if (gated) g += gate[row];
        if (k == 0) gcum[row] = g;
        qbar[row * K + k] = scale * q[row * K + k] * exp(g);
    }
    const float last = g;
    g = 0.0f;
    for (int i = 0; i < L; i++) {
        const int row = ROW(i);
        if (gated) g += gate[row];
        kbar[row * K + k] = key[row * K + k] * exp(last - g);
    }
    if (k == 0) decay_total[pc] = exp(last);
}

// Γ_ij = exp(G_i − G_j) (j ≤ i), KG_ij = Γ_ij (K Kᵀ)_ij (j < i) and P_ij = Γ_ij scale (Q Kᵀ)_ij (j ≤ i),
// zero elsewhere and for rows past L. global = [CHUNK, CHUNK, B·H·NC] (j, i).
kernel void delta_chunk_matrices(SIZES, float scale, global const float *q, global const float *key, global const float *gcum,
                                 global float *gamma, global float *kg, global float *p) {
    const int j = get_global_id(0), i = get_global_id(1), pc = get_global_id(2);
    if (j >= CHUNK) return;
    CHUNK_OF(pc);
    if (j > i || i >= L) {
        MAT(gamma, pc, i, j) = 0.0f;
        MAT(kg, pc, i, j) = 0.0f;
        MAT(p, pc, i, j) = 0.0f;
        return;
    }
    const int ri = ROW(i), rj = ROW(j);
    float kk = 0.0f, qk = 0.0f;
    for (int k = 0; k < K; k++) {
        const float kj = key[rj * K + k];
        kk += key[ri * K + k] * kj;
        qk += q[ri * K + k] * kj;
    }
    const float g = gated ? exp(gcum[ri] - gcum[rj]) : 1.0f;
    MAT(gamma, pc, i, j) = g;
    MAT(kg, pc, i, j) = j < i ? g * kk : 0.0f;
    MAT(p, pc, i, j) = (scale * qk) * g;
}

// Column j of N = (I + A)⁻¹, A_im = β_i KG_im (strictly lower), by forward substitution; zero above the
// diagonal and past L. global = [CHUNK, 1, B·H·NC].
kernel void delta_chunk_inverse(SIZES, global const float *beta, global const float *kg, global float *n) {
    const int j = get_global_id(0), pc = get_global_id(2);
    if (j >= CHUNK) return;
    CHUNK_OF(pc);
    for (int i = 0; i < CHUNK; i++) {
        if (i < j || i >= L || j >= L) {
            MAT(n, pc, i, j) = 0.0f;
            continue;
        }
        if (i == j) {
            MAT(n, pc, i, j) = 1.0f;
            continue;
        }
        float sum = 0.0f;
        for (int m = j; m < i; m++) sum += (beta[ROW(i)] * MAT(kg, pc, i, m)) * MAT(n, pc, m, j);
        MAT(n, pc, i, j) = -sum;
    }
}

// With `transpose` 0: out_i = Σ_{j≤i} M_ij s_j x_j; with `transpose` 1: out_j = s_j Σ_{i≥j} M_ij x_i; where
// s_j = β_j (when `with_beta`) · exp(G_j) (when `with_decay`), M a lower-triangular chunk matrix, x and out
// rows of `width` floats ([B, T, H, width]); x absent (`has_x` 0) is zero. global = [width, CHUNK, B·H·NC].
kernel void delta_chunk_triangular(SIZES, int transpose, int with_beta, int with_decay, int has_x, int width,
                                   global const float *m, global const float *beta, global const float *gcum,
                                   global const float *x, global float *out) {
    const int col = get_global_id(0), r = get_global_id(1), pc = get_global_id(2);
    if (col >= width) return;
    CHUNK_OF(pc);
    if (r >= L) return;
    float sum = 0.0f;
    if (has_x) {
        if (transpose) {
            for (int i = r; i < L; i++) sum += MAT(m, pc, i, r) * x[ROW(i) * width + col];
            if (with_beta) sum *= beta[ROW(r)];
            if (with_decay) sum *= exp(gcum[ROW(r)]);
        } else {
            for (int j = 0; j <= r; j++) {
                float s = MAT(m, pc, r, j);
                if (with_beta) s *= beta[ROW(j)];
                if (with_decay) s *= exp(gcum[ROW(j)]);
                sum += s * x[ROW(j) * width + col];
            }
        }
    }
    out[ROW(r) * width + col] = sum;
}

// The states at every chunk boundary, column v: slot 0 the initial state, then per chunk U′ = U − W S_c
// (written over U, `u` [B, T, H, V]) and S_{c+1} = exp(G_L) S_c + K̄ᵀ U′. global = [V, 1, B·H].
kernel void delta_chunk_carry_forward(SIZES, int has_initial, int has_final, global const float *w, global const float *kbar,
                                      global const float *decay_total, global const float *initial, global float *u,
                                      global float *states, global float *final_state) {
    const int v = get_global_id(0), p = get_global_id(2);
    if (v >= V) return;
    const int b = p / H, h = p % H;
    global float *s0 = STATE(states, p, 0);
    for (int k = 0; k < K; k++) s0[k * V + v] = has_initial ? initial[((size_t)p * K + k) * V + v] : 0.0f;
    for (int c = 0; c < CHUNKS; c++) {
        const int t0 = c * CHUNK, L = min(CHUNK, T - t0);
        global const float *s = STATE(states, p, c);
        global float *next = STATE(states, p, c + 1);
        for (int i = 0; i < L; i++) {
            const int row = ROW(i);
            float sum = 0.0f;
            for (int k = 0; k < K; k++) sum += w[row * K + k] * s[k * V + v];
            u[row * V + v] -= sum;
        }
        const float decay = decay_total[p * CHUNKS + c];
        for (int k = 0; k < K; k++) {
            float sum = 0.0f;
            for (int i = 0; i < L; i++) sum += kbar[ROW(i) * K + k] * u[ROW(i) * V + v];
            next[k * V + v] = decay * s[k * V + v] + sum;
        }
    }
    if (has_final) {
        global const float *s = STATE(states, p, CHUNKS);
        for (int k = 0; k < K; k++) final_state[((size_t)p * K + k) * V + v] = s[k * V + v];
    }
}

// O = Q̄ S_c + P U′. global = [V, CHUNK, B·H·NC] (v, i).
kernel void delta_chunk_output(SIZES, global const float *qbar, global const float *u, global const float *p,
                               global const float *states, global float *output) {
    const int v = get_global_id(0), i = get_global_id(1), pc = get_global_id(2);
    if (v >= V) return;
    CHUNK_OF(pc);
    if (i >= L) return;
    const int ri = ROW(i);
    global const float *s = STATE(states, p_, c);
    float sum = 0.0f;
    for (int k = 0; k < K; k++) sum += qbar[ri * K + k] * s[k * V + v];
    for (int j = 0; j <= i; j++) sum += MAT(p, pc, i, j) * u[ROW(j) * V + v];
    output[ri * V + v] = sum;
}

// dL/dS at every chunk boundary, column v, last chunk first: slot NC is dS_T (0 if absent); per chunk
// dU = Pᵀ dO + K̄ D_{c+1} (`du` holds Pᵀ dO on entry) and D_c = exp(G_L) D_{c+1} + Q̄ᵀ dO − Wᵀ dU; slot 0
// ends as dL/dS_0. global = [V, 1, B·H].
kernel void delta_chunk_carry_backward(SIZES, int has_output_gradient, int has_final_gradient, int has_initial_gradient,
                                       global const float *w, global const float *kbar, global const float *qbar,
                                       global const float *decay_total, global const float *output_gradient,
                                       global const float *final_gradient, global float *du, global float *gradients,
                                       global float *initial_gradient) {
    const int v = get_global_id(0), p = get_global_id(2);
    if (v >= V) return;
    const int b = p / H, h = p % H;
    global float *last = STATE(gradients, p, CHUNKS);
    for (int k = 0; k < K; k++) last[k * V + v] = has_final_gradient ? final_gradient[((size_t)p * K + k) * V + v] : 0.0f;
    for (int c = CHUNKS - 1; c >= 0; c--) {
        const int t0 = c * CHUNK, L = min(CHUNK, T - t0);
        global const float *d = STATE(gradients, p, c + 1);
        global float *previous = STATE(gradients, p, c);
        for (int i = 0; i < L; i++) {
            const int row = ROW(i);
            float sum = 0.0f;
            for (int k = 0; k < K; k++) sum += kbar[row * K + k] * d[k * V + v];
            du[row * V + v] += sum;
        }
        const float decay = decay_total[p * CHUNKS + c];
        for (int k = 0; k < K; k++) {
            float sum = 0.0f;
            for (int i = 0; i < L; i++) {
                const int row = ROW(i);
                if (has_output_gradient) sum += qbar[row * K + k] * output_gradient[row * V + v];
                sum -= w[row * K + k] * du[row * V + v];
            }
            previous[k * V + v] = decay * d[k * V + v] + sum;
        }
    }
    if (has_initial_gradient) {
        global const float *d = STATE(gradients, p, 0);
        for (int k = 0; k < K; k++) initial_gradient[((size_t)p * K + k) * V + v] = d[k * V + v];
    }
}

// Row i, key k of three products with the chunk's states: dqs = dO S_cᵀ (0 without dO), dW = −dU S_cᵀ and
// dke = U′ D_{c+1}ᵀ. global = [K, CHUNK, B·H·NC] (k, i).
kernel void delta_chunk_state_products(SIZES, int has_output_gradient, global const float *output_gradient, global const float *du,
                                       global const float *u, global const float *states, global const float *gradients,
                                       global float *dqs, global float *dw, global float *dke) {
    const int k = get_global_id(0), i = get_global_id(1), pc = get_global_id(2);
    if (k >= K) return;
    CHUNK_OF(pc);
    if (i >= L) return;
    const int ri = ROW(i);
    global const float *s = STATE(states, p_, c) + k * V, *d = STATE(gradients, p_, c + 1) + k * V;
    float q_sum = 0.0f, w_sum = 0.0f, k_sum = 0.0f;
    for (int v = 0; v < V; v++) {
        if (has_output_gradient) q_sum += output_gradient[ri * V + v] * s[v];
        w_sum += du[ri * V + v] * s[v];
        k_sum += u[ri * V + v] * d[v];
    }
    dqs[ri * K + k] = q_sum;
    dw[ri * K + k] = -w_sum;
    dke[ri * K + k] = k_sum;
}

// dP_ij = dO_i · U′_j and dT_ij = exp(G_j) dW_i · K_j + dU_i · V_j for j ≤ i < L, zero elsewhere.
// global = [CHUNK, CHUNK, B·H·NC] (j, i).
kernel void delta_chunk_pair_gradients(SIZES, int has_output_gradient, global const float *output_gradient, global const float *u,
                                       global const float *dw, global const float *key, global const float *du,
                                       global const float *value, global const float *gcum, global float *dp, global float *dt) {
    const int j = get_global_id(0), i = get_global_id(1), pc = get_global_id(2);
    if (j >= CHUNK) return;
    CHUNK_OF(pc);
    if (j > i || i >= L) {
        MAT(dp, pc, i, j) = 0.0f;
        MAT(dt, pc, i, j) = 0.0f;
        return;
    }
    const int ri = ROW(i), rj = ROW(j);
    float p_sum = 0.0f, t_values = 0.0f, t_keys = 0.0f;
    for (int v = 0; v < V; v++) {
        if (has_output_gradient) p_sum += output_gradient[ri * V + v] * u[rj * V + v];
        t_values += du[ri * V + v] * value[rj * V + v];
    }
    for (int k = 0; k < K; k++) t_keys += dw[ri * K + k] * key[rj * K + k];
    MAT(dp, pc, i, j) = p_sum;
    MAT(dt, pc, i, j) = (gated ? exp(gcum[rj]) : 1.0f) * t_keys + t_values;
}

// The gradient through N = (I + A)⁻¹, dA = −Nᵀ dN Nᵀ with dN = dT diag(β) (strictly lower), in two steps:
// step 0 X_ib = Σ_{a≥i} N_ai dT_ab β_b (b < i, else 0), step 1 dA_ij = −Σ_{b≤j} X_ib N_jb (j < i, else 0).
// global = [CHUNK, CHUNK, B·H·NC] (column, row).
kernel void delta_chunk_inverse_gradient(SIZES, int step, global const float *beta, global const float *n,
                                         global const float *x, global float *out) {
    const int col = get_global_id(0), i = get_global_id(1), pc = get_global_id(2);
    if (col >= CHUNK) return;
    CHUNK_OF(pc);
    float sum = 0.0f;
    if (col < i && i < L) {
        if (step == 0) {
            for (int a = i; a < L; a++) sum += MAT(n, pc, a, i) * MAT(x, pc, a, col);
            sum *= beta[ROW(col)];
        } else {
            for (int m = 0; m <= col; m++) sum += MAT(x, pc, i, m) * MAT(n, pc, col, m);
            sum = -sum;
        }
    }
    MAT(out, pc, i, col) = sum;
}

// Per row i: dβ_i, and (gated, with `has_gate_gradient`) ∂L/∂G_i without the τ terms in `dlog` and τ_i in
// `tau` ([B, T, H] each; see the top of this file). global = [CHUNK, 1, B·H·NC].
kernel void delta_chunk_row_gradients(SIZES, int has_gate_gradient, global const float *beta, global const float *key,
                                      global const float *qbar, global const float *kbar, global const float *gcum,
                                      global const float *n, global const float *kg, global const float *p,
                                      global const float *dp, global const float *dt, global const float *da,
                                      global const float *dqs, global const float *dke, global const float *dkw,
                                      global float *dbeta, global float *dlog, global float *tau) {
    const int i = get_global_id(0), pc = get_global_id(2);
    if (i >= CHUNK) return;
    CHUNK_OF(pc);
    if (i >= L) return;
    const int ri = ROW(i);
    float from_t = 0.0f, from_a = 0.0f;
    for (int a = i; a < L; a++) from_t += MAT(dt, pc, a, i) * MAT(n, pc, a, i);
    for (int j = 0; j < i; j++) from_a += MAT(da, pc, i, j) * MAT(kg, pc, i, j);
    dbeta[ri] = from_t + from_a;
    if (!(gated && has_gate_gradient)) return;
    // Through Γ: row sums minus column sums of dP ⊙ P and of dA ⊙ β_row KG.
    float pairs = 0.0f;
    for (int j = 0; j <= i; j++) pairs += MAT(dp, pc, i, j) * MAT(p, pc, i, j) + MAT(da, pc, i, j) * (beta[ri] * MAT(kg, pc, i, j));
    for (int a = i; a < L; a++) pairs -= MAT(dp, pc, a, i) * MAT(p, pc, a, i) + MAT(da, pc, a, i) * (beta[ROW(a)] * MAT(kg, pc, a, i));
    float direct = 0.0f, t = 0.0f;
    const float e = exp(gcum[ri]);
    for (int k = 0; k < K; k++) {
        direct += qbar[ri * K + k] * dqs[ri * K + k] + e * key[ri * K + k] * dkw[ri * K + k];
        t += kbar[ri * K + k] * dke[ri * K + k];
    }
    dlog[ri] = pairs + direct;
    tau[ri] = t;
}

// The gate's gradient of one chunk: dg_t = Σ_{i≥t} ∂L/∂G_i, where the last row also holds Σ τ and
// exp(G_L) Σ D_{c+1} ⊙ S_c, and each row −τ_i. global = [B·H·NC, 1, 1].
kernel void delta_chunk_gate_gradient(SIZES, global const float *dlog, global const float *tau, global const float *decay_total,
                                      global const float *states, global const float *gradients, global float *dgate) {
    const int pc = get_global_id(0);
    if (pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    global const float *s = STATE(states, p_, c), *d = STATE(gradients, p_, c + 1);
    float state_term = 0.0f;
    for (int k = 0; k < K; k++) {
        float row_sum = 0.0f;
        for (int v = 0; v < V; v++) row_sum += d[k * V + v] * s[k * V + v];
        state_term += row_sum;
    }
    float tau_total = 0.0f;
    for (int i = 0; i < L; i++) tau_total += tau[ROW(i)];
    float acc = tau_total + decay_total[pc] * state_term;
    for (int i = L - 1; i >= 0; i--) {
        acc += dlog[ROW(i)] - tau[ROW(i)];
        dgate[ROW(i)] = acc;
    }
}

// dq and dk of row r at key k (see the top of this file; dkw = Tᵀ dW, dke = U′ D_{c+1}ᵀ, dqs = dO S_cᵀ).
// global = [K, CHUNK, B·H·NC] (k, r).
kernel void delta_chunk_key_gradients(SIZES, float scale, global const float *q, global const float *key, global const float *beta,
                                      global const float *gcum, global const float *gamma, global const float *dp,
                                      global const float *da, global const float *dqs, global const float *dke,
                                      global const float *dkw, global float *dq, global float *dk) {
    const int k = get_global_id(0), r = get_global_id(1), pc = get_global_id(2);
    if (k >= K) return;
    CHUNK_OF(pc);
    if (r >= L) return;
    const int rr = ROW(r);
    const float gr = gcum[rr], gl = gcum[ROW(L - 1)];
    // dQ̃_r = exp(G_r) (S_c dO_r) + Σ_{j≤r} dP_rj Γ_rj K_j
    float dqt = exp(gr) * dqs[rr * K + k];
    for (int j = 0; j <= r; j++) dqt += (MAT(dp, pc, r, j) * MAT(gamma, pc, r, j)) * key[ROW(j) * K + k];
    // dK_r = Σ_{i≥r} dP_ir Γ_ir Q̃_i + Σ_{i>r} dB_ir K_i + Σ_{m<r} dB_rm K_m + exp(G_L − G_r) dke_r + exp(G_r) dkw_r
    float dkt = 0.0f;
    for (int i = r; i < L; i++) {
        const int ri = ROW(i);
        dkt += (MAT(dp, pc, i, r) * MAT(gamma, pc, i, r)) * (scale * q[ri * K + k]);
        if (i > r) dkt += (MAT(da, pc, i, r) * (beta[ri] * MAT(gamma, pc, i, r))) * key[ri * K + k];
    }
    for (int m = 0; m < r; m++) dkt += (MAT(da, pc, r, m) * (beta[rr] * MAT(gamma, pc, r, m))) * key[ROW(m) * K + k];
    dkt += exp(gl - gr) * dke[rr * K + k] + exp(gr) * dkw[rr * K + k];
    dq[rr * K + k] = scale * dqt;
    dk[rr * K + k] = dkt;
}

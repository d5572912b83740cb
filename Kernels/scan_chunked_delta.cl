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
// STATE) repeat scan_chunked.cl's, each defined for this file's layouts; the register-tile helpers are
// shared (scan_tiles.cl, included).
//
// Layouts (row-major, float32): q, k, Q̄, K̄, W and the key-sized gradients [B, T, H, K]; v, o, U′, dU
// [B, T, H, V]; β, the gate and G [B, T, H]; states [B, H, K, V]. A pair is p = b·H + h; its chunk c is
// pc = p·NC + c (NC = ⌈T / CHUNK⌉). Scratch the host allocates: exp(G_L) [B·H·NC]; the chunk matrices
// Γ, KG, P, N (and, backward, dP, dT, X, dA) [B·H·NC, CHUNK, CHUNK], T·CHUNK floats per pair and matrix
// (no [T, T] matrix); the states and their gradients at every chunk boundary [B·H, NC + 1, K, V],
// O(T / CHUNK · K · V). In the CPU layout the [B, T, H, ·] scratch is packed by chunk ([B·H·NC, CHUNK, ·],
// rows past a chunk's length unused), with packed copies of q, k, v, β, the gate and dO and a packed dv,
// the same O(T · D) per pair.
//
// Two layouts of the same steps, chosen by ScanTuning.chunkedLayout (`scan.chunkedLayout`): the GPU layout
// (the kernels below up to "The CPU layout", the default on GPUs) and the CPU layout (the `_tiles`
// kernels of that section, register tiles of float16 vectors per work-item: the default on CPU devices,
// PoCL and Intel's or AMD's CPU runtimes, where the GPU layout ran 14 to 17× slower than the recurrent
// kernels); delta_chunk_gate_gradient serves both, and delta_chunk_row_gradients' body (ROW_GRADIENTS_BODY).
//
// Launch geometry (GPU layout): every kernel but the two carries and the per-chunk gate sum runs one
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
// `tau` ([B, T, H] each; see the top of this file). The operands' rows are at IN(a): ROW(a) here, packed in
// the CPU layout (delta_chunk_row_gradients_tiles); the results' at ROW(i) in both.
#define ROW_GRADIENTS_BODY(IN)                                                                                              \
    const int ri = IN(i), wi = ROW(i);                                                                                  \
    float from_t = 0.0f, from_a = 0.0f;                                                                                 \
    for (int a = i; a < L; a++) from_t += MAT(dt, pc, a, i) * MAT(n, pc, a, i);                                         \
    for (int j = 0; j < i; j++) from_a += MAT(da, pc, i, j) * MAT(kg, pc, i, j);                                        \
    dbeta[wi] = from_t + from_a;                                                                                        \
    if (!(gated && has_gate_gradient)) return;                                                                          \
    /* Through Γ: row sums minus column sums of dP ⊙ P and of dA ⊙ β_row KG. */                                        \
    float pairs = 0.0f;                                                                                                 \
    for (int j = 0; j <= i; j++) pairs += MAT(dp, pc, i, j) * MAT(p, pc, i, j) + MAT(da, pc, i, j) * (beta[ri] * MAT(kg, pc, i, j)); \
    for (int a = i; a < L; a++) pairs -= MAT(dp, pc, a, i) * MAT(p, pc, a, i) + MAT(da, pc, a, i) * (beta[IN(a)] * MAT(kg, pc, a, i)); \
    float direct = 0.0f, t = 0.0f;                                                                                      \
    const float e = exp(gcum[ri]);                                                                                      \
    for (int k = 0; k < K; k++) {                                                                                       \
        direct += qbar[ri * K + k] * dqs[ri * K + k] + e * key[ri * K + k] * dkw[ri * K + k];                           \
        t += kbar[ri * K + k] * dke[ri * K + k];                                                                        \
    }                                                                                                                   \
    dlog[wi] = pairs + direct;                                                                                          \
    tau[wi] = t;

// global = [CHUNK, 1, B·H·NC].
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
    ROW_GRADIENTS_BODY(ROW)
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

// MARK: - The CPU layout
//
// As in scan_chunked.cl (its "CPU layout" section): for CPU OpenCL devices (PoCL, which runs a work-group
// as a loop over its work-items and vectorizes across them only where the body has no inner loops), the
// `_tiles` kernels are the same steps with the same results (on packed operands, see PACKED below), each
// work-item a register tile of rows × 16 contiguous columns as float16 vectors (a broadcast times a loaded
// row slice: TILE_ROWS = 4 rows for the key gradients; PRODUCT_ROWS = 8 rows × 32 columns, two vectors per
// row so that each broadcast feeds two FMAs, for the triangular products, the output and the two carries;
// TILE_ROWS × 32 for the state products), or, for the chunk matrices that are sums over K or V of two
// row-major operands, TILE_ROWS × TILE_ROWS blocks of float16 partial sums added across lanes at the end.
// Decays are vector exps, 16 per call (tile_exp). The triangular inverse runs 16 columns of N per
// work-item, row by row (N_i = e_i − Σ_{m<i} A_im N_m: N is lower triangular, so the columns past i come
// out zero), and the two carries one work-item per 32 state columns of a pair. Rows past a chunk's length
// are clamped to its last row (computed, never stored). The per-row gradients (dβ, the gate's terms) are
// the GPU layout's kernel body on packed rows (delta_chunk_row_gradients_tiles) and the gate's reverse sum
// the GPU layout's kernel: O(CHUNK²) scalar work per chunk.
//   global = [column tiles, row tiles, B·H·NC], local = [1, 16, 1] (or [1, 1, 1] with one row tile)
//   rounded by the host; edges are guarded.

#define TILE_ROWS 4
// Rows of the tiles of the triangular products, the output and the carries (one accumulator each).
#define PRODUCT_ROWS 8

#include "scan_tiles.cl"

// The CPU layout reads every [B, T, H, ·] operand packed, [B·H·NC, CHUNK, ·]: the host copies q, k, v, β,
// the gate and dO (delta_chunk_pack_tiles), and the scratch the `_tiles` kernels pass to one another (G, Q̄,
// K̄, W, U′, dU, the state products, Tᵀ dW) is kept so, so that a chunk's rows are contiguous (in
// [B, T, H, K] they lie H · K floats apart and a chunk's K-slices fall into a few L1 sets). PACKED(i) is
// row i of chunk pc in that layout (pc in scope); o, dq, dk (and dβ, ∂L/∂G, τ) are stored at their rows
// in [B, T, H, ·] (ROW, SOURCE_ROW), dv through a packed buffer and delta_chunk_pack_tiles back.
#define PACKED(i) (pc * CHUNK + (i))
#define SOURCE_ROW(i) ((b * T + t0 + (i)) * H + h)
#undef ROW
#define ROW(i) PACKED(i)

#define CLAMPED_ROW(i) ROW(min((i), L - 1))

// x [B, T, H, width] packed into [B·H·NC, CHUNK, width] (or, with `unpack`, back), 16 columns of one chunk
// per work-item; rows past a chunk's length are left as they are (the tiles never read them).
// global = [⌈width / 16⌉, 1, B·H·NC].
kernel void delta_chunk_pack_tiles(SIZES, int width, int unpack, global const float *x, global float *y) {
    const int c0 = get_global_id(0) * 16, pc = get_global_id(2);
    if (c0 >= width || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    const int n = width - c0;
    for (int i = 0; i < L; i++) {
        const int from = unpack ? PACKED(i) : SOURCE_ROW(i), to = unpack ? SOURCE_ROW(i) : PACKED(i);
        tile_store(y + to * width + c0, tile_load(x + from * width + c0, n), n);
    }
}

// delta_chunk_row_gradients on packed operands. global = [CHUNK, 1, B·H·NC].
kernel void delta_chunk_row_gradients_tiles(SIZES, int has_gate_gradient, global const float *beta, global const float *key,
                                            global const float *qbar, global const float *kbar, global const float *gcum,
                                            global const float *n, global const float *kg, global const float *p,
                                            global const float *dp, global const float *dt, global const float *da,
                                            global const float *dqs, global const float *dke, global const float *dkw,
                                            global float *dbeta, global float *dlog, global float *tau) {
    const int i = get_global_id(0), pc = get_global_id(2);
    if (i >= CHUNK || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    if (i >= L) return;
#undef ROW
#define ROW(i) SOURCE_ROW(i)
    ROW_GRADIENTS_BODY(PACKED)
#undef ROW
#define ROW(i) PACKED(i)
}


// 16 floats of a chunk matrix's row (whole: CHUNK is a multiple of 16).
#define FULL_ROW(p) ((float16)(vload8(0, (p)), vload8(1, (p))))

// out[a][b] = Σ_c x[ri[a]·width + c] · y[rj[b]·width + c] over c < width: a TILE_ROWS × TILE_ROWS block of dot products.
#define DOT_TILE(out, x, y, width)                                                                          \
    {                                                                                                       \
        float16 acc_[TILE_ROWS][TILE_ROWS];                                                                 \
        _Pragma("unroll") for (int a = 0; a < TILE_ROWS; a++)                                               \
            _Pragma("unroll") for (int b2 = 0; b2 < TILE_ROWS; b2++) acc_[a][b2] = (float16)(0.0f);         \
        for (int c0 = 0; c0 < (width); c0 += 16) {                                                          \
            const int n_ = (width) - c0;                                                                    \
            float16 xs_[TILE_ROWS], ys_[TILE_ROWS];                                                         \
            _Pragma("unroll") for (int a = 0; a < TILE_ROWS; a++) {                                         \
                xs_[a] = tile_load((x) + ri[a] * (width) + c0, n_);                                         \
                ys_[a] = tile_load((y) + rj[a] * (width) + c0, n_);                                         \
            }                                                                                               \
            _Pragma("unroll") for (int a = 0; a < TILE_ROWS; a++)                                           \
                _Pragma("unroll") for (int b2 = 0; b2 < TILE_ROWS; b2++) acc_[a][b2] = fma(xs_[a], ys_[b2], acc_[a][b2]); \
        }                                                                                                   \
        float sums_[16];                                                                                    \
        vstore16(tile_sums4x4(&acc_[0][0]), 0, sums_);                                                      \
        _Pragma("unroll") for (int a = 0; a < TILE_ROWS; a++)                                               \
            _Pragma("unroll") for (int b2 = 0; b2 < TILE_ROWS; b2++) out[a][b2] = sums_[a * TILE_ROWS + b2]; \
    }

// The tile's row indices: ri for rows i0 …, rj for rows j0 … (clamped).
#define TILE_ROW_INDICES(i0, j0)                             \
    int ri[TILE_ROWS], rj[TILE_ROWS];                         \
    _Pragma("unroll") for (int a = 0; a < TILE_ROWS; a++) {   \
        ri[a] = CLAMPED_ROW((i0) + a);                        \
        rj[a] = CLAMPED_ROW((j0) + a);                        \
    }

// delta_chunk_prepare for 16 keys at once; the decays exp(G_i) and exp(G_L − G_i) of the chunk's rows 16 rows
// per vector exp (every exponent ≤ 0). global = [⌈K / 16⌉, 1, B·H·NC].
kernel void delta_chunk_prepare_tiles(SIZES, float scale, global const float *q, global const float *key, global const float *gate,
                                      global float *gcum, global float *qbar, global float *kbar, global float *decay_total) {
    const int k0 = get_global_id(0) * 16, pc = get_global_id(2);
    if (k0 >= K || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    const int n = K - k0;
    float g = 0.0f, gs[CHUNK], to_q[CHUNK], to_k[CHUNK];
    for (int i = 0; i < CHUNK; i++) {
        if (i < L) {
            const int row = ROW(i);
            if (gated) g += gate[row];
            if (k0 == 0) gcum[row] = g;
        }
        gs[i] = g;
    }
    const float last = g;
    for (int i0 = 0; i0 < L; i0 += 16) {
        const float16 gv = vload16(0, gs + i0);
        vstore16(gated ? scale * tile_exp(gv) : (float16)(scale), 0, to_q + i0);
        vstore16(gated ? tile_exp(last - gv) : (float16)(1.0f), 0, to_k + i0);
    }
    for (int i = 0; i < L; i++) {
        const int row = ROW(i);
        tile_store(qbar + row * K + k0, tile_load(q + row * K + k0, n) * to_q[i], n);
        tile_store(kbar + row * K + k0, tile_load(key + row * K + k0, n) * to_k[i], n);
    }
    if (k0 == 0) decay_total[pc] = exp(last);
}

// delta_chunk_matrices for a TILE_ROWS × TILE_ROWS block. global = [CHUNK / TILE_ROWS, CHUNK / TILE_ROWS, B·H·NC] (j, i).
kernel void delta_chunk_matrices_tiles(SIZES, float scale, global const float *q, global const float *key, global const float *gcum,
                                       global float *gamma, global float *kg, global float *p) {
    const int j0 = get_global_id(0) * TILE_ROWS, i0 = get_global_id(1) * TILE_ROWS, pc = get_global_id(2);
    if (j0 >= CHUNK || i0 >= CHUNK || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    TILE_ROW_INDICES(i0, j0)
    float kk[TILE_ROWS][TILE_ROWS], qk[TILE_ROWS][TILE_ROWS];
    const int live = j0 <= i0 && i0 < L;
    if (live) {
        DOT_TILE(kk, key, key, K)
        DOT_TILE(qk, q, key, K)
    }
    // Γ of the block's 16 pairs in one vector exp (exponents ≤ 0 for j ≤ i; the others are not used).
    float decays[16];
    if (live && gated) {
        float x[16];
#pragma unroll
        for (int a = 0; a < TILE_ROWS; a++)
#pragma unroll
            for (int b2 = 0; b2 < TILE_ROWS; b2++) x[a * TILE_ROWS + b2] = fmin(gcum[ri[a]] - gcum[rj[b2]], 0.0f);
        vstore16(tile_exp(vload16(0, x)), 0, decays);
    }
#pragma unroll
    for (int a = 0; a < TILE_ROWS; a++)
#pragma unroll
        for (int b2 = 0; b2 < TILE_ROWS; b2++) {
            const int i = i0 + a, j = j0 + b2;
            float g = 0.0f, kgv = 0.0f, pv = 0.0f;
            if (live && j <= i && i < L) {
                g = gated ? decays[a * TILE_ROWS + b2] : 1.0f;
                kgv = j < i ? g * kk[a][b2] : 0.0f;
                pv = (scale * qk[a][b2]) * g;
            }
            MAT(gamma, pc, i, j) = g;
            MAT(kg, pc, i, j) = kgv;
            MAT(p, pc, i, j) = pv;
        }
}

// delta_chunk_inverse for 16 columns j0 … of N at once, row by row. global = [CHUNK / 16, 1, B·H·NC].
kernel void delta_chunk_inverse_tiles(SIZES, global const float *beta, global const float *kg, global float *n) {
    const int j0 = get_global_id(0) * 16, pc = get_global_id(2);
    if (j0 >= CHUNK || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    const int16 lane = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    global float *nc = n + (size_t)pc * CHUNK * CHUNK + j0;
    global const float *a = kg + (size_t)pc * CHUNK * CHUNK;
    for (int i = 0; i < CHUNK; i++) {
        float16 x = (float16)(0.0f);
        if (i < L) {
            x = select((float16)(0.0f), (float16)(1.0f), lane == (int16)(i - j0));
            const float b_i = beta[ROW(i)];
            // N_mj = 0 for m < j0 ≤ j: the sum starts at row j0.
            for (int m = j0; m < i; m++) x = fma((float16)(-(b_i * a[i * CHUNK + m])), FULL_ROW(nc + m * CHUNK), x);
        }
        vstore8(x.lo, 0, nc + i * CHUNK);
        vstore8(x.hi, 1, nc + i * CHUNK);
    }
}

// delta_chunk_triangular for PRODUCT_ROWS rows × 32 columns (two float16 per row).
// global = [⌈width / 32⌉, CHUNK / PRODUCT_ROWS, B·H·NC].
kernel void delta_chunk_triangular_tiles(SIZES, int transpose, int with_beta, int with_decay, int has_x, int width,
                                         global const float *m, global const float *beta, global const float *gcum,
                                         global const float *x, global float *out) {
    const int c0 = get_global_id(0) * 32, r0 = get_global_id(1) * PRODUCT_ROWS, pc = get_global_id(2);
    if (c0 >= width || r0 >= CHUNK || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    if (r0 >= L) return;
    const int n = width - c0;
    float16 acc[PRODUCT_ROWS][2];
#pragma unroll
    for (int r = 0; r < PRODUCT_ROWS; r++) acc[r][0] = acc[r][1] = (float16)(0.0f);
    global const float *mc = m + (size_t)pc * CHUNK * CHUNK;
    if (has_x) {
        if (transpose) {
            // out_j = s_j Σ_{i≥j} M_ij x_i (M_ij = 0 for i < j)
            for (int i = r0; i < L; i++) {
                global const float *xr = x + ROW(i) * width + c0;
                const float16 x_lo = tile_load(xr, n), x_hi = tile_load(xr + 16, n - 16);
#pragma unroll
                for (int r = 0; r < PRODUCT_ROWS; r++) {
                    const float16 mr = (float16)(mc[i * CHUNK + r0 + r]);
                    acc[r][0] = fma(mr, x_lo, acc[r][0]);
                    acc[r][1] = fma(mr, x_hi, acc[r][1]);
                }
            }
#pragma unroll
            for (int r = 0; r < PRODUCT_ROWS; r++) {
                const int row = CLAMPED_ROW(r0 + r);
                float s = 1.0f;
                if (with_beta) s *= beta[row];
                if (with_decay) s *= exp(gcum[row]);
                acc[r][0] *= s;
                acc[r][1] *= s;
            }
        } else {
            // out_i = Σ_{j≤i} M_ij s_j x_j (M_ij = 0 for j > i); the s_j first, their exps 16 at a time.
            const int last = min(r0 + PRODUCT_ROWS, L);
            float sj[CHUNK];
            for (int j0 = 0; j0 < last; j0 += 16) {
                float g[16], bj[16];
                for (int l = 0; l < 16; l++) {
                    const int row = CLAMPED_ROW(j0 + l);
                    g[l] = with_decay ? gcum[row] : 0.0f;
                    bj[l] = with_beta ? beta[row] : 1.0f;
                }
                const float16 sv = (float16)(vload8(0, bj), vload8(1, bj)) * tile_exp((float16)(vload8(0, g), vload8(1, g)));
                vstore8(sv.lo, 0, sj + j0);
                vstore8(sv.hi, 1, sj + j0);
            }
            for (int j = 0; j < last; j++) {
                global const float *xr = x + ROW(j) * width + c0;
                const float16 x_lo = sj[j] * tile_load(xr, n), x_hi = sj[j] * tile_load(xr + 16, n - 16);
#pragma unroll
                for (int r = 0; r < PRODUCT_ROWS; r++) {
                    const float16 mr = (float16)(mc[(r0 + r) * CHUNK + j]);
                    acc[r][0] = fma(mr, x_lo, acc[r][0]);
                    acc[r][1] = fma(mr, x_hi, acc[r][1]);
                }
            }
        }
    }
    for (int r = 0; r < PRODUCT_ROWS && r0 + r < L; r++) {
        global float *o = out + ROW(r0 + r) * width + c0;
        tile_store(o, acc[r][0], n);
        tile_store(o + 16, acc[r][1], n - 16);
    }
}

// 32 state columns (n ≤ 32 of them real) of K rows, V floats apart: to = from, or zeros when !copy.
static void state_columns_copy(global float *to, global const float *from, int copy, int K, int V, int n) {
    for (int k = 0; k < K; k++) {
        tile_store(to + k * V, copy ? tile_load(from + k * V, n) : (float16)(0.0f), n);
        tile_store(to + k * V + 16, copy ? tile_load(from + k * V + 16, n - 16) : (float16)(0.0f), n - 16);
    }
}

// out_i ± Σ_k a_ik s_k for the L packed rows first … first + L − 1 of a [·, K] and out [·, V] (out at
// the state's 32 columns, n ≤ 32 of them real), s the K state rows of those columns (V floats apart):
// the carries' products with a state, PRODUCT_ROWS rows at a time.
static void rows_times_state(global const float *a, global const float *s, global float *out, int first, int L, int K,
                             int V, int n, int subtract) {
    for (int i0 = 0; i0 < L; i0 += PRODUCT_ROWS) {
        int rows[PRODUCT_ROWS];
        float16 acc[PRODUCT_ROWS][2];
#pragma unroll
        for (int r = 0; r < PRODUCT_ROWS; r++) {
            rows[r] = first + min(i0 + r, L - 1);
            acc[r][0] = acc[r][1] = (float16)(0.0f);
        }
        for (int k = 0; k < K; k++) {
            const float16 s_lo = tile_load(s + k * V, n), s_hi = tile_load(s + k * V + 16, n - 16);
#pragma unroll
            for (int r = 0; r < PRODUCT_ROWS; r++) {
                const float16 ar = (float16)(a[rows[r] * K + k]);
                acc[r][0] = fma(ar, s_lo, acc[r][0]);
                acc[r][1] = fma(ar, s_hi, acc[r][1]);
            }
        }
        for (int r = 0; r < PRODUCT_ROWS && i0 + r < L; r++) {
            global float *o = out + rows[r] * V;
            tile_store(o, subtract ? tile_load(o, n) - acc[r][0] : tile_load(o, n) + acc[r][0], n);
            tile_store(o + 16, subtract ? tile_load(o + 16, n - 16) - acc[r][1] : tile_load(o + 16, n - 16) + acc[r][1], n - 16);
        }
    }
}

// delta_chunk_carry_forward for 32 state columns v0 … of a pair (two float16 per row): U′ = U − W S_c
// PRODUCT_ROWS rows at a time, S_{c+1} = exp(G_L) S_c + K̄ᵀ U′ PRODUCT_ROWS key rows at a time.
// global = [⌈V / 32⌉, 1, B·H].
kernel void delta_chunk_carry_forward_tiles(SIZES, int has_initial, int has_final, global const float *w, global const float *kbar,
                                            global const float *decay_total, global const float *initial, global float *u,
                                            global float *states, global float *final_state) {
    const int v0 = get_global_id(0) * 32, p = get_global_id(2);
    if (v0 >= V || p >= B * H) return;
    const int n = V - v0;
    state_columns_copy(STATE(states, p, 0) + v0, initial + (size_t)p * K * V + v0, has_initial, K, V, n);
    for (int c = 0; c < CHUNKS; c++) {
        const int pc = p * CHUNKS + c, L = min(CHUNK, T - c * CHUNK);
        global const float *s = STATE(states, p, c) + v0;
        global float *next = STATE(states, p, c + 1) + v0;
        rows_times_state(w, s, u + v0, ROW(0), L, K, V, n, 1);  // U′ = U − W S_c
        const float decay = decay_total[p * CHUNKS + c];
        for (int k0 = 0; k0 < K; k0 += PRODUCT_ROWS) {
            int keys[PRODUCT_ROWS];
            float16 acc[PRODUCT_ROWS][2];
#pragma unroll
            for (int r = 0; r < PRODUCT_ROWS; r++) {
                keys[r] = min(k0 + r, K - 1);
                acc[r][0] = acc[r][1] = (float16)(0.0f);
            }
            for (int i = 0; i < L; i++) {
                const int row = ROW(i);
                const float16 u_lo = tile_load(u + row * V + v0, n), u_hi = tile_load(u + row * V + v0 + 16, n - 16);
#pragma unroll
                for (int r = 0; r < PRODUCT_ROWS; r++) {
                    const float16 kr = (float16)(kbar[row * K + keys[r]]);
                    acc[r][0] = fma(kr, u_lo, acc[r][0]);
                    acc[r][1] = fma(kr, u_hi, acc[r][1]);
                }
            }
            for (int r = 0; r < PRODUCT_ROWS && k0 + r < K; r++) {
                global const float *sr = s + (k0 + r) * V;
                tile_store(next + (k0 + r) * V, fma((float16)(decay), tile_load(sr, n), acc[r][0]), n);
                tile_store(next + (k0 + r) * V + 16, fma((float16)(decay), tile_load(sr + 16, n - 16), acc[r][1]), n - 16);
            }
        }
    }
    if (has_final) state_columns_copy(final_state + (size_t)p * K * V + v0, STATE(states, p, CHUNKS) + v0, 1, K, V, n);
}

// delta_chunk_output for PRODUCT_ROWS rows × 32 values (two float16 per row).
// global = [⌈V / 32⌉, CHUNK / PRODUCT_ROWS, B·H·NC].
kernel void delta_chunk_output_tiles(SIZES, global const float *qbar, global const float *u, global const float *p,
                                     global const float *states, global float *output) {
    const int v0 = get_global_id(0) * 32, i0 = get_global_id(1) * PRODUCT_ROWS, pc = get_global_id(2);
    if (v0 >= V || i0 >= CHUNK || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    if (i0 >= L) return;
    const int n = V - v0;
    int ri[PRODUCT_ROWS];
    float16 acc[PRODUCT_ROWS][2];
#pragma unroll
    for (int r = 0; r < PRODUCT_ROWS; r++) {
        ri[r] = CLAMPED_ROW(i0 + r);
        acc[r][0] = acc[r][1] = (float16)(0.0f);
    }
    global const float *s = STATE(states, p_, c) + v0;
    for (int k = 0; k < K; k++) {
        const float16 s_lo = tile_load(s + k * V, n), s_hi = tile_load(s + k * V + 16, n - 16);
#pragma unroll
        for (int r = 0; r < PRODUCT_ROWS; r++) {
            const float16 qr = (float16)(qbar[ri[r] * K + k]);
            acc[r][0] = fma(qr, s_lo, acc[r][0]);
            acc[r][1] = fma(qr, s_hi, acc[r][1]);
        }
    }
    const int last = min(i0 + PRODUCT_ROWS, L);
    for (int j = 0; j < last; j++) {
        global const float *ur = u + ROW(j) * V + v0;
        const float16 u_lo = tile_load(ur, n), u_hi = tile_load(ur + 16, n - 16);
#pragma unroll
        for (int r = 0; r < PRODUCT_ROWS; r++) {
            const float16 pr = (float16)(MAT(p, pc, i0 + r, j));
            acc[r][0] = fma(pr, u_lo, acc[r][0]);
            acc[r][1] = fma(pr, u_hi, acc[r][1]);
        }
    }
    for (int r = 0; r < PRODUCT_ROWS && i0 + r < L; r++) {
        tile_store(output + SOURCE_ROW(i0 + r) * V + v0, acc[r][0], n);
        tile_store(output + SOURCE_ROW(i0 + r) * V + v0 + 16, acc[r][1], n - 16);
    }
}

// delta_chunk_carry_backward for 32 state columns v0 … of a pair (two float16 per row).
// global = [⌈V / 32⌉, 1, B·H].
kernel void delta_chunk_carry_backward_tiles(SIZES, int has_output_gradient, int has_final_gradient, int has_initial_gradient,
                                             global const float *w, global const float *kbar, global const float *qbar,
                                             global const float *decay_total, global const float *output_gradient,
                                             global const float *final_gradient, global float *du, global float *gradients,
                                             global float *initial_gradient) {
    const int v0 = get_global_id(0) * 32, p = get_global_id(2);
    if (v0 >= V || p >= B * H) return;
    const int n = V - v0;
    state_columns_copy(STATE(gradients, p, CHUNKS) + v0, final_gradient + (size_t)p * K * V + v0, has_final_gradient, K, V, n);
    for (int c = CHUNKS - 1; c >= 0; c--) {
        const int pc = p * CHUNKS + c, L = min(CHUNK, T - c * CHUNK);
        global const float *d = STATE(gradients, p, c + 1) + v0;
        global float *previous = STATE(gradients, p, c) + v0;
        rows_times_state(kbar, d, du + v0, ROW(0), L, K, V, n, 0);  // dU_i += Σ_k K̄_ik D_{c+1}[k]
        // D_c[k] = exp(G_L) D_{c+1}[k] + Σ_i (Q̄_ik dO_i − W_ik dU_i)
        const float decay = decay_total[p * CHUNKS + c];
        for (int k0 = 0; k0 < K; k0 += PRODUCT_ROWS) {
            int keys[PRODUCT_ROWS];
            float16 acc[PRODUCT_ROWS][2];
#pragma unroll
            for (int r = 0; r < PRODUCT_ROWS; r++) {
                keys[r] = min(k0 + r, K - 1);
                acc[r][0] = acc[r][1] = (float16)(0.0f);
            }
            for (int i = 0; i < L; i++) {
                const int row = ROW(i);
                const float16 du_lo = tile_load(du + row * V + v0, n), du_hi = tile_load(du + row * V + v0 + 16, n - 16);
                float16 do_lo = (float16)(0.0f), do_hi = (float16)(0.0f);
                if (has_output_gradient) {
                    do_lo = tile_load(output_gradient + row * V + v0, n);
                    do_hi = tile_load(output_gradient + row * V + v0 + 16, n - 16);
                }
#pragma unroll
                for (int r = 0; r < PRODUCT_ROWS; r++) {
                    const float16 qr = (float16)(qbar[row * K + keys[r]]), wr = (float16)(-w[row * K + keys[r]]);
                    acc[r][0] = fma(qr, do_lo, fma(wr, du_lo, acc[r][0]));
                    acc[r][1] = fma(qr, do_hi, fma(wr, du_hi, acc[r][1]));
                }
            }
            for (int r = 0; r < PRODUCT_ROWS && k0 + r < K; r++) {
                global const float *dr = d + (k0 + r) * V;
                tile_store(previous + (k0 + r) * V, fma((float16)(decay), tile_load(dr, n), acc[r][0]), n);
                tile_store(previous + (k0 + r) * V + 16, fma((float16)(decay), tile_load(dr + 16, n - 16), acc[r][1]), n - 16);
            }
        }
    }
    if (has_initial_gradient) state_columns_copy(initial_gradient + (size_t)p * K * V + v0, STATE(gradients, p, 0) + v0, 1, K, V, n);
}

// The states of a [B·H, NC + 1, K, V] buffer transposed into [B·H, NC + 1, V, K]. global = [V, 1, B·H·(NC + 1)].
kernel void delta_chunk_transpose(SIZES, global const float *states, global float *transposed) {
    const int v = get_global_id(0), slot = get_global_id(2);
    if (v >= V || slot >= B * H * (CHUNKS + 1)) return;
    global const float *s = states + (size_t)slot * K * V;
    global float *t = transposed + (size_t)slot * K * V + (size_t)v * K;
    for (int k = 0; k < K; k++) t[k] = s[k * V + v];
}

// delta_chunk_state_products for TILE_ROWS rows × 32 keys (two float16 per row), with S_c and D_{c+1}
// transposed (`states_t`, `gradients_t` [B·H, NC + 1, V, K]). global = [⌈K / 32⌉, CHUNK / TILE_ROWS, B·H·NC].
kernel void delta_chunk_state_products_tiles(SIZES, int has_output_gradient, global const float *output_gradient, global const float *du,
                                             global const float *u, global const float *states_t, global const float *gradients_t,
                                             global float *dqs, global float *dw, global float *dke) {
    const int k0 = get_global_id(0) * 32, i0 = get_global_id(1) * TILE_ROWS, pc = get_global_id(2);
    if (k0 >= K || i0 >= CHUNK || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    if (i0 >= L) return;
    const int n = K - k0;
    int ri[TILE_ROWS];
    float16 aq[TILE_ROWS][2], aw[TILE_ROWS][2], ak[TILE_ROWS][2];
#pragma unroll
    for (int r = 0; r < TILE_ROWS; r++) {
        ri[r] = CLAMPED_ROW(i0 + r);
        aq[r][0] = aq[r][1] = aw[r][0] = aw[r][1] = ak[r][0] = ak[r][1] = (float16)(0.0f);
    }
    global const float *st = STATE(states_t, p_, c) + k0, *dt = STATE(gradients_t, p_, c + 1) + k0;
    for (int v = 0; v < V; v++) {
        const float16 s_lo = tile_load(st + v * K, n), s_hi = tile_load(st + v * K + 16, n - 16);
        const float16 d_lo = tile_load(dt + v * K, n), d_hi = tile_load(dt + v * K + 16, n - 16);
#pragma unroll
        for (int r = 0; r < TILE_ROWS; r++) {
            if (has_output_gradient) {
                const float16 o = (float16)(output_gradient[ri[r] * V + v]);
                aq[r][0] = fma(o, s_lo, aq[r][0]);
                aq[r][1] = fma(o, s_hi, aq[r][1]);
            }
            const float16 e = (float16)(du[ri[r] * V + v]), f = (float16)(u[ri[r] * V + v]);
            aw[r][0] = fma(e, s_lo, aw[r][0]);
            aw[r][1] = fma(e, s_hi, aw[r][1]);
            ak[r][0] = fma(f, d_lo, ak[r][0]);
            ak[r][1] = fma(f, d_hi, ak[r][1]);
        }
    }
    for (int r = 0; r < TILE_ROWS && i0 + r < L; r++) {
        tile_store(dqs + ri[r] * K + k0, aq[r][0], n);
        tile_store(dqs + ri[r] * K + k0 + 16, aq[r][1], n - 16);
        tile_store(dw + ri[r] * K + k0, -aw[r][0], n);
        tile_store(dw + ri[r] * K + k0 + 16, -aw[r][1], n - 16);
        tile_store(dke + ri[r] * K + k0, ak[r][0], n);
        tile_store(dke + ri[r] * K + k0 + 16, ak[r][1], n - 16);
    }
}

// delta_chunk_pair_gradients for a TILE_ROWS × TILE_ROWS block. global = [CHUNK / TILE_ROWS, CHUNK / TILE_ROWS, B·H·NC] (j, i).
kernel void delta_chunk_pair_gradients_tiles(SIZES, int has_output_gradient, global const float *output_gradient, global const float *u,
                                             global const float *dw, global const float *key, global const float *du,
                                             global const float *value, global const float *gcum, global float *dp, global float *dt) {
    const int j0 = get_global_id(0) * TILE_ROWS, i0 = get_global_id(1) * TILE_ROWS, pc = get_global_id(2);
    if (j0 >= CHUNK || i0 >= CHUNK || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    TILE_ROW_INDICES(i0, j0)
    float ps[TILE_ROWS][TILE_ROWS], tv[TILE_ROWS][TILE_ROWS], tk[TILE_ROWS][TILE_ROWS];
    const int live = j0 <= i0 && i0 < L;
    if (live) {
        if (has_output_gradient) DOT_TILE(ps, output_gradient, u, V)
        DOT_TILE(tv, du, value, V)
        DOT_TILE(tk, dw, key, K)
    }
    // exp(G_j) of the block's columns in one vector exp (lanes 0 … 3).
    float decays[16];
    if (live && gated) {
        float x[16];
#pragma unroll
        for (int l = 0; l < 16; l++) x[l] = gcum[rj[l % TILE_ROWS]];
        vstore16(tile_exp(vload16(0, x)), 0, decays);
    }
#pragma unroll
    for (int a = 0; a < TILE_ROWS; a++)
#pragma unroll
        for (int b2 = 0; b2 < TILE_ROWS; b2++) {
            const int i = i0 + a, j = j0 + b2;
            float pv = 0.0f, t = 0.0f;
            if (live && j <= i && i < L) {
                pv = has_output_gradient ? ps[a][b2] : 0.0f;
                t = (gated ? decays[b2] : 1.0f) * tk[a][b2] + tv[a][b2];
            }
            MAT(dp, pc, i, j) = pv;
            MAT(dt, pc, i, j) = t;
        }
}

// delta_chunk_inverse_gradient, step 0 for TILE_ROWS rows × 16 columns (global = [CHUNK / 16, CHUNK / TILE_ROWS,
// B·H·NC]), step 1 for a TILE_ROWS × TILE_ROWS block (global = [CHUNK / TILE_ROWS, CHUNK / TILE_ROWS, B·H·NC]).
kernel void delta_chunk_inverse_gradient_tiles(SIZES, int step, global const float *beta, global const float *n,
                                               global const float *x, global float *out) {
    const int col0 = get_global_id(0) * (step == 0 ? 16 : TILE_ROWS), i0 = get_global_id(1) * TILE_ROWS, pc = get_global_id(2);
    if (col0 >= CHUNK || i0 >= CHUNK || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    global const float *nc = n + (size_t)pc * CHUNK * CHUNK, *xc = x + (size_t)pc * CHUNK * CHUNK;
    if (step == 0) {
        // X_ib = β_b Σ_{a≥i} N_ai dT_ab (b < i < L, else 0); N_ai = 0 for a < i.
        float16 acc[TILE_ROWS];
#pragma unroll
        for (int r = 0; r < TILE_ROWS; r++) acc[r] = (float16)(0.0f);
        for (int a = i0; a < L; a++) {
            const float16 row = FULL_ROW(xc + a * CHUNK + col0);
#pragma unroll
            for (int r = 0; r < TILE_ROWS; r++) acc[r] = fma((float16)(nc[a * CHUNK + i0 + r]), row, acc[r]);
        }
        float betas[16];
        for (int l = 0; l < 16; l++) betas[l] = col0 + l < L ? beta[ROW(col0 + l)] : 0.0f;
        const float16 bv = (float16)(vload8(0, betas), vload8(1, betas));
        const int16 lane = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) + col0;
#pragma unroll
        for (int r = 0; r < TILE_ROWS; r++) {
            const int i = i0 + r;
            const float16 value = i < L ? select((float16)(0.0f), acc[r] * bv, lane < (int16)(i)) : (float16)(0.0f);
            vstore8(value.lo, 0, out + ((size_t)pc * CHUNK + i) * CHUNK + col0);
            vstore8(value.hi, 1, out + ((size_t)pc * CHUNK + i) * CHUNK + col0);
        }
        return;
    }
    // dA_ij = −Σ_m X_im N_jm (j < i < L, else 0): dot products of rows (X_im = 0 for m ≥ i, N_jm for m > j).
    float sums[TILE_ROWS][TILE_ROWS];
    const int live = col0 < i0 + TILE_ROWS - 1 && i0 < L;
    if (live) {
        int ri[TILE_ROWS], rj[TILE_ROWS];
#pragma unroll
        for (int a = 0; a < TILE_ROWS; a++) {
            ri[a] = i0 + a;
            rj[a] = col0 + a;
        }
        DOT_TILE(sums, xc, nc, CHUNK)
    }
#pragma unroll
    for (int a = 0; a < TILE_ROWS; a++)
#pragma unroll
        for (int b2 = 0; b2 < TILE_ROWS; b2++) {
            const int i = i0 + a, j = col0 + b2;
            MAT(out, pc, i, j) = live && j < i && i < L ? -sums[a][b2] : 0.0f;
        }
}

// delta_chunk_key_gradients for TILE_ROWS rows × 16 keys. global = [⌈K / 16⌉, CHUNK / TILE_ROWS, B·H·NC].
kernel void delta_chunk_key_gradients_tiles(SIZES, float scale, global const float *q, global const float *key, global const float *beta,
                                            global const float *gcum, global const float *gamma, global const float *dp,
                                            global const float *da, global const float *dqs, global const float *dke,
                                            global const float *dkw, global float *dq, global float *dk) {
    const int k0 = get_global_id(0) * 16, r0 = get_global_id(1) * TILE_ROWS, pc = get_global_id(2);
    if (k0 >= K || r0 >= CHUNK || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    if (r0 >= L) return;
    const int n = K - k0;
    const size_t base = (size_t)pc * CHUNK * CHUNK;
    global const float *dpc = dp + base, *dac = da + base, *gc = gamma + base;
    int rr[TILE_ROWS];
    float16 dqt[TILE_ROWS], dkt[TILE_ROWS], rowwise[TILE_ROWS];
#pragma unroll
    for (int r = 0; r < TILE_ROWS; r++) {
        rr[r] = CLAMPED_ROW(r0 + r);
        dqt[r] = dkt[r] = rowwise[r] = (float16)(0.0f);
    }
    // Σ_{j≤r} dP_rj Γ_rj K_j into dQ̃, and Σ_{m<r} dA_rm Γ_rm K_m (times β_r below) into dK: both zero above.
    const int last = min(r0 + TILE_ROWS, L);
    for (int j = 0; j < last; j++) {
        const float16 kj = tile_load(key + ROW(j) * K + k0, n);
#pragma unroll
        for (int r = 0; r < TILE_ROWS; r++) {
            const int at = (r0 + r) * CHUNK + j;
            dqt[r] = fma((float16)(dpc[at] * gc[at]), kj, dqt[r]);
            rowwise[r] = fma((float16)(dac[at] * gc[at]), kj, rowwise[r]);
        }
    }
    // Σ_{i≥r} dP_ir Γ_ir Q̃_i + Σ_{i>r} dA_ir β_i Γ_ir K_i (dP zero for i < r, dA for i ≤ r).
    for (int i = r0; i < L; i++) {
        const int row = ROW(i);
        const float16 qi = scale * tile_load(q + row * K + k0, n), ki = tile_load(key + row * K + k0, n);
        const float bi = beta[row];
#pragma unroll
        for (int r = 0; r < TILE_ROWS; r++) {
            const int at = i * CHUNK + r0 + r;
            dkt[r] = fma((float16)(dpc[at] * gc[at]), qi, fma((float16)(dac[at] * (bi * gc[at])), ki, dkt[r]));
        }
    }
    // exp(G_r) (lanes 0 … 3) and exp(G_L − G_r) (lanes 4 … 7) of the tile's rows in one vector exp.
    const float gl = gcum[ROW(L - 1)];
    float x[16], decays[16];
#pragma unroll
    for (int l = 0; l < 16; l++) x[l] = l < TILE_ROWS ? gcum[rr[l]] : l < 2 * TILE_ROWS ? gl - gcum[rr[l - TILE_ROWS]] : 0.0f;
    vstore16(tile_exp(vload16(0, x)), 0, decays);
    for (int r = 0; r < TILE_ROWS && r0 + r < L; r++) {
        const int row = rr[r];
        const float16 q_part = fma((float16)(decays[r]), tile_load(dqs + row * K + k0, n), dqt[r]);
        float16 k_part = fma((float16)(beta[row]), rowwise[r], dkt[r]);
        k_part = fma((float16)(decays[TILE_ROWS + r]), tile_load(dke + row * K + k0, n), k_part);
        k_part = fma((float16)(decays[r]), tile_load(dkw + row * K + k0, n), k_part);
        tile_store(dq + SOURCE_ROW(r0 + r) * K + k0, scale * q_part, n);
        tile_store(dk + SOURCE_ROW(r0 + r) * K + k0, k_part, n);
    }
}

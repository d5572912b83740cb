// The chunked form of causal linear attention and GLA (the scan family, Sources/Backend/Families/Scan.swift;
// the recurrent form is scan.cl), forward and backward. The delta rule's chunked kernels are
// scan_chunked_delta.cl. Kernels, in the order the host launches them:
//   scan_chunk_prepare        per (key, chunk): G, Q̄, K̄ and exp(G_L)
//   scan_chunk_scores         per (i, j, chunk): the chunk's causal score matrix A        (and, backward, dA)
//   scan_chunk_outer          per (k, v, chunk): Σ_i X_ik Y_iv, a chunk's own state contribution
//   scan_chunk_carry_forward  per (k, v, pair): the states at every chunk's start, chunk after chunk
//   scan_chunk_output         per (v, i, chunk): O = Q̄ S_c + A V
//   backward: scan_chunk_carry_backward (dL/dS at every chunk boundary, last chunk first),
//   scan_chunk_key_gradients, scan_chunk_value_gradient, scan_chunk_gate_gradient.
//
// Math (fla's chunked GLA, Yang et al. 2024), per (batch b, head h) pair and chunk c of L ≤ CHUNK steps
// i = 0 … L−1; Q̃ = scale·q; G_i = g_0 + … + g_i the gate's cumulative log within the chunk (per key, per
// head, or 0), so G ≤ 0 decreases and every exponent below is ≤ 0: no decay is ever divided by, and gates
// of logsigmoid(x)/0.1 cannot overflow (they underflow to 0, as the decays themselves do).
//   A_ij = Σ_k Q̃_ik K_jk exp(G_ik − G_jk) (j ≤ i, else 0)   Q̄ = Q̃ ⊙ exp(G)   K̄ = K ⊙ exp(G_L − G)
//   O = Q̄ S_c + A V        S_{c+1} = diag(exp(G_L)) S_c + K̄ᵀ V
// Backward, with D_{c+1} = dL/dS_{c+1} (dS_T for the last chunk) and dO:
//   D_c = diag(exp(G_L)) D_{c+1} + Q̄ᵀ dO       dA = dO Vᵀ (j ≤ i)
//   dQ̃_i = exp(G_i) ⊙ (S_c dO_i) + Σ_{j≤i} dA_ij K_j ⊙ exp(G_i − G_j)
//   dK_j = exp(G_L − G_j) ⊙ (D_{c+1} V_j) + Σ_{i≥j} dA_ij Q̃_i ⊙ exp(G_i − G_j)
//   dV_j = Σ_{i≥j} A_ij dO_i + K̄_jᵀ D_{c+1}
//   ∂L/∂G_i = Q̃_i ⊙ dQ̃_i − K_i ⊙ dK_i, plus rowsum(D_{c+1} ⊙ S_{c+1}) on the last row; the gate's gradient
//   dg_t is the reverse cumulative sum of ∂L/∂G within the chunk (summed over keys for a per-head gate).
// Per-key pairwise decays exp(G_ik − G_jk) come in sub-chunks of SUB = 16 rows (as fla): for i and j in
// different sub-chunks (j < n ≤ i, n the first row of i's sub-chunk) the decay is the product of two
// boundary factors exp(G_i − G_n) · exp(G_n − G_j), both ≤ 1, which scan_chunk_prepare computes once per
// row and boundary (`bounds`, exp(−|G_r − G_n|) for n = 16, 32, 48); within a sub-chunk it is one exp of
// the difference. A per-head gate's decay is one exp per pair.
//
// Why these kernels are a separate file: they need no compile-time key dimension (scan.cl keeps a state
// tile in private memory and is built per K), so this program is built once per device.
//
// Layouts (row-major, float32): q, k, the per-key gate and G, Q̄, K̄ [B, T, H, K]; v, o [B, T, H, V];
// the per-head gate and its G [B, T, H]; states [B, H, K, V]. A pair is p = b·H + h; its chunk c is
// pc = p·NC + c (NC = ⌈T / CHUNK⌉). Scratch the host allocates: exp(G_L) [B·H·NC, K]; per-key gates'
// boundary factors [CHUNK / 16 − 1, B, T, H, K]; A and dA
// [B·H·NC, CHUNK, CHUNK] (one chunk's square per chunk, T·CHUNK floats per pair: no [T, T] matrix);
// the states and their gradients at every chunk boundary [B·H, NC + 1, K, V], O(T / CHUNK · K · V).
//
// Launch geometry (GPU-shaped): every kernel but the two carries runs one work-item per element of a
// chunk's matrix for every chunk at once, global = [round_up(n0, G), n1, B·H·NC], local = [G, 1, 1]
// (G: ScanTuning.chunkedGroupSize; dimension 0 is the contiguous one, v or j or k, so neighbouring
// work-items read neighbouring floats); edges are guarded. The carries run one work-item per state element
// (k, v) of each pair and loop over the chunks: the only sequential part, NC steps of one multiply-add.
//
// -D options:
//   CHUNK  steps per chunk, a multiple of SUB = 16 (64, as fla; the host passes its own value and sizes
//          `bounds` with CHUNK / 16 − 1 planes).

#ifndef CHUNK
#define CHUNK 64
#endif

#define SUB 16

#define GATE_NONE 0
#define GATE_PER_HEAD 1
#define GATE_PER_KEY 2

// Sizes of every kernel, passed as the first arguments.
#define SIZES int B, int T, int H, int K, int V, int gate_kind
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

// The cumulative log gate of row i at key k (0 without a gate).
static float cumulative(global const float *gcum, int gate_kind, int row, int K, int k) {
    if (gate_kind == GATE_PER_KEY) return gcum[row * K + k];
    if (gate_kind == GATE_PER_HEAD) return gcum[row];
    return 0.0f;
}

// exp(G_ik − G_jk) for rows i ≥ j of one chunk (ri, rj their [B, T, H] indices); see the top of this file.
static float pair_decay(global const float *gcum, global const float *bounds, int gate_kind, int ri, int i, int rj, int j, int K, int k,
                        size_t plane) {
    if (gate_kind == GATE_NONE) return 1.0f;
    if (gate_kind == GATE_PER_KEY && i / SUB != j / SUB) {
        global const float *f = bounds + (size_t)(i / SUB - 1) * plane;
        return f[ri * K + k] * f[rj * K + k];
    }
    return exp(cumulative(gcum, gate_kind, ri, K, k) - cumulative(gcum, gate_kind, rj, K, k));
}

// Floats in one [B, T, H, K] buffer: one plane of `bounds`.
#define PLANE ((size_t)B * T * H * K)

// State `slot` (0 … NC) of pair p in a [B·H, NC + 1, K, V] buffer.
#define STATE(buffer, p, slot) ((buffer) + ((size_t)(p) * (CHUNKS + 1) + (slot)) * K * V)

// G, Q̄ = scale·q ⊙ exp(G), K̄ = k ⊙ exp(G_L − G) and exp(G_L) of one key of one chunk, and (per-key gates)
// the sub-chunk boundary factors `bounds` [CHUNK / 16 − 1, B, T, H, K]. global = [K, 1, B·H·NC].
kernel void scan_chunk_prepare(SIZES, float scale, global const float *q, global const float *key, global const float *gate,
                               global float *gcum, global float *bounds, global float *qbar, global float *kbar, global float *decay_total) {
    const int k = get_global_id(0), pc = get_global_id(2);
    if (k >= K) return;
    CHUNK_OF(pc);
    float g = 0.0f, boundary[CHUNK / SUB];
    for (int i = 0; i < L; i++) {
        const int row = ROW(i);
        if (gate_kind == GATE_PER_KEY) {
            g += gate[row * K + k];
            gcum[row * K + k] = g;
            if (i % SUB == 0) boundary[i / SUB] = g;
        } else if (gate_kind == GATE_PER_HEAD) {
            g += gate[row];
            if (k == 0) gcum[row] = g;
        }
        qbar[row * K + k] = scale * q[row * K + k] * exp(g);
    }
    const float last = g;
    g = 0.0f;
    for (int i = 0; i < L; i++) {
        const int row = ROW(i);
        if (gate_kind == GATE_PER_KEY) g += gate[row * K + k];
        else if (gate_kind == GATE_PER_HEAD) g += gate[row];
        kbar[row * K + k] = key[row * K + k] * exp(last - g);
        if (gate_kind == GATE_PER_KEY)
            for (int n = 1; n * SUB < L; n++) bounds[(n - 1) * PLANE + row * K + k] = exp(-fabs(g - boundary[n]));
    }
    decay_total[pc * K + k] = exp(last);
}

// The causal scores of one chunk: with `gradient` 0, A_ij = Σ_k scale·q_ik k_jk exp(G_ik − G_jk); with
// `gradient` 1, dA_ij = Σ_v dO_iv v_jv (x = dO, y = v, width V); zero for j > i and rows past L.
// global = [CHUNK, CHUNK, B·H·NC] (j, i).
kernel void scan_chunk_scores(SIZES, float scale, int gradient, global const float *x, global const float *y,
                              global const float *gcum, global const float *bounds, global float *scores) {
    const int j = get_global_id(0), i = get_global_id(1), pc = get_global_id(2);
    if (j >= CHUNK) return;
    CHUNK_OF(pc);
    global float *target = scores + ((size_t)pc * CHUNK + i) * CHUNK + j;
    if (j > i || i >= L) {
        *target = 0.0f;
        return;
    }
    const int ri = ROW(i), rj = ROW(j);
    float sum = 0.0f;
    if (gradient) {
        for (int v = 0; v < V; v++) sum += x[ri * V + v] * y[rj * V + v];
    } else if (gate_kind == GATE_PER_KEY) {
        for (int k = 0; k < K; k++) sum += x[ri * K + k] * y[rj * K + k] * pair_decay(gcum, bounds, gate_kind, ri, i, rj, j, K, k, PLANE);
        sum *= scale;
    } else {
        for (int k = 0; k < K; k++) sum += x[ri * K + k] * y[rj * K + k];
        sum *= scale * (gate_kind == GATE_PER_HEAD ? exp(gcum[ri] - gcum[rj]) : 1.0f);
    }
    *target = sum;
}

// out[k][v] = Σ_{i<L} x_ik y_iv over one chunk (x [B, T, H, K], y [B, T, H, V]; y absent: 0), into state
// slot c + shift of `states`. global = [V, K, B·H·NC].
kernel void scan_chunk_outer(SIZES, int shift, int has_y, global const float *x, global const float *y, global float *states) {
    const int v = get_global_id(0), k = get_global_id(1), pc = get_global_id(2);
    if (v >= V) return;
    CHUNK_OF(pc);
    float sum = 0.0f;
    if (has_y)
        for (int i = 0; i < L; i++) sum += x[ROW(i) * K + k] * y[ROW(i) * V + v];
    STATE(states, p_, c + shift)[k * V + v] = sum;
}

// The states at every chunk boundary: slot c + 1 holds the chunk's own contribution K̄ᵀ V on entry and
// S_{c+1} = exp(G_L) ⊙ S_c + K̄ᵀ V on exit; slot 0 is the initial state. global = [V, K, B·H].
kernel void scan_chunk_carry_forward(SIZES, int has_initial, int has_final, global const float *decay_total,
                                     global const float *initial, global float *states, global float *final_state) {
    const int v = get_global_id(0), k = get_global_id(1), p = get_global_id(2);
    if (v >= V) return;
    float s = has_initial ? initial[((size_t)p * K + k) * V + v] : 0.0f;
    STATE(states, p, 0)[k * V + v] = s;
    for (int c = 0; c < CHUNKS; c++) {
        global float *slot = STATE(states, p, c + 1) + k * V + v;
        s = decay_total[(p * CHUNKS + c) * K + k] * s + *slot;
        *slot = s;
    }
    if (has_final) final_state[((size_t)p * K + k) * V + v] = s;
}

// O = Q̄ S_c + A V. global = [V, CHUNK, B·H·NC] (v, i).
kernel void scan_chunk_output(SIZES, global const float *qbar, global const float *value, global const float *scores,
                              global const float *states, global float *output) {
    const int v = get_global_id(0), i = get_global_id(1), pc = get_global_id(2);
    if (v >= V) return;
    CHUNK_OF(pc);
    if (i >= L) return;
    const int ri = ROW(i);
    global const float *s = STATE(states, p_, c);
    global const float *a = scores + ((size_t)pc * CHUNK + i) * CHUNK;
    float sum = 0.0f;
    for (int k = 0; k < K; k++) sum += qbar[ri * K + k] * s[k * V + v];
    for (int j = 0; j <= i; j++) sum += a[j] * value[ROW(j) * V + v];
    output[ri * V + v] = sum;
}

// dL/dS at every chunk boundary, last chunk first: slot c holds Q̄ᵀ dO of chunk c on entry and
// D_c = exp(G_L) ⊙ D_{c+1} + Q̄ᵀ dO on exit; slot NC is dS_T (0 if absent), slot 0 ends as dL/dS_0.
// global = [V, K, B·H].
kernel void scan_chunk_carry_backward(SIZES, int has_final_gradient, int has_initial_gradient, global const float *decay_total,
                                      global const float *final_gradient, global float *gradients, global float *initial_gradient) {
    const int v = get_global_id(0), k = get_global_id(1), p = get_global_id(2);
    if (v >= V) return;
    float d = has_final_gradient ? final_gradient[((size_t)p * K + k) * V + v] : 0.0f;
    STATE(gradients, p, CHUNKS)[k * V + v] = d;
    for (int c = CHUNKS - 1; c >= 0; c--) {
        global float *slot = STATE(gradients, p, c) + k * V + v;
        d = decay_total[(p * CHUNKS + c) * K + k] * d + *slot;
        *slot = d;
    }
    if (has_initial_gradient) initial_gradient[((size_t)p * K + k) * V + v] = d;
}

// dq and dk of row r of a chunk, at key k, and (with `has_gate_gradient`) ∂L/∂G_rk = Q̃ ⊙ dQ̃ − K ⊙ dK in
// `dlog` [B, T, H, K]. global = [K, CHUNK, B·H·NC] (k, r).
kernel void scan_chunk_key_gradients(SIZES, float scale, int has_output_gradient, int has_gate_gradient,
                                     global const float *q, global const float *key, global const float *value,
                                     global const float *gcum, global const float *bounds, global const float *output_gradient,
                                     global const float *score_gradient,
                                     global const float *states, global const float *gradients,
                                     global float *dq, global float *dk, global float *dlog) {
    const int k = get_global_id(0), r = get_global_id(1), pc = get_global_id(2);
    if (k >= K) return;
    CHUNK_OF(pc);
    if (r >= L) return;
    const int rr = ROW(r);
    const float gr = cumulative(gcum, gate_kind, rr, K, k), gl = cumulative(gcum, gate_kind, ROW(L - 1), K, k);
    global const float *da = score_gradient + (size_t)pc * CHUNK * CHUNK;
    // dQ̃_r = exp(G_r) (S_c dO_r) + Σ_{j≤r} dA_rj k_j exp(G_r − G_j)
    float dqt = 0.0f;
    if (has_output_gradient) {
        global const float *s = STATE(states, p_, c) + k * V;
        float sum = 0.0f;
        for (int v = 0; v < V; v++) sum += s[v] * output_gradient[rr * V + v];
        dqt = exp(gr) * sum;
        for (int j = 0; j <= r; j++) {
            const int rj = ROW(j);
            dqt += da[r * CHUNK + j] * key[rj * K + k] * pair_decay(gcum, bounds, gate_kind, rr, r, rj, j, K, k, PLANE);
        }
    }
    // dK_r = exp(G_L − G_r) (D_{c+1} v_r) + Σ_{i≥r} dA_ir Q̃_i exp(G_i − G_r)
    global const float *d = STATE(gradients, p_, c + 1) + k * V;
    float sum = 0.0f;
    for (int v = 0; v < V; v++) sum += d[v] * value[rr * V + v];
    float dkt = exp(gl - gr) * sum;
    if (has_output_gradient) {
        for (int i = r; i < L; i++) {
            const int ri = ROW(i);
            dkt += da[i * CHUNK + r] * scale * q[ri * K + k] * pair_decay(gcum, bounds, gate_kind, ri, i, rr, r, K, k, PLANE);
        }
    }
    dq[rr * K + k] = scale * dqt;
    dk[rr * K + k] = dkt;
    if (has_gate_gradient) dlog[rr * K + k] = scale * q[rr * K + k] * dqt - key[rr * K + k] * dkt;
}

// dV_j = Σ_{i≥j} A_ij dO_i + K̄_jᵀ D_{c+1}. global = [V, CHUNK, B·H·NC] (v, j).
kernel void scan_chunk_value_gradient(SIZES, int has_output_gradient, global const float *kbar, global const float *output_gradient,
                                      global const float *scores, global const float *gradients, global float *dv) {
    const int v = get_global_id(0), j = get_global_id(1), pc = get_global_id(2);
    if (v >= V) return;
    CHUNK_OF(pc);
    if (j >= L) return;
    const int rj = ROW(j);
    global const float *d = STATE(gradients, p_, c + 1);
    float sum = 0.0f;
    for (int k = 0; k < K; k++) sum += kbar[rj * K + k] * d[k * V + v];
    if (has_output_gradient) {
        global const float *a = scores + (size_t)pc * CHUNK * CHUNK;
        for (int i = j; i < L; i++) sum += a[i * CHUNK + j] * output_gradient[ROW(i) * V + v];
    }
    dv[rj * V + v] = sum;
}

// The gate's gradient: the reverse cumulative sum within the chunk of ∂L/∂G (`dlog`), starting from
// rowsum(D_{c+1} ⊙ S_{c+1}), per key; a per-head gate sums over keys (one work-item per chunk).
// global = [K (per key) or 1 (per head), 1, B·H·NC].
kernel void scan_chunk_gate_gradient(SIZES, global const float *dlog, global const float *states, global const float *gradients,
                                     global float *dgate) {
    const int k0 = get_global_id(0), pc = get_global_id(2);
    const int keys = gate_kind == GATE_PER_KEY ? 1 : K;
    if (k0 >= (gate_kind == GATE_PER_KEY ? K : 1)) return;
    CHUNK_OF(pc);
    // Sums in two levels (per key, then over keys), which keeps a per-head gate's sums over K · V terms
    // accurate enough: its gradient is a difference of large terms.
    float acc = 0.0f;
    for (int k = k0; k < k0 + keys; k++) {
        global const float *s = STATE(states, p_, c + 1) + k * V, *d = STATE(gradients, p_, c + 1) + k * V;
        float row_sum = 0.0f;
        for (int v = 0; v < V; v++) row_sum += d[v] * s[v];
        acc += row_sum;
    }
    for (int i = L - 1; i >= 0; i--) {
        const int row = ROW(i);
        float step = 0.0f;
        for (int k = k0; k < k0 + keys; k++) step += dlog[row * K + k];
        acc += step;
        if (gate_kind == GATE_PER_KEY) dgate[row * K + k0] = acc;
        else dgate[row] = acc;
    }
}

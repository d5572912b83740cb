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
// boundary factors [CHUNK / 16 − 1, B, T, H, K]; in the CPU layout G, Q̄, K̄ and the boundary factors
// packed by chunk ([B·H·NC, CHUNK, ·], rows past a chunk's length unused) and packed copies of q, k, v
// and dO, the same O(T · D) per pair; A and dA
// [B·H·NC, CHUNK, CHUNK] (one chunk's square per chunk, T·CHUNK floats per pair: no [T, T] matrix);
// the states and their gradients at every chunk boundary [B·H, NC + 1, K, V], O(T / CHUNK · K · V).
//
// Two layouts of the same steps, chosen by ScanTuning.chunkedLayout (`scan.chunkedLayout`): the GPU layout
// (the kernels below up to "The CPU layout", the default on GPUs) and the CPU layout (the `_tiles`
// kernels of that section, register tiles of float16 vectors per work-item: the default on CPU devices,
// PoCL and Intel's or AMD's CPU runtimes, where the GPU layout ran 9 to 11× slower than the recurrent
// kernels). The host launches the same steps in the same order either way, with the same scratch; the
// gate's gradient and (GPU layout) the states' untransposed reads are shared.
//
// Launch geometry (GPU layout): every kernel but the two carries runs one work-item per element of a
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

// MARK: - The CPU layout
//
// CPU OpenCL devices (PoCL, Intel's and AMD's CPU runtimes) run a work-group as a loop over its
// work-items and vectorize across work-items only where the kernel body has no inner loops, so the
// kernels above (a scalar work-item per matrix element, each with a loop over K or a chunk) run scalar
// there. The `_tiles` kernels below are the same steps with the same arguments and results, shaped for
// such devices: each work-item holds a register tile of rows × 16 contiguous columns as float16 vectors
// (a row of one operand broadcast, a row slice of the other loaded as one vector, multiplied and added;
// TILE_ROWS = 4 rows for the prepare step and the key gradients, and 8 rows × 32 columns, two vectors per
// row, for the outer products, the output and the value gradient, so that each broadcast feeds two
// FMAs), or, for the score matrices (sums over K of two row-major operands), a TILE_ROWS × TILE_ROWS
// block of float16 partial sums that are added across lanes at the end. Every chunk of every pair still
// runs at once (the chunks' parts are independent); only the carries are sequential. The operands'
// rows are read packed, each chunk's CHUNK rows contiguous (see PACKED below). Rows past a chunk's
// length are clamped to its last row (computed, never stored), so the inner loops carry no guards;
// columns past K or V are zero in loaded vectors and never stored.
//   global = [column tiles, row tiles, B·H·NC] (the prepare, pack and carry kernels: [column tiles, K or 1,
//   B·H·NC or B·H]), local = [1, 16, 1] (or [1, 1, 1] with one row tile) rounded by the host; edges are guarded.
// The carries, the gate's gradient and the states' transposes (`scan_chunk_transpose`, which gives the
// backward kernels S_cᵀ and D_{c+1}ᵀ as rows) are cheap next to the products.

#define TILE_ROWS 4
#define OUTER_ROWS 8
// Rows of the tiles of the output and the value gradient (32 columns each).
#define PRODUCT_ROWS 8

#include "scan_tiles.cl"

// exp(x) of a non-positive decay exponent (clamped at 0), 1 without a gate (`gate_kind` in scope).
#define TILE_DECAY(x) (gate_kind == GATE_NONE ? (float16)(1.0f) : tile_exp(fmin((x), 0.0f)))

// PACKED: the CPU layout reads every [B, T, H, ·] operand packed: scan_chunk_prepare_tiles writes G, Q̄, K̄, the
// boundary factors and copies of q and k as [B·H·NC, CHUNK, ·], the host copies v and dO
// (scan_chunk_pack_tiles), so that a chunk's rows are contiguous (in [B, T, H, K] they lie H · K floats apart
// and a chunk's K-slices fall into a few L1 sets). ROW(i) below is row i of chunk pc in that layout (pc
// in scope); SOURCE_ROW(i) its row in [B, T, H, ·], where the results (o, dq, dk, dv, ∂L/∂G) are stored.
#undef ROW
#define ROW(i) (pc * CHUNK + (i))
#define SOURCE_ROW(i) ((b * T + t0 + (i)) * H + h)
// One plane of the packed boundary factors.
#undef PLANE
#define PLANE ((size_t)B * H * CHUNKS * CHUNK * K)

// Row i of the chunk, clamped to its last row.
#define CLAMPED_ROW(i) ROW(min((i), L - 1))

// x [B, T, H, width] packed into [B·H·NC, CHUNK, width], 16 columns of one chunk per work-item (rows past a
// chunk's length are left as they are: the tiles never read them). global = [⌈width / 16⌉, 1, B·H·NC].
kernel void scan_chunk_pack_tiles(SIZES, int width, global const float *x, global float *packed) {
    const int c0 = get_global_id(0) * 16, pc = get_global_id(2);
    if (c0 >= width || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    const int n = width - c0;
    for (int i = 0; i < L; i++) tile_store(packed + ROW(i) * width + c0, tile_load(x + SOURCE_ROW(i) * width + c0, n), n);
}

// The cumulative log gate of row `row` at keys k0 … k0 + 15 (n of them valid) as a vector.
static float16 tile_cumulative(global const float *gcum, int gate_kind, int row, int K, int k0, int n) {
    if (gate_kind == GATE_PER_KEY) return tile_load(gcum + row * K + k0, n);
    if (gate_kind == GATE_PER_HEAD) return (float16)(gcum[row]);
    return (float16)(0.0f);
}

// scan_chunk_prepare for 16 keys at once, reading q, k and the gate in [B, T, H, ·], writing packed (and
// packed copies of q and k, `packed_q` and `packed_key`, the CPU layout's q and k). global = [⌈K / 16⌉, 1, B·H·NC].
kernel void scan_chunk_prepare_tiles(SIZES, float scale, global const float *q, global const float *key, global const float *gate,
                                     global float *gcum, global float *bounds, global float *qbar, global float *kbar,
                                     global float *decay_total, global float *packed_q, global float *packed_key) {
    const int k0 = get_global_id(0) * 16, pc = get_global_id(2);
    if (k0 >= K || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    const int n = K - k0;
    float16 g = (float16)(0.0f), boundary[CHUNK / SUB];
    for (int i = 0; i < L; i++) {
        const int row = ROW(i), source = SOURCE_ROW(i);
        if (gate_kind == GATE_PER_KEY) {
            g += tile_load(gate + source * K + k0, n);
            tile_store(gcum + row * K + k0, g, n);
            if (i % SUB == 0) boundary[i / SUB] = g;
        } else if (gate_kind == GATE_PER_HEAD) {
            g += (float16)(gate[source]);
            if (k0 == 0) gcum[row] = g.s0;
        }
        const float16 qi = tile_load(q + source * K + k0, n);
        tile_store(packed_q + row * K + k0, qi, n);
        tile_store(qbar + row * K + k0, scale * qi * tile_exp(g), n);
    }
    const float16 last = g;
    g = (float16)(0.0f);
    for (int i = 0; i < L; i++) {
        const int row = ROW(i), source = SOURCE_ROW(i);
        if (gate_kind == GATE_PER_KEY) g += tile_load(gate + source * K + k0, n);
        else if (gate_kind == GATE_PER_HEAD) g += (float16)(gate[source]);
        const float16 ki = tile_load(key + source * K + k0, n);
        tile_store(packed_key + row * K + k0, ki, n);
        tile_store(kbar + row * K + k0, ki * tile_exp(last - g), n);
        // Row i meets boundary n = 16·b2 as a row of that sub-chunk (b2 = i / 16) or of an earlier one.
        if (gate_kind == GATE_PER_KEY)
            for (int b2 = max(1, i / SUB); b2 * SUB < L; b2++) tile_store(bounds + (b2 - 1) * PLANE + row * K + k0, tile_exp(-fabs(g - boundary[b2])), n);
    }
    tile_store(decay_total + pc * K + k0, tile_exp(last), n);
}

// Loads for the inner loops: whole 16-float blocks, or the last, partial one.
#define FULL_LOAD(p, n) ((float16)(vload8(0, (p)), vload8(1, (p))))
#define PART_LOAD(p, n) tile_load((p), (n))

// One 16-key step of a score tile (see scan_chunk_scores_tiles), loads by LOAD.
#define SCORE_STEP(LOAD)                                                                                   \
    {                                                                                                      \
        float16 xs[TILE_ROWS], ys[TILE_ROWS];                                                              \
        _Pragma("unroll") for (int a = 0; a < TILE_ROWS; a++) {                                            \
            xs[a] = LOAD(x + ri[a] * width + k0, n);                                                       \
            ys[a] = LOAD(y + rj[a] * width + k0, n);                                                       \
        }                                                                                                  \
        if (mode == SCORE_BOUNDS) {                                                                        \
            _Pragma("unroll") for (int a = 0; a < TILE_ROWS; a++) {                                        \
                xs[a] *= LOAD(f + ri[a] * K + k0, n);                                                      \
                ys[a] *= LOAD(f + rj[a] * K + k0, n);                                                      \
            }                                                                                              \
        } else if (mode == SCORE_REFERENCE) {                                                              \
            const float16 g0 = LOAD(gcum + ri[0] * K + k0, n);                                             \
            _Pragma("unroll") for (int a = 0; a < TILE_ROWS; a++) {                                        \
                xs[a] *= tile_exp(fmin(LOAD(gcum + ri[a] * K + k0, n) - g0, 0.0f));                        \
                ys[a] *= tile_exp(fmin(g0 - LOAD(gcum + rj[a] * K + k0, n), 0.0f));                        \
            }                                                                                              \
        }                                                                                                  \
        if (mode == SCORE_PAIRS) {                                                                         \
            float16 gi[TILE_ROWS], gj[TILE_ROWS];                                                          \
            _Pragma("unroll") for (int a = 0; a < TILE_ROWS; a++) {                                        \
                gi[a] = LOAD(gcum + ri[a] * K + k0, n);                                                    \
                gj[a] = LOAD(gcum + rj[a] * K + k0, n);                                                    \
            }                                                                                              \
            _Pragma("unroll") for (int a = 0; a < TILE_ROWS; a++)                                          \
                _Pragma("unroll") for (int b2 = 0; b2 <= a; b2++)                                          \
                    acc[a][b2] = fma(xs[a] * ys[b2], tile_exp(fmin(gi[a] - gj[b2], 0.0f)), acc[a][b2]);    \
        } else {                                                                                           \
            _Pragma("unroll") for (int a = 0; a < TILE_ROWS; a++)                                          \
                _Pragma("unroll") for (int b2 = 0; b2 < TILE_ROWS; b2++) acc[a][b2] = fma(xs[a], ys[b2], acc[a][b2]); \
        }                                                                                                  \
    }

// How a score tile forms its per-key decays exp(G_ik − G_jk): without (no gate, a per-head gate, or dA),
// through the boundary factors of i's sub-chunk (j in an earlier one), through the tile's first row i0
// (the same sub-chunk, every j < i0 ≤ i: exp(G_i − G_i0) · exp(G_i0 − G_j), both ≤ 1), or one exp per
// term (the tiles on the diagonal).
#define SCORE_PLAIN 0
#define SCORE_BOUNDS 1
#define SCORE_REFERENCE 2
#define SCORE_PAIRS 3

// scan_chunk_scores for a TILE_ROWS × TILE_ROWS block (rows i0 …, columns j0 …). global = [CHUNK / TILE_ROWS,
// CHUNK / TILE_ROWS, B·H·NC] (j tiles, i tiles).
kernel void scan_chunk_scores_tiles(SIZES, float scale, int gradient, global const float *x, global const float *y,
                                    global const float *gcum, global const float *bounds, global float *scores) {
    const int j0 = get_global_id(0) * TILE_ROWS, i0 = get_global_id(1) * TILE_ROWS, pc = get_global_id(2);
    if (j0 >= CHUNK || i0 >= CHUNK || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    const int width = gradient ? V : K;
    const int I = i0 / SUB, J = j0 / SUB;
    const int mode = gradient || gate_kind != GATE_PER_KEY ? SCORE_PLAIN : I > J ? SCORE_BOUNDS : j0 < i0 ? SCORE_REFERENCE : SCORE_PAIRS;
    float16 acc[TILE_ROWS][TILE_ROWS];
#pragma unroll
    for (int a = 0; a < TILE_ROWS; a++)
#pragma unroll
        for (int b2 = 0; b2 < TILE_ROWS; b2++) acc[a][b2] = (float16)(0.0f);
    int ri[TILE_ROWS], rj[TILE_ROWS];
#pragma unroll
    for (int a = 0; a < TILE_ROWS; a++) {
        ri[a] = CLAMPED_ROW(i0 + a);
        rj[a] = CLAMPED_ROW(j0 + a);
    }
    if (j0 <= i0 && i0 < L) {
        global const float *f = bounds + (size_t)max(I - 1, 0) * PLANE;
        int k0 = 0;
        for (; k0 + 16 <= width; k0 += 16) {
            const int n = 16;
            SCORE_STEP(FULL_LOAD)
        }
        if (k0 < width) {
            const int n = width - k0;
            SCORE_STEP(PART_LOAD)
        }
    }
    float sums[16];
    vstore16(tile_sums4x4(&acc[0][0]), 0, sums);
    global float *target = scores + ((size_t)pc * CHUNK + i0) * CHUNK + j0;
#pragma unroll
    for (int a = 0; a < TILE_ROWS; a++)
#pragma unroll
        for (int b2 = 0; b2 < TILE_ROWS; b2++) {
            const int i = i0 + a, j = j0 + b2;
            float value = 0.0f;
            if (j <= i && i < L) {
                value = sums[a * TILE_ROWS + b2];
                if (!gradient) value *= scale * (gate_kind == GATE_PER_HEAD ? exp(gcum[ri[a]] - gcum[rj[b2]]) : 1.0f);
            }
            target[a * CHUNK + b2] = value;
        }
}

// scan_chunk_outer for OUTER_ROWS keys × 32 values (two float16 per row). global = [⌈V / 32⌉, ⌈K / OUTER_ROWS⌉, B·H·NC].
kernel void scan_chunk_outer_tiles(SIZES, int shift, int has_y, global const float *x, global const float *y, global float *states) {
    const int v0 = get_global_id(0) * 32, k0 = get_global_id(1) * OUTER_ROWS, pc = get_global_id(2);
    if (v0 >= V || k0 >= K || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    const int n = V - v0, rows = min(OUTER_ROWS, K - k0);
    int kk[OUTER_ROWS];
    #pragma unroll
    for (int r = 0; r < OUTER_ROWS; r++) kk[r] = min(k0 + r, K - 1);
    float16 acc[OUTER_ROWS][2];
    #pragma unroll
    for (int r = 0; r < OUTER_ROWS; r++) acc[r][0] = acc[r][1] = (float16)(0.0f);
    if (has_y)
        for (int i = 0; i < L; i++) {
            global const float *yr = y + ROW(i) * V + v0;
            const float16 y_lo = tile_load(yr, n), y_hi = tile_load(yr + 16, n - 16);
            global const float *xr = x + ROW(i) * K;
            #pragma unroll
            for (int r = 0; r < OUTER_ROWS; r++) {
                const float16 xv = (float16)(xr[kk[r]]);
                acc[r][0] = fma(xv, y_lo, acc[r][0]);
                acc[r][1] = fma(xv, y_hi, acc[r][1]);
            }
        }
    global float *out = STATE(states, p_, c + shift);
    for (int r = 0; r < rows; r++) {
        tile_store(out + (k0 + r) * V + v0, acc[r][0], n);
        tile_store(out + (k0 + r) * V + v0 + 16, acc[r][1], n - 16);
    }
}

// scan_chunk_carry_forward for 16 values of one key row. global = [⌈V / 16⌉, K, B·H].
kernel void scan_chunk_carry_forward_tiles(SIZES, int has_initial, int has_final, global const float *decay_total,
                                           global const float *initial, global float *states, global float *final_state) {
    const int v0 = get_global_id(0) * 16, k = get_global_id(1), p = get_global_id(2);
    if (v0 >= V || k >= K || p >= B * H) return;
    const int n = V - v0;
    float16 s = has_initial ? tile_load(initial + ((size_t)p * K + k) * V + v0, n) : (float16)(0.0f);
    tile_store(STATE(states, p, 0) + k * V + v0, s, n);
    for (int c = 0; c < CHUNKS; c++) {
        global float *slot = STATE(states, p, c + 1) + k * V + v0;
        s = fma((float16)(decay_total[(p * CHUNKS + c) * K + k]), s, tile_load(slot, n));
        tile_store(slot, s, n);
    }
    if (has_final) tile_store(final_state + ((size_t)p * K + k) * V + v0, s, n);
}

// scan_chunk_carry_backward for 16 values of one key row. global = [⌈V / 16⌉, K, B·H].
kernel void scan_chunk_carry_backward_tiles(SIZES, int has_final_gradient, int has_initial_gradient, global const float *decay_total,
                                            global const float *final_gradient, global float *gradients, global float *initial_gradient) {
    const int v0 = get_global_id(0) * 16, k = get_global_id(1), p = get_global_id(2);
    if (v0 >= V || k >= K || p >= B * H) return;
    const int n = V - v0;
    float16 d = has_final_gradient ? tile_load(final_gradient + ((size_t)p * K + k) * V + v0, n) : (float16)(0.0f);
    tile_store(STATE(gradients, p, CHUNKS) + k * V + v0, d, n);
    for (int c = CHUNKS - 1; c >= 0; c--) {
        global float *slot = STATE(gradients, p, c) + k * V + v0;
        d = fma((float16)(decay_total[(p * CHUNKS + c) * K + k]), d, tile_load(slot, n));
        tile_store(slot, d, n);
    }
    if (has_initial_gradient) tile_store(initial_gradient + ((size_t)p * K + k) * V + v0, d, n);
}

// The states of a [B·H, NC + 1, K, V] buffer transposed into [B·H, NC + 1, V, K]. global = [V, 1, B·H·(NC + 1)].
kernel void scan_chunk_transpose(SIZES, global const float *states, global float *transposed) {
    const int v = get_global_id(0), slot = get_global_id(2);
    if (v >= V || slot >= B * H * (CHUNKS + 1)) return;
    global const float *s = states + (size_t)slot * K * V;
    global float *t = transposed + (size_t)slot * K * V + (size_t)v * K;
    for (int k = 0; k < K; k++) t[k] = s[k * V + v];
}

// scan_chunk_output for PRODUCT_ROWS rows × 32 values (two float16 per row). global = [⌈V / 32⌉,
// CHUNK / PRODUCT_ROWS, B·H·NC].
kernel void scan_chunk_output_tiles(SIZES, global const float *qbar, global const float *value, global const float *scores,
                                    global const float *states, global float *output) {
    const int v0 = get_global_id(0) * 32, i0 = get_global_id(1) * PRODUCT_ROWS, pc = get_global_id(2);
    if (v0 >= V || i0 >= CHUNK || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    if (i0 >= L) return;
    const int n = V - v0;
    int ri[PRODUCT_ROWS];
    #pragma unroll
    for (int r = 0; r < PRODUCT_ROWS; r++) ri[r] = CLAMPED_ROW(i0 + r);
    float16 acc[PRODUCT_ROWS][2];
    #pragma unroll
    for (int r = 0; r < PRODUCT_ROWS; r++) acc[r][0] = acc[r][1] = (float16)(0.0f);
    global const float *s = STATE(states, p_, c) + v0;
    for (int k = 0; k < K; k++) {
        const float16 s_lo = tile_load(s + k * V, n), s_hi = tile_load(s + k * V + 16, n - 16);
        #pragma unroll
        for (int r = 0; r < PRODUCT_ROWS; r++) {
            const float16 qv = (float16)(qbar[ri[r] * K + k]);
            acc[r][0] = fma(qv, s_lo, acc[r][0]);
            acc[r][1] = fma(qv, s_hi, acc[r][1]);
        }
    }
    // A is zero above the diagonal and on rows past L.
    global const float *a = scores + ((size_t)pc * CHUNK + i0) * CHUNK;
    const int last = min(i0 + PRODUCT_ROWS, L);
    for (int j = 0; j < last; j++) {
        global const float *vr = value + ROW(j) * V + v0;
        const float16 v_lo = tile_load(vr, n), v_hi = tile_load(vr + 16, n - 16);
        #pragma unroll
        for (int r = 0; r < PRODUCT_ROWS; r++) {
            const float16 av = (float16)(a[r * CHUNK + j]);
            acc[r][0] = fma(av, v_lo, acc[r][0]);
            acc[r][1] = fma(av, v_hi, acc[r][1]);
        }
    }
    for (int r = 0; r < PRODUCT_ROWS && i0 + r < L; r++) {
        tile_store(output + SOURCE_ROW(i0 + r) * V + v0, acc[r][0], n);
        tile_store(output + SOURCE_ROW(i0 + r) * V + v0 + 16, acc[r][1], n - 16);
    }
}

// scan_chunk_value_gradient for PRODUCT_ROWS rows × 32 values (two float16 per row), with D_{c+1} as stored
// ([K, V]). global = [⌈V / 32⌉, CHUNK / PRODUCT_ROWS, B·H·NC].
kernel void scan_chunk_value_gradient_tiles(SIZES, int has_output_gradient, global const float *kbar, global const float *output_gradient,
                                            global const float *scores, global const float *gradients, global float *dv) {
    const int v0 = get_global_id(0) * 32, j0 = get_global_id(1) * PRODUCT_ROWS, pc = get_global_id(2);
    if (v0 >= V || j0 >= CHUNK || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    if (j0 >= L) return;
    const int n = V - v0;
    int rj[PRODUCT_ROWS];
    #pragma unroll
    for (int r = 0; r < PRODUCT_ROWS; r++) rj[r] = CLAMPED_ROW(j0 + r);
    float16 acc[PRODUCT_ROWS][2];
    #pragma unroll
    for (int r = 0; r < PRODUCT_ROWS; r++) acc[r][0] = acc[r][1] = (float16)(0.0f);
    global const float *d = STATE(gradients, p_, c + 1) + v0;
    for (int k = 0; k < K; k++) {
        const float16 d_lo = tile_load(d + k * V, n), d_hi = tile_load(d + k * V + 16, n - 16);
        #pragma unroll
        for (int r = 0; r < PRODUCT_ROWS; r++) {
            const float16 kv = (float16)(kbar[rj[r] * K + k]);
            acc[r][0] = fma(kv, d_lo, acc[r][0]);
            acc[r][1] = fma(kv, d_hi, acc[r][1]);
        }
    }
    if (has_output_gradient) {
        // A_ij for i ≥ j0: zero where j > i.
        global const float *a = scores + (size_t)pc * CHUNK * CHUNK + j0;
        for (int i = j0; i < L; i++) {
            global const float *orow = output_gradient + ROW(i) * V + v0;
            const float16 o_lo = tile_load(orow, n), o_hi = tile_load(orow + 16, n - 16);
            #pragma unroll
            for (int r = 0; r < PRODUCT_ROWS; r++) {
                const float16 av = (float16)(a[i * CHUNK + r]);
                acc[r][0] = fma(av, o_lo, acc[r][0]);
                acc[r][1] = fma(av, o_hi, acc[r][1]);
            }
        }
    }
    for (int r = 0; r < PRODUCT_ROWS && j0 + r < L; r++) {
        tile_store(dv + SOURCE_ROW(j0 + r) * V + v0, acc[r][0], n);
        tile_store(dv + SOURCE_ROW(j0 + r) * V + v0 + 16, acc[r][1], n - 16);
    }
}

// scan_chunk_key_gradients for TILE_ROWS rows × 16 keys, with the states S_c and D_{c+1} transposed
// (`states_t`, `gradients_t`: [B·H, NC + 1, V, K], from scan_chunk_transpose). The rows of a tile lie in
// one sub-chunk I; per-key decays to rows of earlier sub-chunks use the boundary factors of I (dq), to
// rows of later sub-chunks I′ those of I′ (dk), and within I one exp each. global = [⌈K / 16⌉,
// CHUNK / TILE_ROWS, B·H·NC].
kernel void scan_chunk_key_gradients_tiles(SIZES, float scale, int has_output_gradient, int has_gate_gradient,
                                           global const float *q, global const float *key, global const float *value,
                                           global const float *gcum, global const float *bounds, global const float *output_gradient,
                                           global const float *score_gradient,
                                           global const float *states_t, global const float *gradients_t,
                                           global float *dq, global float *dk, global float *dlog) {
    const int k0 = get_global_id(0) * 16, r0 = get_global_id(1) * TILE_ROWS, pc = get_global_id(2);
    if (k0 >= K || r0 >= CHUNK || pc >= B * H * CHUNKS) return;
    CHUNK_OF(pc);
    if (r0 >= L) return;
    const int n = K - k0, I = r0 / SUB;
    const int per_key = gate_kind == GATE_PER_KEY;
    int rr[TILE_ROWS];
    float16 gr[TILE_ROWS], dqt[TILE_ROWS], dkt[TILE_ROWS];
    #pragma unroll
    for (int r = 0; r < TILE_ROWS; r++) {
        rr[r] = CLAMPED_ROW(r0 + r);
        gr[r] = tile_cumulative(gcum, gate_kind, rr[r], K, k0, n);
        dqt[r] = (float16)(0.0f);
        dkt[r] = (float16)(0.0f);
    }
    global const float *da = score_gradient + (size_t)pc * CHUNK * CHUNK;
    if (has_output_gradient) {
        // exp(G_r) ⊙ (S_c dO_r)
        global const float *st = STATE(states_t, p_, c) + k0;
        for (int v = 0; v < V; v++) {
            const float16 s = tile_load(st + v * K, n);
            #pragma unroll
            for (int r = 0; r < TILE_ROWS; r++) dqt[r] = fma((float16)(output_gradient[rr[r] * V + v]), s, dqt[r]);
        }
        #pragma unroll
        for (int r = 0; r < TILE_ROWS; r++) dqt[r] *= tile_exp(gr[r]);
        // + Σ_{j≤r} dA_rj k_j ⊙ exp(G_r − G_j): rows of earlier sub-chunks through the boundary factors,
        // earlier rows of this sub-chunk through the tile's first row (exp(G_r − G_r0) · exp(G_r0 − G_j)),
        // the tile's own rows one exp per term.
        int j = 0;
        if (per_key && I > 0) {
            global const float *f = bounds + (size_t)(I - 1) * PLANE;
            float16 off[TILE_ROWS];
#pragma unroll
            for (int r = 0; r < TILE_ROWS; r++) off[r] = (float16)(0.0f);
            for (; j < I * SUB; j++) {
                const int row = ROW(j);
                const float16 kf = tile_load(key + row * K + k0, n) * tile_load(f + row * K + k0, n);
#pragma unroll
                for (int r = 0; r < TILE_ROWS; r++) off[r] = fma((float16)(da[(r0 + r) * CHUNK + j]), kf, off[r]);
            }
#pragma unroll
            for (int r = 0; r < TILE_ROWS; r++) dqt[r] = fma(off[r], tile_load(f + rr[r] * K + k0, n), dqt[r]);
        }
        if (j < r0) {
            float16 near[TILE_ROWS];
#pragma unroll
            for (int r = 0; r < TILE_ROWS; r++) near[r] = (float16)(0.0f);
            for (; j < r0; j++) {
                const int row = ROW(j);
                const float16 kj = tile_load(key + row * K + k0, n) * TILE_DECAY(gr[0] - tile_cumulative(gcum, gate_kind, row, K, k0, n));
#pragma unroll
                for (int r = 0; r < TILE_ROWS; r++) near[r] = fma((float16)(da[(r0 + r) * CHUNK + j]), kj, near[r]);
            }
#pragma unroll
            for (int r = 0; r < TILE_ROWS; r++) dqt[r] = fma(near[r], TILE_DECAY(gr[r] - gr[0]), dqt[r]);
        }
        const int last = min(r0 + TILE_ROWS, L);
        for (; j < last; j++) {
            const int row = ROW(j);
            const float16 kj = tile_load(key + row * K + k0, n);
            const float16 gj = tile_cumulative(gcum, gate_kind, row, K, k0, n);
#pragma unroll
            for (int r = 0; r < TILE_ROWS; r++)
                if (j <= r0 + r) dqt[r] = fma((float16)(da[(r0 + r) * CHUNK + j]) * TILE_DECAY(gr[r] - gj), kj, dqt[r]);
        }
    }
    // exp(G_L − G_r) ⊙ (D_{c+1} v_r)
    const float16 gl = tile_cumulative(gcum, gate_kind, ROW(L - 1), K, k0, n);
    global const float *dt = STATE(gradients_t, p_, c + 1) + k0;
    for (int v = 0; v < V; v++) {
        const float16 d = tile_load(dt + v * K, n);
#pragma unroll
        for (int r = 0; r < TILE_ROWS; r++) dkt[r] = fma((float16)(value[rr[r] * V + v]), d, dkt[r]);
    }
#pragma unroll
    for (int r = 0; r < TILE_ROWS; r++) dkt[r] *= tile_exp(gl - gr[r]);
    if (has_output_gradient) {
        // + Σ_{i≥r} dA_ir Q̃_i ⊙ exp(G_i − G_r): the tile's own rows one exp per term, later rows of its
        // sub-chunk (all of the chunk without per-key gates) through the tile's last row r3
        // (exp(G_i − G_r3) · exp(G_r3 − G_r)), later sub-chunks through their boundary factors.
        const int own_end = per_key ? min((I + 1) * SUB, L) : L;
        const int mid = min(r0 + TILE_ROWS, own_end);
        for (int i = r0; i < mid; i++) {
            const int row = ROW(i);
            const float16 qi = scale * tile_load(q + row * K + k0, n);
            const float16 gi = tile_cumulative(gcum, gate_kind, row, K, k0, n);
#pragma unroll
            for (int r = 0; r < TILE_ROWS; r++)
                if (i >= r0 + r) dkt[r] = fma((float16)(da[i * CHUNK + r0 + r]) * TILE_DECAY(gi - gr[r]), qi, dkt[r]);
        }
        if (mid < own_end) {
            // r0 + TILE_ROWS − 1 < own_end ≤ L: the last row is a real one.
            const float16 g3 = gr[TILE_ROWS - 1];
            float16 near[TILE_ROWS];
#pragma unroll
            for (int r = 0; r < TILE_ROWS; r++) near[r] = (float16)(0.0f);
            for (int i = mid; i < own_end; i++) {
                const int row = ROW(i);
                const float16 qi = tile_load(q + row * K + k0, n) * TILE_DECAY(tile_cumulative(gcum, gate_kind, row, K, k0, n) - g3);
#pragma unroll
                for (int r = 0; r < TILE_ROWS; r++) near[r] = fma((float16)(da[i * CHUNK + r0 + r]), qi, near[r]);
            }
#pragma unroll
            for (int r = 0; r < TILE_ROWS; r++) dkt[r] = fma(scale * near[r], TILE_DECAY(g3 - gr[r]), dkt[r]);
        }
        if (per_key)
            for (int block = I + 1; block * SUB < L; block++) {
                global const float *f = bounds + (size_t)(block - 1) * PLANE;
                float16 acc[TILE_ROWS];
#pragma unroll
                for (int r = 0; r < TILE_ROWS; r++) acc[r] = (float16)(0.0f);
                const int end = min((block + 1) * SUB, L);
                for (int i = block * SUB; i < end; i++) {
                    const int row = ROW(i);
                    const float16 qf = tile_load(q + row * K + k0, n) * tile_load(f + row * K + k0, n);
#pragma unroll
                    for (int r = 0; r < TILE_ROWS; r++) acc[r] = fma((float16)(da[i * CHUNK + r0 + r]), qf, acc[r]);
                }
#pragma unroll
                for (int r = 0; r < TILE_ROWS; r++) dkt[r] = fma(scale * acc[r], tile_load(f + rr[r] * K + k0, n), dkt[r]);
            }
    }
    for (int r = 0; r < TILE_ROWS && r0 + r < L; r++) {
        const int row = rr[r], source = SOURCE_ROW(r0 + r);
        tile_store(dq + source * K + k0, scale * dqt[r], n);
        tile_store(dk + source * K + k0, dkt[r], n);
        if (has_gate_gradient)
            tile_store(dlog + source * K + k0, scale * tile_load(q + row * K + k0, n) * dqt[r] - tile_load(key + row * K + k0, n) * dkt[r], n);
    }
}

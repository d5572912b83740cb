// The scan family (Sources/Backend/Families/Scan.swift): causal linear attention, gated linear attention
// (GLA) and the (gated) delta rule, forward and backward, as recurrences over time (the recurrent form).
// Kernels: linear_attention_scan_forward/backward, delta_rule_scan_forward/backward and scan_sum_tiles.
//
// Math (per batch b and head h; the state S is KEY_DIM x V; scale multiplies q; t = 1 ... length):
//   linear / GLA:  S_t = diag(d_t) S_{t-1} + k_t v_t^T,           o_t = S_t^T (scale q_t)
//   delta rule:    S' = d_t S_{t-1},  u_t = beta_t (v_t - S'^T k_t),  S_t = S' + k_t u_t^T,  o_t = S_t^T (scale q_t)
// where d_t = exp(g_t) is the decay of the log-space gate g_t <= 0: per key (GLA), per head, or 1. The
// host exponentiates the gate once ("decay" below holds exp(g) in the gate's layout).
//
// Layouts (row-major, float32): q, k, per-key decay [B, T, H, KEY_DIM]; v, o [B, T, H, V]; beta and
// per-head decay [B, T, H]; states [B, H, KEY_DIM, V]. A (b, h) pair is `pair = b * H + h`.
//
// Launch geometry: one work-item per (pair, tile of VW value columns); the tile's KEY_DIM x VW slice
// of the state lives in private memory (registers on GPUs) for the whole sequence. Columns of S evolve
// independently in every scan here, so work-items never communicate: no barriers, no local memory.
//   global = [round_up(tiles, G), B * H], local = [G, 1], tiles = ceil(V / VW); edges are guarded.
//
// Backward passes: a first sweep (the forward kernel with `chunk` > 0) stores the state at the start of
// every chunk of `chunk` steps in `checkpoints` [B * H, chunks, KEY_DIM, V]. The backward kernel then
// visits the chunks last to first: it recomputes the chunk's states from its checkpoint into `scratch`
// [B * H, chunk, KEY_DIM, V] (each work-item its own columns), computing dq on the way, then walks the
// chunk backwards carrying G = dL/dS_t in private memory. The host picks chunk = max(ScanTuning's
// chunkLength, sqrt(T)), so checkpoints plus scratch hold about 2 sqrt(T) states per (b, h); every other
// buffer is linear in T, and no [T, T] matrix exists anywhere. dO and dS_T are optional (a result that
// did not reach the loss): has_output_gradient / has_final_gradient = 0 reads them as zero.
//
// Gradients that sum over value columns (dq, dk, the gate's and beta's) are written per tile into
// "partial" buffers [tiles, ...]; `scan_sum_tiles` adds the tiles up (with one tile the host passes the
// final buffers directly). The gate gradient is exact per step: dg_t = d_t * rowsum(dS' (.) S_{t-1})
// (G for GLA), with no reverse cumulative sum and never a division by a decay, so strong gates
// (decays that underflow to 0) stay accurate. (The equivalent reverse cumulative sum of
// q (.) dq - k (.) dk plus rowsum(dS_T (.) S_T) was measured at 1.1e-5 relative error in float32 at
// T = 1000 with decays down to e^-30, against 1.1e-7 for the direct form.)
//
// The two forms: these kernels are the recurrent form, the one decoding needs. Every scan also has a
// chunked form (scan_chunked.cl for linear attention and GLA, scan_chunked_delta.cl for the delta rule;
// chunks of 64 as small matrix products, every chunk at once, in a GPU or a CPU layout), chosen per shape
// by ScanTuning.form: GPUs take it from T = 64 (by reasoning, not measured on a GPU yet); CPU devices
// from T = 64 for states of 128 x 128 or more: on PoCL the chunked kernels' CPU layout ran at 1.3 to 2.0x
// these kernels' speed there (GLA and the delta rule, D = 128), but at 0.65 to 0.93x for the delta rule
// at D = 64 (the GPU layout: 0.06 to 0.11x; bench/RESULTS.md). Kernels that rely on PoCL vectorizing
// across work-items are slow; here each work-item's float16 tile is already a vector. VW = 16 measured
// best on PoCL (VW = 8: 1.5x slower, VW = 4: 3x).
//
// -D options (chosen per device type in OpenCLTuning.scan; see ScanTuning in OpenCLBackend+Scan.swift):
//   KEY_DIM  the key dimension K (required: private arrays need a compile-time size).
//   VW       value columns per work-item: 1, 2, 4, 8 or 16 (float, float2 ... float16). CPU devices
//            (PoCL) use 16: one work-item walks a wide vector per key row, so the state tile is 16 AVX
//            lanes wide and the work-group size is 1. GPUs use a narrow tile and groups of 16+.

#ifndef KEY_DIM
#error "KEY_DIM must be defined"
#endif
#ifndef VW
#define VW 8
#endif

#define PASTE(a, b) a##b
#define EXPAND_PASTE(a, b) PASTE(a, b)

#if VW == 1
typedef float floatv;
#define VLOAD(p) (*(p))
#define VSTORE(x, p) (*(p) = (x))
#elif VW == 16
// Two 8-wide halves: a float16 passed to or returned from a built-in draws clang's "changes the ABI"
// warning on AVX2 hosts (PoCL); the arithmetic on float16 values is unaffected.
typedef float16 floatv;
#define VLOAD(p) ((float16)(vload8(0, p), vload8(1, p)))
#define VSTORE(x, p) (vstore8((x).lo, 0, p), vstore8((x).hi, 1, p))
#else
typedef EXPAND_PASTE(float, VW) floatv;
#define VLOAD(p) EXPAND_PASTE(vload, VW)(0, p)
#define VSTORE(x, p) EXPAND_PASTE(vstore, VW)(x, 0, p)
#endif

#define GATE_NONE 0
#define GATE_PER_HEAD 1
#define GATE_PER_KEY 2

// The helpers that take or return a floatv are macros, for the same reason: no float16 crosses a
// function boundary.

// The sum of a vector's lanes (a tree of half-width additions).
#define SUM2(a) ((a).s0 + (a).s1)
#define SUM4(a) SUM2((a).lo + (a).hi)
#define SUM8(a) SUM4((a).lo + (a).hi)
#define SUM16(a) SUM8((a).lo + (a).hi)
#if VW == 1
#define LANE_SUM(a) (a)
#else
#define LANE_SUM(a) EXPAND_PASTE(SUM, VW)(a)
#endif

// target = the n (<= VW) consecutive floats at p, the lanes past n zero.
#define LOAD_COLUMNS(target, p, n)                                          \
    do {                                                                    \
        if ((n) == VW) {                                                    \
            target = VLOAD(p);                                              \
        } else {                                                            \
            float lanes_[VW];                                               \
            for (int i_ = 0; i_ < VW; i_++) lanes_[i_] = i_ < (n) ? (p)[i_] : 0.0f; \
            target = VLOAD(lanes_);                                         \
        }                                                                   \
    } while (0)

// target = the n columns at p when `present`, else zero (a gradient that did not reach the loss).
#define LOAD_COLUMNS_OR_ZERO(target, present, p, n)                         \
    do {                                                                    \
        if (present) LOAD_COLUMNS(target, p, n);                            \
        else target = (floatv)(0.0f);                                       \
    } while (0)

// Stores the first n (<= VW) lanes of x at p.
#define STORE_COLUMNS(p, x, n)                                              \
    do {                                                                    \
        if ((n) == VW) {                                                    \
            VSTORE(x, p);                                                   \
        } else {                                                            \
            float lanes_[VW];                                               \
            VSTORE(x, lanes_);                                              \
            for (int i_ = 0; i_ < (n); i_++) (p)[i_] = lanes_[i_];          \
        }                                                                   \
    } while (0)

// A work-item's columns of a [KEY_DIM, V] state at `base` into private rows (zero without a source).
inline void load_state(floatv* state, __global const float* base, int present, int value_dim, int n) {
    for (int i = 0; i < KEY_DIM; i++) {
        if (present) LOAD_COLUMNS(state[i], base + (long)i * value_dim, n);
        else state[i] = (floatv)(0.0f);
    }
}

inline void store_state(const floatv* state, __global float* base, int value_dim, int n) {
    for (int i = 0; i < KEY_DIM; i++) STORE_COLUMNS(base + (long)i * value_dim, state[i], n);
}

// The indices every kernel starts from; returns 0 for work-items past the edge.
#define SCAN_BEGIN                                                  \
    int tile = get_global_id(0);                                    \
    int pair = get_global_id(1);                                    \
    int tiles = (value_dim + VW - 1) / VW;                          \
    if (tile >= tiles || pair >= batch * heads) return;             \
    int b = pair / heads;                                           \
    int h = pair - b * heads;                                       \
    int column = tile * VW;                                         \
    int n = min(VW, value_dim - column);                            \
    long state_size = (long)KEY_DIM * value_dim;

// What both forward kernels start from: S = S_0 (zero without an initial state), and the number of
// checkpoints when the kernel is the first sweep of a backward pass (chunk > 0).
#define FORWARD_BEGIN                                                                               \
    SCAN_BEGIN                                                                                      \
    floatv S[KEY_DIM];                                                                              \
    load_state(S, initial_state + pair * state_size + column, has_initial, value_dim, n);           \
    int chunks = chunk > 0 ? (length + chunk - 1) / chunk : 0;

// Before step t of a first sweep: the state at the start of each chunk goes to `checkpoints`.
#define CHECKPOINT(t)                                                                               \
    if (chunk > 0 && (t) % chunk == 0)                                                              \
        store_state(S, checkpoints + ((long)pair * chunks + (t) / chunk) * state_size + column, value_dim, n);

// What both backward kernels start from: the sizes of the [B, T, H(, K)] partial sums, this work-item's
// chunk states in `scratch`, and G = dS_T (zero without a final-state gradient). S is the running state.
#define BACKWARD_BEGIN                                                                              \
    SCAN_BEGIN                                                                                      \
    long key_count = (long)batch * length * heads * KEY_DIM;                                        \
    long head_count = (long)batch * length * heads;                                                 \
    __global float* slots = scratch + (long)pair * chunk * state_size + column;                     \
    int chunks = (length + chunk - 1) / chunk;                                                      \
    floatv G[KEY_DIM];                                                                              \
    floatv S[KEY_DIM];                                                                              \
    load_state(G, final_gradient + pair * state_size + column, has_final_gradient, value_dim, n);

// Chunk c of a backward pass: its first step, its length, and S = its checkpoint.
#define CHUNK_BEGIN(c)                                                                              \
    int start = (c) * chunk;                                                                        \
    int steps = min(chunk, length - start);                                                         \
    load_state(S, checkpoints + ((long)pair * chunks + (c)) * state_size + column, 1, value_dim, n);

// Offsets of step t: in q/k rows, in v/o rows (at this work-item's columns), and in [B, T, H].
#define STEP_OFFSETS(t)                                             \
    long head_step = ((long)b * length + (t)) * heads + h;          \
    long key_row = head_step * KEY_DIM;                             \
    long value_row = head_step * value_dim + column;

// The forward scan of (gated) linear attention. Writes o when has_output, S_T when has_final, and the
// chunk-start states into `checkpoints` when chunk > 0 (the first sweep of the backward pass).
__kernel void linear_attention_scan_forward(int batch, int length, int heads, int value_dim, int gate_kind, float scale,
                                  int has_initial, int has_output, int has_final, int chunk,
                                  __global const float* q, __global const float* k, __global const float* v,
                                  __global const float* decay, __global const float* initial_state,
                                  __global float* o, __global float* final_state, __global float* checkpoints) {
    FORWARD_BEGIN
    for (int t = 0; t < length; t++) {
        STEP_OFFSETS(t)
        CHECKPOINT(t)
        floatv value;
        LOAD_COLUMNS(value, v + value_row, n);
        floatv out = (floatv)(0.0f);
        if (gate_kind == GATE_PER_KEY) {
            for (int i = 0; i < KEY_DIM; i++) {
                S[i] = S[i] * decay[key_row + i] + k[key_row + i] * value;
                out += S[i] * (scale * q[key_row + i]);
            }
        } else {
            float d = gate_kind == GATE_PER_HEAD ? decay[head_step] : 1.0f;
            for (int i = 0; i < KEY_DIM; i++) {
                S[i] = S[i] * d + k[key_row + i] * value;
                out += S[i] * (scale * q[key_row + i]);
            }
        }
        if (has_output) STORE_COLUMNS(o + value_row, out, n);
    }
    if (has_final) store_state(S, final_state + pair * state_size + column, value_dim, n);
}

// The backward scan of (gated) linear attention (see the top of this file). With G = dL/dS_t:
// G += scale q_t dO_t^T; dk_t = G v_t; dv_t = G^T k_t; dg_t = d_t (.) rowsum(G (.) S_{t-1}); G = diag(d_t) G.
// dq_t = scale S_t dO_t comes from the recompute sweep. Partial (per-tile) outputs: dq, dk [tiles, B, T, H, K];
// dg [tiles, B, T, H, K] (per key) or [tiles, B, T, H] (per head).
__kernel void linear_attention_scan_backward(int batch, int length, int heads, int value_dim, int gate_kind, float scale,
                                   int has_output_gradient, int has_final_gradient, int has_initial_gradient,
                                   int want_gate_gradient, int chunk,
                                   __global const float* q, __global const float* k, __global const float* v,
                                   __global const float* decay, __global const float* output_gradient,
                                   __global const float* final_gradient, __global const float* checkpoints,
                                   __global float* scratch, __global float* query_partial, __global float* key_partial,
                                   __global float* value_gradient, __global float* gate_partial,
                                   __global float* initial_gradient) {
    BACKWARD_BEGIN
    for (int c = chunks - 1; c >= 0; c--) {
        CHUNK_BEGIN(c)
        // Recompute the chunk's states (slot i: the state before step start + i) and dq.
        for (int s = 0; s < steps; s++) {
            int t = start + s;
            STEP_OFFSETS(t)
            store_state(S, slots + s * state_size, value_dim, n);
            floatv value;
            LOAD_COLUMNS(value, v + value_row, n);
            floatv dout;
            LOAD_COLUMNS_OR_ZERO(dout, has_output_gradient, output_gradient + value_row, n);
            float d = gate_kind == GATE_PER_HEAD ? decay[head_step] : 1.0f;
            for (int i = 0; i < KEY_DIM; i++) {
                float di = gate_kind == GATE_PER_KEY ? decay[key_row + i] : d;
                S[i] = S[i] * di + k[key_row + i] * value;
                query_partial[tile * key_count + key_row + i] = scale * LANE_SUM(S[i] * dout);
            }
        }
        // Backwards through the chunk.
        for (int s = steps - 1; s >= 0; s--) {
            int t = start + s;
            STEP_OFFSETS(t)
            __global const float* before = slots + s * state_size;
            floatv value;
            LOAD_COLUMNS(value, v + value_row, n);
            floatv dout;
            LOAD_COLUMNS_OR_ZERO(dout, has_output_gradient, output_gradient + value_row, n);
            float d = gate_kind == GATE_PER_HEAD ? decay[head_step] : 1.0f;
            floatv dvalue = (floatv)(0.0f);
            float head_gate = 0.0f;
            for (int i = 0; i < KEY_DIM; i++) {
                float di = gate_kind == GATE_PER_KEY ? decay[key_row + i] : d;
                floatv g = G[i] + (scale * q[key_row + i]) * dout;
                key_partial[tile * key_count + key_row + i] = LANE_SUM(g * value);
                dvalue += g * k[key_row + i];
                if (want_gate_gradient) {
                    floatv old;
                    LOAD_COLUMNS(old, before + (long)i * value_dim, n);
                    float term = di * LANE_SUM(g * old);
                    if (gate_kind == GATE_PER_KEY) gate_partial[tile * key_count + key_row + i] = term;
                    else head_gate += term;
                }
                G[i] = g * di;
            }
            STORE_COLUMNS(value_gradient + value_row, dvalue, n);
            if (want_gate_gradient && gate_kind == GATE_PER_HEAD) gate_partial[tile * head_count + head_step] = head_gate;
        }
    }
    if (has_initial_gradient) store_state(G, initial_gradient + pair * state_size + column, value_dim, n);
}

// The forward scan of the (gated) delta rule; outputs and checkpoints as in linear_attention_scan_forward.
__kernel void delta_rule_scan_forward(int batch, int length, int heads, int value_dim, int has_gate, float scale,
                                 int has_initial, int has_output, int has_final, int chunk,
                                 __global const float* q, __global const float* k, __global const float* v,
                                 __global const float* beta, __global const float* decay,
                                 __global const float* initial_state, __global float* o, __global float* final_state,
                                 __global float* checkpoints) {
    FORWARD_BEGIN
    for (int t = 0; t < length; t++) {
        STEP_OFFSETS(t)
        CHECKPOINT(t)
        float gamma = has_gate ? decay[head_step] : 1.0f;
        floatv removed = (floatv)(0.0f);
        for (int i = 0; i < KEY_DIM; i++) removed += S[i] * k[key_row + i];
        floatv value;
        LOAD_COLUMNS(value, v + value_row, n);
        floatv update = beta[head_step] * (value - gamma * removed);
        floatv out = (floatv)(0.0f);
        for (int i = 0; i < KEY_DIM; i++) {
            S[i] = S[i] * gamma + k[key_row + i] * update;
            out += S[i] * (scale * q[key_row + i]);
        }
        if (has_output) STORE_COLUMNS(o + value_row, out, n);
    }
    if (has_final) store_state(S, final_state + pair * state_size + column, value_dim, n);
}

// The backward scan of the (gated) delta rule. `vectors` [B * H, chunk, 2, V] keeps each recomputed
// step's w = S'^T k and u. With G = dL/dS_t (including scale q_t dO_t^T): du = G^T k_t; dv_t = beta du;
// dw = -beta du; dbeta_t = du . (v_t - w); dk_t = G u + S' dw; dS' = G + k_t dw^T; dg_t = sum dS' (.) S';
// G = gamma dS'. Partial outputs: dq, dk [tiles, B, T, H, K]; dbeta, dg [tiles, B, T, H].
__kernel void delta_rule_scan_backward(int batch, int length, int heads, int value_dim, int has_gate, float scale,
                                  int has_output_gradient, int has_final_gradient, int has_initial_gradient,
                                  int want_gate_gradient, int chunk,
                                  __global const float* q, __global const float* k, __global const float* v,
                                  __global const float* beta, __global const float* decay,
                                  __global const float* output_gradient, __global const float* final_gradient,
                                  __global const float* checkpoints, __global float* scratch, __global float* vectors,
                                  __global float* query_partial, __global float* key_partial,
                                  __global float* value_gradient, __global float* beta_partial,
                                  __global float* gate_partial, __global float* initial_gradient) {
    BACKWARD_BEGIN
    __global float* steps_wu = vectors + (long)pair * chunk * 2 * value_dim + column;
    for (int c = chunks - 1; c >= 0; c--) {
        CHUNK_BEGIN(c)
        for (int s = 0; s < steps; s++) {
            int t = start + s;
            STEP_OFFSETS(t)
            store_state(S, slots + s * state_size, value_dim, n);
            float gamma = has_gate ? decay[head_step] : 1.0f;
            floatv removed = (floatv)(0.0f);
            for (int i = 0; i < KEY_DIM; i++) removed += S[i] * k[key_row + i];
            removed *= gamma;
            floatv value;
            LOAD_COLUMNS(value, v + value_row, n);
            floatv update = beta[head_step] * (value - removed);
            STORE_COLUMNS(steps_wu + (long)s * 2 * value_dim, removed, n);
            STORE_COLUMNS(steps_wu + (long)s * 2 * value_dim + value_dim, update, n);
            floatv dout;
            LOAD_COLUMNS_OR_ZERO(dout, has_output_gradient, output_gradient + value_row, n);
            for (int i = 0; i < KEY_DIM; i++) {
                S[i] = S[i] * gamma + k[key_row + i] * update;
                query_partial[tile * key_count + key_row + i] = scale * LANE_SUM(S[i] * dout);
            }
        }
        for (int s = steps - 1; s >= 0; s--) {
            int t = start + s;
            STEP_OFFSETS(t)
            __global const float* before = slots + s * state_size;
            float gamma = has_gate ? decay[head_step] : 1.0f;
            float strength = beta[head_step];
            floatv removed;
            LOAD_COLUMNS(removed, steps_wu + (long)s * 2 * value_dim, n);
            floatv update;
            LOAD_COLUMNS(update, steps_wu + (long)s * 2 * value_dim + value_dim, n);
            floatv dout;
            LOAD_COLUMNS_OR_ZERO(dout, has_output_gradient, output_gradient + value_row, n);
            floatv dupdate = (floatv)(0.0f);
            for (int i = 0; i < KEY_DIM; i++) {
                G[i] += (scale * q[key_row + i]) * dout;
                dupdate += G[i] * k[key_row + i];
            }
            STORE_COLUMNS(value_gradient + value_row, strength * dupdate, n);
            floatv dremoved = -strength * dupdate;
            floatv value;
            LOAD_COLUMNS(value, v + value_row, n);
            beta_partial[tile * head_count + head_step] = LANE_SUM(dupdate * (value - removed));
            float gate_sum = 0.0f;
            for (int i = 0; i < KEY_DIM; i++) {
                floatv old;
                LOAD_COLUMNS(old, before + (long)i * value_dim, n);
                key_partial[tile * key_count + key_row + i] = LANE_SUM(G[i] * update) + gamma * LANE_SUM(old * dremoved);
                floatv dprime = G[i] + k[key_row + i] * dremoved;
                gate_sum += LANE_SUM(dprime * old);
                G[i] = gamma * dprime;
            }
            if (want_gate_gradient) gate_partial[tile * head_count + head_step] = gamma * gate_sum;
        }
    }
    if (has_initial_gradient) store_state(G, initial_gradient + pair * state_size + column, value_dim, n);
}

// out[i] = sum over tiles of partial[tile * count + i]: the per-tile partial sums of the backward kernels.
__kernel void scan_sum_tiles(int count, int tiles, __global const float* partial, __global float* out) {
    int i = get_global_id(0);
    if (i >= count) return;
    float total = 0.0f;
    for (int tile = 0; tile < tiles; tile++) total += partial[(long)tile * count + i];
    out[i] = total;
}

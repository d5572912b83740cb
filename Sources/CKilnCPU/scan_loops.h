// The scan loops of scan.c, written once over a vector type: scan.c includes this file once per
// instruction set, after defining
//   V, LANES              the vector type and its floats (8: portable lanes or AVX2; 16: AVX-512)
//   VARIANT(name)         the function's name for this instruction set
//   TARGET                the attributes of its functions
//   vload, vstore, vset, vzero, vsub, vmul, vmin, vmax
//   vmadd(a, b, c)        a·b + c (one rounding with FMA, two in the portable version)
//   vnmadd(a, b, c)       c − a·b
//   vload_n, vstore_n     the first n ≤ LANES floats (the rest zero / untouched)
//   vsum(x)               the lanes' sum as a tree of halves (8 lanes only)
//   vexp_scale(shifted)   2ⁿ from the rounded x·log2(e) + 1.5·2²³ (see exp_lanes)
//   vselect_below(x, limit, value, otherwise), vselect_above(...)   value where x < limit (x > limit)
// and REDUCTIONS to 1 when the loops that sum along a row (in 8-lane accumulators) are wanted too.
// scan_chunked_loops.h follows it with the chunked form's loops, and scan_variant_end.h undefines every
// macro, ready for the next instruction set.
//
// States are padded `[rows, width]` matrices, width a multiple of 8. Loops that carry values down the rows
// go in blocks of two vectors (four for plain sums), each column on its own, so their results do not
// depend on LANES. Loops that sum along a row keep one 8-lane accumulator, adding 8 columns at a time
// from the left, and add its lanes as a tree: every version sums in the same order.

/// S[k] = d[k]·S[k] + key[k]·update for every row k, and output = Sᵀ query of the new state.
TARGET static void VARIANT(decay_add_and_read)(float *state, ptrdiff_t rows, ptrdiff_t width, const float *decay,
                                               const float *key, const float *update, const float *query, float *output) {
    ptrdiff_t j = 0;
    for (; j + 2 * LANES <= width; j += 2 * LANES) {
        const V u0 = vload(update + j), u1 = vload(update + j + LANES);
        V o0 = vzero(), o1 = vzero();
        float *row = state + j;
        for (ptrdiff_t k = 0; k < rows; k++, row += width) {
            const V d = vset(decay[k]), kk = vset(key[k]), qq = vset(query[k]);
            const V s0 = vmadd(vload(row), d, vmul(u0, kk)), s1 = vmadd(vload(row + LANES), d, vmul(u1, kk));
            vstore(row, s0);
            vstore(row + LANES, s1);
            o0 = vmadd(s0, qq, o0);
            o1 = vmadd(s1, qq, o1);
        }
        vstore(output + j, o0);
        vstore(output + j + LANES, o1);
    }
    for (; j < width; j += LANES) {
        const ptrdiff_t n = width - j < LANES ? width - j : LANES;
        (void)n;  // used by the 16-lane version only
        const V u0 = vload_n(update + j, n);
        V o0 = vzero();
        float *row = state + j;
        for (ptrdiff_t k = 0; k < rows; k++, row += width) {
            const V s0 = vmadd(vload_n(row, n), vset(decay[k]), vmul(u0, vset(key[k])));
            vstore_n(row, s0, n);
            o0 = vmadd(s0, vset(query[k]), o0);
        }
        vstore_n(output + j, o0, n);
    }
}

/// S[k] = d[k]·S[k] + key[k]·update for every row k.
TARGET static void VARIANT(decay_add)(float *state, ptrdiff_t rows, ptrdiff_t width, const float *decay, const float *key,
                                      const float *update) {
    for (ptrdiff_t k = 0; k < rows; k++) {
        float *row = state + k * width;
        const V d = vset(decay[k]), kk = vset(key[k]);
        for (ptrdiff_t j = 0; j < width; j += LANES) {
            const ptrdiff_t n = width - j < LANES ? width - j : LANES;
            (void)n;  // used by the 16-lane version only
        (void)n;  // used by the 16-lane version only
            vstore_n(row + j, vmadd(vload_n(row + j, n), d, vmul(vload_n(update + j, n), kk)), n);
        }
    }
}

/// sums = scale · Sᵀ weights: the weighted sum of the rows.
TARGET static void VARIANT(column_sums)(const float *state, ptrdiff_t rows, ptrdiff_t width, const float *weights,
                                        float scale, float *sums) {
    const V factor = vset(scale);
    ptrdiff_t j = 0;
    for (; j + 4 * LANES <= width; j += 4 * LANES) {
        V a0 = vzero(), a1 = vzero(), a2 = vzero(), a3 = vzero();
        const float *row = state + j;
        for (ptrdiff_t k = 0; k < rows; k++, row += width) {
            const V w = vset(weights[k]);
            a0 = vmadd(vload(row), w, a0);
            a1 = vmadd(vload(row + LANES), w, a1);
            a2 = vmadd(vload(row + 2 * LANES), w, a2);
            a3 = vmadd(vload(row + 3 * LANES), w, a3);
        }
        vstore(sums + j, vmul(a0, factor));
        vstore(sums + j + LANES, vmul(a1, factor));
        vstore(sums + j + 2 * LANES, vmul(a2, factor));
        vstore(sums + j + 3 * LANES, vmul(a3, factor));
    }
    for (; j < width; j += LANES) {
        const ptrdiff_t n = width - j < LANES ? width - j : LANES;
        (void)n;  // used by the 16-lane version only
        V a0 = vzero();
        const float *row = state + j;
        for (ptrdiff_t k = 0; k < rows; k++, row += width) a0 = vmadd(vload_n(row, n), vset(weights[k]), a0);
        vstore_n(sums + j, vmul(a0, factor), n);
    }
}

/// The delta rule's first reverse pass: G[k] += query[k]·dO for every row, and sums = Gᵀ key.
TARGET static void VARIANT(add_outer_and_column_sums)(float *gradient, ptrdiff_t rows, ptrdiff_t width, const float *query,
                                                      const float *output_gradient, const float *key, float *sums) {
    ptrdiff_t j = 0;
    for (; j + 2 * LANES <= width; j += 2 * LANES) {
        const V d0 = vload(output_gradient + j), d1 = vload(output_gradient + j + LANES);
        V a0 = vzero(), a1 = vzero();
        float *row = gradient + j;
        for (ptrdiff_t k = 0; k < rows; k++, row += width) {
            const V qq = vset(query[k]), kk = vset(key[k]);
            const V g0 = vmadd(d0, qq, vload(row)), g1 = vmadd(d1, qq, vload(row + LANES));
            vstore(row, g0);
            vstore(row + LANES, g1);
            a0 = vmadd(g0, kk, a0);
            a1 = vmadd(g1, kk, a1);
        }
        vstore(sums + j, a0);
        vstore(sums + j + LANES, a1);
    }
    for (; j < width; j += LANES) {
        const ptrdiff_t n = width - j < LANES ? width - j : LANES;
        (void)n;  // used by the 16-lane version only
        const V d0 = vload_n(output_gradient + j, n);
        V a0 = vzero();
        float *row = gradient + j;
        for (ptrdiff_t k = 0; k < rows; k++, row += width) {
            const V g0 = vmadd(d0, vset(query[k]), vload_n(row, n));
            vstore_n(row, g0, n);
            a0 = vmadd(g0, vset(key[k]), a0);
        }
        vstore_n(sums + j, a0, n);
    }
}

/// exp(x) lane by lane, to about 2 ulp: x = n·ln 2 + r with |r| ≤ ln 2 / 2, a degree-7 Taylor polynomial
/// for exp(r), and 2ⁿ assembled in the exponent bits. Inputs below −87.3 give 0 (the true value is below
/// the smallest normal float); above 88.37, infinity (scans only exponentiate gates ≤ 0).
TARGET static inline V VARIANT(exp_lanes)(V x) {
    const V clamped = vmin(vmax(x, vset(-87.3f)), vset(88.37f));
    // Round x·log2(e) to the nearest integer by adding and subtracting 1.5·2²³.
    const V shifter = vset(12582912.0f);
    const V shifted = vmadd(clamped, vset(1.44269504f), shifter);
    const V n = vsub(shifted, shifter);
    const V r = vnmadd(n, vset(1.4286068e-6f), vnmadd(n, vset(0.69314575f), clamped));
    V p = vset(1.0f / 5040);
    p = vmadd(p, r, vset(1.0f / 720));
    p = vmadd(p, r, vset(1.0f / 120));
    p = vmadd(p, r, vset(1.0f / 24));
    p = vmadd(p, r, vset(1.0f / 6));
    p = vmadd(p, r, vset(0.5f));
    p = vmadd(p, r, vset(1.0f));
    p = vmadd(p, r, vset(1.0f));
    const V result = vmul(p, vexp_scale(shifted));
    return vselect_above(x, 88.37f, vset(INFINITY), vselect_below(x, -87.3f, vzero(), result));
}

/// y[i] = exp(x[i]) for i < count, every element through exp_lanes: whole blocks of 8 in vectors, and the
/// last few padded to a block of 8. The backend splits `count` into one range per thread, so an element
/// computed another way at the end of a range (libm's expf, which differs in the last bit) would make
/// results depend on the thread count.
TARGET static void VARIANT(exp)(const float *x, float *y, ptrdiff_t count) {
    ptrdiff_t i = 0;
    while (i + 8 <= count) {
        const ptrdiff_t n = count - i < LANES ? (count - i) / 8 * 8 : LANES;
        vstore_n(y + i, VARIANT(exp_lanes)(vload_n(x + i, n)), n);
        i += n;
    }
    if (i < count) {
        float block[16] = {0};
        const ptrdiff_t rest = count - i;
        memcpy(block, x + i, (size_t)rest * sizeof(float));
        vstore_n(block, VARIANT(exp_lanes)(vload_n(block, 8)), 8);
        memcpy(y + i, block, (size_t)rest * sizeof(float));
    }
}

#if REDUCTIONS
/// next[k] = d[k]·previous[k] + key[k]·update for every row k, and dots[k] = scale · next[k]·against.
TARGET static void VARIANT(decay_add_and_dot)(const float *previous, float *next, ptrdiff_t rows, ptrdiff_t width,
                                              const float *decay, const float *key, const float *update,
                                              const float *against, float scale, float *dots) {
    for (ptrdiff_t k = 0; k < rows; k++) {
        const float *from = previous + k * width;
        float *to = next + k * width;
        const V d = vset(decay[k]), kk = vset(key[k]);
        V sum = vzero();
        for (ptrdiff_t j = 0; j < width; j += LANES) {
            const V s = vmadd(vload(from + j), d, vmul(vload(update + j), kk));
            vstore(to + j, s);
            sum = vmadd(s, vload(against + j), sum);
        }
        dots[k] = scale * vsum(sum);
    }
}

/// One reverse step of (gated) linear attention. With G the gradient of the state after the step:
/// G[k] += query[k]·dO, dk[k] = G[k]·v, dv = Gᵀ key (into value_sums), dg[k] = d[k] · G[k]·S_before[k]
/// (into gate_gradient when given), then G[k] *= d[k].
TARGET static void VARIANT(linear_reverse)(float *gradient, const float *before, ptrdiff_t rows, ptrdiff_t width,
                                           const float *decay, const float *query, const float *output_gradient,
                                           const float *key, const float *value, float *value_sums,
                                           float *key_gradient, float *gate_gradient) {
    for (ptrdiff_t j = 0; j < width; j++) value_sums[j] = 0;
    for (ptrdiff_t k = 0; k < rows; k++) {
        float *row = gradient + k * width;
        const float *old = before + k * width;
        const V qq = vset(query[k]), kk = vset(key[k]), d = vset(decay[k]);
        V key_sum = vzero(), gate_sum = vzero();
        for (ptrdiff_t j = 0; j < width; j += LANES) {
            const V g = vmadd(vload(output_gradient + j), qq, vload(row + j));
            key_sum = vmadd(g, vload(value + j), key_sum);
            gate_sum = vmadd(g, vload(old + j), gate_sum);
            vstore(value_sums + j, vmadd(g, kk, vload(value_sums + j)));
            vstore(row + j, vmul(g, d));
        }
        key_gradient[k] = vsum(key_sum);
        if (gate_gradient) gate_gradient[k] = decay[k] * vsum(gate_sum);
    }
}

/// The delta rule's second reverse pass over rows, with G already including the step's output term:
/// dk[k] = G[k]·u + γ·S_before[k]·dw, dS′[k] = G[k] + key[k]·dw, then G[k] = γ·dS′[k]. Returns the gate
/// gradient γ · Σ_k dS′[k]·S_before[k].
TARGET static float VARIANT(delta_reverse)(float *gradient, const float *before, ptrdiff_t rows, ptrdiff_t width,
                                           float gamma, const float *key, const float *update,
                                           const float *removal_gradient, float *key_gradient) {
    const V decay = vset(gamma);
    V gate_sum = vzero();
    for (ptrdiff_t k = 0; k < rows; k++) {
        float *row = gradient + k * width;
        const float *old = before + k * width;
        const V kk = vset(key[k]);
        V update_sum = vzero(), removal_sum = vzero();
        for (ptrdiff_t j = 0; j < width; j += LANES) {
            const V g = vload(row + j), s = vload(old + j), dw = vload(removal_gradient + j);
            update_sum = vmadd(g, vload(update + j), update_sum);
            removal_sum = vmadd(s, dw, removal_sum);
            const V ds = vmadd(dw, kk, g);
            gate_sum = vmadd(ds, s, gate_sum);
            vstore(row + j, vmul(ds, decay));
        }
        key_gradient[k] = vsum(update_sum) + gamma * vsum(removal_sum);
    }
    return gamma * vsum(gate_sum);
}
#endif

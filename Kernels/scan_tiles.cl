// The register-tile helpers of the chunked scans' CPU layout (scan_chunked.cl and scan_chunked_delta.cl
// include this file; the program cache replaces the #include by this text and keys on the result):
// float16 loads and stores of n ≤ 16 columns, a vector exp, and lane sums in one fixed order. The
// including file defines TILE_ROWS (4) first.

// n ≤ 16 floats from p (all 16 when n ≥ 16), zeros past n.
static float16 tile_load(global const float *p, int n) {
    if (n >= 16) return (float16)(vload8(0, p), vload8(1, p));
    float t[16];
    for (int c = 0; c < 16; c++) t[c] = c < n ? p[c] : 0.0f;
    return (float16)(vload8(0, t), vload8(1, t));
}

// The first n ≤ 16 lanes of x to p.
static void tile_store(global float *p, float16 x, int n) {
    if (n >= 16) {
        vstore8(x.lo, 0, p);
        vstore8(x.hi, 1, p);
        return;
    }
    float t[16];
    vstore8(x.lo, 0, t);
    vstore8(x.hi, 1, t);
    for (int c = 0; c < n; c++) p[c] = t[c];
}

// e^x for 16 lanes, x ≤ 88 (the kernels pass exponents ≤ 0): Cephes' expf, x = n ln 2 + r with |r| ≤ ln 2 / 2,
// e^r from a degree-7 polynomial, 2^n from the exponent bits; within 2 ulp of exp for x ≥ −87, 0
// below (where e^x is under float32's smallest normal, 1.2e-38). PoCL's exp on vectors handles every
// special case and took most of the time of the kernels with many exps.
static float16 tile_exp(float16 x) {
    const float16 xc = fmax(x, -87.0f);
    const float16 n = rint(xc * 1.44269504088896341f);
    float16 r = fma(n, (float16)(-0.693359375f), xc);
    r = fma(n, (float16)(2.12194440e-4f), r);
    float16 p = fma(r, (float16)(1.9875691500e-4f), (float16)(1.3981999507e-3f));
    p = fma(p, r, (float16)(8.3334519073e-3f));
    p = fma(p, r, (float16)(4.1665795894e-2f));
    p = fma(p, r, (float16)(1.6666665459e-1f));
    p = fma(p, r, (float16)(5.0000001201e-1f));
    p = fma(p, r * r, r + 1.0f);
    const float16 scaled = p * as_float16((convert_int16(n) + 127) << 23);
    return select(select(scaled, (float16)(0.0f), x < -87.0f), x, isnan(x));  // NaN stays NaN
}

static float tile_sum(float16 x) {
    const float8 a = x.lo + x.hi;
    const float4 b = a.lo + a.hi;
    const float2 c = b.lo + b.hi;
    return c.x + c.y;
}

// The 16 sums tile_sum(acc[a][b]) of a 4 × 4 block of float16 partial sums as one float16 (lane 4a + b), by
// halving all of them together: the same pairs added in the same order as tile_sum (lanes l and l + 8, then
// l + 4, l + 2, l + 1), so the bits are tile_sum's, each level's additions for 2 to 16 sums in one vector.
static float8 tile_half_sums(float16 z) { return (float8)(z.s0123 + z.s4567, z.s89ab + z.scdef); }
static float8 tile_quarter_sums(float16 w) { return (float8)(w.s0145 + w.s2367, w.s89cd + w.sabef); }
#if TILE_ROWS != 4
#error "tile_sums4x4 sums 4 × 4 blocks: TILE_ROWS must be 4"
#endif
static float16 tile_sums4x4(const float16 *acc) {
    float16 z[8], w[4], u[2];
#pragma unroll
    for (int m = 0; m < 8; m++) z[m] = (float16)(acc[2 * m].lo + acc[2 * m].hi, acc[2 * m + 1].lo + acc[2 * m + 1].hi);
#pragma unroll
    for (int m = 0; m < 4; m++) w[m] = (float16)(tile_half_sums(z[2 * m]), tile_half_sums(z[2 * m + 1]));
#pragma unroll
    for (int m = 0; m < 2; m++) u[m] = (float16)(tile_quarter_sums(w[2 * m]), tile_quarter_sums(w[2 * m + 1]));
    return (float16)(u[0].even + u[0].odd, u[1].even + u[1].odd);
}

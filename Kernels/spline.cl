// B-spline evaluation for Kolmogorov–Arnold Network layers (pykan's conventions), forward and backward.
//
// Math. A layer maps x [batch, in] to y [batch, out]:
//   y[b,j] = Σ_i scaleBase[i,j]·silu(x[b,i]) + scaleSpline[i,j]·Σ_n c[i,j,n]·B_n(x[b,i])
// with silu(x) = x·σ(x) and B_n (n < G+k) the order-k B-splines of input i's ascending knots
// t_0 < … < t_{G+2k} (Cox–de Boor; order 0 is 1 on the half-open [t_m, t_{m+1})). For t_m ≤ x < t_{m+1}
// only B_{m−k} … B_m are non-zero; outside [t_0, t_{G+2k}) the spline part is zero. Gradients, given dy:
//   dx[b,i]       = Σ_j dy[b,j]·(scaleBase[i,j]·silu'(x) + Σ_n w[i,n,j]·B_n'(x))
//   dc[i,j,n]     = scaleSpline[i,j]·S[i,n,j]      with S[i,n,j] = Σ_b B_n(x[b,i])·dy[b,j]
//   dScaleSpline  = Σ_n c[i,j,n]·S[i,n,j],         dScaleBase[i,j] = Σ_b silu(x[b,i])·dy[b,j]
// where w[i,n,j] = scaleSpline[i,j]·c[i,j,n]. The derivative of an order-k spline is an order-(k−1)
// spline over the same knots with G+k+1 coefficients v[i,n,j] = k·(w_n − w_{n−1})/(t_{n+k} − t_n)
// (w_{−1} = w_{G+k} = 0), so dx needs k rows per (b, i), not k+1.
//
// Layouts (row-major, float unless noted): x [batch, in]; knots [in, G+2k+1]; c [in, out, G+k];
// scaleBase, scaleSpline [in, out]; y, dy [batch, out]. Scratch written by these kernels (R = G+k rows):
//   starts [in, batch] int      first coefficient row of the k+1 bases (a window inside 0..<R; −1 outside)
//   values [in, batch, k+1]     the bases (0 where a basis index falls outside 0..<R)
//   silu [in, batch]
//   lowerStarts [in, batch] int, lowerValues [in, batch, k], siluGradient [in, batch]: the same for the
//                               k order-(k−1) bases (a window inside 0..R)
//   weights    [T][in][R+1][TILE]  rows 0..<R: w, row R: scaleBase; outputs in tiles of TILE
//   dyTiles    [T][batch][TILE]    dy in the same tiles;  sums [T][in][PARTS][R][TILE]: partial sums of S
//   derivativeWeights [in][R+2][out]  rows 0…R: v, row R+1: scaleBase
// with T = ceil(out/TILE) tiles (the last one padded). Tiles keep the slice of outputs a work-item reads
// contiguous, rather than rows `out` floats apart (a power-of-two stride that maps every row to the same
// few cache sets on CPUs); on GPUs, TILE ≥ 32 keeps neighbouring work-items on neighbouring floats.
// Nothing of size batch × in × (G+k) exists: the work per (b, i) is k+2 rows of outputs.
//
// Launch geometry (global sizes are rounded up to exact multiples of the local size; every kernel guards
// its edges; no barriers, no local memory):
//   spline_basis                 1D over in·batch
//   spline_forward_rows          1D over in·(R+1)·out;   spline_derivative_rows 1D over in·(R+2)·out
//   spline_tile_columns          1D over batch·out
//   spline_forward               2D [ceil(out/VW), ceil(batch/ROWS)]: one work-item per ROWS samples and
//                                VW outputs, looping over inputs; each input's k+1 bases come from the tables
//   spline_input_gradient        2D [in, batch]: one work-item per (b, i), dot products over outputs
//   spline_batch_sums            2D [ceil(out/VW), in]: one work-item per input and VW outputs walks the
//                                batch in order (deterministic, no atomics; exact when every sample falls
//                                into one interval), then writes dc, dScaleSpline and dScaleBase
//
// Options (-D):
//   SPLINE_ORDER  k, 1…5 (default 3): loops over the k+1 bases unroll into registers.
//   VW            outputs per work-item and vector width: 1 on GPUs, 8 on CPU devices such as PoCL
//                 (explicit float8; PoCL does not vectorize these loops across work-items).
//   ROWS          samples per work-item in spline_forward: 1 on GPUs, 4 on CPU devices (independent sums
//                 hide latency, and the samples share each input's rows in cache).
//   TILE          outputs per tile of the tiled layouts, a multiple of VW: 32 on GPUs, VW on CPU devices.
//   PARTS         partial sums per work-item in spline_batch_sums: sample b adds into part b % PARTS and the
//                 parts are added in order at the end (a fixed order: still deterministic). Several parts
//                 break the chain of read-modify-writes through memory when samples share an interval
//                 (4 on CPU devices, 1 on GPUs).
// `uniform` is a run-time flag (the same for every work-item): with uniform knots the interval is found by
// index arithmetic (checked against the knots, so points on a knot follow the half-open rule exactly) and
// cubic splines use the closed form; otherwise a binary search and the local Cox–de Boor triangle.

#ifndef SPLINE_ORDER
#define SPLINE_ORDER 3
#endif
#define K SPLINE_ORDER

#ifndef VW
#define VW 1
#endif
#ifndef ROWS
#define ROWS 1
#endif
#if ROWS < 1
#error "ROWS must be at least 1"
#endif
#ifndef TILE
#define TILE 32
#endif
#ifndef PARTS
#define PARTS 1
#endif
#if PARTS < 1
#error "PARTS must be at least 1"
#endif
#if TILE % VW != 0
#error "TILE must be a multiple of VW"
#endif

#if VW == 1
typedef float floatv;
#define VLOAD(p) (*(p))
#define VSTORE(value, p) (*(p) = (value))
#define VSUM(v) (v)
#elif VW == 4
typedef float4 floatv;
#define VLOAD(p) vload4(0, p)
#define VSTORE(value, p) vstore4(value, 0, p)
#define VSUM(v) ((v).s0 + (v).s1 + (v).s2 + (v).s3)
#elif VW == 8
typedef float8 floatv;
#define VLOAD(p) vload8(0, p)
#define VSTORE(value, p) vstore8(value, 0, p)
#define VSUM(v) (((v).s0 + (v).s1) + ((v).s2 + (v).s3) + ((v).s4 + (v).s5) + ((v).s6 + (v).s7))
#else
#error "VW must be 1, 4 or 8"
#endif

// Element (row, j) of a tiled matrix of `rowCount` rows: tile j/TILE holds [rowCount][TILE].
#define TILED(rowCount, row, j) (((long)((j) / TILE) * (rowCount) + (row)) * TILE + (j) % TILE)

// Knot q of a row of `count`, continuing the end spacing beyond either end (such knots only reach bases
// that do not exist, which the windows below drop).
float spline_knot(__global const float* t, int count, int q) {
    if (q < 0) return t[0] + (float)q * (t[1] - t[0]);
    if (q >= count) return t[count - 1] + (float)(q - count + 1) * (t[count - 1] - t[count - 2]);
    return t[q];
}

// Copies the level+1 bases B_{m−level … m} into a window of rows that exist (0..<rows); returns the
// window's first row. Entries outside are zero.
int spline_window(int m, int level, int rows, const float* bases, __global float* out) {
    int first = m - level;
    int start = clamp(first, 0, rows - level - 1);
    int shift = start - first;
    for (int r = 0; r <= level; r++) {
        int source = r + shift;
        float value = 0.0f;
        for (int q = 0; q <= level; q++) value = q == source ? bases[q] : value;  // static indices only
        out[r] = value;
    }
    return start;
}

// One work-item per (i, b): silu, silu', and the windowed order-k (and order-(k−1)) bases of x[b, i].
__kernel void spline_basis(int batch, int inputs, int intervals, int uniform, int derivatives,
                           __global const float* x, __global const float* knots, __global int* starts,
                           __global float* values, __global float* silu, __global int* lowerStarts,
                           __global float* lowerValues, __global float* siluGradient) {
    int index = get_global_id(0);  // i·batch + b
    if (index >= batch * inputs) return;
    int i = index / batch;
    int b = index - i * batch;
    int count = intervals + 2 * K + 1;
    __global const float* t = knots + (long)i * count;
    float value = x[(long)b * inputs + i];
    // σ(x) and σ(−x) from one exponential, each without cancellation.
    float e = exp(-fabs(value));
    float inverse = 1.0f / (1.0f + e);
    float positive = value >= 0.0f ? inverse : e * inverse;
    silu[index] = value * positive;
    if (derivatives) siluGradient[index] = positive * (1.0f + value * (value >= 0.0f ? e * inverse : inverse));

    int last = count - 1;
    if (!(value >= t[0] && value < t[last])) {
        starts[index] = -1;
        if (derivatives) lowerStarts[index] = -1;
        return;
    }
    int m;
    if (uniform) {
        float h = (t[last] - t[0]) / (float)last;
        m = clamp((int)((value - t[0]) / h), 0, last - 1);
        while (m > 0 && value < t[m]) m--;
        while (m < last - 1 && value >= t[m + 1]) m++;
    } else {
        int low = 0, high = last;
        while (high - low > 1) {
            int middle = (low + high) >> 1;
            if (value >= t[middle]) low = middle; else high = middle;
        }
        m = low;
    }

    float bases[K + 1];
    float lower[K + 1];
#if K == 3
    if (uniform) {
        // Cubic bases at m−3…m in u = (x − t_m)/h and v = (t_{m+1} − x)/h (= 1 − u, but both exact
        // differences, so bases near either end of an interval keep their relative precision), in the
        // symmetric forms v³/6, (3u³ − 6u² + 4)/6, (3v³ − 6v² + 4)/6, u³/6; the quadratic ones at
        // m−2…m are v²/2, (1 + 2uv)/2, u²/2.
        float h = (t[last] - t[0]) / (float)last;
        float u = clamp((value - t[m]) / h, 0.0f, 1.0f);
        float v = clamp((t[m + 1] - value) / h, 0.0f, 1.0f);
        float u2 = u * u, u3 = u2 * u, v2 = v * v, v3 = v2 * v;
        bases[0] = v3 * (1.0f / 6.0f);
        bases[1] = (3.0f * u3 - 6.0f * u2 + 4.0f) * (1.0f / 6.0f);
        bases[2] = (3.0f * v3 - 6.0f * v2 + 4.0f) * (1.0f / 6.0f);
        bases[3] = u3 * (1.0f / 6.0f);
        lower[0] = v2 * 0.5f;
        lower[1] = (1.0f + 2.0f * u * v) * 0.5f;
        lower[2] = u2 * 0.5f;
        lower[3] = 0.0f;
    } else
#endif
    {
        float left[K + 1], right[K + 1];
        for (int j = 1; j <= K; j++) {
            left[j] = value - spline_knot(t, count, m + 1 - j);
            right[j] = spline_knot(t, count, m + j) - value;
        }
        // bases[r] holds B_{m−j+r, j} after level j.
        bases[0] = 1.0f;
        for (int r = 1; r <= K; r++) bases[r] = 0.0f;
        for (int j = 1; j <= K; j++) {
            if (j == K) {
                for (int r = 0; r <= K; r++) lower[r] = bases[r];
            }
            float carried = 0.0f;
            for (int r = 0; r < j; r++) {
                float share = bases[r] / (right[r + 1] + left[j - r]);
                bases[r] = carried + right[r + 1] * share;
                carried = left[j - r] * share;
            }
            bases[j] = carried;
        }
    }
    starts[index] = spline_window(m, K, intervals + K, bases, values + (long)index * (K + 1));
    if (derivatives) lowerStarts[index] = spline_window(m, K - 1, intervals + K + 1, lower, lowerValues + (long)index * K);
}

// The forward's tiled rows: rows n < R of input i hold w[i, n, j] = scaleSpline[i, j]·c[i, j, n], row R
// holds scaleBase[i, j]. One work-item per (i, n, j); padded columns are zero.
__kernel void spline_forward_rows(int inputs, int outputs, int rows, __global const float* coefficients,
                                  __global const float* scaleSpline, __global const float* scaleBase,
                                  __global float* weights) {
    int paddedOutputs = (outputs + TILE - 1) / TILE * TILE;
    int index = get_global_id(0);  // (i·(R+1) + n)·paddedOutputs + j
    if (index >= inputs * (rows + 1) * paddedOutputs) return;
    int j = index % paddedOutputs;
    int row = index / paddedOutputs;  // i·(R+1) + n
    int i = row / (rows + 1);
    int n = row - i * (rows + 1);
    long edge = (long)i * outputs + j;
    float value = 0.0f;
    if (j < outputs) value = n < rows ? scaleSpline[edge] * coefficients[edge * rows + n] : scaleBase[edge];
    weights[TILED(inputs * (rows + 1), row, j)] = value;
}

// The input gradient's rows [in][R+2][out]: v[i, n, j] = k·(w_n − w_{n−1})/(t_{n+k} − t_n) for n in 0…R,
// then scaleBase[i, j]. One work-item per element.
__kernel void spline_derivative_rows(int inputs, int outputs, int rows, __global const float* coefficients,
                                     __global const float* scaleSpline, __global const float* scaleBase,
                                     __global const float* knots, __global float* derivativeWeights) {
    int index = get_global_id(0);
    if (index >= inputs * (rows + 2) * outputs) return;
    int j = index % outputs;
    int n = (index / outputs) % (rows + 2);
    int i = index / (outputs * (rows + 2));
    long edge = (long)i * outputs + j;
    if (n == rows + 1) {
        derivativeWeights[index] = scaleBase[edge];
        return;
    }
    float scale = scaleSpline[edge];
    float current = n < rows ? scale * coefficients[edge * rows + n] : 0.0f;
    float previous = n > 0 ? scale * coefficients[edge * rows + n - 1] : 0.0f;
    __global const float* t = knots + (long)i * (rows + K + 1);
    derivativeWeights[index] = (float)K * (current - previous) / (t[n + K] - t[n]);
}

// dy [batch, out] into tiles [T][batch][TILE]; padded columns are zero. One work-item per (b, j).
__kernel void spline_tile_columns(int batch, int outputs, __global const float* dy, __global float* dyTiles) {
    int paddedOutputs = (outputs + TILE - 1) / TILE * TILE;
    int index = get_global_id(0);
    if (index >= batch * paddedOutputs) return;
    int b = index / paddedOutputs;
    int j = index - b * paddedOutputs;
    dyTiles[TILED(batch, b, j)] = j < outputs ? dy[(long)b * outputs + j] : 0.0f;
}

// y[b, j…j+VW) for ROWS samples: per input, the SiLU row and the k+1 scaled coefficient rows.
__kernel void spline_forward(int batch, int inputs, int outputs, int rows, __global const int* starts,
                             __global const float* values, __global const float* silu,
                             __global const float* weights, __global float* y) {
    int j0 = get_global_id(0) * VW;
    int b0 = get_global_id(1) * ROWS;
    if (b0 >= batch || j0 >= outputs) return;
    int samples = min(ROWS, batch - b0);
    // This work-item's slice of the tiled rows: input i, row n at slice + (i·(R+1) + n)·TILE.
    __global const float* slice = weights + (long)(j0 / TILE) * inputs * (rows + 1) * TILE + j0 % TILE;
    floatv sums[ROWS];
    for (int s = 0; s < ROWS; s++) sums[s] = (floatv)(0.0f);
    for (int i = 0; i < inputs; i++) {
        __global const float* inputRows = slice + (long)i * (rows + 1) * TILE;
        floatv base = VLOAD(inputRows + (long)rows * TILE);
        long row = (long)i * batch + b0;
#pragma unroll
        for (int s = 0; s < ROWS; s++) {
            if (s < samples) {
                // Two partial sums, so consecutive fma do not wait on each other.
                floatv first = silu[row + s] * base, second = (floatv)(0.0f);
                int start = starts[row + s];
                if (start >= 0) {
                    __global const float* v = values + (row + s) * (K + 1);
                    __global const float* line = inputRows + (long)start * TILE;
#pragma unroll
                    for (int r = 0; r <= K; r++) {
                        if (r % 2 == 0) second = fma((floatv)(v[r]), VLOAD(line + r * TILE), second);
                        else first = fma((floatv)(v[r]), VLOAD(line + r * TILE), first);
                    }
                }
                sums[s] += first + second;
            }
        }
    }
    int lanes = min(VW, outputs - j0);
    for (int s = 0; s < samples; s++) {
        __global float* target = y + (long)(b0 + s) * outputs + j0;
        if (lanes == VW) {
            VSTORE(sums[s], target);
        } else {
            float lane[VW];
            VSTORE(sums[s], lane);
            for (int q = 0; q < lanes; q++) target[q] = lane[q];
        }
    }
}

// dx[b, i] = silu'(x)·Σ_j dy[b, j]·scaleBase[i, j] + Σ_r D_r(x)·Σ_j dy[b, j]·v[i, s + r, j].
__kernel void spline_input_gradient(int batch, int inputs, int outputs, int rows, __global const int* lowerStarts,
                                    __global const float* lowerValues, __global const float* siluGradient,
                                    __global const float* derivativeWeights, __global const float* dy,
                                    __global float* dx) {
    int i = get_global_id(0);
    int b = get_global_id(1);
    if (i >= inputs || b >= batch) return;
    long index = (long)i * batch + b;
    __global const float* gradient = dy + (long)b * outputs;
    __global const float* inputRows = derivativeWeights + (long)i * (rows + 2) * outputs;
    __global const float* base = inputRows + (long)(rows + 1) * outputs;
    int start = lowerStarts[index];
    // Outside the grid every row is read at start 0 and weighted by zero.
    __global const float* line = inputRows + (long)max(start, 0) * outputs;
    floatv baseSum = (floatv)(0.0f);
    floatv sums[K];
    for (int r = 0; r < K; r++) sums[r] = (floatv)(0.0f);
    int j = 0;
    for (; j + VW <= outputs; j += VW) {
        floatv g = VLOAD(gradient + j);
        baseSum = fma(g, VLOAD(base + j), baseSum);
#pragma unroll
        for (int r = 0; r < K; r++) sums[r] = fma(g, VLOAD(line + (long)r * outputs + j), sums[r]);
    }
    float baseTotal = VSUM(baseSum);
    float totals[K];
    for (int r = 0; r < K; r++) totals[r] = VSUM(sums[r]);
    for (; j < outputs; j++) {
        float g = gradient[j];
        baseTotal = fma(g, base[j], baseTotal);
        for (int r = 0; r < K; r++) totals[r] = fma(g, line[(long)r * outputs + j], totals[r]);
    }
    float result = baseTotal * siluGradient[index];
    if (start >= 0) {
        __global const float* weight = lowerValues + index * K;
        for (int r = 0; r < K; r++) result = fma(weight[r], totals[r], result);
    }
    dx[(long)b * inputs + i] = result;
}

// For input i and outputs j…j+VW: S[i, n, j] = Σ_b B_n(x[b, i])·dy[b, j], accumulated over the batch in
// order in this work-item's own slices of `sums` (PARTS interleaved partial sums), and
// Σ_b silu(x[b, i])·dy[b, j] in registers; then dc, dScaleSpline and dScaleBase of those edges.
__kernel void spline_batch_sums(int batch, int inputs, int outputs, int rows, __global const int* starts,
                                __global const float* values, __global const float* silu,
                                __global const float* dyTiles, __global const float* coefficients,
                                __global const float* scaleSpline, __global float* sums,
                                int writeCoefficients, __global float* coefficientGradient, int writeScale,
                                __global float* scaleSplineGradient, int writeBase,
                                __global float* scaleBaseGradient) {
    int j0 = get_global_id(0) * VW;
    int i = get_global_id(1);
    if (i >= inputs || j0 >= outputs) return;
    // Row n of part p of this work-item's slice of S at column + (p·R + n)·TILE; sample b of its slice of
    // dy at gradient + b·TILE.
    __global float* column = sums + ((long)(j0 / TILE) * inputs + i) * PARTS * rows * TILE + j0 % TILE;
    __global const float* gradient = dyTiles + (long)(j0 / TILE) * batch * TILE + j0 % TILE;
    for (int n = 0; n < PARTS * rows; n++) VSTORE((floatv)(0.0f), column + (long)n * TILE);
    floatv baseSum = (floatv)(0.0f);
    long row = (long)i * batch;
    for (int b0 = 0; b0 < batch; b0 += PARTS) {
#pragma unroll
        for (int p = 0; p < PARTS; p++) {
            int b = b0 + p;
            if (b < batch) {
                floatv g = VLOAD(gradient + (long)b * TILE);
                baseSum = fma((floatv)(silu[row + b]), g, baseSum);
                int start = starts[row + b];
                if (start >= 0) {
                    __global const float* v = values + (row + b) * (K + 1);
                    __global float* line = column + (long)(p * rows + start) * TILE;
#pragma unroll
                    for (int r = 0; r <= K; r++) {
                        __global float* target = line + r * TILE;
                        VSTORE(fma((floatv)(v[r]), g, VLOAD(target)), target);
                    }
                }
            }
        }
    }
    float baseLanes[VW];
    VSTORE(baseSum, baseLanes);
    int lanes = min(VW, outputs - j0);
    for (int q = 0; q < lanes; q++) {
        long edge = (long)i * outputs + j0 + q;
        float scale = scaleSpline[edge];
        float total = 0.0f;
        for (int n = 0; n < rows; n++) {
            float s = column[(long)n * TILE + q];
            for (int p = 1; p < PARTS; p++) s += column[(long)(p * rows + n) * TILE + q];
            if (writeCoefficients) coefficientGradient[edge * rows + n] = scale * s;
            total = fma(coefficients[edge * rows + n], s, total);
        }
        if (writeScale) scaleSplineGradient[edge] = total;
        if (writeBase) scaleBaseGradient[edge] = baseLanes[q];
    }
}

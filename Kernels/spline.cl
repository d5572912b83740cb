// B-spline evaluation for Kolmogorov–Arnold Network layers (pykan's conventions), forward and backward.
//
// Math. A layer maps x [batch, in] to y [batch, out]:
//   y[b,j] = Σ_i scaleBase[i,j]·silu(x[b,i]) + scaleSpline[i,j]·Σ_n c[i,j,n]·B_n(x[b,i])
// with silu(x) = x·σ(x) and B_n (n < G+k) the order-k B-splines of input i's ascending knots
// t_0 < … < t_{G+2k} (Cox–de Boor; order 0 is 1 on the half-open [t_m, t_{m+1})). For t_m ≤ x < t_{m+1}
// only B_{m−k} … B_m are non-zero; outside [t_0, t_{G+2k}) the spline part is zero. Gradients, given dy:
//   dx[b,i]       = Σ_j dy[b,j]·(scaleBase[i,j]·silu'(x) + Σ_n w[i,n,j]·B_n'(x))
//   dc[i,j,n]     = scaleSpline[i,j]·S[i,n,j]      with S[i,n,j] = Σ_b B_n(x[b,i])·dy[b,j]
//   dScaleSpline  = Σ_n c[i,j,n]·S[i,n,j]          (dScaleBase = silu(x)ᵀ·dy is a gemm on the host side)
// where w[i,n,j] = scaleSpline[i,j]·c[i,j,n]. The derivative of an order-k spline is an order-(k−1)
// spline over the same knots with G+k+1 coefficients v[i,n,j] = k·(w_n − w_{n−1})/(t_{n+k} − t_n)
// (w_{−1} = w_{G+k} = 0), so dx needs k rows per (b, i), not k+1.
//
// Layouts (row-major, float unless noted): x [batch, in]; knots [in, G+2k+1]; c [in, out, G+k];
// scaleBase, scaleSpline [in, out]; y, dy [batch, out]. Scratch written by these kernels:
//   starts [batch, in] int      first coefficient row of the k+1 bases (a window inside 0..<G+k; −1 outside)
//   values [batch, in, k+1]     the bases (0 where a basis index falls outside 0..<G+k)
//   silu [batch, in]
//   lowerStarts, lowerValues [batch, in, k], siluGradient   the same for the k order-(k−1) bases
//   weights [in, G+k, out] = w; derivativeWeights [in, G+k+1, out] = v; sums [in, G+k, out] = S
// Nothing of size batch × in × (G+k) exists: the work per (b, i) is k+1 rows of `out` floats.
//
// Launch geometry (global sizes are rounded up to exact multiples of the local size; every kernel guards
// its edges):
//   spline_basis                 1D over batch·in
//   spline_scaled_rows           1D over in·(G+k)·out;      spline_derivative_rows 1D over in·(G+k+1)·out
//   spline_forward               2D [ceil(out/VW), batch]:  one work-item per sample and VW outputs; the
//                                bases of x[b,i] are read once per i from the tables
//   spline_input_gradient        2D [in, batch]:            one work-item per (b, i), dot products over out
//   spline_coefficient_gradient  2D [ceil(out/VW), in]:     one work-item per input and VW outputs walks the
//                                batch in order (deterministic, no atomics; exact when every sample falls
//                                into one interval), then writes dc and dScaleSpline for its edges
//
// Options (-D):
//   SPLINE_ORDER  k, 1…5 (default 3): loops over the k+1 bases unroll into registers.
//   VW            outputs per work-item and vector width: 1 on GPUs (neighbouring work-items read
//                 neighbouring outputs, coalesced), 8 on CPU devices such as PoCL (explicit float8; PoCL
//                 does not vectorize these loops across work-items).
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

float spline_sigmoid(float x) {
    // Written so that neither branch overflows.
    if (x >= 0.0f) return 1.0f / (1.0f + exp(-x));
    float e = exp(x);
    return e / (1.0f + e);
}

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

// One work-item per (b, i): silu, silu', and the windowed order-k (and order-(k−1)) bases of x[b, i].
__kernel void spline_basis(int batch, int inputs, int intervals, int uniform, int derivatives,
                           __global const float* x, __global const float* knots, __global int* starts,
                           __global float* values, __global float* silu, __global int* lowerStarts,
                           __global float* lowerValues, __global float* siluGradient) {
    int index = get_global_id(0);
    if (index >= batch * inputs) return;
    int i = index % inputs;
    int count = intervals + 2 * K + 1;
    __global const float* t = knots + (long)i * count;
    float value = x[index];
    float sigmoid = spline_sigmoid(value);
    silu[index] = value * sigmoid;
    if (derivatives) siluGradient[index] = sigmoid * (1.0f + value * spline_sigmoid(-value));

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
        // Cubic bases at m−3…m in u = (x − t_m)/h, and the quadratic ones at m−2…m.
        float h = (t[last] - t[0]) / (float)last;
        float u = clamp((value - t[m]) / h, 0.0f, 1.0f);
        float v = 1.0f - u, u2 = u * u, u3 = u2 * u;
        bases[0] = v * v * v * (1.0f / 6.0f);
        bases[1] = (3.0f * u3 - 6.0f * u2 + 4.0f) * (1.0f / 6.0f);
        bases[2] = (-3.0f * u3 + 3.0f * u2 + 3.0f * u + 1.0f) * (1.0f / 6.0f);
        bases[3] = u3 * (1.0f / 6.0f);
        lower[0] = v * v * 0.5f;
        lower[1] = (-2.0f * u2 + 2.0f * u + 1.0f) * 0.5f;
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

// w[i, n, j] = scaleSpline[i, j] · c[i, j, n]; one work-item per element of w.
__kernel void spline_scaled_rows(int inputs, int outputs, int rows, __global const float* coefficients,
                                 __global const float* scaleSpline, __global float* weights) {
    int index = get_global_id(0);
    if (index >= inputs * rows * outputs) return;
    int j = index % outputs;
    int n = (index / outputs) % rows;
    int i = index / (outputs * rows);
    long edge = (long)i * outputs + j;
    weights[index] = scaleSpline[edge] * coefficients[edge * rows + n];
}

// v[i, n, j] = k·(w_n − w_{n−1})/(t_{n+k} − t_n) for n in 0…G+k; one work-item per element of v.
__kernel void spline_derivative_rows(int inputs, int outputs, int rows, __global const float* coefficients,
                                     __global const float* scaleSpline, __global const float* knots,
                                     __global float* derivativeWeights) {
    int index = get_global_id(0);
    if (index >= inputs * (rows + 1) * outputs) return;
    int j = index % outputs;
    int n = (index / outputs) % (rows + 1);
    int i = index / (outputs * (rows + 1));
    long edge = (long)i * outputs + j;
    float scale = scaleSpline[edge];
    float current = n < rows ? scale * coefficients[edge * rows + n] : 0.0f;
    float previous = n > 0 ? scale * coefficients[edge * rows + n - 1] : 0.0f;
    __global const float* t = knots + (long)i * (rows + K + 1);
    derivativeWeights[index] = (float)K * (current - previous) / (t[n + K] - t[n]);
}

// y[b, j…j+VW) for one sample: the SiLU branch and the k+1 scaled coefficient rows of every input.
__kernel void spline_forward(int batch, int inputs, int outputs, int rows, __global const int* starts,
                             __global const float* values, __global const float* silu,
                             __global const float* weights, __global const float* scaleBase, __global float* y) {
    int j0 = get_global_id(0) * VW;
    int b = get_global_id(1);
    if (b >= batch || j0 >= outputs) return;
    if (j0 + VW <= outputs) {
        floatv sum = (floatv)(0.0f);
        for (int i = 0; i < inputs; i++) {
            long index = (long)b * inputs + i;
            sum = fma((floatv)(silu[index]), VLOAD(scaleBase + (long)i * outputs + j0), sum);
            int start = starts[index];
            if (start < 0) continue;
            __global const float* v = values + index * (K + 1);
            __global const float* line = weights + ((long)i * rows + start) * outputs + j0;
            for (int r = 0; r <= K; r++) sum = fma((floatv)(v[r]), VLOAD(line + (long)r * outputs), sum);
        }
        VSTORE(sum, y + (long)b * outputs + j0);
        return;
    }
    for (int j = j0; j < outputs; j++) {  // the last, partial vector of outputs
        float sum = 0.0f;
        for (int i = 0; i < inputs; i++) {
            long index = (long)b * inputs + i;
            sum = fma(silu[index], scaleBase[(long)i * outputs + j], sum);
            int start = starts[index];
            if (start < 0) continue;
            __global const float* v = values + index * (K + 1);
            __global const float* line = weights + ((long)i * rows + start) * outputs + j;
            for (int r = 0; r <= K; r++) sum = fma(v[r], line[(long)r * outputs], sum);
        }
        y[(long)b * outputs + j] = sum;
    }
}

// dx[b, i] = silu'(x)·Σ_j dy[b, j]·scaleBase[i, j] + Σ_r D_r(x)·Σ_j dy[b, j]·v[i, s + r, j].
__kernel void spline_input_gradient(int batch, int inputs, int outputs, int rows, __global const int* lowerStarts,
                                    __global const float* lowerValues, __global const float* siluGradient,
                                    __global const float* derivativeWeights, __global const float* scaleBase,
                                    __global const float* dy, __global float* dx) {
    int i = get_global_id(0);
    int b = get_global_id(1);
    if (i >= inputs || b >= batch) return;
    long index = (long)b * inputs + i;
    __global const float* gradient = dy + (long)b * outputs;
    __global const float* base = scaleBase + (long)i * outputs;
    int start = lowerStarts[index];
    // Outside the grid every row is read at start 0 and weighted by zero.
    __global const float* line = derivativeWeights + ((long)i * (rows + 1) + max(start, 0)) * outputs;
    floatv baseSum = (floatv)(0.0f);
    floatv sums[K];
    for (int r = 0; r < K; r++) sums[r] = (floatv)(0.0f);
    int j = 0;
    for (; j + VW <= outputs; j += VW) {
        floatv g = VLOAD(gradient + j);
        baseSum = fma(g, VLOAD(base + j), baseSum);
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
    dx[index] = result;
}

// For input i and outputs j…j+VW: S[i, n, j] = Σ_b B_n(x[b, i])·dy[b, j], accumulated in `sums` (this
// work-item's own column) over the batch in order, then dc and dScaleSpline of those edges.
__kernel void spline_coefficient_gradient(int batch, int inputs, int outputs, int rows, __global const int* starts,
                                          __global const float* values, __global const float* dy,
                                          __global const float* coefficients, __global const float* scaleSpline,
                                          __global float* sums, int writeCoefficients,
                                          __global float* coefficientGradient, int writeScale,
                                          __global float* scaleSplineGradient) {
    int j0 = get_global_id(0) * VW;
    int i = get_global_id(1);
    if (i >= inputs || j0 >= outputs) return;
    __global float* column = sums + (long)i * rows * outputs;
    if (j0 + VW <= outputs) {
        for (int n = 0; n < rows; n++) VSTORE((floatv)(0.0f), column + (long)n * outputs + j0);
        for (int b = 0; b < batch; b++) {
            long index = (long)b * inputs + i;
            int start = starts[index];
            if (start < 0) continue;
            floatv g = VLOAD(dy + (long)b * outputs + j0);
            __global const float* v = values + index * (K + 1);
            __global float* line = column + (long)start * outputs + j0;
            for (int r = 0; r <= K; r++) {
                __global float* target = line + (long)r * outputs;
                VSTORE(fma((floatv)(v[r]), g, VLOAD(target)), target);
            }
        }
    } else {
        for (int j = j0; j < outputs; j++) {  // the last, partial vector of outputs
            for (int n = 0; n < rows; n++) column[(long)n * outputs + j] = 0.0f;
            for (int b = 0; b < batch; b++) {
                long index = (long)b * inputs + i;
                int start = starts[index];
                if (start < 0) continue;
                float g = dy[(long)b * outputs + j];
                __global const float* v = values + index * (K + 1);
                __global float* line = column + (long)start * outputs + j;
                for (int r = 0; r <= K; r++) line[(long)r * outputs] = fma(v[r], g, line[(long)r * outputs]);
            }
        }
    }
    int end = min(j0 + VW, outputs);
    for (int j = j0; j < end; j++) {
        long edge = (long)i * outputs + j;
        float scale = scaleSpline[edge];
        float total = 0.0f;
        for (int n = 0; n < rows; n++) {
            float s = column[(long)n * outputs + j];
            if (writeCoefficients) coefficientGradient[edge * rows + n] = scale * s;
            total = fma(coefficients[edge * rows + n], s, total);
        }
        if (writeScale) scaleSplineGradient[edge] = total;
    }
}

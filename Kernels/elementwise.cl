// Element-wise, broadcasting, copy, random and row-indexing kernels for Kiln's OpenCL backend.
//
// Every kernel takes its element count first and guards `get_global_id(0) < count`, because the host
// always launches a global size rounded up to a multiple of the work-group size (PoCL needs exact
// multiples). Op codes match `UnaryOp.code` and `BinaryOp.rawValue` in Sources/Backend/Operations.swift.

#define UNARY_NEGATE 0
#define UNARY_RELU 1
#define UNARY_GELU 2
#define UNARY_SILU 3
#define UNARY_SIGMOID 4
#define UNARY_LOG_SIGMOID 5
#define UNARY_TANH 6
#define UNARY_EXP 7
#define UNARY_LOG 8
#define UNARY_SQRT 9
#define UNARY_RSQRT 10
#define UNARY_RECIPROCAL 11
#define UNARY_SQUARE 12
#define UNARY_ABS 13
#define UNARY_SCALE 14
#define UNARY_AFFINE 15
#define UNARY_POWER 16
#define UNARY_CLAMP 17
#define UNARY_STEP 18

#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f

float sigmoid_of(float x) {
    // Written so that neither branch overflows.
    if (x >= 0.0f) return 1.0f / (1.0f + exp(-x));
    float e = exp(x);
    return e / (1.0f + e);
}

float unary_value(int op, float x, float a, float b) {
    switch (op) {
    case UNARY_NEGATE: return -x;
    case UNARY_RELU: return x > 0.0f ? x : 0.0f;
    case UNARY_GELU: return 0.5f * x * erfc(-x * INV_SQRT2);  // erfc keeps precision for x << 0
    case UNARY_SILU: return x * sigmoid_of(x);
    case UNARY_SIGMOID: return sigmoid_of(x);
    case UNARY_LOG_SIGMOID: return fmin(x, 0.0f) - log1p(exp(-fabs(x)));
    case UNARY_TANH: return tanh(x);
    case UNARY_EXP: return exp(x);
    case UNARY_LOG: return log(x);
    case UNARY_SQRT: return sqrt(x);
    case UNARY_RSQRT: return 1.0f / sqrt(x);
    case UNARY_RECIPROCAL: return 1.0f / x;
    case UNARY_SQUARE: return x * x;
    case UNARY_ABS: return fabs(x);
    case UNARY_SCALE: return a * x;
    case UNARY_AFFINE: return a * x + b;
    case UNARY_POWER: return pow(x, a);
    case UNARY_CLAMP: return fmin(fmax(x, a), b);
    case UNARY_STEP: return x >= a ? 1.0f : 0.0f;
    default: return NAN;
    }
}

// dx = dy * f'(x), using the input x or the output y, whichever is cheaper.
float unary_derivative(int op, float x, float y, float a, float b) {
    switch (op) {
    case UNARY_NEGATE: return -1.0f;
    case UNARY_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case UNARY_GELU: {
        float cdf = 0.5f * erfc(-x * INV_SQRT2);
        return cdf + x * INV_SQRT_2PI * exp(-0.5f * x * x);
    }
    case UNARY_SILU: {
        // σ(x)(1 + x σ(−x)), with 1 − σ(x) computed as σ(−x) so it keeps its precision.
        float s = sigmoid_of(x);
        return s * (1.0f + x * sigmoid_of(-x));
    }
    case UNARY_SIGMOID: return sigmoid_of(x) * sigmoid_of(-x);
    case UNARY_LOG_SIGMOID: return sigmoid_of(-x);
    case UNARY_TANH: {
        // sech²(x) from the input: 1 − y² loses precision where |y| is near 1.
        float c = cosh(x);
        return 1.0f / (c * c);
    }
    case UNARY_EXP: return y;
    case UNARY_LOG: return 1.0f / x;
    case UNARY_SQRT: return 0.5f / y;
    case UNARY_RSQRT: return -0.5f * y * y * y;
    case UNARY_RECIPROCAL: return -y * y;
    case UNARY_SQUARE: return 2.0f * x;
    case UNARY_ABS: return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
    case UNARY_SCALE: return a;
    case UNARY_AFFINE: return a;
    case UNARY_POWER: return a * pow(x, a - 1.0f);
    case UNARY_CLAMP: return (x >= a && x <= b) ? 1.0f : 0.0f;
    case UNARY_STEP: return 0.0f;
    default: return NAN;
    }
}

__kernel void unary(int count, int op, float a, float b, __global const float* x, __global float* y) {
    int i = get_global_id(0);
    if (i < count) y[i] = unary_value(op, x[i], a, b);
}

__kernel void unary_backward(int count, int op, float a, float b, __global const float* x,
                             __global const float* y, __global const float* dy, __global float* dx) {
    int i = get_global_id(0);
    if (i < count) dx[i] = dy[i] * unary_derivative(op, x[i], y[i], a, b);
}

#define BINARY_ADD 0
#define BINARY_SUBTRACT 1
#define BINARY_MULTIPLY 2
#define BINARY_DIVIDE 3
#define BINARY_MAXIMUM 4
#define BINARY_MINIMUM 5
#define BINARY_EQUAL 6
#define BINARY_GREATER 7

float binary_value(int op, float a, float b) {
    switch (op) {
    case BINARY_ADD: return a + b;
    case BINARY_SUBTRACT: return a - b;
    case BINARY_MULTIPLY: return a * b;
    case BINARY_DIVIDE: return a / b;
    case BINARY_MAXIMUM: return fmax(a, b);
    case BINARY_MINIMUM: return fmin(a, b);
    case BINARY_EQUAL: return a == b ? 1.0f : 0.0f;
    case BINARY_GREATER: return a > b ? 1.0f : 0.0f;
    default: return NAN;
    }
}

// Both operands dense and of the output's shape: no index arithmetic.
__kernel void binary_contiguous(int count, int op, __global const float* a, __global const float* b,
                                __global float* out) {
    int i = get_global_id(0);
    if (i < count) out[i] = binary_value(op, a[i], b[i]);
}

// Element offset of flat index `i` of a 4-dimensional shape read through `strides`.
int strided_offset(int i, int4 shape, int4 strides) {
    int i3 = i % shape.w;
    i /= shape.w;
    int i2 = i % shape.z;
    i /= shape.z;
    int i1 = i % shape.y;
    int i0 = i / shape.y;
    return i0 * strides.x + i1 * strides.y + i2 * strides.z + i3 * strides.w;
}

// out (dense) = a ∘ b over a shape of up to 4 dimensions (the host merges and splits larger ones);
// a stride of 0 broadcasts.
__kernel void binary_strided(int count, int op, int4 shape, __global const float* a, int offsetA, int4 stridesA,
                             __global const float* b, int offsetB, int4 stridesB, __global float* out,
                             int offsetOut) {
    int i = get_global_id(0);
    if (i >= count) return;
    float left = a[offsetA + strided_offset(i, shape, stridesA)];
    float right = b[offsetB + strided_offset(i, shape, stridesB)];
    out[offsetOut + i] = binary_value(op, left, right);
}

__kernel void copy_strided(int count, int4 shape, __global const float* source, int offsetSource,
                           int4 stridesSource, __global float* destination, int offsetDestination,
                           int4 stridesDestination) {
    int i = get_global_id(0);
    if (i >= count) return;
    destination[offsetDestination + strided_offset(i, shape, stridesDestination)] =
        source[offsetSource + strided_offset(i, shape, stridesSource)];
}

// Counter-based uniform numbers: element i is SplitMix64(seed ^ mix(offset + i)) scaled to [0, 1).
// The CPU backend computes the same function (Sources/Backend/CPU/CPUBackend+Random.swift).
ulong splitmix64(ulong z) {
    z += 0x9E3779B97F4A7C15UL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

__kernel void random_uniform(int count, ulong seed, ulong offset, __global float* out) {
    int i = get_global_id(0);
    if (i >= count) return;
    ulong bits = splitmix64(seed ^ splitmix64(offset + (ulong)i));
    out[i] = (float)(bits >> 40) * (1.0f / 16777216.0f);
}

// out[n, c] = table[indices[n], c]; indices outside [0, tableRows) give zeros.
__kernel void gather_rows(int indexCount, int columns, int tableRows, __global const float* table,
                          __global const int* indices, __global float* out) {
    int i = get_global_id(0);
    if (i >= indexCount * columns) return;
    int n = i / columns;
    int c = i - n * columns;
    int row = indices[n];
    out[i] = (row >= 0 && row < tableRows) ? table[row * columns + c] : 0.0f;
}

// table[indices[n], c] += source[n, c], one work-item per column adding rows in increasing n, so the sum
// is deterministic and no update is lost when many indices repeat.
__kernel void scatter_add_rows(int indexCount, int columns, int tableRows, __global const float* source,
                               __global const int* indices, __global float* table) {
    int c = get_global_id(0);
    if (c >= columns) return;
    for (int n = 0; n < indexCount; n++) {
        int row = indices[n];
        if (row >= 0 && row < tableRows) table[row * columns + c] += source[n * columns + c];
    }
}

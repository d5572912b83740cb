/*
 * elementwise.cl - the elementwise family of Kiln's OpenCL backend: unary functions and their
 * derivatives, binary functions with broadcasting, and strided copies.
 *
 * MATH (the float64 definitions are Reference.unary, Reference.unaryDerivative, Reference.binary and
 * Reference.copy in Sources/Backend/Reference/Reference+Elementwise.swift)
 *     unary:           y[i] = f(x[i])                         f = unary_value(op, ., a, b)
 *     unary_backward:  dx[i] = dy[i] * f'(x[i])               f' = unary_derivative(op, x, y, a, b),
 *                                                             from the input x or the output y, whichever
 *                                                             is cheaper (both are passed)
 *     binary_*:        out[i] = a[i] op b[i]                  over a shape, a and b read through strides
 *                                                             (a stride of 0 broadcasts)
 *     copy_strided:    destination[strided(i)] = source[strided(i)]
 *   Op codes match UnaryOp.code and BinaryOp.rawValue (Sources/Backend/Families/Elementwise.swift) and
 *   the enums of Sources/CKilnCPU/elementwise.c; `a` and `b` are UnaryOp.parameters (a scale, a shift, an
 *   exponent, clamp bounds, a step threshold; 0 where unused).
 *
 * LAYOUTS
 *   Every buffer holds floats; counts, offsets and strides are in elements. binary_strided and
 *   copy_strided take a shape of exactly four dimensions (int4, outermost first) and one int4 of strides
 *   per operand: the host merges mergeable dimensions and iterates any leading dimensions beyond four
 *   (CoalescedLayouts.pieces), padding with size-1 axes. binary_* write `out` densely; out may alias an
 *   operand that is dense with offset 0. y may alias x; dx may alias dy.
 *
 * LAUNCH GEOMETRY
 *   One work-item per element: global = count rounded up to a multiple of the local size, local =
 *   OpenCLTuning.elementwiseGroupSize (64 on CPU devices, 256 on GPUs). Each kernel takes its element count
 *   first and guards get_global_id(0) < count, because the host always launches exact multiples of the
 *   work-group size (PoCL has given wrong results otherwise).
 *
 * OPTIONS
 *   None: these kernels are memory-bound one-liners with nothing to tune at build time.
 */

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

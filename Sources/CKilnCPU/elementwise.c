// The elementwise family's CPU loops (Kernels/elementwise.cl is the OpenCL twin): unary ops and their
// derivatives, binary ops over broadcast rows, strided copies. Each op is one loop chosen by a switch
// outside it. Ops built on e^x use kiln_exp for the bulk of the elements (vectorized) and the C library
// for the last count % 8, as the Swift loops did; the others call the C library element by element.
#include "loops.h"

enum {
    UNARY_NEGATE = 0, UNARY_RELU = 1, UNARY_GELU = 2, UNARY_SILU = 3, UNARY_SIGMOID = 4, UNARY_LOG_SIGMOID = 5,
    UNARY_TANH = 6, UNARY_EXP = 7, UNARY_LOG = 8, UNARY_SQRT = 9, UNARY_RSQRT = 10, UNARY_RECIPROCAL = 11,
    UNARY_SQUARE = 12, UNARY_ABS = 13, UNARY_SCALE = 14, UNARY_AFFINE = 15, UNARY_POWER = 16, UNARY_CLAMP = 17,
    UNARY_STEP = 18,
};

enum {
    BINARY_ADD = 0, BINARY_SUBTRACT = 1, BINARY_MULTIPLY = 2, BINARY_DIVIDE = 3, BINARY_MAXIMUM = 4,
    BINARY_MINIMUM = 5, BINARY_EQUAL = 6, BINARY_GREATER = 7,
};

#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f

// MARK: - Unary

// Runs `store` for i in [begin, end) with v = x[i]. `vectorize` is KILN_ASSUME_SAFE, or nothing where the
// body calls the C library (no vector version of the call exists, and asking would only warn).
#define EACH(vectorize, begin, end, store)                      \
    vectorize for (ptrdiff_t i = (begin); i < (end); i++) {     \
        const float v = x[i];                                   \
        (void)v;                                                \
        store;                                                  \
    }

// The first count − count % 8 elements, which the Swift loops ran eight lanes at a time.
#define BULK (count & ~(ptrdiff_t)7)

// y[i] = f(v): vectorized (MAP), element by element where f calls the C library (MAP_CALLS), or with
// `lanes` for the bulk and `tail` for the rest (MAP_LANES).
#define MAP(f) EACH(KILN_ASSUME_SAFE, 0, count, y[i] = (f)) return;
#define MAP_CALLS(f) EACH(, 0, count, y[i] = (f)) return;
#define MAP_LANES(lanes, tail) EACH(KILN_ASSUME_SAFE, 0, BULK, y[i] = (lanes)) EACH(, BULK, count, y[i] = (tail)) return;

KILN_INLINE void unary_body(int op, float a, float b, const float *x, float *y, ptrdiff_t count) {
    switch (op) {
    case UNARY_NEGATE: MAP(-v)
    case UNARY_RELU: MAP(v > 0.0f ? v : 0.0f)
    case UNARY_GELU: MAP_CALLS(0.5f * v * erfcf(-v * INV_SQRT2))  // erfc keeps precision for x ≪ 0
    case UNARY_SILU: MAP_LANES(v * kiln_sigmoid(v), v * kiln_sigmoid_libm(v))
    case UNARY_SIGMOID: MAP_LANES(kiln_sigmoid(v), kiln_sigmoid_libm(v))
    case UNARY_LOG_SIGMOID: MAP_CALLS((0.0f < v ? 0.0f : v) - log1pf(expf(-fabsf(v))))
    case UNARY_TANH: MAP_CALLS(tanhf(v))
    case UNARY_EXP: MAP_LANES(kiln_exp(v), expf(v))
    case UNARY_LOG: MAP_CALLS(logf(v))
    case UNARY_SQRT: MAP(kiln_sqrt(v))
    case UNARY_RSQRT: MAP(1.0f / kiln_sqrt(v))
    case UNARY_RECIPROCAL: MAP(1.0f / v)
    case UNARY_SQUARE: MAP(v * v)
    case UNARY_ABS: MAP(fabsf(v))
    case UNARY_SCALE: MAP(a * v)
    case UNARY_AFFINE: MAP(a * v + b)
    case UNARY_POWER: MAP_CALLS(powf(v, a))
    // min(max(v, low), high) with Swift's rules for ties and NaN: max(v, a) = a ≥ v ? a : v.
    case UNARY_CLAMP: MAP(({ const float m = a >= v ? a : v; b < m ? b : m; }))
    case UNARY_STEP: MAP(v >= a ? 1.0f : 0.0f)
    default: MAP_CALLS(NAN)
    }
}

KILN_LOOP_VERSIONS(unary, (int op, float a, float b, const float *x, float *y, ptrdiff_t count),
                   (op, a, b, x, y, count))

// Ops whose loops call the C library element by element: no vector version gains anything for them, and
// the AVX-512 ones measured slower (the library's functions are SSE code), so they stop at AVX2.
KILN_INLINE int calls_library(int op, int backward) {
    switch (op) {
    case UNARY_GELU:
    case UNARY_TANH:
    case UNARY_POWER: return 1;
    case UNARY_LOG_SIGMOID:
    case UNARY_LOG: return !backward;
    default: return 0;
    }
}

void kiln_unary(int op, float a, float b, const float *x, float *y, ptrdiff_t count) {
    if (calls_library(op, 0)) {
        KILN_DISPATCH_AVX2(unary, (op, a, b, x, y, count))
    } else {
        KILN_DISPATCH(unary, (op, a, b, x, y, count))
    }
}

// dx[i] = dy[i] · d, where d may read w = y[i], the op's output; SCALE_CALLS and SCALE_LANES as MAP_CALLS
// and MAP_LANES.
#define SCALE(d) EACH(KILN_ASSUME_SAFE, 0, count, const float w = y[i]; (void)w; dx[i] = dy[i] * (d)) return;
#define SCALE_CALLS(d) EACH(, 0, count, const float w = y[i]; (void)w; dx[i] = dy[i] * (d)) return;
#define SCALE_LANES(lanes, tail) EACH(KILN_ASSUME_SAFE, 0, BULK, dx[i] = dy[i] * (lanes)) EACH(, BULK, count, dx[i] = dy[i] * (tail)) return;

KILN_INLINE void unary_backward_body(int op, float a, float b, const float *x, const float *y, const float *dy,
                                     float *dx, ptrdiff_t count) {
    (void)b;
    switch (op) {
    case UNARY_NEGATE: SCALE(-1.0f)
    case UNARY_RELU: SCALE(v > 0.0f ? 1.0f : 0.0f)
    case UNARY_GELU: SCALE_CALLS(0.5f * erfcf(-v * INV_SQRT2) + v * INV_SQRT_2PI * expf(-0.5f * v * v))
    case UNARY_SILU:
        // σ(x)(1 + x σ(−x)), with 1 − σ(x) computed as σ(−x) so it keeps its precision.
        SCALE_LANES(kiln_sigmoid(v) * (1.0f + v * kiln_sigmoid(-v)), kiln_sigmoid_libm(v) * (1.0f + v * kiln_sigmoid_libm(-v)))
    case UNARY_SIGMOID: SCALE_LANES(kiln_sigmoid(v) * kiln_sigmoid(-v), kiln_sigmoid_libm(v) * kiln_sigmoid_libm(-v))
    case UNARY_LOG_SIGMOID: SCALE_LANES(kiln_sigmoid(-v), kiln_sigmoid_libm(-v))
    // sech²(x) from the input: 1 − y² loses precision where |y| is near 1.
    case UNARY_TANH: SCALE_CALLS(({ const float c = coshf(v); 1.0f / (c * c); }))
    case UNARY_EXP: SCALE(w)
    case UNARY_LOG: SCALE(1.0f / v)
    case UNARY_SQRT: SCALE(0.5f / w)
    case UNARY_RSQRT: SCALE(-0.5f * w * w * w)
    case UNARY_RECIPROCAL: SCALE(-w * w)
    case UNARY_SQUARE: SCALE(2.0f * v)
    case UNARY_ABS: SCALE(v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f))
    case UNARY_SCALE:
    case UNARY_AFFINE: SCALE(a)
    case UNARY_POWER: SCALE_CALLS(a * powf(v, a - 1.0f))
    case UNARY_CLAMP: SCALE(v >= a && v <= b ? 1.0f : 0.0f)
    case UNARY_STEP: SCALE(0.0f)
    default: SCALE_CALLS(NAN)
    }
}

KILN_LOOP_VERSIONS(unary_backward,
                   (int op, float a, float b, const float *x, const float *y, const float *dy, float *dx, ptrdiff_t count),
                   (op, a, b, x, y, dy, dx, count))

void kiln_unary_backward(int op, float a, float b, const float *x, const float *y, const float *dy, float *dx,
                         ptrdiff_t count) {
    if (calls_library(op, 1)) {
        KILN_DISPATCH_AVX2(unary_backward, (op, a, b, x, y, dy, dx, count))
    } else {
        KILN_DISPATCH(unary_backward, (op, a, b, x, y, dy, dx, count))
    }
}

// MARK: - Binary

// out[i] = f(l, r) for one row, with l and r read at strides 1 or 0 (broadcast) or any other.
#define ZIP_LOOP(left, right, f)                                \
    KILN_ASSUME_SAFE for (ptrdiff_t i = 0; i < count; i++) {    \
        const float l = (left), r = (right);                    \
        (void)l;                                                \
        (void)r;                                                \
        out[i] = (f);                                           \
    }

#define ZIP(f)                                                                              \
    if (a_stride == 1 && b_stride == 1) {                                                   \
        ZIP_LOOP(a[i], b[i], f)                                                             \
    } else if (a_stride == 1 && b_stride == 0) {                                            \
        const float scalar = b[0];                                                          \
        ZIP_LOOP(a[i], scalar, f)                                                           \
    } else if (a_stride == 0 && b_stride == 1) {                                            \
        const float scalar = a[0];                                                          \
        ZIP_LOOP(scalar, b[i], f)                                                           \
    } else {                                                                                \
        ZIP_LOOP(a[i * a_stride], b[i * b_stride], f)                                       \
    }                                                                                       \
    return;

KILN_INLINE void binary_row(int op, const float *a, ptrdiff_t a_stride, const float *b, ptrdiff_t b_stride,
                            float *out, ptrdiff_t count) {
    switch (op) {
    case BINARY_ADD: ZIP(l + r)
    case BINARY_SUBTRACT: ZIP(l - r)
    case BINARY_MULTIPLY: ZIP(l * r)
    case BINARY_DIVIDE: ZIP(l / r)
    case BINARY_MAXIMUM: ZIP(r >= l ? r : l)  // Swift's max(l, r)
    case BINARY_MINIMUM: ZIP(r < l ? r : l)   // Swift's min(l, r)
    case BINARY_EQUAL: ZIP(l == r ? 1.0f : 0.0f)
    case BINARY_GREATER: ZIP(l > r ? 1.0f : 0.0f)
    default: ZIP(NAN)
    }
}

// The offset of row `row` of the leading dimensions in a layout with `strides` (one per dimension).
KILN_INLINE ptrdiff_t row_offset(ptrdiff_t row, ptrdiff_t outer_rank, const ptrdiff_t *outer_shape,
                                 const ptrdiff_t *strides) {
    ptrdiff_t offset = 0;
    for (ptrdiff_t axis = outer_rank - 1; axis >= 0; axis--) {
        offset += (row % outer_shape[axis]) * strides[axis];
        row /= outer_shape[axis];
    }
    return offset;
}

KILN_INLINE void binary_body(int op, ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t inner,
                             ptrdiff_t outer_rank, const ptrdiff_t *outer_shape, const float *a,
                             ptrdiff_t a_offset, const ptrdiff_t *a_strides, const float *b, ptrdiff_t b_offset,
                             const ptrdiff_t *b_strides, float *out) {
    for (ptrdiff_t row = row_begin; row < row_end; row++) {
        const float *left = a + a_offset + row_offset(row, outer_rank, outer_shape, a_strides);
        const float *right = b + b_offset + row_offset(row, outer_rank, outer_shape, b_strides);
        binary_row(op, left, a_strides[outer_rank], right, b_strides[outer_rank], out + row * inner, inner);
    }
}

KILN_LOOP_VERSIONS_AVX2(binary,
                   (int op, ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t inner, ptrdiff_t outer_rank,
                    const ptrdiff_t *outer_shape, const float *a, ptrdiff_t a_offset, const ptrdiff_t *a_strides,
                    const float *b, ptrdiff_t b_offset, const ptrdiff_t *b_strides, float *out),
                   (op, row_begin, row_end, inner, outer_rank, outer_shape, a, a_offset, a_strides, b, b_offset,
                    b_strides, out))

void kiln_binary(int op, ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t inner, ptrdiff_t outer_rank,
                 const ptrdiff_t *outer_shape, const float *a, ptrdiff_t a_offset, const ptrdiff_t *a_strides,
                 const float *b, ptrdiff_t b_offset, const ptrdiff_t *b_strides, float *out) {
    KILN_DISPATCH_AVX2(binary, (op, row_begin, row_end, inner, outer_rank, outer_shape, a, a_offset, a_strides,
                                b, b_offset, b_strides, out))
}

// MARK: - Strided copy

KILN_INLINE void copy_strided_body(ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t inner, ptrdiff_t outer_rank,
                                   const ptrdiff_t *outer_shape, const float *source, ptrdiff_t source_offset,
                                   const ptrdiff_t *source_strides, float *destination,
                                   ptrdiff_t destination_offset, const ptrdiff_t *destination_strides) {
    const ptrdiff_t from_stride = source_strides[outer_rank], to_stride = destination_strides[outer_rank];
    for (ptrdiff_t row = row_begin; row < row_end; row++) {
        const float *from = source + source_offset + row_offset(row, outer_rank, outer_shape, source_strides);
        float *to = destination + destination_offset + row_offset(row, outer_rank, outer_shape, destination_strides);
        if (from_stride == 1 && to_stride == 1) {
            memcpy(to, from, (size_t)inner * sizeof(float));
        } else {
            for (ptrdiff_t i = 0; i < inner; i++) to[i * to_stride] = from[i * from_stride];
        }
    }
}

KILN_LOOP_VERSIONS_AVX2(copy_strided,
                   (ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t inner, ptrdiff_t outer_rank,
                    const ptrdiff_t *outer_shape, const float *source, ptrdiff_t source_offset,
                    const ptrdiff_t *source_strides, float *destination, ptrdiff_t destination_offset,
                    const ptrdiff_t *destination_strides),
                   (row_begin, row_end, inner, outer_rank, outer_shape, source, source_offset, source_strides,
                    destination, destination_offset, destination_strides))

void kiln_copy_strided(ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t inner, ptrdiff_t outer_rank,
                       const ptrdiff_t *outer_shape, const float *source, ptrdiff_t source_offset,
                       const ptrdiff_t *source_strides, float *destination, ptrdiff_t destination_offset,
                       const ptrdiff_t *destination_strides) {
    KILN_DISPATCH_AVX2(copy_strided, (row_begin, row_end, inner, outer_rank, outer_shape, source, source_offset,
                                      source_strides, destination, destination_offset, destination_strides))
}

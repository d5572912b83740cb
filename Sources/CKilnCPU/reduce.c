// The reduce family's CPU loops (Kernels/reduce.cl is the OpenCL twin). Sums accumulate in double
// precision element by element in order along the axis, so long axes stay accurate and the result does
// not depend on how rows are split across threads; max and min are exact in any order and run in lanes.
#include "loops.h"

enum { REDUCE_SUM = 0, REDUCE_MEAN = 1, REDUCE_MAX = 2, REDUCE_MIN = 3, REDUCE_SUM_OF_SQUARES = 4 };

// Swift's max(a, b) and min(a, b): `b ≥ a ? b : a` and `b < a ? b : a`.
KILN_INLINE float larger(float a, float b) { return b >= a ? b : a; }
KILN_INLINE float smaller(float a, float b) { return b < a ? b : a; }

// The max or min of x[0..<length] (length ≥ 1), eight lanes at a time.
KILN_INLINE float extreme_of_row(int maximum, const float *x, ptrdiff_t length) {
    float lanes[8];
    for (int lane = 0; lane < 8; lane++) lanes[lane] = x[0];
    ptrdiff_t index = 0;
    for (; index + 8 <= length; index += 8) {
        for (int lane = 0; lane < 8; lane++) {
            lanes[lane] = maximum ? larger(lanes[lane], x[index + lane]) : smaller(lanes[lane], x[index + lane]);
        }
    }
    float result = lanes[0];
    for (int lane = 1; lane < 8; lane++) result = maximum ? larger(result, lanes[lane]) : smaller(result, lanes[lane]);
    for (; index < length; index++) result = maximum ? larger(result, x[index]) : smaller(result, x[index]);
    return result;
}

KILN_INLINE void reduce_rows_body(int op, const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t length) {
    for (ptrdiff_t row = begin; row < end; row++) {
        const float *line = x + row * length;
        switch (op) {
        case REDUCE_MAX:
        case REDUCE_MIN: y[row] = extreme_of_row(op == REDUCE_MAX, line, length); break;
        case REDUCE_SUM_OF_SQUARES: {
            double sum = 0.0;
            for (ptrdiff_t index = 0; index < length; index++) sum += (double)line[index] * (double)line[index];
            y[row] = (float)sum;
            break;
        }
        default: {
            double sum = 0.0;
            for (ptrdiff_t index = 0; index < length; index++) sum += (double)line[index];
            y[row] = (float)(op == REDUCE_MEAN ? sum / (double)length : sum);
            break;
        }
        }
    }
}

KILN_LOOP_VERSIONS_AVX2(reduce_rows, (int op, const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t length),
                   (op, x, y, begin, end, length))

void kiln_reduce_rows(int op, const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t length) {
    KILN_DISPATCH_AVX2(reduce_rows, (op, x, y, begin, end, length))
}

enum { MAXIMUM_BLOCK = 256 };

// One block of at most MAXIMUM_BLOCK columns: walks the axis line by line, so reads stay contiguous.
KILN_INLINE void reduce_block(int op, const float *base, float *out, ptrdiff_t width, ptrdiff_t length, ptrdiff_t inner) {
    if (op == REDUCE_MAX || op == REDUCE_MIN) {
        float extreme[MAXIMUM_BLOCK];
        for (ptrdiff_t column = 0; column < width; column++) extreme[column] = base[column];
        for (ptrdiff_t step = 1; step < length; step++) {
            const float *line = base + step * inner;
            if (op == REDUCE_MAX) {
                for (ptrdiff_t column = 0; column < width; column++) extreme[column] = larger(extreme[column], line[column]);
            } else {
                for (ptrdiff_t column = 0; column < width; column++) extreme[column] = smaller(extreme[column], line[column]);
            }
        }
        for (ptrdiff_t column = 0; column < width; column++) out[column] = extreme[column];
        return;
    }
    double sums[MAXIMUM_BLOCK];
    for (ptrdiff_t column = 0; column < width; column++) sums[column] = 0.0;
    for (ptrdiff_t step = 0; step < length; step++) {
        const float *line = base + step * inner;
        if (op == REDUCE_SUM_OF_SQUARES) {
            // The square in float, then the sum in double, as the Swift loop did.
            for (ptrdiff_t column = 0; column < width; column++) sums[column] += (double)(line[column] * line[column]);
        } else {
            for (ptrdiff_t column = 0; column < width; column++) sums[column] += (double)line[column];
        }
    }
    const double divisor = op == REDUCE_MEAN ? (double)length : 1.0;
    for (ptrdiff_t column = 0; column < width; column++) out[column] = (float)(sums[column] / divisor);
}

KILN_INLINE void reduce_columns_body(int op, const float *x, float *y, ptrdiff_t begin, ptrdiff_t end,
                                     ptrdiff_t length, ptrdiff_t inner, ptrdiff_t block_width) {
    const ptrdiff_t width_limit = block_width < MAXIMUM_BLOCK ? block_width : MAXIMUM_BLOCK;
    const ptrdiff_t blocks_per_row = (inner + width_limit - 1) / width_limit;
    for (ptrdiff_t block = begin; block < end; block++) {
        const ptrdiff_t o = block / blocks_per_row;
        const ptrdiff_t start = (block % blocks_per_row) * width_limit;
        const ptrdiff_t width = inner - start < width_limit ? inner - start : width_limit;
        reduce_block(op, x + o * length * inner + start, y + o * inner + start, width, length, inner);
    }
}

KILN_LOOP_VERSIONS_AVX2(reduce_columns,
                   (int op, const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t length, ptrdiff_t inner,
                    ptrdiff_t block_width),
                   (op, x, y, begin, end, length, inner, block_width))

void kiln_reduce_columns(int op, const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t length,
                         ptrdiff_t inner, ptrdiff_t block_width) {
    KILN_DISPATCH_AVX2(reduce_columns, (op, x, y, begin, end, length, inner, block_width))
}

// The rows family's CPU loops (Kernels/rows.cl is the OpenCL twin): softmax, log-softmax, softmax
// cross-entropy and RMSNorm over rows of a row-major [rows, columns] matrix. One row is never split
// between threads, and every sum runs in a fixed order: the exponentials of a row in eight float lanes
// (element c in lane c % 8), the lanes then added in double, then the last columns % 8 in double; the
// other row sums in double, column by column.
#include "loops.h"

// The largest element of a row and Σ exp(x − largest), the two passes every softmax-like op needs.
KILN_INLINE void max_and_exp_sum(const float *row, ptrdiff_t columns, float *largest_out, double *total_out) {
    float largest = -INFINITY;
    ptrdiff_t column = 0;
    if (columns >= 8) {
        float lanes[8];
        for (int lane = 0; lane < 8; lane++) lanes[lane] = -INFINITY;
        for (; column + 8 <= columns; column += 8) {
            for (int lane = 0; lane < 8; lane++) lanes[lane] = row[column + lane] > lanes[lane] ? row[column + lane] : lanes[lane];
        }
        for (int lane = 0; lane < 8; lane++) largest = lanes[lane] > largest ? lanes[lane] : largest;
    }
    for (; column < columns; column++) largest = row[column] >= largest ? row[column] : largest;
    float sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    column = 0;
    for (; column + 8 <= columns; column += 8) {
        for (int lane = 0; lane < 8; lane++) sums[lane] += kiln_exp(row[column + lane] - largest);
    }
    double total = 0.0;
    for (int lane = 0; lane < 8; lane++) total += (double)sums[lane];
    for (; column < columns; column++) total += (double)expf(row[column] - largest);
    *largest_out = largest;
    *total_out = total;
}

// out[c] = exp(in[c] − shift) · factor for one row: kiln_exp for the bulk, expf for the last columns % 8.
KILN_INLINE void write_exp(const float *in, float *out, ptrdiff_t columns, float shift, float factor) {
    const ptrdiff_t bulk = columns & ~(ptrdiff_t)7;
    KILN_ASSUME_SAFE for (ptrdiff_t column = 0; column < bulk; column++) out[column] = kiln_exp(in[column] - shift) * factor;
    for (ptrdiff_t column = bulk; column < columns; column++) out[column] = expf(in[column] - shift) * factor;
}

KILN_INLINE void softmax_body(const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns) {
    for (ptrdiff_t row = begin; row < end; row++) {
        float largest;
        double total;
        max_and_exp_sum(x + row * columns, columns, &largest, &total);
        write_exp(x + row * columns, y + row * columns, columns, largest, (float)(1.0 / total));
    }
}

KILN_INLINE void softmax_backward_body(const float *y, const float *dy, float *dx, ptrdiff_t begin, ptrdiff_t end,
                                       ptrdiff_t columns) {
    for (ptrdiff_t row = begin; row < end; row++) {
        const ptrdiff_t base = row * columns;
        double dot = 0.0;
        for (ptrdiff_t column = 0; column < columns; column++) dot += (double)(dy[base + column] * y[base + column]);
        const float shift = (float)dot;
        KILN_ASSUME_SAFE for (ptrdiff_t column = 0; column < columns; column++) {
            dx[base + column] = y[base + column] * (dy[base + column] - shift);
        }
    }
}

KILN_INLINE void log_softmax_body(const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns) {
    for (ptrdiff_t row = begin; row < end; row++) {
        const float *in = x + row * columns;
        float *out = y + row * columns;
        float largest;
        double total;
        max_and_exp_sum(in, columns, &largest, &total);
        const float shift = largest + (float)log(total);
        KILN_ASSUME_SAFE for (ptrdiff_t column = 0; column < columns; column++) out[column] = in[column] - shift;
    }
}

KILN_INLINE void log_softmax_backward_body(const float *y, const float *dy, float *dx, ptrdiff_t begin, ptrdiff_t end,
                                           ptrdiff_t columns) {
    for (ptrdiff_t row = begin; row < end; row++) {
        const ptrdiff_t base = row * columns;
        double total = 0.0;
        for (ptrdiff_t column = 0; column < columns; column++) total += (double)dy[base + column];
        const float sum = (float)total;
        const ptrdiff_t bulk = columns & ~(ptrdiff_t)7;
        KILN_ASSUME_SAFE for (ptrdiff_t column = 0; column < bulk; column++) {
            dx[base + column] = dy[base + column] - kiln_exp(y[base + column]) * sum;
        }
        for (ptrdiff_t column = bulk; column < columns; column++) dx[base + column] = dy[base + column] - expf(y[base + column]) * sum;
    }
}

KILN_INLINE void cross_entropy_body(const float *logits, const int32_t *labels, float *losses, ptrdiff_t begin,
                                    ptrdiff_t end, ptrdiff_t columns) {
    for (ptrdiff_t row = begin; row < end; row++) {
        const ptrdiff_t label = labels[row];
        if (label < 0 || label >= columns) {
            losses[row] = 0.0f;
            continue;
        }
        float largest;
        double total;
        max_and_exp_sum(logits + row * columns, columns, &largest, &total);
        losses[row] = largest + (float)log(total) - logits[row * columns + label];
    }
}

KILN_INLINE void cross_entropy_backward_body(const float *logits, const int32_t *labels, const float *loss_gradient,
                                             float *logits_gradient, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns) {
    for (ptrdiff_t row = begin; row < end; row++) {
        const ptrdiff_t label = labels[row];
        float *out = logits_gradient + row * columns;
        if (label < 0 || label >= columns) {
            memset(out, 0, (size_t)columns * sizeof(float));
            continue;
        }
        float largest;
        double total;
        max_and_exp_sum(logits + row * columns, columns, &largest, &total);
        const float gradient = loss_gradient[row];
        write_exp(logits + row * columns, out, columns, largest, gradient / (float)total);
        out[label] -= gradient;
    }
}

KILN_INLINE void rms_norm_body(const float *x, const float *weight, float *y, float *inverse_rms, ptrdiff_t begin,
                               ptrdiff_t end, ptrdiff_t columns, float epsilon) {
    for (ptrdiff_t row = begin; row < end; row++) {
        const ptrdiff_t base = row * columns;
        double squares = 0.0;
        for (ptrdiff_t column = 0; column < columns; column++) squares += (double)x[base + column] * (double)x[base + column];
        const float rstd = (float)(1.0 / sqrt(squares / (double)columns + (double)epsilon));
        inverse_rms[row] = rstd;
        KILN_ASSUME_SAFE for (ptrdiff_t column = 0; column < columns; column++) {
            y[base + column] = x[base + column] * rstd * weight[column];
        }
    }
}

KILN_INLINE void rms_norm_backward_input_body(const float *x, const float *weight, const float *inverse_rms,
                                              const float *dy, float *dx, ptrdiff_t begin, ptrdiff_t end,
                                              ptrdiff_t columns) {
    for (ptrdiff_t row = begin; row < end; row++) {
        const ptrdiff_t base = row * columns;
        double dot = 0.0;
        for (ptrdiff_t column = 0; column < columns; column++) {
            dot += (double)(dy[base + column] * weight[column] * x[base + column]);
        }
        const float rstd = inverse_rms[row];
        const float correction = rstd * rstd * rstd * (float)dot / (float)columns;
        KILN_ASSUME_SAFE for (ptrdiff_t column = 0; column < columns; column++) {
            dx[base + column] = rstd * weight[column] * dy[base + column] - correction * x[base + column];
        }
    }
}

enum { WEIGHT_BLOCK = 256 };

KILN_INLINE void rms_norm_backward_weight_body(const float *x, const float *inverse_rms, const float *dy,
                                               float *weight_gradient, ptrdiff_t begin, ptrdiff_t end,
                                               ptrdiff_t rows, ptrdiff_t columns) {
    // Blocks of columns, each summed over every row in order: the block's sums stay in registers and L1.
    for (ptrdiff_t start = begin; start < end; start += WEIGHT_BLOCK) {
        const ptrdiff_t width = end - start < WEIGHT_BLOCK ? end - start : WEIGHT_BLOCK;
        double sums[WEIGHT_BLOCK];
        for (ptrdiff_t slot = 0; slot < width; slot++) sums[slot] = 0.0;
        for (ptrdiff_t row = 0; row < rows; row++) {
            const float *gradient = dy + row * columns + start, *input = x + row * columns + start;
            const double rstd = (double)inverse_rms[row];
            for (ptrdiff_t slot = 0; slot < width; slot++) sums[slot] += (double)(gradient[slot] * input[slot]) * rstd;
        }
        for (ptrdiff_t slot = 0; slot < width; slot++) weight_gradient[start + slot] = (float)sums[slot];
    }
}

KILN_LOOP_VERSIONS(softmax, (const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns),
                   (x, y, begin, end, columns))
KILN_LOOP_VERSIONS(softmax_backward,
                   (const float *y, const float *dy, float *dx, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns),
                   (y, dy, dx, begin, end, columns))
KILN_LOOP_VERSIONS(log_softmax, (const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns),
                   (x, y, begin, end, columns))
KILN_LOOP_VERSIONS(log_softmax_backward,
                   (const float *y, const float *dy, float *dx, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns),
                   (y, dy, dx, begin, end, columns))
KILN_LOOP_VERSIONS(cross_entropy,
                   (const float *logits, const int32_t *labels, float *losses, ptrdiff_t begin, ptrdiff_t end,
                    ptrdiff_t columns),
                   (logits, labels, losses, begin, end, columns))
KILN_LOOP_VERSIONS(cross_entropy_backward,
                   (const float *logits, const int32_t *labels, const float *loss_gradient, float *logits_gradient,
                    ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns),
                   (logits, labels, loss_gradient, logits_gradient, begin, end, columns))
KILN_LOOP_VERSIONS(rms_norm,
                   (const float *x, const float *weight, float *y, float *inverse_rms, ptrdiff_t begin, ptrdiff_t end,
                    ptrdiff_t columns, float epsilon),
                   (x, weight, y, inverse_rms, begin, end, columns, epsilon))
KILN_LOOP_VERSIONS(rms_norm_backward_input,
                   (const float *x, const float *weight, const float *inverse_rms, const float *dy, float *dx,
                    ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns),
                   (x, weight, inverse_rms, dy, dx, begin, end, columns))
KILN_LOOP_VERSIONS(rms_norm_backward_weight,
                   (const float *x, const float *inverse_rms, const float *dy, float *weight_gradient, ptrdiff_t begin,
                    ptrdiff_t end, ptrdiff_t rows, ptrdiff_t columns),
                   (x, inverse_rms, dy, weight_gradient, begin, end, rows, columns))

void kiln_softmax(const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns) {
    KILN_DISPATCH(softmax, (x, y, begin, end, columns))
}

void kiln_softmax_backward(const float *y, const float *dy, float *dx, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns) {
    KILN_DISPATCH(softmax_backward, (y, dy, dx, begin, end, columns))
}

void kiln_log_softmax(const float *x, float *y, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns) {
    KILN_DISPATCH(log_softmax, (x, y, begin, end, columns))
}

void kiln_log_softmax_backward(const float *y, const float *dy, float *dx, ptrdiff_t begin, ptrdiff_t end,
                               ptrdiff_t columns) {
    KILN_DISPATCH(log_softmax_backward, (y, dy, dx, begin, end, columns))
}

void kiln_cross_entropy(const float *logits, const int32_t *labels, float *losses, ptrdiff_t begin, ptrdiff_t end,
                        ptrdiff_t columns) {
    KILN_DISPATCH(cross_entropy, (logits, labels, losses, begin, end, columns))
}

void kiln_cross_entropy_backward(const float *logits, const int32_t *labels, const float *loss_gradient,
                                 float *logits_gradient, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns) {
    KILN_DISPATCH(cross_entropy_backward, (logits, labels, loss_gradient, logits_gradient, begin, end, columns))
}

void kiln_rms_norm(const float *x, const float *weight, float *y, float *inverse_rms, ptrdiff_t begin, ptrdiff_t end,
                   ptrdiff_t columns, float epsilon) {
    KILN_DISPATCH(rms_norm, (x, weight, y, inverse_rms, begin, end, columns, epsilon))
}

void kiln_rms_norm_backward_input(const float *x, const float *weight, const float *inverse_rms, const float *dy,
                                  float *dx, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns) {
    KILN_DISPATCH(rms_norm_backward_input, (x, weight, inverse_rms, dy, dx, begin, end, columns))
}

void kiln_rms_norm_backward_weight(const float *x, const float *inverse_rms, const float *dy, float *weight_gradient,
                                   ptrdiff_t begin, ptrdiff_t end, ptrdiff_t rows, ptrdiff_t columns) {
    KILN_DISPATCH(rms_norm_backward_weight, (x, inverse_rms, dy, weight_gradient, begin, end, rows, columns))
}

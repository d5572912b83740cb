/*
 * rows.cl - the rows family of Kiln's OpenCL backend: softmax, log-softmax, softmax cross-entropy and
 * RMSNorm on each row of a row-major [rows, columns] matrix, forward and backward.
 *
 * MATH (the float64 definitions are in Sources/Backend/Reference/Reference+Rows.swift)
 *     softmax:                y = exp(x - max) / sum(exp(x - max))                     (y may alias x)
 *     softmax_backward:       dx = y * (dy - sum(dy * y))                              from the output y
 *     log_softmax:            y = x - max - log(sum(exp(x - max)))                     (y may alias x)
 *     log_softmax_backward:   dx = dy - exp(y) * sum(dy)                               from the output y
 *     cross_entropy_forward:  loss[r] = logsumexp(x[r]) - x[r, label[r]], 0 for a label outside [0, columns)
 *     cross_entropy_backward: dlogits[r] = (softmax(x[r]) - onehot(label[r])) * dloss[r], 0 for ignored rows
 *     rms_norm_forward:       rstd[r] = 1 / sqrt(mean(x[r]^2) + epsilon), y = x * rstd * weight
 *     rms_norm_backward_input:  dx = rstd * w * dy - rstd^3 * x * sum(dy * w * x) / columns
 *     rms_norm_backward_weight: dweight[c] = sum over rows r, in order, of dy * x * rstd
 *   Sums are float32 in a fixed order for a given launch: serial along the row (GROUP_SIZE 1), or
 *   GROUP_SIZE strided partial sums and a tree in local memory.
 *
 * LAYOUTS
 *   x, y, dy, dx, logits [rows, columns]; labels (ints), losses, lossGradient, inverseRMS [rows]; weight,
 *   weightGradient [columns].
 *
 * LAUNCH GEOMETRY
 *   Every kernel but rms_norm_backward_weight takes one row per work-item (GROUP_SIZE == 1: global = rows
 *   rounded up to OpenCLTuning.rowsPerGroup, local = rowsPerGroup) or one row per work-group
 *   (GROUP_SIZE > 1: global = rows * GROUP_SIZE, local = GROUP_SIZE). rms_norm_backward_weight takes one
 *   column per work-item (global = columns rounded up to OpenCLTuning.elementwiseGroupSize). Kernels guard
 *   their edges.
 *
 * OPTIONS
 *   GROUP_SIZE  default 1  work-items sharing one row, a power of two (OpenCLTuning.rowGroupSize: 128 on
 *                          GPUs, so a row's loads coalesce and a whole GPU is busy for few rows; 1 on CPU
 *                          devices such as PoCL, where barriers and local memory are expensive and PoCL
 *                          vectorizes across the rows of a work-group instead).
 */

#ifndef GROUP_SIZE
#define GROUP_SIZE 1
#endif

#if GROUP_SIZE > 1
// Tree sum (or max) of one value per work-item of the group; every work-item receives the result.
#define GROUP_REDUCTION(name, combine)                                 \
    float name(float value, __local float* scratch) {                  \
        int lane = get_local_id(0);                                    \
        scratch[lane] = value;                                         \
        barrier(CLK_LOCAL_MEM_FENCE);                                  \
        for (int width = GROUP_SIZE / 2; width > 0; width >>= 1) {     \
            if (lane < width) scratch[lane] = combine(scratch[lane], scratch[lane + width]); \
            barrier(CLK_LOCAL_MEM_FENCE);                              \
        }                                                              \
        float result = scratch[0];                                     \
        barrier(CLK_LOCAL_MEM_FENCE);                                  \
        return result;                                                 \
    }
#define PLUS(a, b) ((a) + (b))
GROUP_REDUCTION(group_sum, PLUS)
GROUP_REDUCTION(group_max, fmax)

// One work-group per row: the host launches exactly `rows` groups, so there is no edge to guard, and no
// return may come before the barriers (PoCL's default work-group method crashes on one there).
#define ROW_BEGIN                                         \
    __local float scratch[GROUP_SIZE];                    \
    int row = get_group_id(0);                            \
    int lane = get_local_id(0);
#define ROW_LOOP(c) for (int c = lane; c < columns; c += GROUP_SIZE)
#define ROW_MAX(value) group_max(value, scratch)
#define ROW_SUM(value) group_sum(value, scratch)
#else
#define ROW_BEGIN                                         \
    int row = get_global_id(0);                           \
    if (row >= rows) return;
#define ROW_LOOP(c) for (int c = 0; c < columns; c++)
#define ROW_MAX(value) (value)
#define ROW_SUM(value) (value)
#endif

// Declares `largest`, the row's maximum, and `total`, the sum over the row of exp(in[c] - largest): the
// two passes every softmax-like kernel starts with.
#define ROW_MAX_AND_EXP_SUM(in, largest, total)           \
    float largest = -INFINITY;                            \
    ROW_LOOP(c) largest = fmax(largest, in[c]);           \
    largest = ROW_MAX(largest);                           \
    float total = 0.0f;                                   \
    ROW_LOOP(c) total += exp(in[c] - largest);            \
    total = ROW_SUM(total);

// Softmax of each row of x [rows, columns]; y may alias x.
__kernel void softmax_forward(int rows, int columns, __global const float* x, __global float* y) {
    ROW_BEGIN
    __global const float* in = x + (long)row * columns;
    __global float* out = y + (long)row * columns;
    ROW_MAX_AND_EXP_SUM(in, largest, total)
    float inverse = 1.0f / total;
    ROW_LOOP(c) out[c] = exp(in[c] - largest) * inverse;
}

// dx = y * (dy - sum(dy * y)) per row.
__kernel void softmax_backward(int rows, int columns, __global const float* y, __global const float* dy,
                               __global float* dx) {
    ROW_BEGIN
    long base = (long)row * columns;
    float dot = 0.0f;
    ROW_LOOP(c) dot += dy[base + c] * y[base + c];
    dot = ROW_SUM(dot);
    ROW_LOOP(c) dx[base + c] = y[base + c] * (dy[base + c] - dot);
}

// y = x - max - log(sum(exp(x - max))) per row; y may alias x.
__kernel void log_softmax_forward(int rows, int columns, __global const float* x, __global float* y) {
    ROW_BEGIN
    __global const float* in = x + (long)row * columns;
    __global float* out = y + (long)row * columns;
    ROW_MAX_AND_EXP_SUM(in, largest, total)
    float shift = largest + log(total);
    ROW_LOOP(c) out[c] = in[c] - shift;
}

// dx = dy - exp(y) * sum(dy) per row.
__kernel void log_softmax_backward(int rows, int columns, __global const float* y, __global const float* dy,
                                   __global float* dx) {
    ROW_BEGIN
    long base = (long)row * columns;
    float total = 0.0f;
    ROW_LOOP(c) total += dy[base + c];
    total = ROW_SUM(total);
    ROW_LOOP(c) dx[base + c] = dy[base + c] - exp(y[base + c]) * total;
}

// loss[r] = logsumexp(x[r]) - x[r, label[r]]; rows with a negative label are ignored (loss 0).
__kernel void cross_entropy_forward(int rows, int columns, __global const float* logits,
                                    __global const int* labels, __global float* losses) {
    ROW_BEGIN
    __global const float* in = logits + (long)row * columns;
    ROW_MAX_AND_EXP_SUM(in, largest, total)
#if GROUP_SIZE > 1
    if (lane != 0) return;
#endif
    int label = labels[row];
    losses[row] = (label < 0 || label >= columns) ? 0.0f : largest + log(total) - in[label];
}

// dlogits[r] = (softmax(x[r]) - onehot(label[r])) * dloss[r]; zero for ignored rows. An ignored row still
// runs the reductions: with GROUP_SIZE > 1 every work-item must reach their barriers, and PoCL cannot tell
// that a branch on labels[row] is the same for the whole group.
__kernel void cross_entropy_backward(int rows, int columns, __global const float* logits,
                                     __global const int* labels, __global const float* lossGradient,
                                     __global float* logitsGradient) {
    ROW_BEGIN
    __global const float* in = logits + (long)row * columns;
    __global float* out = logitsGradient + (long)row * columns;
    int label = labels[row];
    bool ignored = label < 0 || label >= columns;
    ROW_MAX_AND_EXP_SUM(in, largest, total)
    float scale = lossGradient[row] / total;
    float g = lossGradient[row];
    ROW_LOOP(c) out[c] = ignored ? 0.0f : exp(in[c] - largest) * scale - (c == label ? g : 0.0f);
}

// RMSNorm: rstd[r] = 1/sqrt(mean(x[r]^2) + epsilon), y = x * rstd * weight.
__kernel void rms_norm_forward(int rows, int columns, float epsilon, __global const float* x,
                               __global const float* weight, __global float* y, __global float* inverseRMS) {
    ROW_BEGIN
    long base = (long)row * columns;
    float squares = 0.0f;
    ROW_LOOP(c) squares += x[base + c] * x[base + c];
    squares = ROW_SUM(squares);
    float rstd = 1.0f / sqrt(squares / (float)columns + epsilon);
    ROW_LOOP(c) y[base + c] = x[base + c] * rstd * weight[c];
#if GROUP_SIZE > 1
    if (lane == 0)
#endif
    inverseRMS[row] = rstd;
}

// dx = rstd * w * dy - rstd^3 * x * sum(dy * w * x) / columns.
__kernel void rms_norm_backward_input(int rows, int columns, __global const float* x,
                                      __global const float* weight, __global const float* inverseRMS,
                                      __global const float* dy, __global float* dx) {
    ROW_BEGIN
    long base = (long)row * columns;
    float dot = 0.0f;
    ROW_LOOP(c) dot += dy[base + c] * weight[c] * x[base + c];
    dot = ROW_SUM(dot);
    float rstd = inverseRMS[row];
    float correction = rstd * rstd * rstd * dot / (float)columns;
    ROW_LOOP(c) dx[base + c] = rstd * weight[c] * dy[base + c] - correction * x[base + c];
}

// dweight[c] = sum over rows of dy * x * rstd, one work-item per column, rows in order (deterministic).
__kernel void rms_norm_backward_weight(int rows, int columns, __global const float* x,
                                       __global const float* inverseRMS, __global const float* dy,
                                       __global float* weightGradient) {
    int c = get_global_id(0);
    if (c >= columns) return;
    float sum = 0.0f;
    for (int r = 0; r < rows; r++) sum += dy[(long)r * columns + c] * x[(long)r * columns + c] * inverseRMS[r];
    weightGradient[c] = sum;
}

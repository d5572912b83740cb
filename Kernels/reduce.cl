// Reductions along an axis and the row-wise fused operations built on them: softmax, log-softmax,
// softmax cross-entropy and RMSNorm, forward and backward.
//
// GROUP_SIZE (a power of two, default 1) is the number of work-items that share one row:
// - GROUP_SIZE == 1 (CPU devices such as PoCL): one work-item per row walks it serially; no barriers,
//   no local memory. Launch global = rows rounded up to LOCAL_ROWS, local = LOCAL_ROWS.
// - GROUP_SIZE > 1 (GPUs): one work-group per row, a strided pass then a tree reduction in local memory.
//   Launch global = rows * GROUP_SIZE, local = GROUP_SIZE.
// Reduction op codes match `ReductionOp` in Sources/Backend/Operations.swift.

#ifndef GROUP_SIZE
#define GROUP_SIZE 1
#endif

#define REDUCE_SUM 0
#define REDUCE_MEAN 1
#define REDUCE_MAX 2
#define REDUCE_MIN 3
#define REDUCE_SUM_OF_SQUARES 4

float reduce_identity(int op) {
    if (op == REDUCE_MAX) return -INFINITY;
    if (op == REDUCE_MIN) return INFINITY;
    return 0.0f;
}

float reduce_combine(int op, float accumulated, float value) {
    switch (op) {
    case REDUCE_MAX: return fmax(accumulated, value);
    case REDUCE_MIN: return fmin(accumulated, value);
    default: return accumulated + value;
    }
}

// x viewed as [outer, length, inner] -> y [outer, inner], one work-item per output element. Sums use
// Kahan compensation so long axes stay accurate in float32.
__kernel void reduce_columns(int outer, int length, int inner, int op, __global const float* x,
                             __global float* y) {
    int i = get_global_id(0);
    if (i >= outer * inner) return;
    int o = i / inner;
    int c = i - o * inner;
    __global const float* base = x + (long)o * length * inner + c;
    if (op == REDUCE_MAX || op == REDUCE_MIN) {
        float result = reduce_identity(op);
        for (int l = 0; l < length; l++) result = reduce_combine(op, result, base[(long)l * inner]);
        y[i] = result;
        return;
    }
    float sum = 0.0f, compensation = 0.0f;
    for (int l = 0; l < length; l++) {
        float value = base[(long)l * inner];
        if (op == REDUCE_SUM_OF_SQUARES) value *= value;
        float corrected = value - compensation;
        float next = sum + corrected;
        compensation = (next - sum) - corrected;
        sum = next;
    }
    y[i] = op == REDUCE_MEAN ? sum / (float)length : sum;
}

#if GROUP_SIZE > 1
// Tree reduction of one value per work-item of the group; every work-item receives the result.
float group_reduce(int op, float value, __local float* scratch) {
    int lane = get_local_id(0);
    scratch[lane] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int width = GROUP_SIZE / 2; width > 0; width >>= 1) {
        if (lane < width) scratch[lane] = reduce_combine(op, scratch[lane], scratch[lane + width]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float result = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return result;
}

// x [outer, length] -> y [outer], one work-group per row (inner == 1).
__kernel void reduce_rows(int outer, int length, int op, __global const float* x, __global float* y) {
    __local float scratch[GROUP_SIZE];
    int row = get_group_id(0);
    int lane = get_local_id(0);
    __global const float* base = x + (long)row * length;
    float partial = reduce_identity(op);
    for (int l = lane; l < length; l += GROUP_SIZE) {
        float value = base[l];
        if (op == REDUCE_SUM_OF_SQUARES) value *= value;
        partial = reduce_combine(op, partial, value);
    }
    int combineOp = (op == REDUCE_MAX || op == REDUCE_MIN) ? op : REDUCE_SUM;
    float total = group_reduce(combineOp, partial, scratch);
    if (lane == 0) y[row] = op == REDUCE_MEAN ? total / (float)length : total;
}

#define ROW_BEGIN                                         \
    __local float scratch[GROUP_SIZE];                    \
    int row = get_group_id(0);                            \
    int lane = get_local_id(0);                           \
    if (row >= rows) return;
#define ROW_LOOP(c) for (int c = lane; c < columns; c += GROUP_SIZE)
#define ROW_MAX(value) group_reduce(REDUCE_MAX, value, scratch)
#define ROW_SUM(value) group_reduce(REDUCE_SUM, value, scratch)
#else
#define ROW_BEGIN                                         \
    int row = get_global_id(0);                           \
    if (row >= rows) return;
#define ROW_LOOP(c) for (int c = 0; c < columns; c++)
#define ROW_MAX(value) (value)
#define ROW_SUM(value) (value)
#endif

// Softmax of each row of x [rows, columns]; y may alias x.
__kernel void softmax_forward(int rows, int columns, __global const float* x, __global float* y) {
    ROW_BEGIN
    __global const float* in = x + (long)row * columns;
    __global float* out = y + (long)row * columns;
    float largest = -INFINITY;
    ROW_LOOP(c) largest = fmax(largest, in[c]);
    largest = ROW_MAX(largest);
    float total = 0.0f;
    ROW_LOOP(c) total += exp(in[c] - largest);
    total = ROW_SUM(total);
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
    float largest = -INFINITY;
    ROW_LOOP(c) largest = fmax(largest, in[c]);
    largest = ROW_MAX(largest);
    float total = 0.0f;
    ROW_LOOP(c) total += exp(in[c] - largest);
    total = ROW_SUM(total);
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
    float largest = -INFINITY;
    ROW_LOOP(c) largest = fmax(largest, in[c]);
    largest = ROW_MAX(largest);
    float total = 0.0f;
    ROW_LOOP(c) total += exp(in[c] - largest);
    total = ROW_SUM(total);
#if GROUP_SIZE > 1
    if (lane != 0) return;
#endif
    int label = labels[row];
    losses[row] = (label < 0 || label >= columns) ? 0.0f : largest + log(total) - in[label];
}

// dlogits[r] = (softmax(x[r]) - onehot(label[r])) * dloss[r]; zero for ignored rows.
__kernel void cross_entropy_backward(int rows, int columns, __global const float* logits,
                                     __global const int* labels, __global const float* lossGradient,
                                     __global float* logitsGradient) {
    ROW_BEGIN
    __global const float* in = logits + (long)row * columns;
    __global float* out = logitsGradient + (long)row * columns;
    int label = labels[row];
    if (label < 0 || label >= columns) {
        ROW_LOOP(c) out[c] = 0.0f;
        return;
    }
    float largest = -INFINITY;
    ROW_LOOP(c) largest = fmax(largest, in[c]);
    largest = ROW_MAX(largest);
    float total = 0.0f;
    ROW_LOOP(c) total += exp(in[c] - largest);
    total = ROW_SUM(total);
    float scale = lossGradient[row] / total;
    float g = lossGradient[row];
    ROW_LOOP(c) out[c] = exp(in[c] - largest) * scale - (c == label ? g : 0.0f);
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

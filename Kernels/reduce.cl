/*
 * reduce.cl - the reduce family of Kiln's OpenCL backend: sum, mean, max, min and sum of squares along
 * one axis.
 *
 * MATH (the float64 definition is Reference.reduce, Sources/Backend/Reference/Reference+Reduce.swift)
 *     y[o, i] = op over l < length of x[o, l, i]      x viewed as [outer, length, inner], y as [outer, inner]
 *   op codes match ReductionOp (Sources/Backend/Families/Reduce.swift) and Sources/CKilnCPU/reduce.c:
 *   0 sum, 1 mean, 2 max, 3 min, 4 sum of squares. Sums run in a fixed order for a given launch:
 *   reduce_columns adds along the axis in order with Kahan compensation (float32 accumulators stay accurate
 *   over long axes), reduce_rows adds strided partial sums, then a tree in local memory.
 *
 * LAYOUTS
 *   x: outer * length * inner floats, row-major; y: outer * inner floats.
 *
 * LAUNCH GEOMETRY
 *   reduce_columns: one work-item per output element, global = outer * inner rounded up to
 *   OpenCLTuning.elementwiseGroupSize; any shape.
 *   reduce_rows (built only when GROUP_SIZE > 1): one work-group of GROUP_SIZE work-items per row of
 *   [outer, length] (inner == 1), global = outer * GROUP_SIZE, local = GROUP_SIZE. The host uses it for
 *   inner == 1 and length >= 4 * GROUP_SIZE, where one work-item per row would leave most of a GPU idle.
 *
 * OPTIONS
 *   GROUP_SIZE  default 1  work-items sharing one row in reduce_rows, a power of two
 *                          (OpenCLTuning.rowGroupSize: 128 on GPUs; 1 on CPU devices such as PoCL, where
 *                          barriers and local memory are expensive and one work-item per output walking
 *                          its axis serially is fastest, so reduce_rows is not built).
 */

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
#endif

/*
 * embedding.cl - the embedding family of Kiln's OpenCL backend: rows of a table gathered by index, and
 * the scatter-add of their gradient.
 *
 * MATH (the float64 definitions are Reference.gatherRows and Reference.scatterAddRows,
 * Sources/Backend/Reference/Reference+Embedding.swift)
 *     gather_rows:       out[n, c] = table[indices[n], c]         (0 for an index outside [0, tableRows))
 *     scatter_add_rows:  table[indices[n], c] += source[n, c]     (out-of-range indices skipped), adding
 *                        rows in increasing n, so the sum is deterministic and no update is lost however
 *                        often an index repeats (no atomics)
 *
 * LAYOUTS
 *   table [tableRows, columns], out and source [indexCount, columns], row-major floats; indices holds
 *   indexCount ints.
 *
 * LAUNCH GEOMETRY
 *   gather_rows: one work-item per output element (global = indexCount * columns rounded up to the local
 *   size). scatter_add_rows: one work-item per column, each walking every index in order (global =
 *   columns rounded up). Local = OpenCLTuning.elementwiseGroupSize; kernels guard their edges.
 *
 * OPTIONS
 *   None.
 */

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

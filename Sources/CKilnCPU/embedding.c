// The embedding family's CPU loops (Kernels/embedding.cl is the OpenCL twin): rows gathered by index and
// the scatter-add of their gradient. The scatter adds rows in increasing n, one thread per column range,
// as the OpenCL kernel does one work-item per column, so repeated indices sum in a fixed order.
#include "loops.h"

KILN_INLINE void gather_rows_body(const float *table, ptrdiff_t table_rows, const int32_t *indices, float *out,
                                  ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns) {
    for (ptrdiff_t n = begin; n < end; n++) {
        const ptrdiff_t row = indices[n];
        float *target = out + n * columns;
        if (row >= 0 && row < table_rows) {
            memcpy(target, table + row * columns, (size_t)columns * sizeof(float));
        } else {
            memset(target, 0, (size_t)columns * sizeof(float));
        }
    }
}

KILN_INLINE void scatter_add_rows_body(const float *source, const int32_t *indices, ptrdiff_t index_count,
                                       float *table, ptrdiff_t table_rows, ptrdiff_t begin, ptrdiff_t end,
                                       ptrdiff_t columns) {
    for (ptrdiff_t n = 0; n < index_count; n++) {
        const ptrdiff_t row = indices[n];
        if (row < 0 || row >= table_rows) continue;
        const float *from = source + n * columns;
        float *to = table + row * columns;
        KILN_ASSUME_SAFE for (ptrdiff_t column = begin; column < end; column++) to[column] += from[column];
    }
}

KILN_LOOP_VERSIONS_AVX2(gather_rows,
                   (const float *table, ptrdiff_t table_rows, const int32_t *indices, float *out, ptrdiff_t begin,
                    ptrdiff_t end, ptrdiff_t columns),
                   (table, table_rows, indices, out, begin, end, columns))
KILN_LOOP_VERSIONS_AVX2(scatter_add_rows,
                   (const float *source, const int32_t *indices, ptrdiff_t index_count, float *table,
                    ptrdiff_t table_rows, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns),
                   (source, indices, index_count, table, table_rows, begin, end, columns))

void kiln_gather_rows(const float *table, ptrdiff_t table_rows, const int32_t *indices, float *out, ptrdiff_t begin,
                      ptrdiff_t end, ptrdiff_t columns) {
    KILN_DISPATCH_AVX2(gather_rows, (table, table_rows, indices, out, begin, end, columns))
}

void kiln_scatter_add_rows(const float *source, const int32_t *indices, ptrdiff_t index_count, float *table,
                           ptrdiff_t table_rows, ptrdiff_t begin, ptrdiff_t end, ptrdiff_t columns) {
    KILN_DISPATCH_AVX2(scatter_add_rows, (source, indices, index_count, table, table_rows, begin, end, columns))
}

// Undefines the vector macros of one instruction set's pass through scan_loops.h and
// scan_chunked_loops.h (see scan.c), ready for the next.
#undef V
#undef LANES
#undef VARIANT
#undef TARGET
#undef REDUCTIONS
#undef vload
#undef vstore
#undef vset
#undef vzero
#undef vsub
#undef vmul
#undef vmin
#undef vmax
#undef vmadd
#undef vnmadd
#undef vload_n
#undef vstore_n
#undef vsum
#undef vexp_scale
#undef vselect_below
#undef vselect_above
#undef vadd
#undef vsum16
#undef GEMM_ROWS
#undef TRANSPOSE8

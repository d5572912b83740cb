// Raw OpenBLAS, the peer the CPU backend's gemm is compared with.
#include <cblas.h>

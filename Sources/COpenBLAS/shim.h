// OpenBLAS's CBLAS interface (Debian: libopenblas-dev).
#ifndef KILN_COPENBLAS_SHIM_H
#define KILN_COPENBLAS_SHIM_H
#include <cblas.h>
#endif

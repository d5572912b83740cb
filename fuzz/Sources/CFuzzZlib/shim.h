// zlib (Debian: zlib1g-dev), for compressing in the gzip fuzz target's round trip.
#ifndef KILN_FUZZ_ZLIB_SHIM_H
#define KILN_FUZZ_ZLIB_SHIM_H
#include <zlib.h>
#endif

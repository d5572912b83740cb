// zlib (Debian: zlib1g-dev), for reading .gz data files.
#ifndef KILN_CZLIB_SHIM_H
#define KILN_CZLIB_SHIM_H
#include <zlib.h>
#endif

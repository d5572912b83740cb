// CLBlast's C API (Debian: libclblast-dev) and the OpenCL calls the benchmark needs to drive it.
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <clblast_c.h>

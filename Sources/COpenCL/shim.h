// The OpenCL API through the ocl-icd loader (Debian: ocl-icd-opencl-dev, opencl-headers).
// Kiln targets OpenCL 1.2 entry points so that it runs on every vendor's driver.
#ifndef KILN_COPENCL_SHIM_H
#define KILN_COPENCL_SHIM_H
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#endif

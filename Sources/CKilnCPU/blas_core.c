// OpenBLAS's choice of kernels, checked once per process (CPUBackend.openBLASKernels).
//
// A DYNAMIC_ARCH build of OpenBLAS (Debian's) picks one kernel set at load from the processor's CPUID
// family and model. A release older than the processor does not know its model and falls back to its
// oldest x86-64 set, "Prescott" (SSE3): OpenBLAS 0.3.21 (Debian 12) does so on Intel's Emerald Rapids
// (family 6, model 0xCF), where its SGEMM then runs at 28–31 GFLOP/s on two cores against 142–199 with
// the AVX-512 ("SkylakeX") kernels (bench/RESULTS.md, "OpenBLAS's kernels on a processor it does not know"). OPENBLAS_CORETYPE overrides the
// choice but is read only at load. When the user has not set it, and OpenBLAS chose a set without AVX2
// on a processor that has AVX2 and FMA, this asks OpenBLAS to choose again by name: SkylakeX where the
// processor has AVX-512 F/VL/DQ/BW, else Haswell — the sets OpenBLAS itself picks for such processors
// when it knows them. A choice OpenBLAS made with AVX2 or better is never changed.
//
// The functions used (gotoblas_dynamic_quit/init, openblas_get_corename) are exported by every DYNAMIC_ARCH
// build; they are looked up with dlsym, so a build without them (static, one target) is left alone. This
// must run before the process's first BLAS call: CPUBackend runs it from a once-initialised static.

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "kiln_cpu.h"

/// Kernel sets of OpenBLAS's x86-64 DYNAMIC_ARCH builds that use neither AVX2 nor AVX-512.
static const char *const pre_avx2_sets[] = {
    "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn", "Dunnington",
    "Nehalem", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Nano", "Sandybridge", "Bobcat",
    "Bulldozer", "Piledriver",
};

static int is_pre_avx2(const char *name) {
    for (size_t i = 0; i < sizeof pre_avx2_sets / sizeof pre_avx2_sets[0]; i++) {
        if (strcasecmp(name, pre_avx2_sets[i]) == 0) return 1;
    }
    return 0;
}

static void copy_name(char *destination, size_t capacity, const char *source) {
    if (capacity == 0) return;
    snprintf(destination, capacity, "%s", source ? source : "");
}

int kiln_blas_check_kernels(char *chosen, char *detected, size_t capacity) {
    copy_name(chosen, capacity, "");
    copy_name(detected, capacity, "");
    char *(*corename)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    if (!corename) return KILN_BLAS_UNKNOWN;
    const char *before = corename();
    copy_name(chosen, capacity, before);
    copy_name(detected, capacity, before);
    if (getenv("OPENBLAS_CORETYPE")) return KILN_BLAS_USER_CHOICE;
    if (!before || !is_pre_avx2(before)) return KILN_BLAS_KEPT;
#if defined(__x86_64__)
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return KILN_BLAS_KEPT;
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
    // The set asked for, if this build has it (its kernel table is an exported symbol).
    const char *target = avx512 && dlsym(RTLD_DEFAULT, "gotoblas_SKYLAKEX") ? "SkylakeX"
                         : dlsym(RTLD_DEFAULT, "gotoblas_HASWELL")          ? "Haswell"
                                                                            : NULL;
    void (*quit)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void (*init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (!target || !quit || !init) return KILN_BLAS_KEPT;
    // OpenBLAS reads OPENBLAS_CORETYPE in gotoblas_dynamic_init; the variable is removed again afterwards
    // so that child processes (mpirun's ranks, peers a benchmark starts) make their own choice.
    setenv("OPENBLAS_CORETYPE", target, 1);
    quit();
    init();
    unsetenv("OPENBLAS_CORETYPE");
    copy_name(chosen, capacity, corename());
    return strcasecmp(chosen, target) == 0 ? KILN_BLAS_CORRECTED : KILN_BLAS_KEPT;
#else
    return KILN_BLAS_KEPT;
#endif
}

// The run-time choice of every CPU loop's version: AVX2 + FMA (kiln_cpu_vector_level, which
// CPUBackend.setWideVectors changes) and AVX-512 on top of it (see loops.h and cpu_targets.h).
#include "loops.h"

// -1: not yet decided.
static _Atomic int vector_level = -1;

static int supported_level(void) {
#if KILN_X86_VERSIONS
    __builtin_cpu_init();
    return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
#else
    return 0;
#endif
}

int kiln_cpu_vector_level(void) {
    int level = atomic_load_explicit(&vector_level, memory_order_relaxed);
    if (level >= 0) return level;
    level = supported_level();
    const char *setting = getenv("KILN_CPU_VECTORS");
    if (setting != NULL && strcmp(setting, "portable") == 0) level = 0;
    atomic_store_explicit(&vector_level, level, memory_order_relaxed);
    return level;
}

int kiln_cpu_set_vector_level(int level) {
    int supported = supported_level();
    int chosen = level <= 0 ? 0 : supported;
    atomic_store_explicit(&vector_level, chosen, memory_order_relaxed);
    return chosen;
}


#if KILN_X86_VERSIONS
int kiln_avx512_usable(void) {
    static _Atomic int usable = -1;
    int value = atomic_load_explicit(&usable, memory_order_relaxed);
    if (value >= 0) return value;
    __builtin_cpu_init();
    value = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
    const char *setting = getenv("KILN_CPU_VECTORS");
    if (setting != NULL && (strcmp(setting, "avx2") == 0 || strcmp(setting, "portable") == 0)) value = 0;
    atomic_store_explicit(&usable, value, memory_order_relaxed);
    return value;
}

int kiln_cpu_uses_avx512(void) { return kiln_loop_level() == 2; }
#else
int kiln_cpu_uses_avx512(void) { return 0; }
#endif

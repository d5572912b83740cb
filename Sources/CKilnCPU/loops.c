// The run-time choice of the family loops' versions (see loops.h).
#include "loops.h"

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

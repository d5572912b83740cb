/*
 * random.cl - the random family of Kiln's OpenCL backend: counter-based uniform numbers (dropout masks).
 *
 * MATH (the float64 definition is Reference.randomUniform, Sources/Backend/Reference/Reference+Random.swift)
 *     out[i] = (splitmix64(seed ^ splitmix64(offset + i)) >> 40) / 2^24,   i < count
 *   splitmix64 is SplitMix64's finalizer (Steele, Lea & Flood, 2014). Element i depends only on
 *   (seed, offset + i), so every device and every work split gives the same values; the CPU backend
 *   computes the same function in Sources/CKilnCPU/random.c. The top 24 bits make a float in [0, 1)
 *   exactly.
 *
 * LAYOUTS
 *   out: count floats.
 *
 * LAUNCH GEOMETRY
 *   One work-item per element: global = count rounded up to the local size, local =
 *   OpenCLTuning.elementwiseGroupSize; the kernel guards get_global_id(0) < count.
 *
 * OPTIONS
 *   None.
 */

ulong splitmix64(ulong z) {
    z += 0x9E3779B97F4A7C15UL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

__kernel void random_uniform(int count, ulong seed, ulong offset, __global float* out) {
    int i = get_global_id(0);
    if (i >= count) return;
    ulong bits = splitmix64(seed ^ splitmix64(offset + (ulong)i));
    out[i] = (float)(bits >> 40) * (1.0f / 16777216.0f);
}

/*
 * gemm.cl - the gemm family of Kiln's OpenCL backend: single-precision matrix multiplication (SGEMM).
 * The float64 definition is Reference.gemm (Sources/Backend/Reference/Reference+Gemm.swift); the host code
 * and GemmTuning, which passes every -D option below, are in Sources/Backend/OpenCL/OpenCLBackend+Gemm.swift.
 *
 * ===========================================================================================
 * MATH
 * ===========================================================================================
 * All matrices are row-major. For every batch index b = get_global_id(2):
 *
 *     C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b]
 *
 * where op(A) is M x K and op(B) is K x N:
 *     op(A)(i, k) = A[offsetA + b*strideA + i*lda + k]   when A is not transposed
 *                 = A[offsetA + b*strideA + k*lda + i]   when A is transposed
 *     op(B)(k, j) = B[offsetB + b*strideB + k*ldb + j]   when B is not transposed
 *                 = B[offsetB + b*strideB + j*ldb + k]   when B is transposed
 *     C(i, j)     = C[offsetC + b*strideC + i*ldc + j]
 * Offsets, leading dimensions and batch strides are counted in floats (not bytes).
 * When beta == 0.0f, C is never read (so NaN or garbage already in C does not propagate).
 * K == 0 is allowed and gives C = beta * C (C = 0 when beta == 0).
 * Buffers are never padded by the caller: every edge (any M >= 1, N >= 1, K >= 0) is
 * handled by guards inside the kernels. Offsets and leading dimensions need no particular
 * alignment (only vloadn/vstoren are used, which require element alignment only).
 * M == 0, N == 0 or batchCount == 0 must be skipped by the caller (the global size would
 * be 0, which clEnqueueNDRangeKernel rejects).
 *
 * ===========================================================================================
 * KERNEL 1: gemm_direct - any shape, transposes chosen at run time
 * ===========================================================================================
 *   __kernel void gemm_direct(int M, int N, int K, float alpha,
 *       __global const float* A, int offsetA, int lda, int strideA, int transA,
 *       __global const float* B, int offsetB, int ldb, int strideB, int transB,
 *       float beta, __global float* C, int offsetC, int ldc, int strideC)
 *   transA and transB are 0 (not transposed) or 1 (transposed).
 *   Each work-item computes a DIRECT_WM x DIRECT_WN block of C, no local memory.
 *   Launch:
 *       local  = (DIRECT_WG, DIRECT_WG, 1)
 *       global = (roundUp(ceil(N / DIRECT_WN), DIRECT_WG),
 *                 roundUp(ceil(M / DIRECT_WM), DIRECT_WG),
 *                 batchCount)
 *   Defines (all optional):
 *       DIRECT_WG  default 8   work-group edge length (work-group is DIRECT_WG x DIRECT_WG)
 *       DIRECT_WM  default 2   rows of C per work-item
 *       DIRECT_WN  default 8   columns of C per work-item
 *
 * ===========================================================================================
 * KERNEL 2: gemm_fast - large shapes, op(B) = B (never transposed), transA fixed at build
 * ===========================================================================================
 *   __kernel void gemm_fast(int M, int N, int K, float alpha,
 *       __global const float* A, int offsetA, int lda, int strideA,
 *       __global const float* B, int offsetB, int ldb, int strideB,
 *       float beta, __global float* C, int offsetC, int ldc, int strideC)
 *   Same meaning as gemm_direct with transB = 0 and transA = TRANS_A. When B must be
 *   transposed, the caller transposes it into a scratch buffer first.
 *   Launch:
 *       local  = (WG_N, WG_M, 1)
 *       global = (roundUp(ceil(N / VW), WG_N), roundUp(ceil(M / WPT_M), WG_M), batchCount)
 *   Each work-group computes a TILE_M x TILE_N block of C, TILE_M = WG_M * WPT_M rows and
 *   TILE_N = WG_N * VW columns; each work-item computes WPT_M rows x VW consecutive columns
 *   of that block (work-item (x, y) of the group owns rows y*WPT_M .. y*WPT_M + WPT_M - 1
 *   and columns x*VW .. x*VW + VW - 1 of the block). The kernel is declared with
 *   reqd_work_group_size(WG_N, WG_M, 1), so the local size must be exactly that.
 *   Always launch the exact multiples above (PoCL's default work-group method has been seen
 *   to give wrong results with barriers and local memory when the global size is not a
 *   multiple of the local size; the kernels guard all edges themselves).
 *   Defines (all optional; the defaults are the CPU / PoCL recommendation below):
 *       TRANS_A            default 0    1 = A is stored transposed (K x M, leading dim lda)
 *       WPT_M              default 6    rows of C per work-item (accumulator rows)
 *       VW                 default 16   columns of C per work-item = float vector width
 *                                       (4, 8 or 16)
 *       WG_M               default 16   work-group rows (local size in dimension 1)
 *       WG_N               default 8    work-group columns (local size in dimension 0)
 *       USE_LOCAL          default 1    1 = tiled variant: each work-group copies TILE_K-deep
 *                                       slices of its A rows and B columns into local memory
 *                                       (zero-padded at the edges), then every work-item runs
 *                                       a register-blocked WPT_M x VW product from local memory.
 *                                       This is the classic GPU structure, and on PoCL it also
 *                                       acts as the "packing" step of a CPU BLAS (it removes
 *                                       the cache-set conflicts of power-of-two leading
 *                                       dimensions), so it is the fastest variant on both.
 *                                       0 = register-blocked variant without local memory or
 *                                       barriers: each work-item streams its rows of A and its
 *                                       VW-wide column strip of B straight from global memory.
 *                                       Simpler; on PoCL it matches USE_LOCAL=1 up to about
 *                                       1024^3, but is 2.5-3x slower when a leading dimension
 *                                       is a large power of two (2048^3: 40 vs 111 GFLOP/s;
 *                                       256x4096x1024: 43 vs 102). Only WPT_M, VW, WG_M, WG_N
 *                                       and TRANS_A apply to it.
 *     Used only when USE_LOCAL = 1:
 *       TILE_K             default 128  depth of the k-slices copied to local memory
 *       A_VW               default 8    vector width (2, 4, 8 or 16) used to copy the A tile;
 *                                       must divide TILE_K (TRANS_A = 0) or TILE_M (TRANS_A = 1)
 *       A_LOCAL_KMAJOR     default 0    1 = store the A tile k-major in local memory
 *                                       (aTile[k][m]) also when TRANS_A = 0, so each work-item
 *                                       reads its WPT_M values of one k contiguously (vector
 *                                       local loads on GPUs); costs a transposing copy.
 *                                       0 = keep the A tile in its global order (cheapest copy;
 *                                       best on CPUs). With TRANS_A = 1 the tile is always
 *                                       k-major.
 *       A_PAD              default 0    extra floats per k-major A tile row (avoids local
 *                                       memory bank conflicts in the transposing copy on GPUs)
 *       NONUNIFORM_K_LOOP  default 1    1 = write the inner k loop bound so that PoCL cannot
 *                                       prove it is the same for all work-items. PoCL otherwise
 *                                       adds "implicit barriers" around every uniform innermost
 *                                       loop of a kernel that has barriers, which swaps the
 *                                       loop with the work-item loop and reloads all
 *                                       accumulators from memory on every k step (3-5x
 *                                       slower). Set it to 0 on GPUs (keeps the loop bound a
 *                                       compile-time constant so it can be fully unrolled).
 *   Local memory used (USE_LOCAL = 1): 4 * (TILE_K * (TILE_M + A_PAD) + TILE_K * TILE_N) bytes
 *   (112 KiB for the CPU set, 16.25 KiB for the GPU set below). The CPU set exceeds the
 *   48 KiB that GPUs offer, so never use it on a GPU.
 *
 * ===========================================================================================
 * RECOMMENDED PARAMETERS
 * ===========================================================================================
 *   (a) CPU devices such as PoCL (measured on a 2-core AVX2 machine, PoCL 3.1):
 *       gemm_fast:   -DUSE_LOCAL=1 -DWPT_M=6 -DVW=16 -DWG_M=16 -DWG_N=8 -DTILE_K=128
 *                    -DA_VW=8 -DA_LOCAL_KMAJOR=0 -DA_PAD=0 -DNONUNIFORM_K_LOOP=1 -DTRANS_A=0|1
 *                    (6 x 16 accumulators = 12 AVX registers; 96 x 128 C block per group)
 *       gemm_direct: -DDIRECT_WG=8 -DDIRECT_WM=2 -DDIRECT_WN=8
 *       Use gemm_direct instead of gemm_fast when M < 32, N < 64, K < 32 or
 *       M*N*K < 2^21 (about 128^3); it also needs no scratch transpose of B.
 *       Measured (median, steady state): gemm_fast 100-125 GFLOP/s for 512^3 .. 2048^3,
 *       4096x1024x1024 and 256x4096x1024 (CLBlast 1.5.3 untuned: 13-22, OpenBLAS: ~175);
 *       gemm_direct 20-48 GFLOP/s on skinny shapes (M = 8, N = 32, K = 16).
 *       PoCL notes: the first launch for each new local size compiles the work-group
 *       function (about 0.6 s on top of the 0.8 s build; both are cached on disk under
 *       ~/.cache/pocl); the build log shows harmless "AVX vector ... changes the ABI"
 *       warnings for float16.
 *   (b) GPUs (NVIDIA H100 class; not measured here, chosen from the usual SGEMM layout):
 *       gemm_fast:   -DUSE_LOCAL=1 -DWPT_M=8 -DVW=8 -DWG_M=16 -DWG_N=16 -DTILE_K=16
 *                    -DA_VW=4 -DA_LOCAL_KMAJOR=1 -DA_PAD=4 -DNONUNIFORM_K_LOOP=0 -DTRANS_A=0|1
 *                    (256 work-items, 128 x 128 C block per group, 8 x 8 per work-item)
 *       gemm_direct: -DDIRECT_WG=16 -DDIRECT_WM=1 -DDIRECT_WN=1
 *       Suggested (untested) switch: gemm_direct when M < 64, N < 64, K < 16 or
 *       M*N*K < 2^21; below that the 128 x 128 tiles of gemm_fast are mostly padding.
 */

/* ------------------------------------------------------------------------------------------
 * Defaults
 * ---------------------------------------------------------------------------------------- */

#ifndef DIRECT_WG
#define DIRECT_WG 8
#endif
#ifndef DIRECT_WM
#define DIRECT_WM 2
#endif
#ifndef DIRECT_WN
#define DIRECT_WN 8
#endif

#ifndef TRANS_A
#define TRANS_A 0
#endif
#ifndef WPT_M
#define WPT_M 6
#endif
#ifndef VW
#define VW 16
#endif
#ifndef WG_M
#define WG_M 16
#endif
#ifndef WG_N
#define WG_N 8
#endif
#ifndef USE_LOCAL
#define USE_LOCAL 1
#endif
#ifndef TILE_K
#define TILE_K 128
#endif
#ifndef A_VW
#define A_VW 8
#endif
#ifndef A_LOCAL_KMAJOR
#define A_LOCAL_KMAJOR 0
#endif
#ifndef A_PAD
#define A_PAD 0
#endif
#ifndef NONUNIFORM_K_LOOP
#define NONUNIFORM_K_LOOP 1
#endif

/* ------------------------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------------------------- */

#define PASTE_(a, b) a##b
#define PASTE(a, b) PASTE_(a, b)

/* The float vector type of one work-item row (VW wide) and its load / store functions. */
#define floatV PASTE(float, VW)
#define vloadV PASTE(vload, VW)
#define vstoreV PASTE(vstore, VW)

#define TILE_M (WG_M * WPT_M)
#define TILE_N (WG_N * VW)
#define WG_SIZE (WG_M * WG_N)

/* ==========================================================================================
 * gemm_direct
 * ======================================================================================== */

/* Inner loop of gemm_direct for work-items whose whole block lies inside C. The strides are
   macro arguments so that the unit strides become compile-time constants in each of the four
   transpose combinations, which lets the compiler use vector loads. */
#define DIRECT_INTERIOR_LOOP(aRowStride, aKStride, bColStride, bKStride)                     \
    for (int k = 0; k < K; ++k) {                                                            \
        float a[DIRECT_WM], b[DIRECT_WN];                                                    \
        for (int r = 0; r < DIRECT_WM; ++r)                                                  \
            a[r] = A[(row0 + r) * (aRowStride) + k * (aKStride)];                            \
        for (int c = 0; c < DIRECT_WN; ++c)                                                  \
            b[c] = B[(col0 + c) * (bColStride) + k * (bKStride)];                            \
        for (int r = 0; r < DIRECT_WM; ++r)                                                  \
            for (int c = 0; c < DIRECT_WN; ++c)                                              \
                acc[r][c] = fma(a[r], b[c], acc[r][c]);                                      \
    }

__kernel void gemm_direct(int M, int N, int K, float alpha,
                          __global const float* A, int offsetA, int lda, int strideA, int transA,
                          __global const float* B, int offsetB, int ldb, int strideB, int transB,
                          float beta, __global float* C, int offsetC, int ldc, int strideC)
{
    const int row0 = get_global_id(1) * DIRECT_WM;
    const int col0 = get_global_id(0) * DIRECT_WN;
    if (row0 >= M || col0 >= N)
        return;
    const long batch = get_global_id(2);
    A += offsetA + batch * strideA;
    B += offsetB + batch * strideB;
    C += offsetC + batch * strideC;

    float acc[DIRECT_WM][DIRECT_WN];
    for (int r = 0; r < DIRECT_WM; ++r)
        for (int c = 0; c < DIRECT_WN; ++c)
            acc[r][c] = 0.0f;

    if (row0 + DIRECT_WM <= M && col0 + DIRECT_WN <= N) {
        if (!transA && !transB)
            DIRECT_INTERIOR_LOOP(lda, 1, 1, ldb)
        else if (!transA && transB)
            DIRECT_INTERIOR_LOOP(lda, 1, ldb, 1)
        else if (transA && !transB)
            DIRECT_INTERIOR_LOOP(1, lda, 1, ldb)
        else
            DIRECT_INTERIOR_LOOP(1, lda, ldb, 1)
    } else {
        /* Edge work-item: rows and columns beyond the matrix are clamped to the last valid
           one for loading; their results are discarded when storing. */
        const int aRowStride = transA ? 1 : lda;
        const int aKStride = transA ? lda : 1;
        const int bColStride = transB ? ldb : 1;
        const int bKStride = transB ? 1 : ldb;
        for (int k = 0; k < K; ++k) {
            float a[DIRECT_WM], b[DIRECT_WN];
            for (int r = 0; r < DIRECT_WM; ++r)
                a[r] = A[min(row0 + r, M - 1) * aRowStride + k * aKStride];
            for (int c = 0; c < DIRECT_WN; ++c)
                b[c] = B[min(col0 + c, N - 1) * bColStride + k * bKStride];
            for (int r = 0; r < DIRECT_WM; ++r)
                for (int c = 0; c < DIRECT_WN; ++c)
                    acc[r][c] = fma(a[r], b[c], acc[r][c]);
        }
    }

    for (int r = 0; r < DIRECT_WM && row0 + r < M; ++r) {
        __global float* cRow = C + (row0 + r) * ldc + col0;
        for (int c = 0; c < DIRECT_WN && col0 + c < N; ++c)
            cRow[c] = (beta == 0.0f) ? alpha * acc[r][c] : alpha * acc[r][c] + beta * cRow[c];
    }
}

/* ==========================================================================================
 * gemm_fast
 * ======================================================================================== */

/* Writes the WPT_M x VW results of one work-item (rows row0.., columns col0..), scaled by
   alpha, plus beta * C when beta is not zero. Rows at or beyond M are skipped; a block that
   crosses column N is written with guarded scalar stores. */
#define STORE_RESULTS(acc, row0, col0)                                                       \
    if ((col0) + VW <= N) {                                                                  \
        for (int r = 0; r < WPT_M; ++r) {                                                    \
            if ((row0) + r < M) {                                                            \
                __global float* dst = C + ((row0) + r) * ldc + (col0);                       \
                floatV out = alpha * acc[r];                                                 \
                if (beta != 0.0f)                                                            \
                    out += beta * vloadV(0, dst);                                            \
                vstoreV(out, 0, dst);                                                        \
            }                                                                                \
        }                                                                                    \
    } else if ((col0) < N) {                                                                 \
        for (int r = 0; r < WPT_M; ++r) {                                                    \
            if ((row0) + r < M) {                                                            \
                __global float* dst = C + ((row0) + r) * ldc + (col0);                       \
                float values[VW];                                                            \
                vstoreV(alpha * acc[r], 0, values);                                          \
                for (int c = 0; c < N - (col0); ++c)                                         \
                    dst[c] = (beta == 0.0f) ? values[c] : values[c] + beta * dst[c];         \
            }                                                                                \
        }                                                                                    \
    }

#if USE_LOCAL

/* ------------------------------------------------------------------------------------------
 * gemm_fast, USE_LOCAL = 1: local-memory tiles + register blocking
 * ---------------------------------------------------------------------------------------- */

#if TRANS_A
#if TILE_M % A_VW != 0
#error "TILE_M (WG_M * WPT_M) must be a multiple of A_VW when TRANS_A is 1"
#endif
#else
#if TILE_K % A_VW != 0
#error "TILE_K must be a multiple of A_VW when TRANS_A is 0"
#endif
#endif

/* Layout of the A tile in local memory: k-major (aTile[k * A_LD + m]) or, when TRANS_A = 0
   and A_LOCAL_KMAJOR = 0, m-major as in global memory (aTile[m * TILE_K + k]). */
#define A_KMAJOR (TRANS_A || A_LOCAL_KMAJOR)
#define A_LD (TILE_M + A_PAD)

/* Copies a tileRows x tileCols block of a row-major matrix (leading dimension srcLd) into
   local memory (leading dimension dstLd), in chunks of CHUNK consecutive floats. Chunk i is
   copied by work-item i % WG_SIZE, so neighbouring work-items read neighbouring addresses
   (coalesced on GPUs). Elements outside validRows x validCols are stored as zero, so the
   compute loop needs no edge checks. */
#define DEFINE_TILE_LOADER(NAME, CHUNK)                                                      \
inline void NAME(__local float* dst, const int dstLd,                                        \
                 const __global float* src, const int srcLd,                                 \
                 const int tileRows, const int tileCols,                                     \
                 const int validRows, const int validCols, const int localId)                \
{                                                                                            \
    const int chunksPerRow = tileCols / CHUNK;                                               \
    const int chunks = tileRows * chunksPerRow;                                              \
    if (validRows >= tileRows && validCols >= tileCols) {                                    \
        for (int i = localId; i < chunks; i += WG_SIZE) {                                    \
            const int r = i / chunksPerRow;                                                  \
            const int c = (i % chunksPerRow) * CHUNK;                                        \
            PASTE(vstore, CHUNK)(PASTE(vload, CHUNK)(0, src + r * srcLd + c), 0,              \
                                 dst + r * dstLd + c);                                       \
        }                                                                                    \
    } else {                                                                                 \
        for (int i = localId; i < chunks; i += WG_SIZE) {                                    \
            const int r = i / chunksPerRow;                                                  \
            const int c = (i % chunksPerRow) * CHUNK;                                        \
            if (r < validRows && c + CHUNK <= validCols) {                                   \
                PASTE(vstore, CHUNK)(PASTE(vload, CHUNK)(0, src + r * srcLd + c), 0,          \
                                     dst + r * dstLd + c);                                   \
            } else {                                                                         \
                for (int e = 0; e < CHUNK; ++e)                                              \
                    dst[r * dstLd + c + e] = (r < validRows && c + e < validCols)            \
                                                 ? src[r * srcLd + c + e] : 0.0f;            \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
}

DEFINE_TILE_LOADER(load_tile_a, A_VW)
DEFINE_TILE_LOADER(load_tile_b, VW)

/* Like load_tile_a, but stores the tileRows x tileCols block transposed (dst[c * dstLd + r]).
   Used for a non-transposed A with A_LOCAL_KMAJOR = 1. */
inline void load_tile_a_transposed(__local float* dst, const int dstLd,
                                   const __global float* src, const int srcLd,
                                   const int tileRows, const int tileCols,
                                   const int validRows, const int validCols, const int localId)
{
    const int chunksPerRow = tileCols / A_VW;
    const int chunks = tileRows * chunksPerRow;
    for (int i = localId; i < chunks; i += WG_SIZE) {
        const int r = i / chunksPerRow;
        const int c = (i % chunksPerRow) * A_VW;
        float values[A_VW];
        if (r < validRows && c + A_VW <= validCols) {
            PASTE(vstore, A_VW)(PASTE(vload, A_VW)(0, src + r * srcLd + c), 0, values);
        } else {
            for (int e = 0; e < A_VW; ++e)
                values[e] = (r < validRows && c + e < validCols) ? src[r * srcLd + c + e] : 0.0f;
        }
        for (int e = 0; e < A_VW; ++e)
            dst[(c + e) * dstLd + r] = values[e];
    }
}

__kernel __attribute__((reqd_work_group_size(WG_N, WG_M, 1)))
void gemm_fast(int M, int N, int K, float alpha,
               __global const float* A, int offsetA, int lda, int strideA,
               __global const float* B, int offsetB, int ldb, int strideB,
               float beta, __global float* C, int offsetC, int ldc, int strideC)
{
    const int localCol = get_local_id(0);
    const int localRow = get_local_id(1);
    const int localId = localRow * WG_N + localCol;
    const int tileRow = get_group_id(1) * TILE_M;
    const int tileCol = get_group_id(0) * TILE_N;
    const long batch = get_global_id(2);
    A += offsetA + batch * strideA;
    B += offsetB + batch * strideB;
    C += offsetC + batch * strideC;

#if A_KMAJOR
    __local float aTile[TILE_K * A_LD];
#else
    __local float aTile[TILE_M * TILE_K];
#endif
    __local float bTile[TILE_K * TILE_N];

    floatV acc[WPT_M];
    for (int r = 0; r < WPT_M; ++r)
        acc[r] = (floatV)(0.0f);

#if NONUNIFORM_K_LOOP
    /* Always equal to TILE_K (localId is far below 2^24), but PoCL cannot prove that the bound
       is the same for every work-item, so it keeps the k loop inside the work-item loop. */
    const int kSteps = TILE_K + (localId >> 24);
#else
    const int kSteps = TILE_K;
#endif

    /* This work-item's column strip of the B tile and its rows of the A tile. */
    const __local float* bPtr = bTile + localCol * VW;
#if A_KMAJOR
    const __local float* aPtr = aTile + localRow * WPT_M;
#else
    const __local float* aPtr = aTile + localRow * WPT_M * TILE_K;
#endif

    for (int k0 = 0; k0 < K; k0 += TILE_K) {
        const int kValid = min(TILE_K, K - k0);
#if TRANS_A
        load_tile_a(aTile, A_LD, A + k0 * lda + tileRow, lda, TILE_K, TILE_M, kValid,
                    M - tileRow, localId);
#elif A_LOCAL_KMAJOR
        load_tile_a_transposed(aTile, A_LD, A + tileRow * lda + k0, lda, TILE_M, TILE_K,
                               M - tileRow, kValid, localId);
#else
        load_tile_a(aTile, TILE_K, A + tileRow * lda + k0, lda, TILE_M, TILE_K, M - tileRow,
                    kValid, localId);
#endif
        load_tile_b(bTile, TILE_N, B + k0 * ldb + tileCol, ldb, TILE_K, TILE_N, kValid,
                    N - tileCol, localId);
        barrier(CLK_LOCAL_MEM_FENCE);

#if !NONUNIFORM_K_LOOP
#pragma unroll
#endif
        for (int k = 0; k < kSteps; ++k) {
            const floatV b = vloadV(0, bPtr + k * TILE_N);
#pragma unroll
            for (int r = 0; r < WPT_M; ++r) {
#if A_KMAJOR
                const float a = aPtr[k * A_LD + r];
#else
                const float a = aPtr[r * TILE_K + k];
#endif
                acc[r] = fma((floatV)(a), b, acc[r]);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    const int row0 = tileRow + localRow * WPT_M;
    const int col0 = tileCol + localCol * VW;
    STORE_RESULTS(acc, row0, col0)
}

#else /* USE_LOCAL == 0 */

/* ------------------------------------------------------------------------------------------
 * gemm_fast, USE_LOCAL = 0: register blocking only, no local memory, no barriers
 * ---------------------------------------------------------------------------------------- */

__kernel __attribute__((reqd_work_group_size(WG_N, WG_M, 1)))
void gemm_fast(int M, int N, int K, float alpha,
               __global const float* A, int offsetA, int lda, int strideA,
               __global const float* B, int offsetB, int ldb, int strideB,
               float beta, __global float* C, int offsetC, int ldc, int strideC)
{
    const int row0 = get_global_id(1) * WPT_M;
    const int col0 = get_global_id(0) * VW;
    if (row0 >= M || col0 >= N)
        return;
    const long batch = get_global_id(2);
    A += offsetA + batch * strideA;
    B += offsetB + batch * strideB;
    C += offsetC + batch * strideC;

    floatV acc[WPT_M];
    for (int r = 0; r < WPT_M; ++r)
        acc[r] = (floatV)(0.0f);

    if (col0 + VW <= N) {
        /* Vector path. Rows beyond M are clamped to row M - 1 for loading and skipped when
           storing, so only the column edge needs the scalar path below. */
        const __global float* aRow[WPT_M];
        for (int r = 0; r < WPT_M; ++r) {
#if TRANS_A
            aRow[r] = A + min(row0 + r, M - 1);
#else
            aRow[r] = A + min(row0 + r, M - 1) * lda;
#endif
        }
        const __global float* bPtr = B + col0;
        for (int k = 0; k < K; ++k) {
            const floatV b = vloadV(0, bPtr);
            bPtr += ldb;
#pragma unroll
            for (int r = 0; r < WPT_M; ++r) {
#if TRANS_A
                const float a = aRow[r][k * lda];
#else
                const float a = aRow[r][k];
#endif
                acc[r] = fma((floatV)(a), b, acc[r]);
            }
        }
    } else {
        /* Column edge: fewer than VW columns remain; guarded scalar loop. */
        const int cols = N - col0;
        float values[VW];
        for (int r = 0; r < WPT_M; ++r) {
            const int row = min(row0 + r, M - 1);
            for (int c = 0; c < VW; ++c)
                values[c] = 0.0f;
            for (int k = 0; k < K; ++k) {
#if TRANS_A
                const float a = A[k * lda + row];
#else
                const float a = A[row * lda + k];
#endif
                const __global float* bRow = B + k * ldb + col0;
                for (int c = 0; c < cols; ++c)
                    values[c] = fma(a, bRow[c], values[c]);
            }
            acc[r] = vloadV(0, values);
        }
    }
    STORE_RESULTS(acc, row0, col0)
}

#endif /* USE_LOCAL */

// One thread's CPU chunked forward + backward of every head (B = 1), walking the chunks as
// Sources/Backend/CPU/CPUBackend+ScanChunked.swift does, straight on the C loops of Sources/CKilnCPU, with
// chunk lengths given on the command line and alternated round by round in one process, so that their
// times are paired on a loaded machine (kiln-bench cannot: the chunk length is the backend's own choice).
// Build and run: bench/scan-chunks/run.sh (see there).
#include "kiln_cpu.h"
#include "kiln_cpu_scan.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static float urand(unsigned *s) { *s = *s * 1664525u + 1013904223u; return ((*s >> 8) / 16777216.0f) * 2 - 1; }

typedef struct { int delta; ptrdiff_t T, H, K, V, C; float *q, *k, *v, *g, *beta, *o, *dout, *dq, *dk, *dv, *dg, *db; } prob;

static kiln_scan_chunk mk(prob *p, int h, ptrdiff_t c, int grads, int out) {
    ptrdiff_t start = c * p->C, hs = start * p->H + h;
    kiln_scan_chunk x = {0};
    x.length = p->T - start < p->C ? p->T - start : p->C;
    x.keys = p->K; x.values = p->V; x.key_stride = p->H * p->K; x.value_stride = p->H * p->V; x.head_stride = p->H;
    x.gate = p->delta ? 0 : 2; x.scale = 1 / sqrtf(p->K);
    x.query = p->q + hs * p->K; x.key = p->k + hs * p->K; x.value = p->v + hs * p->V;
    x.gate_values = p->delta ? NULL : p->g + hs * p->K; x.beta = p->delta ? p->beta + hs : NULL;
    if (out) x.output = p->o + hs * p->V;
    if (grads) { x.output_gradient = p->dout + hs * p->V; x.query_gradient = p->dq + hs * p->K; x.key_gradient = p->dk + hs * p->K;
        x.value_gradient = p->dv + hs * p->V; x.gate_gradient = p->delta ? NULL : p->dg + hs * p->K; x.beta_gradient = p->delta ? p->db + hs : NULL; }


    return x;
}

static void run(prob *p) {
    ptrdiff_t Vp = kiln_scan_padded(p->V), S = p->K * Vp, chunks = (p->T + p->C - 1) / p->C;
    ptrdiff_t ws = kiln_scan_chunk_workspace_count(p->K, p->V), fc =
kiln_scan_chunk_delta_factor_count(p->K, p->V, p->C);
    for (int h = 0; h < p->H; h++) {  // forward
        float *mem = calloc(S + ws, 4);
        for (ptrdiff_t c = 0; c < chunks; c++) { kiln_scan_chunk x = mk(p, h, c, 0, 1);
            if (p->delta) kiln_scan_chunk_delta_forward(&x, mem, 1, mem + S, NULL); else kiln_scan_chunk_linear_forward(&x, mem, 1, mem + S); }
        free(mem);
    }
    for (int h = 0; h < p->H; h++) {  // backward
        size_t total = 2 * S + (chunks + 1) * S + (p->delta ? chunks * fc : 0) + ws;
        float *mem = malloc(total * 4);
        memset(mem, 0, 3 * S * 4);
        float *grad = mem + S, *cp = mem + 2 * S, *f = cp + (chunks + 1) * S, *scratch = f + (p->delta ? chunks * fc : 0);
        memset(scratch, 0, ws * 4);
        for (ptrdiff_t c = 0; c < chunks; c++) { memcpy(cp + (c + 1) * S, cp + c * S, S * 4); kiln_scan_chunk x = mk(p, h, c, 0, 0);
            if (p->delta) kiln_scan_chunk_delta_forward(&x, cp + (c + 1) * S, 0, scratch, f + c * fc); else kiln_scan_chunk_linear_forward(&x, cp + (c + 1) * S, 0, scratch); }
        for (ptrdiff_t c = chunks - 1; c >= 0; c--) { kiln_scan_chunk x = mk(p, h, c, 1, 0);
            if (p->delta) kiln_scan_chunk_delta_backward(&x, cp + c * S, grad, scratch, f + c * fc);
            else kiln_scan_chunk_linear_backward(&x, cp + c * S, cp + (c + 1) * S, grad, scratch); }
        free(mem);
    }
}

int main(int argc, char **argv) {
    // scan-chunks delta|gla T H D rounds length... (HASH=1: also print a hash of every output's bits)
    if (argc < 7 || (strcmp(argv[1], "delta") != 0 && strcmp(argv[1], "gla") != 0)) {
        fprintf(stderr, "usage: scan-chunks delta|gla T H D rounds length... (lengths 1 to 64, at most 16 of them; at most 400 rounds)\n");
        return 2;
    }
    prob p = {0}; p.delta = strcmp(argv[1], "delta") == 0; p.T = atol(argv[2]); p.H = atol(argv[3]); p.K = p.V = atol(argv[4]);
    int reps = atoi(argv[5]), ncfg = argc - 6;
    if (p.T < 1 || p.H < 1 || p.K < 1 || p.K > 256 || reps < 1 || reps > 400 || ncfg > 16) { fprintf(stderr, "scan-chunks: sizes out of range\n"); return 2; }
    for (int c = 0; c < ncfg; c++) if (atol(argv[6 + c]) < 1 || atol(argv[6 + c]) > KILN_SCAN_CHUNK_LENGTH) { fprintf(stderr, "scan-chunks: chunk lengths are 1 to 64\n"); return 2; }
    size_t nk = p.T * p.H * p.K, nv = p.T * p.H * p.V; unsigned s = 7;
    float **all[] = {&p.q, &p.k, &p.v, &p.g, &p.o, &p.dout, &p.dq, &p.dk, &p.dv, &p.dg};
    for (int i = 0; i < 10; i++) { *all[i] = malloc(nk * 4); for (size_t j = 0; j < nk; j++) (*all[i])[j] = urand(&s); }
    for (size_t j = 0; j < nk; j++) p.g[j] = -logf(1 + expf(-3 * p.g[j]));
    if (p.delta) for (size_t r = 0; r < p.T * p.H; r++) { float n = 0; for (int c = 0; c < p.K; c++) n += p.k[r * p.K + c] * p.k[r * p.K + c]; for (int c = 0; c < p.K; c++) p.k[r * p.K + c] /= sqrtf(n); }
    p.beta = malloc(p.T * p.H * 4); p.db = malloc(p.T * p.H * 4); for (size_t j = 0; j < p.T * p.H; j++) p.beta[j] = 0.5f + 0.4f * urand(&s);
    double best[16]; double sums[16] = {0}; float check[16]; static double times[16][400];
    for (int c = 0; c < ncfg; c++) best[c] = 1e9;
    for (int c = 0; c < ncfg; c++) { p.C = atol(argv[6 + c]); run(&p); }  // a warm-up round
    for (int r = 0; r < reps; r++) for (int c = 0; c < ncfg; c++) {
        p.C = atol(argv[6 + c]);
        double t = now(); run(&p); t = now() - t;
        if (t < best[c]) best[c] = t; sums[c] += t; times[c][r] = t;
        float cs = 0; for (size_t j = 0; j < nk; j += 97) cs += p.dq[j] + p.dk[j] + p.dv[j] + p.o[j]; check[c] = cs;
    }
    if (getenv("HASH")) { unsigned long long h = 1469598103934665603ull; float *outs[] = {p.o, p.dq, p.dk, p.dv, p.dg};
        for (int i = 0; i < 5; i++) for (size_t j = 0; j < nk; j++) { unsigned u; memcpy(&u, &outs[i][j], 4); h = (h ^ u) * 1099511628211ull; }
        for (size_t j = 0; j < p.T * p.H; j++) { unsigned u; memcpy(&u, &p.db[j], 4); if (p.delta) h = (h ^ u) * 1099511628211ull; }
        printf("hash %016llx\n", h); }
    for (int c = 0; c < ncfg; c++) {
        double ratios[400];
        for (int r = 0; r < reps; r++) ratios[r] = times[c][r] / times[0][r];
        for (int i = 0; i < reps; i++) for (int j = i + 1; j < reps; j++) if (ratios[j] < ratios[i]) { double t = ratios[i]; ratios[i] = ratios[j]; ratios[j] = t; }
        printf("%s %s D%ld T%ld: min %.2f ms, mean %.2f ms, median of (time / the first length's in the same round) %.3f (quartiles %.3f-%.3f) (checksum %.6g)\n", argv[1], argv[6 + c], (long)p.K, (long)p.T,
               best[c] * 1e3, sums[c] / reps * 1e3, ratios[reps / 2], ratios[reps / 4], ratios[3 * reps / 4], check[c]);
    }
    return 0;
}

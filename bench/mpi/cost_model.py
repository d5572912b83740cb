#!/usr/bin/env python3
"""Ring-allreduce cost model for data-parallel training of Kiln's MLP (bench/RESULTS.md, issue 14).

A step of an MLP with L hidden layers of width w (plus small input and readout layers) on b samples per
rank costs about 6·b·L·w² floating-point operations (forward 2, backward 4) and sums 4·L·w² bytes of
gradients; a ring allreduce of S bytes over N ranks moves 2(N−1)/N · S bytes through each link, plus
2(N−1) latency steps of α per message. Then

    compute      = 6·b·L·w² / F
    communicate  = 2(N−1)/N · 4·L·w² / B + 2(N−1)·α  (one bucket; each further bucket adds 2(N−1)·α)

so the ratio communicate / compute = 8(N−1)/N · F / (6·b·B) for large buckets: independent of width and
depth, set by the samples per rank b, the achieved FLOP/s F and the link bandwidth B.

Usage: bench/mpi/cost_model.py [--flops F] [--samples-per-rank b]
"""
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--flops", type=float, default=30e12, help="achieved float32 FLOP/s per rank (default 30 TFLOP/s: an H100/H200-class GPU on large GEMMs)")
parser.add_argument("--samples-per-rank", type=int, nargs="*", default=[64, 512, 4096])
parser.add_argument("--latency", type=float, default=5e-6, help="per-message latency alpha in seconds (default 5 us)")
parser.add_argument("--depth", type=int, default=2, help="hidden layers (L - 1 of them w x w; default 2 as kiln's --depth 2)")
arguments = parser.parse_args()

F, alpha = arguments.flops, arguments.latency
square_layers = max(arguments.depth - 1, 1)
print(f"F = {F / 1e12:.2f} TFLOP/s per rank, alpha = {alpha * 1e6:.0f} us, {square_layers} w x w layer(s); times in ms per step")
print(f"{'w':>5} {'MiB':>6} {'b':>5} {'compute':>9} | " + " | ".join(f"N={n:<3} {int(bw / 1e9):>3} GB/s comm  ratio" for n in (8, 64, 512) for bw in (25e9, 100e9)))
for w in (1024, 2048, 4096, 8192):
    gradient_bytes = 4 * square_layers * w * w
    for b in arguments.samples_per_rank:
        compute = 6 * b * square_layers * w * w / F
        cells = []
        for n in (8, 64, 512):
            for bw in (25e9, 100e9):
                comm = 2 * (n - 1) / n * gradient_bytes / bw + 2 * (n - 1) * alpha
                cells.append(f"{comm * 1e3:12.2f} {comm / compute:6.2f}")
        print(f"{w:>5} {gradient_bytes / 2**20:6.0f} {b:>5} {compute * 1e3:9.3f} | " + " | ".join(cells))

print()
print("Communication dominates (ratio > 1) when b < 8(N-1)/N * F / (6 B):")
for bw in (25e9, 100e9):
    print(f"  {int(bw / 1e9)} GB/s: b < {8 * F / (6 * bw):.0f} samples per rank (large N)")
print()
print("Bucket size: a bucket of S bytes costs 2(N-1)·alpha + 2(N-1)/N·S/B; its latency share stays under 10% when")
print("S >= 10·alpha·B·N (from 2(N-1)·alpha <= 0.1·2(N-1)/N·S/B):")
for bw in (25e9, 100e9):
    print("  " + f"{int(bw / 1e9)} GB/s: " + ", ".join(f"N={n}: {10 * alpha * bw * n / 2**20:.0f} MiB" for n in (8, 64, 512)))
print("Overlap hides at most the backward time after a bucket is ready: with buckets in reverse layer order, the")
print("first L-1 layers' backward (about (L-1)/L of 4/6 of compute) can cover the allreduce of the last layers' buckets.")

#!/usr/bin/env python3
"""The cuBLAS peer of `kiln-bench matmul`: torch.mm in float32 on a CUDA device (or the CPU), timed the
way kiln-bench times Kiln: C = A·B row-major on fresh uniform [-1, 1) inputs, each call synchronized, the
median wall time of at least 5 calls and about --seconds of calls after a fifth of that warming up.

    python3 bench/peers/sgemm_torch.py --device cuda [--shapes 1024,4096,256x4096x1024] [--seconds 0.5] [--json out.json]

Two rows per shape on CUDA, reported apart: `pytorch-cuda-fp32` with TF32 off (torch.backends.cuda.matmul.
allow_tf32 = False, full float32 products, the fair peer of an FP32 OpenCL kernel) and `pytorch-cuda-tf32`
with TF32 on (10-bit mantissa products on the tensor cores: faster, not the same arithmetic). Before
timing, each shape's product is checked against float64 on the same inputs (relative error ‖C − C64‖ /
‖C64‖ under 1e-4 for float32, the suite's matmul bound, which TF32's errors of about 3e-4 exceed, and 1e-2
for TF32; NaN never passes), so a row never times a wrong result or TF32 under the float32 name.
Shapes are N (N×N×N) or MxNxK, as kiln-bench's. Rows are printed and, with --json, written in kiln-bench's
format {"bench", "impl", "device", "shape", "median_seconds", "gflops"}. Exits with status 77 (skipped)
when PyTorch or the CUDA device is missing.
"""
import argparse
import sys

from peer_support import median_seconds, write_rows

SKIPPED = 77


def parse_shapes(text):
    shapes = []
    for item in text.split(","):
        parts = [int(part) for part in item.strip().split("x")]
        if len(parts) == 1:
            parts = parts * 3
        if len(parts) != 3 or min(parts) < 1:
            raise SystemExit(f"error: cannot read shape '{item}'; use N or MxNxK with positive integers")
        shapes.append(tuple(parts))
    return shapes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    parser.add_argument("--shapes", default="1024,2048,4096,8192")
    parser.add_argument("--seconds", type=float, default=0.5, help="seconds of timed calls per case (default 0.5)")
    parser.add_argument("--json", help="write the rows to this file")
    arguments = parser.parse_args()
    shapes = parse_shapes(arguments.shapes)
    try:
        import torch
    except ImportError:
        print("note: PyTorch is not installed; skipping the cuBLAS peer (pip install torch)", file=sys.stderr)
        return SKIPPED
    device = torch.device(arguments.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("note: PyTorch sees no CUDA device; skipping the cuBLAS peer", file=sys.stderr)
        return SKIPPED
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    modes = [("fp32", False, 1e-4), ("tf32", True, 1e-2)] if device.type == "cuda" else [("fp32", False, 1e-4)]
    rows = []
    generator = torch.Generator(device="cpu").manual_seed(0)
    for m, n, k in shapes:
        a = (torch.rand(m, k, generator=generator) * 2 - 1).to(device)
        b = (torch.rand(k, n, generator=generator) * 2 - 1).to(device)
        c = torch.full((m, n), float("nan"), device=device)
        reference = a.double() @ b.double()
        for mode, tf32, bound in modes:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.mm(a, b, out=c)
            synchronize()
            error = ((c.double() - reference).norm() / reference.norm()).item()
            if not error < bound:
                print(f"error: torch.mm {mode} at {m}x{n}x{k} has relative error {error:.2e} (bound {bound:.0e}); not timed", file=sys.stderr)
                return 1
            seconds = median_seconds(lambda: torch.mm(a, b, out=c), 5, arguments.seconds, synchronize)
            impl = f"pytorch-{device.type}-{mode}"
            row = {"bench": "matmul", "impl": impl, "device": f"{name} (PyTorch {torch.__version__})", "shape": f"{m}x{n}x{k}",
                   "median_seconds": seconds, "gflops": 2.0 * m * n * k / seconds / 1e9}
            rows.append(row)
            print(f"{row['shape']:<18} {impl:<18} {seconds * 1e3:9.3f} ms {row['gflops']:10.1f} GFLOP/s  (error {error:.1e})", flush=True)
        torch.backends.cuda.matmul.allow_tf32 = False
        del a, b, c, reference
    write_rows(arguments.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""One KAN layer in efficient-kan's formulation (github.com/Blealtan/efficient-kan, KANLinear), timed the
way `kiln-bench spline` times Kiln: forward + backward with respect to the input and every weight.

The formulation: the Cox-de Boor basis tensor [batch, in, G+k] built by the recursion over the whole
extended grid, flattened and multiplied by the [out, in*(G+k)] coefficient matrix (scaled per edge by
the spline scaler), plus the SiLU base branch as a second matrix product. Parameters are laid out as
efficient-kan's (base_weight [out, in], spline_weight [out, in, G+k], spline_scaler [out, in]); the math
is the same as Kiln's layer with scaleBase = base_weight^T and scaleSpline = spline_scaler^T.

    python3 bench/peers/efficient_kan.py --threads 2 [--grids 5,20] [--json out.json]
    python3 bench/peers/efficient_kan.py --device cuda [--batch 4096] [--grids 5,20] [--json out.json]

With --device cuda (or cuda:N) the layer runs on that GPU in float32 with TF32 off, each call
synchronized; the run exits with status 77 (skipped) when PyTorch or the GPU is missing.

Rows are printed, and written with --json, in kiln-bench's format:
{"bench", "impl", "device", "shape", "median_seconds", "gflops"}.
"""
import argparse
import json
import platform
import sys

from peer_support import median_seconds, write_rows


def make_layer(torch, batch, inputs, outputs, grid, order, device="cpu"):
    generator = torch.Generator().manual_seed(7)
    h = 2.0 / grid
    # pykan's / efficient-kan's initial grid on [-1, 1], extended by `order` knots on each side.
    knots = (torch.arange(-order, grid + order + 1, dtype=torch.float32) * h - 1.0).expand(inputs, -1).contiguous()
    parameters = {
        "base_weight": torch.randn(outputs, inputs, generator=generator) * 0.1,
        "spline_weight": torch.randn(outputs, inputs, grid + order, generator=generator) * 0.1,
        "spline_scaler": 1.0 + torch.randn(outputs, inputs, generator=generator) * 0.1,
    }
    for tensor in parameters.values():
        tensor.requires_grad_(True)
    x = (torch.rand(batch, inputs, generator=generator) * 2.4 - 1.2).requires_grad_(True)
    dy = torch.randn(batch, outputs, generator=generator)
    if device != "cpu":
        knots, x, dy = knots.to(device), x.detach().to(device).requires_grad_(True), dy.to(device)
        parameters = {key: tensor.detach().to(device).requires_grad_(True) for key, tensor in parameters.items()}
    return knots, parameters, x, dy


def basis(torch, x, knots, order):
    """Cox-de Boor over the whole extended grid: [batch, in, G+k]."""
    x = x.unsqueeze(-1)
    bases = ((x >= knots[:, :-1]) & (x < knots[:, 1:])).to(x.dtype)
    for p in range(1, order + 1):
        left = (x - knots[:, : -(p + 1)]) / (knots[:, p:-1] - knots[:, : -(p + 1)])
        right = (knots[:, p + 1:] - x) / (knots[:, p + 1:] - knots[:, 1:(-p)])
        bases = left * bases[:, :, :-1] + right * bases[:, :, 1:]
    return bases


def layer_step(torch, knots, parameters, x, dy, order):
    for tensor in [x, *parameters.values()]:
        tensor.grad = None
    functional = torch.nn.functional
    base = functional.linear(functional.silu(x), parameters["base_weight"])
    scaled = parameters["spline_weight"] * parameters["spline_scaler"].unsqueeze(-1)
    spline = functional.linear(basis(torch, x, knots, order).reshape(x.shape[0], -1), scaled.reshape(scaled.shape[0], -1))
    (base + spline).backward(dy)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--grids", default="5,20")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--inputs", type=int, default=256)
    parser.add_argument("--outputs", type=int, default=256)
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--runs", type=int, default=7, help="at least this many timed runs (default 7)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds of timed runs per case (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    on_gpu = args.device.startswith("cuda")
    if not on_gpu and args.device != "cpu":
        raise SystemExit(f"error: unknown device '{args.device}'; use cpu, cuda or cuda:N")
    try:
        import torch
    except ImportError:
        print("note: PyTorch is not installed; nothing to time (pip install torch)", file=sys.stderr)
        return 77 if on_gpu else 0
    if on_gpu and not torch.cuda.is_available():
        print("note: PyTorch sees no CUDA device; skipping efficient-kan on the GPU", file=sys.stderr)
        return 77
    torch.set_num_threads(args.threads)
    synchronize = lambda: None
    if on_gpu:
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 products, as Kiln's
        synchronize = torch.cuda.synchronize
        device = f"{torch.cuda.get_device_name(args.device)} (PyTorch CUDA)"
        impl = "efficient-kan-pytorch-cuda-" + torch.__version__
    else:
        device = f"{platform.processor() or platform.machine()} (PyTorch CPU, {args.threads} threads)"
        impl = "efficient-kan-pytorch-" + torch.__version__
    rows = []
    for grid in [int(g) for g in args.grids.split(",")]:
        knots, parameters, x, dy = make_layer(torch, args.batch, args.inputs, args.outputs, grid, args.order, args.device)
        seconds = median_seconds(lambda: layer_step(torch, knots, parameters, x, dy, args.order), args.runs, args.seconds, synchronize)
        shape = f"b{args.batch}-{args.inputs}x{args.outputs}-G{grid}-k{args.order}"
        row = {"bench": "spline", "impl": impl, "device": device,
               "shape": shape, "median_seconds": seconds, "gflops": None}
        rows.append(row)
        print(json.dumps(row))
    write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""One KAN layer in efficient-kan's formulation (github.com/Blealtan/efficient-kan, KANLinear), timed the
way `kiln-bench spline` times Kiln: forward + backward with respect to the input and every weight.

The formulation: the Cox-de Boor basis tensor [batch, in, G+k] built by the recursion over the whole
extended grid, flattened and multiplied by the [out, in*(G+k)] coefficient matrix (scaled per edge by
the spline scaler), plus the SiLU base branch as a second matrix product. Parameters are laid out as
efficient-kan's (base_weight [out, in], spline_weight [out, in, G+k], spline_scaler [out, in]); the math
is the same as Kiln's layer with scaleBase = base_weight^T and scaleSpline = spline_scaler^T.

    python3 bench/peers/efficient_kan.py --threads 2 [--grids 5,20] [--json out.json]

Rows are printed, and written with --json, in kiln-bench's format:
{"bench", "impl", "device", "shape", "median_seconds", "gflops"}.
"""
import argparse
import json
import platform
import statistics
import sys
import time


def make_layer(torch, batch, inputs, outputs, grid, order):
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


def median_seconds(step, runs, budget_seconds):
    """Median wall time of `step` over at least `runs` runs and about `budget_seconds`, after warming up
    for at least two calls and a fifth of the budget (as kiln-bench's Measure.median does)."""
    start = time.perf_counter()
    calls = 0
    while calls < 2 or time.perf_counter() - start < budget_seconds / 5:
        step()
        calls += 1
    samples = []
    start = time.perf_counter()
    while len(samples) < runs or (len(samples) < 200 and time.perf_counter() - start < budget_seconds):
        before = time.perf_counter()
        step()
        samples.append(time.perf_counter() - before)
    return statistics.median(samples)


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
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("note: PyTorch is not installed; nothing to time (pip install torch)", file=sys.stderr)
        return
    torch.set_num_threads(args.threads)
    device = f"{platform.processor() or platform.machine()} (PyTorch CPU, {args.threads} threads)"
    rows = []
    for grid in [int(g) for g in args.grids.split(",")]:
        knots, parameters, x, dy = make_layer(torch, args.batch, args.inputs, args.outputs, grid, args.order)
        seconds = median_seconds(lambda: layer_step(torch, knots, parameters, x, dy, args.order), args.runs, args.seconds)
        shape = f"b{args.batch}-{args.inputs}x{args.outputs}-G{grid}-k{args.order}"
        row = {"bench": "spline", "impl": "efficient-kan-pytorch-" + torch.__version__, "device": device,
               "shape": shape, "median_seconds": seconds, "gflops": None}
        rows.append(row)
        print(json.dumps(row))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The GPU peer of `kiln-bench scan`: flash-linear-attention's own Triton kernels (the fla-core wheel:
fla.ops.gla.chunk_gla, fla.ops.delta_rule.chunk_delta_rule, fla.ops.gated_delta_rule.chunk_gated_delta_rule)
on a CUDA device, forward + backward, timed as kiln-bench times Kiln's scans.

    python3 bench/peers/fla_triton.py [--lengths 1024,4096,16384] [--dimensions 64,128]
                                      [--kinds gla,deltanet,gated-deltanet] [--check] [--json out.json]

Math and layouts are Kiln's, which are fla's (q, k, g [B, T, H, K], v [B, T, H, V], beta and the delta
rule's per-head gate [B, T, H], state [B, H, K, V]; o_t includes step t's own update; scale K^-1/2). Inputs
as kiln-bench scan's: q, k, v and h0 uniform in [-1, 1), GLA's per-key log gates logsigmoid(U(-3, 3)),
unit-norm keys and beta in [0.05, 0.95] for the delta rule. Each timed call is the forward pass with the
initial state and the final state, then the backward of sum(o · dO) + sum(S_T · dS_T), so every input gets
a gradient, synchronized; median of at least --runs calls and about --seconds after a fifth of that
warming up. --check first compares each kernel at T = 192 with the step-by-step loops of
bench/peers/gla_chunked.py in float64 (outputs, final state and every gradient); fla's kernels multiply
float32 operands with tl.dot, TF32 on NVIDIA GPUs, so the bound is 1e-2, a check of the function and not
of the rounding. Rows are printed and, with --json, written as kiln-bench rows {"bench", "impl", "device",
"shape", "median_seconds", "gflops"}, with impl `fla-triton-<kind>-chunked-fwd-bwd`.
Exits with status 77 (skipped) when PyTorch, CUDA or fla is missing.
"""
import argparse
import os
import sys

from peer_support import median_seconds, write_rows

SKIPPED = 77


def make_inputs(torch, kind, length, heads, dimension, device, dtype, seed):
    generator = torch.Generator(device="cpu").manual_seed(seed)
    shape = (1, length, heads, dimension)

    def uniform(*size, low=-1.0, high=1.0):
        return (torch.rand(*size, generator=generator, dtype=torch.float64) * (high - low) + low).to(device=device, dtype=dtype)

    q, k, v = uniform(*shape), uniform(*shape), uniform(*shape)
    h0 = uniform(1, heads, dimension, dimension)
    if kind == "gla":
        extra = [torch.nn.functional.logsigmoid(uniform(*shape, low=-3.0, high=3.0))]
    else:
        k = k / k.norm(dim=-1, keepdim=True)
        extra = [uniform(1, length, heads, low=0.05, high=0.95)]  # beta
        if kind == "gated-deltanet":
            extra.append(torch.nn.functional.logsigmoid(uniform(1, length, heads, low=-3.0, high=3.0)))  # g, per head
    inputs = [x.requires_grad_() for x in [q, k, v, *extra, h0]]
    return inputs, uniform(*shape), uniform(1, heads, dimension, dimension)


def fla_call(kind):
    """(q, k, v, extra..., h0, scale) -> (o, S_T) through fla's Triton kernel for `kind`."""
    if kind == "gla":
        from fla.ops.gla import chunk_gla
        return lambda q, k, v, g, h0, scale: chunk_gla(q, k, v, g, scale=scale, initial_state=h0, output_final_state=True)
    if kind == "deltanet":
        from fla.ops.delta_rule import chunk_delta_rule
        return lambda q, k, v, beta, h0, scale: chunk_delta_rule(q, k, v, beta, scale=scale, initial_state=h0, output_final_state=True)
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule
    return lambda q, k, v, beta, g, h0, scale: chunk_gated_delta_rule(q, k, v, g, beta, scale=scale, initial_state=h0, output_final_state=True)


def loop_call(torch, kind):
    """The float64 step-by-step reference, from gla_chunked.py (the gated delta rule multiplies S by exp(g_t) first)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gla_chunked import delta_loop, gla_loop

    if kind == "gla":
        return lambda q, k, v, g, h0, scale: gla_loop(torch, q, k, v, g, scale, h0)
    if kind == "deltanet":
        return lambda q, k, v, beta, h0, scale: delta_loop(torch, q, k, v, beta, scale, h0)

    def gated(q, k, v, beta, g, h0, scale):
        state, outputs = h0, []
        for t in range(q.shape[1]):
            state = state * torch.exp(g[:, t])[..., None, None]
            u = beta[:, t].unsqueeze(-1) * (v[:, t] - torch.einsum("bhk,bhkv->bhv", k[:, t], state))
            state = state + k[:, t].unsqueeze(-1) * u.unsqueeze(-2)
            outputs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, state))
        return torch.stack(outputs, dim=1), state

    return gated


def forward_backward(call, inputs, d_out, d_state, scale):
    for tensor in inputs:
        tensor.grad = None
    output, state = call(*inputs, scale)
    ((output * d_out).sum() + (state * d_state).sum()).backward()
    return [output.detach(), state.detach()] + [tensor.grad for tensor in inputs]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--lengths", default="1024,4096,16384", help="comma-separated sequence lengths")
    parser.add_argument("--dimensions", default="64,128", help="comma-separated key = value dimensions")
    parser.add_argument("--kinds", default="gla,deltanet,gated-deltanet")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--check", action="store_true", help="first check each kernel against the float64 loop at T = 192")
    parser.add_argument("--json")
    arguments = parser.parse_args()
    kinds = arguments.kinds.split(",")
    for kind in kinds:
        if kind not in ("gla", "deltanet", "gated-deltanet"):
            raise SystemExit(f"error: unknown kind '{kind}'; use gla, deltanet, gated-deltanet")
    try:
        import torch
    except ImportError:
        print("note: PyTorch is not installed; skipping fla (pip install torch)", file=sys.stderr)
        return SKIPPED
    if not arguments.device.startswith("cuda") or not torch.cuda.is_available():
        print(f"note: fla's Triton kernels need a CUDA device; PyTorch sees none at '{arguments.device}'; skipping", file=sys.stderr)
        return SKIPPED
    try:
        import fla
    except ImportError:
        print("note: fla is not installed; skipping it (carry the fla-core wheel: DEVELOPERS.md)", file=sys.stderr)
        return SKIPPED
    device = torch.device(arguments.device)
    synchronize = torch.cuda.synchronize
    name = f"{torch.cuda.get_device_name(device)} (fla {fla.__version__}, PyTorch {torch.__version__})"

    if arguments.check:
        for kind in kinds:
            inputs, d_out, d_state = make_inputs(torch, kind, 192, 2, 32, device, torch.float32, seed=1)
            got = forward_backward(fla_call(kind), inputs, d_out, d_state, 32 ** -0.5)
            cpu = [x.detach().double().cpu().requires_grad_() for x in inputs]
            expected = forward_backward(loop_call(torch, kind), cpu, d_out.double().cpu(), d_state.double().cpu(), 32 ** -0.5)
            labels = ["o", "S_T"] + [f"d{index}" for index in range(len(inputs))]
            errors = {label: ((a.double().cpu() - b).norm() / b.norm()).item() for label, a, b in zip(labels, got, expected)}
            worst = max(errors, key=lambda label: errors[label] if errors[label] == errors[label] else float("inf"))
            print(f"check: fla {kind} against the float64 loop, largest relative error {errors[worst]:.2e} ({worst})", flush=True)
            if not errors[worst] < 1e-2:
                print(f"error: fla's {kind} disagrees with the loop ({worst}: {errors[worst]:.2e}); not timed", file=sys.stderr)
                return 1

    rows = []
    for kind in kinds:
        call = fla_call(kind)
        for dimension in [int(text) for text in arguments.dimensions.split(",")]:
            for length in [int(text) for text in arguments.lengths.split(",")]:
                inputs, d_out, d_state = make_inputs(torch, kind, length, arguments.heads, dimension, device, torch.float32, seed=0)
                seconds = median_seconds(lambda: forward_backward(call, inputs, d_out, d_state, dimension ** -0.5), arguments.runs, arguments.seconds, synchronize)
                shape = f"B1-T{length}-H{arguments.heads}-K{dimension}-V{dimension}"
                impl = f"fla-triton-{kind}-chunked-fwd-bwd"
                rows.append({"bench": "scan", "impl": impl, "device": name, "shape": shape, "median_seconds": seconds, "gflops": None})
                print(f"{impl:40} {shape:24} {seconds * 1e3:9.3f} ms  {length / seconds / 1e3:9.1f} k tokens/s", flush=True)
    write_rows(arguments.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

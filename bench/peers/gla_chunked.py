#!/usr/bin/env python3
"""GLA (gated linear attention with per-key gates) forward + backward in PyTorch on the CPU: the peer of
`kiln-bench scan`.

    python3 bench/peers/gla_chunked.py --threads 2 [--lengths 1024] [--json out.json] [--check]

Two implementations, both differentiated by autograd:
- chunked: the standard chunked form with chunks of 64 steps. Inside a chunk, attention scores
  q_i . k_j weighted by exp(G_i - G_j) per key (G the gate's cumulative sum within the chunk), the mask
  built from those pairwise differences (j <= i, so every exponent is <= 0: safe for strong gates);
  between chunks, the state is passed on: o_i += (q_i * exp(G_i)) S, S <- diag(exp(G_C)) S +
  sum_j (k_j * exp(G_C - G_j)) v_j^T. Written from matmuls and element-wise ops.
- loop: one step at a time, S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T, o_t = S_t^T (scale q_t).

Math and layouts are Kiln's (q, k, g [B, T, H, K], v [B, T, H, V], state [B, H, K, V]); each timed call is
the forward pass plus backward of sum(o * dO) + sum(S_T * dS_T), so every input gets a gradient, like
Kiln's forward + backward primitives. Median of --runs calls after 2 warm-up calls. Rows are printed and,
with --json, written as kiln-bench rows {"bench", "impl", "device", "shape", "median_seconds", "gflops"}.
"""
import argparse
import json
import statistics
import sys
import time


def gla_loop(q, k, v, g, scale, h0):
    """The recurrence, one step at a time."""
    import torch
    batch, length, heads, keys = q.shape
    state = h0
    outputs = []
    for t in range(length):
        state = state * torch.exp(g[:, t]).unsqueeze(-1) + k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)
        outputs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, state))
    return torch.stack(outputs, dim=1), state


def gla_chunked(q, k, v, g, scale, h0, chunk=64):
    """The chunked form (see the module docstring); T must be a multiple of `chunk`."""
    import torch
    batch, length, heads, keys = q.shape
    values = v.shape[-1]
    assert length % chunk == 0, "T must be a multiple of the chunk length"
    chunks = length // chunk

    def blocks(x):  # [B, T, H, D] -> [B, H, N, C, D]
        return x.transpose(1, 2).reshape(batch, heads, chunks, chunk, x.shape[-1])

    qb, kb, vb, gb = blocks(q * scale), blocks(k), blocks(v), blocks(g)
    cumulative = gb.cumsum(dim=-2)  # G_i, inclusive, within each chunk
    # Intra-chunk: scores[i, j] = sum_k q_i[k] k_j[k] exp(G_i[k] - G_j[k]) for j <= i.
    causal = torch.ones(chunk, chunk, dtype=torch.bool).tril()
    differences = cumulative.unsqueeze(-2) - cumulative.unsqueeze(-3)  # [B, H, N, C(i), C(j), K]
    decay = torch.exp(differences.masked_fill(~causal.unsqueeze(-1), float("-inf")))
    scores = (qb.unsqueeze(-2) * kb.unsqueeze(-3) * decay).sum(-1)
    intra = scores @ vb  # [B, H, N, C, V]
    # Inter-chunk: pass the state from chunk to chunk.
    state = h0
    outputs = []
    for n in range(chunks):
        g_n = cumulative[:, :, n]
        outputs.append(intra[:, :, n] + (qb[:, :, n] * torch.exp(g_n)) @ state)
        last = g_n[:, :, -1:, :]
        weighted_keys = kb[:, :, n] * torch.exp(last - g_n)
        state = state * torch.exp(last).transpose(-1, -2) + weighted_keys.transpose(-1, -2) @ vb[:, :, n]
    output = torch.stack(outputs, dim=2).reshape(batch, heads, length, values).transpose(1, 2)
    return output, state


def make_inputs(torch, length, heads, dimension, dtype=None, seed=0):
    generator = torch.Generator().manual_seed(seed)
    dtype = dtype or torch.float32
    shape = (1, length, heads, dimension)

    def uniform(*size):
        return (torch.rand(*size, generator=generator, dtype=dtype) * 2 - 1).requires_grad_()

    q, k, v = uniform(*shape), uniform(*shape), uniform(*shape)
    g = torch.nn.functional.logsigmoid(torch.rand(*shape, generator=generator, dtype=dtype) * 6 - 3).requires_grad_()
    h0 = uniform(1, heads, dimension, dimension)
    d_out = torch.rand(*shape, generator=generator, dtype=dtype) * 2 - 1
    d_state = torch.rand(1, heads, dimension, dimension, generator=generator, dtype=dtype) * 2 - 1
    return (q, k, v, g, h0), d_out, d_state


def time_call(call, runs):
    for _ in range(2):
        call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lengths", default="1024", help="comma-separated sequence lengths")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dimension", type=int, default=64)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--skip-loop", action="store_true", help="time only the chunked form")
    parser.add_argument("--check", action="store_true", help="check chunked against the loop in float64 first")
    parser.add_argument("--json")
    arguments = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("note: PyTorch is not installed; nothing to measure (pip install torch)", file=sys.stderr)
        return
    torch.set_num_threads(arguments.threads)
    device = f"cpu ({arguments.threads} threads, PyTorch {torch.__version__})"
    scale = arguments.dimension ** -0.5

    if arguments.check:
        inputs, d_out, d_state = make_inputs(torch, 128, 2, 16, dtype=torch.float64, seed=1)
        results = []
        for function in (gla_loop, gla_chunked):
            for tensor in inputs:
                tensor.grad = None
            output, state = function(*inputs[:4], scale, inputs[4])
            ((output * d_out).sum() + (state * d_state).sum()).backward()
            results.append([output.detach(), state.detach()] + [tensor.grad.clone() for tensor in inputs])
        worst = max(((a - b).norm() / b.norm()).item() for a, b in zip(results[1], results[0]))
        print(f"check: chunked against loop in float64, largest relative error {worst:.2e}")
        assert worst < 1e-10

    rows = []
    implementations = [("pytorch-gla-chunked64-fwd-bwd", gla_chunked)]
    if not arguments.skip_loop:
        implementations.append(("pytorch-gla-loop-fwd-bwd", gla_loop))
    for length in [int(text) for text in arguments.lengths.split(",")]:
        inputs, d_out, d_state = make_inputs(torch, length, arguments.heads, arguments.dimension)
        shape = f"B1-T{length}-H{arguments.heads}-K{arguments.dimension}-V{arguments.dimension}"
        for name, function in implementations:
            def call():
                for tensor in inputs:
                    tensor.grad = None
                output, state = function(*inputs[:4], scale, inputs[4])
                ((output * d_out).sum() + (state * d_state).sum()).backward()

            seconds = time_call(call, arguments.runs)
            rows.append({"bench": "scan", "impl": name, "device": device, "shape": shape, "median_seconds": seconds, "gflops": None})
            print(f"{name:34} {shape:22} {seconds * 1e3:9.2f} ms  {length / seconds / 1e3:8.1f} k tokens/s")
    if arguments.json:
        with open(arguments.json, "w") as file:
            json.dump(rows, file, indent=2)
        print(f"wrote {arguments.json}")


if __name__ == "__main__":
    main()

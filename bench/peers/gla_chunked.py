#!/usr/bin/env python3
"""The peer of `kiln-bench scan`: flash-linear-attention's (fla's) chunked algorithms written in PyTorch, on
the CPU, forward + backward (the backward by autograd).

    python3 bench/peers/gla_chunked.py --threads 2 [--lengths 4096] [--dimensions 64,128] [--kinds gla,deltanet]
                                       [--check] [--json out.json]

- gla: chunked GLA with per-key gates as fla's chunk_gla computes it. Chunks of C = 64; G the gate's
  cumulative sum within a chunk. Within a chunk, sub-chunks of 16: an off-diagonal block (I > J) of the
  score matrix is one matrix product of q_I * exp(G_I - G_n) and k_J * exp(G_n - G_J), G_n the first row
  of block I (both exponents <= 0); a diagonal block is element-wise with exp(G_i - G_j), j <= i.
  Across chunks: o += (q * exp(G)) S, S <- diag(exp(G_C)) S + (k * exp(G_C - G))^T v.
- deltanet: DeltaNet in the WY/UT form (Yang et al. 2024, fla's chunk_delta_rule): per chunk
  A = tril(diag(beta) K K^T, -1), T = (I + A)^-1 diag(beta) (a unit lower-triangular solve), W = T K,
  U = T V; across chunks U' = U - W S, o = q S + tril(q K^T) U', S <- S + K^T U'.
- loop: one step at a time (the recurrences Kiln's reference defines), for --check in float64.

Math and layouts are Kiln's (q, k, g [B, T, H, K], v [B, T, H, V], beta [B, T, H], state [B, H, K, V]; o_t
includes step t's own update). Each timed call is the forward pass plus the backward of sum(o * dO) +
sum(S_T * dS_T), so every input gets a gradient, like Kiln's forward + backward primitives. Median of
--runs calls after 2 warm-up calls. Rows are printed and, with --json, written as kiln-bench rows
{"bench", "impl", "device", "shape", "median_seconds", "gflops"}.
"""
import argparse
import json
import statistics
import sys
import time

CHUNK = 64
SUB = 16


def gla_loop(torch, q, k, v, g, scale, h0):
    """S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T, o_t = S_t^T (scale q_t)."""
    state, outputs = h0, []
    for t in range(q.shape[1]):
        state = state * torch.exp(g[:, t]).unsqueeze(-1) + k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)
        outputs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, state))
    return torch.stack(outputs, dim=1), state


def delta_loop(torch, q, k, v, beta, scale, h0):
    """u_t = beta_t (v_t - S_{t-1}^T k_t), S_t = S_{t-1} + k_t u_t^T, o_t = S_t^T (scale q_t)."""
    state, outputs = h0, []
    for t in range(q.shape[1]):
        u = beta[:, t].unsqueeze(-1) * (v[:, t] - torch.einsum("bhk,bhkv->bhv", k[:, t], state))
        state = state + k[:, t].unsqueeze(-1) * u.unsqueeze(-2)
        outputs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, state))
    return torch.stack(outputs, dim=1), state


def blocks(x, chunks):
    """[B, T, H, D] -> [B, H, N, C, D] (T a multiple of C)."""
    batch, length, heads, width = x.shape
    return x.transpose(1, 2).reshape(batch, heads, chunks, CHUNK, width)


def unblocks(x):
    """[B, H, N, C, D] -> [B, T, H, D]."""
    batch, heads, chunks, chunk, width = x.shape
    return x.reshape(batch, heads, chunks * chunk, width).transpose(1, 2)


def gla_chunked(torch, q, k, v, g, scale, h0):
    """fla's chunked GLA (see the module docstring); T must be a multiple of 64."""
    chunks = q.shape[1] // CHUNK
    qb, kb, vb = blocks(q * scale, chunks), blocks(k, chunks), blocks(v, chunks)
    gc = blocks(g, chunks).cumsum(dim=-2)  # G, inclusive, within each chunk
    # Scores in sub-chunks: [B, H, N, 4 (block), 16 (row), K].
    shape = qb.shape[:3] + (CHUNK // SUB, SUB, qb.shape[-1])
    qs, ks, gs = qb.reshape(shape), kb.reshape(shape), gc.reshape(shape)
    gn = gs[..., :1, :]  # G at the first row of each block
    q_hat = qs * torch.exp(gs - gn)  # q_I * exp(G_I - G_n(I))
    blocks_per_chunk = CHUNK // SUB
    earlier = torch.ones(blocks_per_chunk, blocks_per_chunk, dtype=torch.bool).tril(-1)  # J < I
    # exp(G_n(I) - G_J) for J < I, [.., I, J, 16, K]; masked to -inf elsewhere before exp (no overflow).
    exponent = gn.unsqueeze(-3) - gs.unsqueeze(-4)
    exponent = exponent.masked_fill(~earlier[:, :, None, None], float("-inf"))
    k_hat = ks.unsqueeze(-4) * torch.exp(exponent)
    off = torch.einsum("bhnIik,bhnIJjk->bhnIiJj", q_hat, k_hat)
    causal = torch.ones(SUB, SUB, dtype=torch.bool).tril()
    pair = (gs.unsqueeze(-2) - gs.unsqueeze(-3)).masked_fill(~causal[:, :, None], float("-inf"))  # [.., I, i, j, K]
    diagonal = torch.einsum("bhnIik,bhnIjk,bhnIijk->bhnIij", qs, ks, torch.exp(pair))
    eye = torch.eye(blocks_per_chunk, dtype=q.dtype)
    scores = off + diagonal.unsqueeze(-2) * eye[:, None, :, None]
    scores = scores.reshape(qb.shape[:3] + (CHUNK, CHUNK))
    intra = scores @ vb
    # Across chunks: each chunk's own contribution, then the states one chunk after another.
    last = gc[..., -1:, :]  # G_C, [B, H, N, 1, K]
    contribution = (kb * torch.exp(last - gc)).transpose(-1, -2) @ vb  # [B, H, N, K, V]
    decay = torch.exp(last).transpose(-1, -2)  # [B, H, N, K, 1]
    state, starts = h0, []
    for n in range(chunks):
        starts.append(state)
        state = decay[:, :, n] * state + contribution[:, :, n]
    inter = (qb * torch.exp(gc)) @ torch.stack(starts, dim=2)
    return unblocks(intra + inter), state


def delta_chunked(torch, q, k, v, beta, scale, h0):
    """fla's chunked DeltaNet in the WY/UT form (see the module docstring); T must be a multiple of 64."""
    chunks = q.shape[1] // CHUNK
    qb, kb, vb = blocks(q * scale, chunks), blocks(k, chunks), blocks(v, chunks)
    bb = blocks(beta.unsqueeze(-1), chunks)  # [B, H, N, C, 1]
    eye = torch.eye(CHUNK, dtype=q.dtype)
    a = ((bb * kb) @ kb.transpose(-1, -2)).tril(-1)
    # T = (I + A)^-1 diag(beta): W = T K and U = T V by one unit lower-triangular solve.
    w_u = torch.linalg.solve_triangular(eye + a, bb * torch.cat([kb, vb], dim=-1), upper=False, unitriangular=True)
    w, u = w_u[..., : kb.shape[-1]], w_u[..., kb.shape[-1]:]
    attention = (qb @ kb.transpose(-1, -2)).tril()
    state, starts, corrected = h0, [], []
    for n in range(chunks):
        starts.append(state)
        u_n = u[:, :, n] - w[:, :, n] @ state
        corrected.append(u_n)
        state = state + kb[:, :, n].transpose(-1, -2) @ u_n
    output = qb @ torch.stack(starts, dim=2) + attention @ torch.stack(corrected, dim=2)
    return unblocks(output), state


def make_inputs(torch, kind, length, heads, dimension, dtype, seed):
    generator = torch.Generator().manual_seed(seed)
    shape = (1, length, heads, dimension)

    def uniform(*size):
        return torch.rand(*size, generator=generator, dtype=dtype) * 2 - 1

    q, k, v = uniform(*shape), uniform(*shape), uniform(*shape)
    if kind == "gla":
        last = torch.nn.functional.logsigmoid(torch.rand(*shape, generator=generator, dtype=dtype) * 6 - 3)
    else:
        k = k / k.norm(dim=-1, keepdim=True)  # the delta rule expects unit-norm keys, as in kiln-bench scan
        last = torch.rand(1, length, heads, generator=generator, dtype=dtype) * 0.9 + 0.05  # beta
    h0 = uniform(1, heads, dimension, dimension)
    tensors = [x.requires_grad_() for x in (q, k, v, last, h0)]
    return tensors, uniform(*shape), uniform(1, heads, dimension, dimension)


def run(torch, function, inputs, d_out, d_state, scale):
    for tensor in inputs:
        tensor.grad = None
    output, state = function(torch, *inputs[:4], scale, inputs[4])
    ((output * d_out).sum() + (state * d_state).sum()).backward()
    return [output.detach(), state.detach()] + [tensor.grad.clone() for tensor in inputs]


def time_call(call, runs):
    for _ in range(2):
        call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


FORMS = {"gla": (gla_chunked, gla_loop), "deltanet": (delta_chunked, delta_loop)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lengths", default="4096", help="comma-separated sequence lengths (multiples of 64)")
    parser.add_argument("--dimensions", default="64,128", help="comma-separated key = value dimensions")
    parser.add_argument("--kinds", default="gla,deltanet")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="check each chunked form against its loop in float64 first")
    parser.add_argument("--json")
    arguments = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("note: PyTorch is not installed; nothing to measure (pip install torch)", file=sys.stderr)
        return
    torch.set_num_threads(arguments.threads)
    device = f"cpu ({arguments.threads} threads, PyTorch {torch.__version__})"
    kinds = arguments.kinds.split(",")

    if arguments.check:
        for kind in kinds:
            chunked, loop = FORMS[kind]
            # T = 192: three chunks; strong gates (logsigmoid / 0.1) would be another test of the same code.
            inputs, d_out, d_state = make_inputs(torch, kind, 192, 2, 16, torch.float64, seed=1)
            expected = run(torch, loop, inputs, d_out, d_state, 0.25)
            got = run(torch, chunked, inputs, d_out, d_state, 0.25)
            worst = max(((a - b).norm() / b.norm()).item() for a, b in zip(got, expected))
            print(f"check: {kind} chunked against the loop in float64, largest relative error {worst:.2e}")
            assert worst < 1e-10, f"{kind}: chunked form disagrees with the loop"

    rows = []
    for kind in kinds:
        chunked, _ = FORMS[kind]
        for dimension in [int(text) for text in arguments.dimensions.split(",")]:
            for length in [int(text) for text in arguments.lengths.split(",")]:
                inputs, d_out, d_state = make_inputs(torch, kind, length, arguments.heads, dimension, torch.float32, seed=0)
                shape = f"B1-T{length}-H{arguments.heads}-K{dimension}-V{dimension}"
                seconds = time_call(lambda: run(torch, chunked, inputs, d_out, d_state, dimension ** -0.5), arguments.runs)
                name = f"pytorch-{kind}-fla-chunked-fwd-bwd"
                rows.append({"bench": "scan", "impl": name, "device": device, "shape": shape, "median_seconds": seconds, "gflops": None})
                print(f"{name:36} {shape:22} {seconds * 1e3:9.2f} ms  {length / seconds / 1e3:8.1f} k tokens/s", flush=True)
    if arguments.json:
        with open(arguments.json, "w") as file:
            json.dump(rows, file, indent=2)
        print(f"wrote {arguments.json}")


if __name__ == "__main__":
    main()

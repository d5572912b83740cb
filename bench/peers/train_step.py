#!/usr/bin/env python3
"""One training step (forward, backward, Adam) of a ReLU MLP 512 -> w -> w -> w -> 10, batch 256,
in PyTorch and JAX on the CPU, timed the way `kiln-bench train-step` times Kiln: median of 20 steps
after 3 warm-up steps, with the same thread count.

    python3 bench/peers/train_step.py --threads 2 --widths 256,1024,2048 [--json out.json]
    python3 bench/peers/train_step.py --device cuda --widths 1024,2048,4096,8192 [--json out.json]

Each framework is skipped (with a note) when it is not installed (`pip install torch jax`). With
--device cuda (or cuda:N) only PyTorch runs, on that GPU in float32 with TF32 off, each step synchronized
(the `kiln-bench train-step` peer on a GPU); it exits with status 77 (skipped) when PyTorch or the GPU
is missing.
Rows are printed, and written with --json, in kiln-bench's format:
{"bench", "impl", "device", "shape", "median_seconds", "gflops"}.
"""
import argparse
import json
import os
import statistics
import sys
import time


def layer_sizes(width):
    return [(512, width), (width, width), (width, width), (width, 10)]


def gemm_flops(width, batch):
    """Multiply-adds x 2 of the step's matrix products: forward, weight gradients, and input
    gradients for every layer but the first (the same count kiln-bench uses)."""
    total = 0
    for index, (fan_in, fan_out) in enumerate(layer_sizes(width)):
        total += 4 * batch * fan_in * fan_out
        if index > 0:
            total += 2 * batch * fan_in * fan_out
    return float(total)


def time_steps(step, steps, synchronize=lambda: None):
    for _ in range(3):
        step()
    synchronize()
    samples = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_torch(widths, batch, steps, threads, device="cpu"):
    try:
        import torch
    except ImportError:
        print("note: PyTorch is not installed; skipping it (pip install torch)", file=sys.stderr)
        return []
    torch.set_num_threads(threads)
    on_gpu = device.startswith("cuda")
    synchronize = torch.cuda.synchronize if on_gpu else (lambda: None)
    if on_gpu:
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 products, as Kiln's
        torch.backends.cudnn.allow_tf32 = False
    rows = []
    for width in widths:
        torch.manual_seed(0)
        layers = []
        for index, (fan_in, fan_out) in enumerate(layer_sizes(width)):
            layers.append(torch.nn.Linear(fan_in, fan_out))
            if index < 3:
                layers.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*layers).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        inputs = torch.randn(batch, 512).to(device)
        labels = (torch.arange(batch) % 10).to(device)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(inputs), labels)
            loss.backward()
            optimizer.step()

        seconds = time_steps(step, steps, synchronize)
        if on_gpu:
            rows.append(row("pytorch-cuda-" + torch.__version__, width, batch, seconds, device=torch.cuda.get_device_name(device)))
        else:
            rows.append(row("pytorch-" + torch.__version__, width, batch, seconds))
    return rows


def bench_jax(widths, batch, steps, threads):
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}")
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        print("note: JAX is not installed; skipping it (pip install jax)", file=sys.stderr)
        return []
    rows = []
    for width in widths:
        key = jax.random.PRNGKey(0)
        params = []
        for fan_in, fan_out in layer_sizes(width):
            key, k1, k2 = jax.random.split(key, 3)
            bound = 1 / fan_in ** 0.5
            params.append((jax.random.uniform(k1, (fan_in, fan_out), minval=-bound, maxval=bound),
                           jax.random.uniform(k2, (fan_out,), minval=-bound, maxval=bound)))
        moments = [jax.tree_util.tree_map(jnp.zeros_like, p) for p in params]
        state = (params, moments, moments, 0)
        inputs = jax.random.normal(key, (batch, 512))
        labels = jnp.arange(batch) % 10

        def loss_fn(params):
            x = inputs
            for index, (w, b) in enumerate(params):
                x = x @ w + b
                if index < 3:
                    x = jax.nn.relu(x)
            logits = x - jax.scipy.special.logsumexp(x, axis=1, keepdims=True)
            return -jnp.mean(logits[jnp.arange(batch), labels])

        @jax.jit
        def update(state):
            params, first, second, count = state
            grads = jax.grad(loss_fn)(params)
            count = count + 1
            first = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, first, grads)
            second = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, second, grads)
            c1, c2 = 1 - 0.9 ** count, 1 - 0.999 ** count
            params = jax.tree_util.tree_map(lambda p, m, v: p - 1e-4 * (m / c1) / (jnp.sqrt(v / c2) + 1e-8), params, first, second)
            return params, first, second, count

        holder = [state]

        def step():
            holder[0] = update(holder[0])
            jax.block_until_ready(holder[0][0])

        seconds = time_steps(step, steps)
        rows.append(row("jax-" + jax.__version__, width, batch, seconds))
    return rows


def row(impl, width, batch, seconds, device="cpu"):
    return {
        "bench": "train-step", "impl": impl, "device": device, "shape": f"512-{width}-{width}-{width}-10/b{batch}",
        "median_seconds": seconds, "gflops": gemm_flops(width, batch) / seconds / 1e9,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--widths", default="256,1024,2048")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu", help="cpu (PyTorch and JAX), or cuda / cuda:N (PyTorch alone)")
    parser.add_argument("--json")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    if args.device.startswith("cuda"):
        try:
            import torch
        except ImportError:
            print("note: PyTorch is not installed; skipping the GPU training step (pip install torch)", file=sys.stderr)
            return 77
        if not torch.cuda.is_available():
            print("note: PyTorch sees no CUDA device; skipping the GPU training step", file=sys.stderr)
            return 77
        rows = bench_torch(widths, args.batch_size, args.steps, args.threads, args.device)
    elif args.device == "cpu":
        rows = bench_torch(widths, args.batch_size, args.steps, args.threads) + bench_jax(widths, args.batch_size, args.steps, args.threads)
    else:
        raise SystemExit(f"error: unknown device '{args.device}'; use cpu, cuda or cuda:N")
    for r in rows:
        print(f"{r['shape']:<28} {r['impl']:<22} {r['median_seconds'] * 1e3:8.2f} ms  {r['gflops']:7.1f} GFLOP/s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

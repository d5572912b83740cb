#!/usr/bin/env python3
"""The summary of a scripts/gpu-check.sh run: one table per measurement, from the results folder's
steps.tsv and json/*.json (kiln-bench rows {"bench", "impl", "device", "shape", "median_seconds", "gflops"}),
printed and written as summary.json beside them.

    python3 scripts/gpu-summary.py RESULTS_FOLDER

Ratios are speeds relative to the peer (peer time / Kiln time, or Kiln GFLOP/s / peer GFLOP/s): above 1
Kiln is faster. Kiln against CLBlast comes from one kiln-bench run (the two timed in alternation); Kiln
against PyTorch, cuBLAS or fla compares two processes run one after the other on the same idle GPU.
"""
import glob
import json
import os
import sys


def load(folder, pattern):
    """{tag: rows} for json/<pattern> files, the tag being what the * matched."""
    found = {}
    prefix, suffix = pattern.split("*")
    for path in sorted(glob.glob(os.path.join(folder, "json", pattern))):
        name = os.path.basename(path)
        try:
            with open(path) as handle:
                rows = json.load(handle)
        except (OSError, ValueError) as error:
            print(f"note: cannot read {path}: {error}", file=sys.stderr)
            continue
        if isinstance(rows, list):
            found[name[len(prefix):len(name) - len(suffix)]] = [row for row in rows if isinstance(row, dict)]
    return found


def table(title, header, rows):
    if not rows:
        return ""
    cells = [header] + [["-" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[index]) for index, cell in enumerate(row)).rstrip() for row in cells]
    return f"{title}\n" + "\n".join(lines) + "\n"


def number(value, digits=1):
    return None if value is None else f"{value:,.{digits}f}"


def ratio(mine, theirs):
    return None if not mine or not theirs else f"{mine / theirs:.2f}x"


def pick(rows, impl_test, shape):
    for row in rows:
        if row.get("shape") == shape and impl_test(row.get("impl", "")):
            return row
    return None


def shapes_in_order(*row_lists):
    seen = []
    for rows in row_lists:
        for row in rows:
            if row.get("shape") not in seen:
                seen.append(row.get("shape"))
    return seen


def paired_times(kiln_files, peer_rows, peer_prefix, records, peer_key):
    """Table rows [device, shape, kiln ms, peer ms, speed ratio] of each kiln-bench file's `kiln` rows against
    the peer's rows whose impl starts with `peer_prefix`, shape by shape; appends a record of each to `records`."""
    lines = []
    for tag, rows in sorted(kiln_files.items()):
        for shape in shapes_in_order(rows):
            kiln = pick(rows, lambda i: i == "kiln", shape)
            peer = pick(peer_rows, lambda i: i.startswith(peer_prefix), shape)
            k, p = (kiln or {}).get("median_seconds"), (peer or {}).get("median_seconds")
            records.append({"device": "opencl" + tag, "shape": shape, "kiln_seconds": k, peer_key: p})
            lines.append(["opencl" + tag, shape, number(k and k * 1e3, 2), number(p and p * 1e3, 2), ratio(p, k)])
    return lines


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: gpu-summary.py RESULTS_FOLDER")
    folder = sys.argv[1]
    summary = {"steps": [], "matmul": [], "train_step": [], "scan": [], "spline": []}
    out = []

    steps = []
    try:
        with open(os.path.join(folder, "steps.tsv")) as handle:
            for line in handle:
                name, state, seconds, command = (line.rstrip("\n").split("\t") + ["", "", ""])[:4]
                steps.append([name, state, seconds])
                summary["steps"].append({"step": name, "status": state, "seconds": seconds, "command": command})
    except OSError:
        pass
    out.append(table("Steps", ["step", "status", "s"], steps))

    default, tuned = load(folder, "matmul-default-*.json"), load(folder, "matmul-tuned-*.json")
    torch_rows = load(folder, "sgemm-torch*.json").get("", [])
    matmul = []
    for tag in sorted(set(default) | set(tuned)):
        d, t = default.get(tag, []), tuned.get(tag, [])
        for shape in shapes_in_order(d, t):
            kd, kt = pick(d, lambda i: i == "opencl", shape), pick(t, lambda i: i == "opencl", shape)
            cl = pick(t, lambda i: i == "clblast", shape) or pick(d, lambda i: i == "clblast", shape)
            fp32, tf32 = pick(torch_rows, lambda i: i.endswith("-fp32"), shape), pick(torch_rows, lambda i: i.endswith("-tf32"), shape)
            g = {name: (row or {}).get("gflops") for name, row in [("default", kd), ("tuned", kt), ("clblast", cl), ("cublas_fp32", fp32), ("cublas_tf32", tf32)]}
            best = g["tuned"] or g["default"]
            summary["matmul"].append({"device": tag, "shape": shape, **{f"{key}_gflops": value for key, value in g.items()}})
            matmul.append([tag, shape, number(g["default"]), number(g["tuned"]), number(g["clblast"]), number(g["cublas_fp32"]), number(g["cublas_tf32"]),
                           ratio(g["tuned"], g["default"]), ratio(best, g["clblast"]), ratio(best, g["cublas_fp32"])])
    if not default and not tuned:
        for shape in shapes_in_order(torch_rows):
            fp32, tf32 = pick(torch_rows, lambda i: i.endswith("-fp32"), shape), pick(torch_rows, lambda i: i.endswith("-tf32"), shape)
            matmul.append(["-", shape, None, None, None, number((fp32 or {}).get("gflops")), number((tf32 or {}).get("gflops")), None, None, None])
    out.append(table("SGEMM GFLOP/s (goals: tuned >= 1.0x CLBlast at 4096 and 8192, >= 0.8x cuBLAS fp32)",
                     ["device", "MxNxK", "kiln default", "kiln tuned", "CLBlast", "cuBLAS fp32", "cuBLAS tf32", "tuned/default", "kiln/CLBlast", "kiln/cuBLAS fp32"],
                     matmul))

    train = paired_times(load(folder, "train-step-opencl*.json"), load(folder, "train-step-torch*.json").get("", []), "pytorch-cuda", summary["train_step"], "pytorch_cuda_seconds")
    out.append(table("MLP training step, ms (goal: kiln >= 0.7x PyTorch CUDA fp32)", ["device", "model/batch", "kiln", "PyTorch CUDA", "kiln speed / PyTorch"], train))

    kiln_scans, fla_rows = load(folder, "scan-opencl*.json"), load(folder, "scan-fla*.json").get("", [])
    scans = []
    for tag, rows in sorted(kiln_scans.items()):
        for kind, fla_kind in [("gla-per-key", "gla"), ("deltanet", "deltanet"), ("gated-deltanet", "gated-deltanet")]:
            for shape in shapes_in_order(rows):
                recurrent = pick(rows, lambda i: i == f"kiln-{kind}-recurrent-fwd-bwd", shape)
                chunked = pick(rows, lambda i: i == f"kiln-{kind}-chunked-fwd-bwd", shape)
                if not recurrent and not chunked:
                    continue
                fla = pick(fla_rows, lambda i: i == f"fla-triton-{fla_kind}-chunked-fwd-bwd", shape)
                r, c, f = [(row or {}).get("median_seconds") for row in (recurrent, chunked, fla)]
                best = min(value for value in (r, c) if value)
                summary["scan"].append({"device": "opencl" + tag, "kind": kind, "shape": shape, "recurrent_seconds": r, "chunked_seconds": c, "fla_seconds": f})
                scans.append(["opencl" + tag, kind, shape, number(r and r * 1e3, 2), number(c and c * 1e3, 2), number(f and f * 1e3, 2), ratio(f, best)])
    out.append(table("Scans, forward + backward, ms", ["device", "scan", "shape", "kiln recurrent", "kiln chunked", "fla Triton", "kiln best / fla"], scans))

    splines = paired_times(load(folder, "spline-opencl*.json"), load(folder, "spline-torch*.json").get("", []), "efficient-kan-pytorch-cuda", summary["spline"], "efficient_kan_cuda_seconds")
    out.append(table("KAN layer, forward + backward, ms", ["device", "shape", "kiln", "efficient-kan CUDA", "kiln speed / efficient-kan"], splines))

    tuning = sorted(os.path.relpath(path, folder) for path in glob.glob(os.path.join(folder, "tuning", "**", "*.json"), recursive=True))
    summary["tuning_files"] = tuning
    out.append("Tuning files: " + (", ".join(tuning) if tuning else "none") + "\n")

    with open(os.path.join(folder, "summary.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    print("\n".join(part for part in out if part))


if __name__ == "__main__":
    main()

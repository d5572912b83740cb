#!/usr/bin/env bash
# One call on a GPU host measures everything (issue 13): run from an unpacked bundle (`make bundle`,
# DEVELOPERS.md), designed to finish inside 8 minutes.
#
#   kiln-<version>/scripts/gpu-check.sh [--quick] [--device ID[,ID]] [--out DIR] [--wheels DIR] [--seconds N]
#                                       [--only STEP[,STEP]]
#
# Steps, each under `timeout` and cut to the time left, a failing step never stopping the others:
#   host         nvidia-smi, the processor, the bundle's version and libraries, the launcher's OpenCL choice
#   devices      kiln devices (text and --json)
#   check        kiln check on every GPU
#   matmul       kiln-bench matmul with the default parameters (an empty tuning cache), against CLBlast
#   tune         a bounded kiln tune --export (the shipped database's entry saved from its output)
#   matmul-tuned kiln-bench matmul again, now with the tuned parameters in the cache
#   sgemm-torch  torch.mm on CUDA in float32 with TF32 off and, reported apart, with TF32 on
#   train-step   kiln-bench train-step, and bench/peers/train_step.py on CUDA
#   scan         kiln-bench scan, and fla's Triton chunk_gla / chunk_delta_rule when its wheel is carried
#   spline       kiln-bench spline, and efficient-kan on CUDA
#   summary      one table of every result, printed last
# A peer that finds no PyTorch, no CUDA or no fla exits with status 77 and is listed as skipped.
#
# The GPUs are the `kiln devices --json` entries of type gpu, or those given with --device (e.g.
# --device opencl:0 for PoCL's CPU device, which is how this script is tried on a machine without a GPU,
# with --quick for small sizes). Everything is written under the results folder: --out DIR, else
# ./gpu-check-results; when $OUT is set (the lent machine's folder of files to bring back, which takes at
# most 8 files) the folder is a scratch one and $OUT receives gpu-check.tar.gz (all of it), summary.txt,
# summary.json, gpu-check.log and the exported tuning files.
# --wheels DIR installs the wheels in DIR (fla-core) into a folder of the results for the fla step only.
# --seconds N is the whole run's time box (default 480; GPU_CHECK_SECONDS); GPU_CHECK_QUICK=1 is --quick.
# --only runs just the steps whose names start with one of the words given (host and devices always run),
# e.g. --only tune,matmul-tuned for a second, shorter call.
set -u
set -o pipefail

here=$(dirname -- "$(readlink -f -- "$0")")
root=$(dirname -- "$here")
kiln="$root/bin/kiln"
bench="$root/bin/kiln-bench"
peers="$root/share/kiln/peers"

quick=${GPU_CHECK_QUICK:-0}
total_seconds=${GPU_CHECK_SECONDS:-480}
device_list=""
out_dir=""
wheels=""
only=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --device) device_list=${2:?--device needs an id}; shift ;;
    --out) out_dir=${2:?--out needs a folder}; shift ;;
    --wheels) wheels=${2:?--wheels needs a folder}; shift ;;
    --seconds) total_seconds=${2:?--seconds needs a number}; shift ;;
    --only) only=${2:?--only needs step names}; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "error: unknown argument '$1'; see $0 --help" >&2; exit 1 ;;
    esac
    shift
done
if [ ! -x "$kiln" ] || [ ! -x "$bench" ]; then
    echo "error: $kiln or $bench is missing; run this script from an unpacked bundle (make bundle, then tar xzf dist/kiln-*.tar.gz)" >&2
    exit 1
fi
case "$total_seconds" in
'' | *[!0-9]*) echo "error: --seconds must be a whole number of seconds, got '$total_seconds'" >&2; exit 1 ;;
esac
if [ -n "$wheels" ] && [ ! -d "$wheels" ]; then
    echo "error: --wheels $wheels is not a folder" >&2
    exit 1
fi

# Sizes. The full run: SGEMM at 1024-8192 and the training shapes (an MLP step's products at widths 1024-8192,
# batch 256: forward 256xWxW, weight gradient WxWx256), the MLP step at widths 1024-8192, scans to T = 16384,
# a KAN layer of batch 4096.
if [ "$quick" = 1 ]; then
    matmul_shapes="128,256,256x512x128"
    bench_seconds=0.2
    train_widths="128"
    scan_lengths="128"
    scan_dimensions="16"
    spline_arguments=(--batch 256 --inputs 32 --outputs 32 --grids 5)
    tune_budget=10
else
    matmul_shapes="1024,2048,4096,8192,256x1024x1024,256x4096x4096,256x8192x8192,4096x4096x256,8192x8192x256"
    bench_seconds=0.5
    train_widths="1024,2048,4096,8192"
    scan_lengths="1024,4096,16384"
    scan_dimensions="64,128"
    spline_arguments=(--batch 4096 --inputs 256 --outputs 256 --grids 5,20)
    tune_budget=100
fi
scan_kinds="gla-per-key,deltanet,gated-deltanet"
fla_kinds="gla,deltanet,gated-deltanet"

started=$(date +%s)
deadline=$((started + total_seconds))
reserve=15 # seconds kept for the summary and packing

scratch=""
if [ -n "$out_dir" ]; then
    results=$out_dir
elif [ -n "${OUT:-}" ]; then
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/kiln-gpu-check.XXXXXX")
    results="$scratch/gpu-check"
else
    results="$PWD/gpu-check-results"
fi
mkdir -p "$results/json" "$results/logs" "$results/tuning"
results=$(cd "$results" && pwd)
: > "$results/steps.tsv"
# Kiln's caches: one with no tuning for the default runs, one that kiln tune fills.
default_cache="$results/cache-default"
tuned_cache="$results/cache-tuned"
mkdir -p "$default_cache" "$tuned_cache"

# step NAME CAP COMMAND...: runs COMMAND with its output on the console and in logs/NAME.log, for at most
# CAP seconds and never past the deadline, and records its status in steps.tsv.
step() {
    local name=$1 cap=$2
    shift 2
    local now left limit status began ended state word chosen
    if [ -n "$only" ] && [ "$name" != host ] && [ "$name" != devices ]; then
        chosen=0
        for word in ${only//,/ }; do
            case "$name" in "$word"*) chosen=1 ;; esac
        done
        if [ "$chosen" = 0 ]; then
            printf '%s\tnot chosen\t0\t--only %s\n' "$name" "$only" >> "$results/steps.tsv"
            return 0
        fi
    fi
    now=$(date +%s)
    left=$((deadline - reserve - now))
    limit=$((cap < left ? cap : left))
    if [ "$limit" -lt 5 ]; then
        printf '%s\tskipped\t0\tno time left in the %s s box\n' "$name" "$total_seconds" >> "$results/steps.tsv"
        echo "== $name: skipped, no time left"
        return 0
    fi
    echo "== $name (at most ${limit} s): $*"
    began=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$results/logs/$name.log"
    status=${PIPESTATUS[0]}
    ended=$(date +%s)
    case "$status" in
    0) state=ok ;;
    77) state=skipped ;;
    124 | 137) state="timed out after ${limit} s" ;;
    *) state="failed (exit status $status)" ;;
    esac
    printf '%s\t%s\t%s\t%s\n' "$name" "$state" "$((ended - began))" "$*" >> "$results/steps.tsv"
    echo "== $name: $state in $((ended - began)) s"
    return 0
}

host_report() {
    echo "bundle: $(cat "$root/VERSION") at $root"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    uname -a
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv
        nvidia-smi
    else
        echo "nvidia-smi: not on this host"
    fi
    grep -m 1 'model name' /proc/cpuinfo || true
    echo "cores: $(nproc)"
    grep MemTotal /proc/meminfo || true
    echo "OpenCL vendor files in /etc/OpenCL/vendors: $(ls /etc/OpenCL/vendors 2>/dev/null | tr '\n' ' ')"
    for program in kiln kiln-bench; do
        echo "ldd libexec/$program (with the bundle's lib/):"
        LD_LIBRARY_PATH="$root/lib" ldd "$root/libexec/$program"
    done
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import sys; print("python", sys.version.split()[0])
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "devices", [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
except Exception as error:
    print("torch: not usable:", error)
try:
    import triton
    print("triton", triton.__version__)
except Exception as error:
    print("triton: not usable:", error)'
    fi
    KILN_LAUNCHER_VERBOSE=1 "$kiln" devices
}

devices_report() {
    "$kiln" devices && "$kiln" devices --json > "$results/json/devices.json" && cat "$results/json/devices.json"
}

# `timeout` runs programs, not shell functions: the two reports run in a child bash.
export root kiln results
export -f host_report devices_report
step host 60 bash -c host_report
step devices 60 bash -c devices_report

# The GPUs: --device, else every OpenCL device of type gpu.
if [ -z "$device_list" ] && [ -s "$results/json/devices.json" ]; then
    if command -v python3 >/dev/null 2>&1; then
        device_list=$(python3 -c 'import json, sys; print(",".join(d["id"] for d in json.load(open(sys.argv[1])) if d.get("type") == "gpu"))' "$results/json/devices.json")
    else
        device_list=$(tr -d ' \n' < "$results/json/devices.json" | grep -o '"id":"[^"]*"[^}]*"type":"gpu"' | sed 's/^"id":"\([^"]*\)".*/\1/' | paste -sd, -)
    fi
fi
IFS=, read -r -a gpus <<< "$device_list"
if [ "${#gpus[@]}" -eq 0 ]; then
    echo "note: no OpenCL GPU found (kiln devices above); the kiln steps are skipped. Pass --device opencl:N to measure another device."
    printf 'gpus\tskipped\t0\tno OpenCL GPU found; pass --device opencl:N\n' >> "$results/steps.tsv"
fi

for gpu in "${gpus[@]}"; do
    tag=${gpu//:/}
    step "check-$tag" 150 "$kiln" check --device "$gpu" --json "$results/json/check-$tag.json"
    step "matmul-default-$tag" 150 env KILN_CACHE_DIR="$default_cache" \
        "$bench" matmul --devices "$gpu" --shapes "$matmul_shapes" --seconds "$bench_seconds" --json "$results/json/matmul-default-$tag.json"
    # kiln tune writes the device's tuning file into $KILN_CACHE_DIR/tuning/ and, with --export, prints the
    # shipped database's entry after a line naming its file: saved as tuning/<that name>.
    step "tune-$tag" $((tune_budget + 90)) env KILN_CACHE_DIR="$tuned_cache" \
        "$kiln" tune --device "$gpu" --budget "$tune_budget" --seed 1 --export
    entry=$(sed -n 's|^shipped-database entry (Kernels/tuning/\(.*\)):$|\1|p' "$results/logs/tune-$tag.log" 2>/dev/null | head -n 1)
    if [ -n "$entry" ]; then
        awk 'found { print } /^shipped-database entry \(/ { found = 1 }' "$results/logs/tune-$tag.log" > "$results/tuning/$(basename "$entry")"
        echo "== tune-$tag: the shipped-database entry is in $results/tuning/$(basename "$entry")"
    fi
    step "matmul-tuned-$tag" 150 env KILN_CACHE_DIR="$tuned_cache" \
        "$bench" matmul --devices "$gpu" --shapes "$matmul_shapes" --seconds "$bench_seconds" --json "$results/json/matmul-tuned-$tag.json"
done
step sgemm-torch 120 python3 "$peers/sgemm_torch.py" --device cuda --shapes "$matmul_shapes" --seconds "$bench_seconds" --json "$results/json/sgemm-torch.json"

for gpu in "${gpus[@]}"; do
    tag=${gpu//:/}
    step "train-step-$tag" 180 env KILN_CACHE_DIR="$tuned_cache" \
        "$bench" train-step --devices "$gpu" --widths "$train_widths" --json "$results/json/train-step-$tag.json"
done
step train-step-torch 120 python3 "$peers/train_step.py" --device cuda --widths "$train_widths" --json "$results/json/train-step-torch.json"

for gpu in "${gpus[@]}"; do
    tag=${gpu//:/}
    step "scan-$tag" 150 env KILN_CACHE_DIR="$tuned_cache" \
        "$bench" scan --devices "$gpu" --lengths "$scan_lengths" --dimensions "$scan_dimensions" --kinds "$scan_kinds" \
        --seconds "$bench_seconds" --json "$results/json/scan-$tag.json"
done
for gpu in "${gpus[@]}"; do
    tag=${gpu//:/}
    step "spline-$tag" 120 env KILN_CACHE_DIR="$tuned_cache" \
        "$bench" spline --devices "$gpu" "${spline_arguments[@]}" --seconds "$bench_seconds" --json "$results/json/spline-$tag.json"
done
step spline-torch 90 python3 "$peers/efficient_kan.py" --device cuda "${spline_arguments[@]}" --seconds "$bench_seconds" --json "$results/json/spline-torch.json"

fla_path=""
if [ -n "$wheels" ]; then
    step fla-install 60 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$results/site" "$wheels"/*.whl
    fla_path="$results/site"
fi
step scan-fla 150 env PYTHONPATH="$fla_path${PYTHONPATH:+:$PYTHONPATH}" \
    python3 "$peers/fla_triton.py" --check --lengths "$scan_lengths" --dimensions "$scan_dimensions" --kinds "$fla_kinds" \
    --seconds "$bench_seconds" --json "$results/json/scan-fla.json"

# Tuning files: the cache's (what kiln tune wrote) beside what --export wrote.
if [ -d "$tuned_cache/tuning" ]; then cp -R "$tuned_cache/tuning" "$results/tuning/cache"; fi

# The whole log, steps in the order they ran.
cut -f 1 "$results/steps.tsv" | while read -r name; do
    if [ -f "$results/logs/$name.log" ]; then echo "== $name"; cat "$results/logs/$name.log"; fi
done > "$results/gpu-check.log"
echo
echo "Total: $(($(date +%s) - started)) s; results in $results"
if command -v python3 >/dev/null 2>&1; then
    python3 "$here/gpu-summary.py" "$results" | tee "$results/summary.txt"
else
    { echo "python3 is missing: the steps, without the result tables (see $results/json):"; cat "$results/steps.tsv"; } | tee "$results/summary.txt"
fi

if [ -n "$scratch" ]; then
    # The lent machine brings back at most 8 files from $OUT: one archive of the results (without Kiln's
    # program caches and the installed wheels), the summary, the log and the tuning files.
    tar -C "$scratch" --exclude='gpu-check/cache-*' --exclude='gpu-check/site' -czf "$OUT/gpu-check.tar.gz" gpu-check
    cp "$results/summary.txt" "$results/gpu-check.log" "$OUT/"
    if [ -f "$results/summary.json" ]; then cp "$results/summary.json" "$OUT/"; fi
    find "$results/tuning" -type f -name '*.json' | head -n 4 | while read -r file; do cp "$file" "$OUT/tuning-$(basename "$file")"; done
    rm -rf "$scratch"
    echo "wrote $OUT/gpu-check.tar.gz, summary.txt, summary.json, gpu-check.log and the tuning files"
fi
exit 0

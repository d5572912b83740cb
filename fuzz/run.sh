#!/usr/bin/env bash
# Builds Kiln's fuzz targets and runs each for a while on its committed seeds: `make fuzz` and `make fuzz-asan`.
#
#   fuzz/run.sh [--address] [--jobs N] SECONDS [TARGET...]
#
# --address  also build with AddressSanitizer (its own build folder, fuzz/.build-asan).
# --jobs N   run N targets at once (default 1; each target is one libFuzzer process).
# SECONDS    how long each target runs (libFuzzer's -max_total_time).
# TARGET     safetensors checkpoint npy csv gzip json formula text (default: all).
#
# Each target starts from fuzz/corpus/<target> (read only) and keeps what it finds in
# fuzz/.build*/corpus/<target>, so later runs go on from there; fuzz/dictionaries/<target>.dict is passed where
# it exists. A crash, a failed property, a leak, a timeout (10 s for one input) or more than 2 GB of memory
# stops that target and leaves the input in fuzz/artifacts/<target>/; the script then says which and exits 1.
# Replay one with `fuzz/.build/release/fuzz-<target> fuzz/artifacts/<target>/crash-…`.
set -euo pipefail
cd "$(dirname "$0")/.."

address=no
jobs=1
while [ $# -gt 0 ]; do
    case "$1" in
        --address) address=yes; shift ;;
        --jobs) jobs="$2"; shift 2 ;;
        *) break ;;
    esac
done
seconds="${1:?usage: fuzz/run.sh [--address] [--jobs N] SECONDS [TARGET...]}"
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors checkpoint npy csv gzip json formula text)

sanitizers=(--sanitize=fuzzer)
scratch=fuzz/.build
label="libFuzzer"
if [ "$address" = yes ]; then
    # SwiftPM passes each --sanitize to swiftc as its own -sanitize= flag, and swiftc keeps only the last one:
    # Swift code would get AddressSanitizer and no coverage. The combined flag, last on the line, gives both
    # (clang, for the C targets, adds up its -fsanitize= flags, so they already get both).
    sanitizers+=(--sanitize=address -Xswiftc -sanitize=fuzzer,address)
    scratch=fuzz/.build-asan
    label="libFuzzer + AddressSanitizer"
fi
swift="${SWIFT:-swift}"
"$swift" build -c release --package-path fuzz --scratch-path "$scratch" "${sanitizers[@]}"
bin="$("$swift" build -c release --package-path fuzz --scratch-path "$scratch" "${sanitizers[@]}" --show-bin-path)"

# libFuzzer's own handler must see a crash to save the input: Swift's backtracer would take the signal first.
export SWIFT_BACKTRACE=enable=no
# AddressSanitizer: report leaks too, and let libFuzzer save the input on an error.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:handle_abort=1}"

run_target() {
    local target="$1"
    local work="$scratch/corpus/$target" artifacts="fuzz/artifacts/$target" log="$scratch/logs/$target.log"
    mkdir -p "$work" "$artifacts" "$(dirname "$log")"
    local dictionary=()
    [ -f "fuzz/dictionaries/$target.dict" ] && dictionary=("-dict=fuzz/dictionaries/$target.dict")
    local status=0
    "$bin/fuzz-$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "${dictionary[@]}" "$work" "fuzz/corpus/$target" > "$log" 2>&1 || status=$?
    # One summary line from libFuzzer's final statistics and its last status line.
    local executions per_second corpus
    executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    per_second="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    # (No "corp:" line when a seed already fails.)
    corpus="$(grep -Eo 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2 || true)"
    if [ "$status" -eq 0 ]; then
        printf '%-12s %12s executions %8s/s  corpus %-12s no crash\n' "$target" "${executions:-?}" "${per_second:-?}" "${corpus:-?}"
    else
        printf '%-12s %12s executions %8s/s  corpus %-12s FAILED (exit %s), see %s and %s\n' \
            "$target" "${executions:-?}" "${per_second:-?}" "${corpus:-?}" "$status" "$log" "$artifacts/"
        grep -E 'Fatal error|ERROR: |SUMMARY: ' "$log" | head -5 | sed 's/^/    /'
        return 1
    fi
}

echo "Fuzzing ${#targets[@]} targets for $seconds s each ($label, $jobs at a time; logs in $scratch/logs)"
failed=0
running=0
for target in "${targets[@]}"; do
    [ -x "$bin/fuzz-$target" ] || { echo "error: no fuzz target '$target'; the targets are in fuzz/Package.swift" >&2; exit 1; }
    run_target "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
if [ "$failed" -ne 0 ]; then
    echo "error: a fuzz target failed; its input is in fuzz/artifacts/" >&2
    exit 1
fi

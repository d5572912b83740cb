#!/bin/sh
# Runs the backend suite with oclgrind as the only OpenCL platform: every kernel on the test shapes,
# checked for out-of-bounds accesses, invalid API use and data races (work-items of a group, and groups
# of a kernel). oclgrind reports itself as a GPU, so the kernels run with the GPU parameters (work-group
# reductions, local-memory tiles). Fails when oclgrind logs anything. Expects the tests built in release
# (`swift build -c release --build-tests`).
#
# Left out: the out-of-memory test (oclgrind's allocator aborts on a 128 TiB request instead of
# returning an error) and oclgrind's uninitialized-read check (OCLGRIND_UNINITIALIZED=1 crashes inside
# liboclgrind 21.10 on the elementwise kernels; see bench/RESULTS.md, "Kernels under oclgrind").
# Tests run one at a time: oclgrind's runtime is not safe to drive from several threads at once.
set -eu
cd "$(dirname "$0")/.."
runtime=/usr/lib/oclgrind/liboclgrind-rt-icd.so
if [ ! -f "$runtime" ]; then
    echo "error: $runtime is missing; install Debian's oclgrind (make oclgrind does)" >&2
    exit 1
fi
work=$(pwd)/.build/oclgrind
rm -rf "$work"
mkdir -p "$work/vendors" "$work/cache"
echo "$runtime" > "$work/vendors/oclgrind.icd"
status=0
OCL_ICD_VENDORS="$work/vendors" OCLGRIND_CHECK_API=1 OCLGRIND_DATA_RACES=1 OCLGRIND_LOG="$work/log" \
    KILN_CACHE_DIR="$work/cache" \
    ${SWIFT:-swift} test -c release --skip-build --no-parallel \
    --filter "${OCLGRIND_FILTER:-KilnBackendTests}" --skip outOfMemory || status=$?
if [ -s "$work/log" ]; then
    echo "error: oclgrind found $(grep -c '^Invalid\|^Data race\|^Uninitialized\|error' "$work/log" || true) problems; the first:" >&2
    head -n 20 "$work/log" >&2
    echo "(the whole log: $work/log)" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "error: the backend tests failed on oclgrind (exit status $status)" >&2
    exit "$status"
fi
echo "oclgrind: no errors in the backend suite"

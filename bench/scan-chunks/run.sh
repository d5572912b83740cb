#!/bin/bash
# Times the CPU chunked scans' forward + backward with chunks of the given lengths, alternated in one
# process (one thread, B = 1), e.g.
#   bench/scan-chunks/run.sh delta 4096 4 64 20 64 32    # DeltaNet, T 4096, H 4, D 64, 20 rounds, C = 64 then 32
#   bench/scan-chunks/run.sh gla 2048 4 128 12 64 32     # GLA with per-key gates
# It compiles Sources/CKilnCPU's scan.c, loops.c and spline.c with clang -O2 (as a release build does)
# into $TMPDIR, not into the tree.
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${TMPDIR:-/tmp}/kiln-scan-chunks
mkdir -p "$out"
for f in scan loops spline; do clang -O2 -std=gnu11 -w -I "$root/Sources/CKilnCPU/include" -c "$root/Sources/CKilnCPU/$f.c" -o "$out/$f.o"; done
clang -O2 -std=gnu11 -w -I "$root/Sources/CKilnCPU/include" "$root/bench/scan-chunks/main.c" "$out/scan.o" "$out/loops.o" "$out/spline.o" -lm -o "$out/scan-chunks"
exec "$out/scan-chunks" "$@"

#!/bin/bash
# Speed of two builds of kiln-bench against each other: BEFORE and AFTER are repository checkouts with
# `swift build -c release --package-path bench` done in each. Runs each benchmark of BENCHES with one
# build, then the other, ROUNDS times (alternation spreads the machine's drift over both), writes the
# JSON of every run to OUT, and prints per case the median of each build and AFTER/BEFORE, then Kiln's
# time relative to the peer measured in the same run (OpenBLAS, CLBlast, the gemm floor), which cancels
# the drift between runs.
#   BEFORE=/work/baseline AFTER=. ROUNDS=2 bench/compare/run.sh
set -eu
: "${BEFORE:?set BEFORE to the checkout measured first}" "${AFTER:?set AFTER to the other checkout}"
OUT=${OUT:-/tmp/kiln-compare}; ROUNDS=${ROUNDS:-2}; BENCHES=${BENCHES:-matmul train-step spline scan}
mkdir -p "$OUT"
for round in $(seq 1 "$ROUNDS"); do
    for bench in $BENCHES; do
        for side in before after; do
            if [ "$side" = before ]; then root=$BEFORE; else root=$AFTER; fi
            (cd "$root" && bench/.build/release/kiln-bench "$bench" --json "$OUT/$side-$bench-$round.json" > "$OUT/$side-$bench-$round.txt" 2>&1)
        done
    done
done
python3 "$(dirname "$0")/summarize.py" "$OUT"

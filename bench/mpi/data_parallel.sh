#!/bin/sh
# Data-parallel training speed: an MLP of width 1024 (teacher task, 32 → 1024 → 1024 → 10, Adam), global
# batch 512, trained by 2 ranks × 1 thread under mpirun against 1 process × 2 threads, in alternation
# (ROUNDS rounds, default 3), so that both see the same load. Samples per second are taken between the
# first and the last logged record (startup and the first steps excluded); the allreduce wait is rank 0's
# mean per step from metrics.jsonl (allreduce_wait_seconds).
#
#   bench/mpi/data_parallel.sh [KILN] [ROUNDS] [STEPS]
set -eu
KILN=${1:-.build/release/kiln}
ROUNDS=${2:-3}
STEPS=${3:-100}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN="mpirun --oversubscribe --mca btl self,vader,tcp --mca btl_vader_single_copy_mechanism none --mca plm_rsh_agent false"
ARGS="train --task teacher --model mlp --width 1024 --depth 2 --batch-size 512 --steps $STEPS --log-every 20 --eval-every $STEPS --device cpu --plain"
summarize() {
    python3 - "$1" "$2" <<'PY'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1] + "/metrics.jsonl")]
first, last = records[0], records[-2] if len(records) > 2 else records[-1]
rate = (last["step"] - first["step"]) * 512 / (last["seconds"] - first["seconds"])
waits = [r["allreduce_wait_seconds"] for r in records[1:] if "allreduce_wait_seconds" in r]
wait = " allreduce wait %.2f ms/step" % (1e3 * sum(waits) / len(waits)) if waits else ""
print("%s %.0f samples/s%s" % (sys.argv[2], rate, wait))
PY
}
for round in $(seq 1 "$ROUNDS"); do
    rm -rf "$WORK/one" "$WORK/two"
    KILN_CPU_THREADS=2 OPENBLAS_NUM_THREADS=2 $KILN $ARGS --out "$WORK/one" > /dev/null
    summarize "$WORK/one" "round $round: 1 process x 2 threads"
    $MPIRUN -np 2 -x KILN_CPU_THREADS=1 -x OPENBLAS_NUM_THREADS=1 $KILN $ARGS --out "$WORK/two" > /dev/null
    summarize "$WORK/two" "round $round: 2 ranks x 1 thread   "
done

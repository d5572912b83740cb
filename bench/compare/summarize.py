# Summarizes bench/compare/run.sh: medians per case of both builds, AFTER/BEFORE, and Kiln relative to its in-run peer.
import json, glob, sys, statistics, collections, os
out = sys.argv[1]
def load(kind, bench):
    runs = []
    for f in sorted(glob.glob(f"{out}/{kind}-{bench}-*.json")):
        seen = collections.Counter(); d = {}
        for e in json.load(open(f)):
            key = (e['impl'], e['shape'], e['device']); seen[key] += 1
            d[key + (seen[key],)] = e['median_seconds']
        runs.append(d)
    return runs
for bench in ['matmul', 'train-step', 'spline', 'scan']:
    b, a = load('before', bench), load('after', bench)
    if not b or not a: continue
    print(f"## {bench} ({len(b)} rounds)")
    ratios = []
    for key in b[0]:
        bs = [r[key] for r in b if key in r]; as_ = [r[key] for r in a if key in r]
        if not as_: print("  missing after:", key); continue
        mb, ma = statistics.median(bs), statistics.median(as_)
        ratios.append(ma / mb)
        print(f"  {key[0]:28s} {key[1]:28s} {key[2][:22]:22s} before {mb*1e3:9.3f} ms  after {ma*1e3:9.3f} ms  after/before {ma/mb:6.3f}")
    print(f"  geometric mean after/before: {statistics.geometric_mean(ratios):.3f}")

# Kiln's time relative to its peer in the same run, before and after: drift of the machine cancels.
print("## normalized by the in-run peer (kiln/peer after) / (kiln/peer before)")
peers = {'matmul': {'cpu': 'openblas', 'opencl': 'clblast'}, 'train-step': {'kiln': 'openblas-gemm-floor'}}
for bench, pairs in peers.items():
    b, a = load('before', bench), load('after', bench)
    if not b or not a: continue
    for key in b[0]:
        if key[0] not in pairs: continue
        peer = (pairs[key[0]],) + key[1:]
        rb = statistics.median([r[key] / r[peer] for r in b if key in r and peer in r])
        ra = statistics.median([r[key] / r[peer] for r in a if key in r and peer in r])
        print(f"  {bench:10s} {key[0]:8s} {key[1]:28s} {key[2][:22]:22s} kiln/peer before {rb:6.3f} after {ra:6.3f}  ratio {ra/rb:6.3f}")

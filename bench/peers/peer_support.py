"""What the Python peers share: kiln-bench's Measure.median, and its JSON rows."""
import json
import statistics
import time


def median_seconds(call, runs=5, budget_seconds=1.0, synchronize=lambda: None):
    """Median wall time of `call` (followed by `synchronize`, e.g. torch.cuda.synchronize) over at least
    `runs` calls and about `budget_seconds` of calls (at most 200), after warming up for at least two calls
    and a fifth of the budget, as kiln-bench's Measure.median does."""
    start = time.perf_counter()
    calls = 0
    while calls < 2 or time.perf_counter() - start < budget_seconds / 5:
        call()
        synchronize()
        calls += 1
    samples = []
    start = time.perf_counter()
    while len(samples) < runs or (len(samples) < 200 and time.perf_counter() - start < budget_seconds):
        before = time.perf_counter()
        call()
        synchronize()
        samples.append(time.perf_counter() - before)
    return statistics.median(samples)


def write_rows(path, rows):
    """Writes kiln-bench rows {"bench", "impl", "device", "shape", "median_seconds", "gflops"} to `path`, when given."""
    if path:
        with open(path, "w") as handle:
            json.dump(rows, handle, indent=2)
        print(f"wrote {path}")

internal import CKilnCPU

// The random family on the CPU: disjoint ranges of the counter-based generator (`CKilnCPU/random.c`).

extension CPUBackend {
    public func randomUniform(into buffer: DeviceBuffer, count: Int, seed: UInt64, offset: UInt64) {
        RandomValidation.uniform(buffer, count: count)
        guard count > 0, ready(buffer) else { return }
        // Disjoint ranges per thread.
        nonisolated(unsafe) let out = floats(buffer)
        Parallel.forRanges(count, grain: elementwiseGrain) { range in
            kiln_random_uniform(out, range.lowerBound, range.upperBound, seed, offset)
        }
    }
}

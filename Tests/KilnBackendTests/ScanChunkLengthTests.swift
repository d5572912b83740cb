import KilnBackend
import KilnTestSupport
import Testing

/// The CPU backend's chunked scans walk chunks of 32 steps when K ≤ 64 and V ≤ 64 and of 64 otherwise
/// (`CPUBackend.chunkedScanLength`, a measured tuning choice of that backend: `CKilnCPU/scan_chunked_loops.h`,
/// "Chunk length"). `ScanChunkedTests` meets both lengths through its sizes; here every scan runs at T just
/// below, at and just past the chunk boundaries of each length (and of its 16-step sub-chunks), at
/// K, V ≤ 64 and at K or V above 64, against the float64 reference and the recurrent form (bound and
/// poisoning as in `ScanChunkedTests`), and a sequence split in two halves runs with chunks of 64.
@Suite("CPU chunked scans: chunks of 32 and of 64, T around each chunk boundary")
struct ScanChunkLengthTests {
    @Test("the chunk length by the sizes")
    func lengthRule() {
        #expect(CPUBackend.chunkedScanLength(keyDimension: 64, valueDimension: 64) == 32)
        #expect(CPUBackend.chunkedScanLength(keyDimension: 16, valueDimension: 60) == 32)
        #expect(CPUBackend.chunkedScanLength(keyDimension: 1, valueDimension: 1) == 32)
        #expect(CPUBackend.chunkedScanLength(keyDimension: 65, valueDimension: 64) == 64)
        #expect(CPUBackend.chunkedScanLength(keyDimension: 64, valueDimension: 100) == 64)
        #expect(CPUBackend.chunkedScanLength(keyDimension: 128, valueDimension: 128) == 64)
    }

    @Test("every scan at T around the chunk boundaries of both lengths, against float64 and the recurrent form")
    func boundaries() throws {
        let chunked = CPUBackend(), recurrent = CPUBackend()
        chunked.scanFormRule = .chunked
        recurrent.scanFormRule = .recurrent
        var random = RandomGenerator.withFreshSeed()
        // (T, K, V): chunks of 32 (one short, one whole, one and a step, two, three and a step), then of 64.
        let cases = [(31, 64, 64), (32, 48, 64), (33, 64, 40), (63, 64, 64), (64, 32, 64), (65, 64, 64), (97, 64, 16),
                     (63, 80, 64), (64, 64, 72), (65, 96, 96), (127, 65, 16), (129, 72, 72)]
        for (kindIndex, (rule, gate)) in ScanChunkedTests.kinds.enumerated() {
            for (caseIndex, (t, k, v)) in cases.enumerated() {
                let shape = ScanShape(batch: 1, length: t, heads: 2, keyDimension: k, valueDimension: v)
                let reference = Reference.Scan(shape, rule: rule, gate: gate, scale: 1 / Double(k).squareRoot())
                let problem = ScanTests.Problem(reference, normalizer: ScanTests.normalizers[(caseIndex + kindIndex) % 3],
                                                initialState: (caseIndex + kindIndex) % 3 != 2, finalStateGradient: (caseIndex + kindIndex) % 2 == 0,
                                                random: &random)
                let length = CPUBackend.chunkedScanLength(keyDimension: k, valueDimension: v)
                try ScanChunkedTests.compareForms(problem, chunked: chunked, recurrent: recurrent, label: "chunks of \(length), seed \(random.seed)")
            }
        }
    }

    @Test("a sequence run in two halves with chunks of 64, carrying the state, equals one run")
    func continuityWithChunksOf64() throws {
        let backend = CPUBackend()
        backend.scanFormRule = .chunked
        var random = RandomGenerator.withFreshSeed()
        for (rule, gate) in ScanChunkedTests.kinds where gate != .none {
            // K = 72: chunks of 64; 70 + 80, neither half a whole number of chunks.
            try ScanTests.checkContinuity(rule: rule, gate: gate, sizes: (1, 150, 1, 72, 24, 70), on: backend, tolerance: ScanChunkedTests.chunkedTolerance, random: &random)
        }
    }
}

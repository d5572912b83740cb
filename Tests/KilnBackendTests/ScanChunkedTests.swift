import Foundation
import KilnBackend
import KilnTestSupport
import Testing

extension BackendCase {
    /// A backend for this device whose scans all take one form (`CPUBackend.scanFormRule`, or
    /// `ScanTuning.form` over this case's OpenCL parameters).
    func makeScanBackend(form rule: ScanFormRule) throws -> any Backend {
        if deviceID == "cpu" {
            let backend = CPUBackend()
            backend.scanFormRule = rule
            return backend
        }
        let device = try #require(Devices.all().first { $0.id == deviceID })
        var tuning = self.tuning ?? OpenCLTuning.defaults(for: device)
        tuning.scan.form = rule
        return try OpenCLBackend(deviceID: deviceID, tuning: tuning)
    }
}

extension BackendCase {
    /// ``withGPUParameters``, plus every OpenCL GPU once more with the chunked scans' CPU layout
    /// (`ScanTuning.chunkedLayout`), so that both layouts run wherever OpenCL does: on PoCL the defaults
    /// take the CPU layout and the GPU parameters the GPU one; oclgrind, which reports itself as a GPU,
    /// checks both.
    static let bothChunkedLayouts: [BackendCase] = withGPUParameters + Devices.all().filter { $0.backend == .opencl && $0.type == .gpu }.map {
        var tuning = OpenCLTuning.defaults(for: $0)
        tuning.scan.chunkedLayout = .cpu
        return BackendCase(deviceID: $0.id, deviceName: $0.name, tuning: tuning)
    }
}

/// The chunked form of the scans (chunks of 64, of 32 on the CPU at K, V ≤ 64: `ScanChunkLengthTests`; GLA's
/// sub-chunks of 16, the delta rule's WY/UT form)
/// against `Reference.Scan` (float64), against the recurrent form on the same backend, against central
/// finite differences of the reference on tiny shapes, and across a split sequence, on every backend and
/// on PoCL with the GPU parameters too (every scan, the delta rule included, has a chunked form on both
/// backends: `scan_chunked.cl` and `scan_chunked_delta.cl` on OpenCL), so on PoCL both layouts of the
/// OpenCL kernels run every test (`ScanTuning.chunkedLayout`: the CPU layout is a CPU device's default,
/// the GPU parameters take the GPU layout). Every output is poisoned with NaN first (`ScanTests.run`).
///
/// Bound: relative RMS error 1e-4 (the bound for the chunked form: its sums run over whole
/// chunks, in a different order than one step at a time, and the gate gradient is a reverse cumulative
/// sum within each chunk of terms that partly cancel).
///
/// Coverage without the full cross product: each of the five scans (linear attention, GLA per head and
/// per key, DeltaNet, gated DeltaNet) runs the eight shapes of ``shapes``, which between them hold every
/// listed T (1, 15, 63, 64, 65, 127, 1000, 4096: below, at and just past a chunk and a sub-chunk, and
/// long) and every listed D (16, 60, 64, 100, 128, 256, some with K ≠ V), with the gate normalizer
/// (g = logsigmoid(x) / n, n ∈ {0.1, 1, 16}) rotating with the shape and the scan, so every pair of scan
/// and normalizer meets. The two largest problems (T = 4096, and D = 256) have small other sizes, so that
/// the float64 reference, which keeps every state, stays fast.
@Suite("chunked linear-attention scans against a float64 reference and the recurrent form")
struct ScanChunkedTests {
    static let chunkedTolerance = CheckBound.scanChunked

    /// (B, T, H, K, V).
    static let shapes: [(Int, Int, Int, Int, Int)] = [
        (2, 1, 2, 16, 16), (1, 15, 2, 60, 60), (1, 63, 1, 64, 100), (2, 64, 1, 100, 64), (1, 65, 1, 128, 128),
        (1, 127, 1, 256, 256), (1, 1000, 2, 64, 60), (1, 4096, 1, 16, 16),
    ]

    static let kinds: [(Reference.Scan.Rule, Reference.Scan.GateLayout)] = [
        (.linearAttention, .none), (.linearAttention, .perHead), (.linearAttention, .perKey), (.deltaRule, .none), (.deltaRule, .perHead),
    ]

    /// Checks the chunked form against the reference and against the recurrent form on one backend.
    static func compareForms(_ problem: ScanTests.Problem, chunked: any Backend, recurrent: any Backend, omit: Bool = false, withoutOutputGradient: Bool = false, label: String) throws {
        try ScanTests.check(problem, on: chunked, omit: omit, withoutOutputGradient: withoutOutputGradient, tolerance: chunkedTolerance, label: "chunked, \(label)")
        let a = try ScanTests.run(problem, on: chunked, omit: omit, withoutOutputGradient: withoutOutputGradient)
        let b = try ScanTests.run(problem, on: recurrent, omit: omit, withoutOutputGradient: withoutOutputGradient)
        let pairs: [(String, [Float]?, [Float]?)] = [
            ("output", a.output, b.output), ("final state", a.finalState, b.finalState), ("dq", a.query, b.query), ("dk", a.key, b.key),
            ("dv", a.value, b.value), ("dgate", a.gate, b.gate), ("dbeta", a.beta, b.beta), ("dh0", a.initialState, b.initialState),
        ]
        for (name, x, y) in pairs {
            guard let x, let y else { continue }
            let error = relativeError(x, y.map(Double.init))
            let bound = name == "dgate" ? ScanTests.gateGradientTolerance(problem.reference, chunkedTolerance) : chunkedTolerance
            #expect(error < bound, "\(name) of \(problem.reference) on \(chunked.device.id): chunked against recurrent, relative error \(error) (\(label))")
        }
    }

    @Test("every scan, every listed T and D, against float64 and the recurrent form", arguments: BackendCase.bothChunkedLayouts)
    func againstReference(_ backendCase: BackendCase) throws {
        let chunked = try backendCase.makeScanBackend(form: .chunked), recurrent = try backendCase.makeScanBackend(form: .recurrent)
        var random = RandomGenerator.withFreshSeed()
        for (kindIndex, (rule, gate)) in Self.kinds.enumerated() {
            for (shapeIndex, (b, t, h, k, v)) in Self.shapes.enumerated() {
                let normalizer = ScanTests.normalizers[(shapeIndex + kindIndex) % 3]
                let reference = Reference.Scan(ScanShape(batch: b, length: t, heads: h, keyDimension: k, valueDimension: v), rule: rule, gate: gate, scale: 1 / Double(k).squareRoot())
                let problem = ScanTests.Problem(reference, normalizer: normalizer, initialState: (shapeIndex + kindIndex) % 4 != 3,
                                                finalStateGradient: (shapeIndex + kindIndex) % 2 == 0, random: &random)
                try Self.compareForms(problem, chunked: chunked, recurrent: recurrent, omit: (shapeIndex + kindIndex) % 5 == 4,
                                      label: "gate normalizer \(normalizer), seed \(random.seed)")
            }
        }
    }

    @Test("gates whose decays underflow to zero, gates of zero, and no output gradient", arguments: BackendCase.bothChunkedLayouts)
    func extremeGatesAndMissingGradients(_ backendCase: BackendCase) throws {
        let chunked = try backendCase.makeScanBackend(form: .chunked), recurrent = try backendCase.makeScanBackend(form: .recurrent)
        var random = RandomGenerator.withFreshSeed()
        for (rule, gate) in Self.kinds where gate != .none {
            let reference = Reference.Scan(ScanShape(batch: 1, length: 150, heads: 2, keyDimension: 16, valueDimension: 24), rule: rule, gate: gate, scale: 0.25)
            var problem = ScanTests.Problem(reference, normalizer: 1, initialState: true, finalStateGradient: true, random: &random)
            // Every third gate is −200 (the state is wiped), every third 0 (no decay).
            for i in problem.gate.indices where i % 3 != 2 { problem.gate[i] = i % 3 == 0 ? -200 : 0 }
            try Self.compareForms(problem, chunked: chunked, recurrent: recurrent, label: "extreme gates, seed \(random.seed)")
        }
        // Mild gates (normalizer 16): without dO, dh0 is dS_T times the product of all 97 decays, which
        // with normalizer 1 falls below float32's normal range (e^-87), where no float32 result is accurate.
        for (rule, gate) in Self.kinds {
            let reference = Reference.Scan(ScanShape(batch: 2, length: 97, heads: 1, keyDimension: 16, valueDimension: 21), rule: rule, gate: gate, scale: 0.25)
            let problem = ScanTests.Problem(reference, normalizer: 16, initialState: true, finalStateGradient: true, random: &random)
            try Self.compareForms(problem, chunked: chunked, recurrent: recurrent, withoutOutputGradient: true, label: "no dO, seed \(random.seed)")
        }
    }

    @Test("the chunked gradients against central finite differences of the float64 scan (tiny sizes, several chunks)", arguments: BackendCase.bothChunkedLayouts)
    func finiteDifferences(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeScanBackend(form: .chunked)
        var random = RandomGenerator.withFreshSeed()
        for (index, (rule, gate)) in Self.kinds.enumerated() {
            // T = 70: whole chunks (of 64 on OpenCL, of 32 on the CPU at these sizes), then a partial one of 6 steps.
            let reference = Reference.Scan(ScanShape(batch: 1, length: 70, heads: 1, keyDimension: 3, valueDimension: 2), rule: rule, gate: gate, scale: 0.7)
            let problem = ScanTests.Problem(reference, normalizer: ScanTests.normalizers[index % 3], initialState: true, finalStateGradient: true, random: &random)
            let results = try ScanTests.run(problem, on: backend)
            let computed = ["dq": results.query, "dk": results.key, "dv": results.value, "dh0": results.initialState, "dgate": results.gate, "dbeta": results.beta]
            let checks = ScanTests.numericGradients(problem, reference).map { ($0.name, computed[$0.name] ?? nil, $0.numeric) }
            for (name, value, expected) in checks {
                let error = relativeError(try #require(value), expected)
                #expect(error < Self.chunkedTolerance, "chunked \(name) of \(reference) on \(backend.device.id): relative error \(error) against finite differences, seed \(random.seed)")
            }
        }
    }

    @Test("a sequence run in two halves, carrying the state, equals one run (forward and backward)", arguments: BackendCase.bothChunkedLayouts)
    func stateContinuity(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeScanBackend(form: .chunked)
        var random = RandomGenerator.withFreshSeed()
        for (rule, gate) in Self.kinds where gate != .none {
            // 77 + 123: neither half is a whole number of chunks or sub-chunks.
            try ScanTests.checkContinuity(rule: rule, gate: gate, sizes: (2, 200, 2, 16, 20, 77), on: backend, tolerance: Self.chunkedTolerance, random: &random)
        }
    }

    // The C loops come in portable, AVX2 + FMA and AVX-512 versions; the tests above run the default one.
    // K and V pad to 16 columns: 24 and 100 meet the 16-lane loops' masked last 8 columns.
    @Test("CPU chunked loops: the default and the portable C versions against the float64 reference")
    func cpuLoopVersions() throws {
        let backend = CPUBackend()
        backend.scanFormRule = .chunked
        var random = RandomGenerator.withFreshSeed()
        let problems = Self.kinds.enumerated().map { index, kind in
            let shape = ScanShape(batch: 1, length: [70, 130, 64, 91, 33][index], heads: 2, keyDimension: [24, 7, 100, 16, 40][index], valueDimension: [100, 24, 8, 33, 16][index])
            return ScanTests.Problem(Reference.Scan(shape, rule: kind.0, gate: kind.1, scale: 0.3), normalizer: ScanTests.normalizers[index % 3],
                                     initialState: true, finalStateGradient: true, random: &random)
        }
        try ScanTests.checkBothLoopVersions(problems, on: backend, tolerance: Self.chunkedTolerance, seed: random.seed)
    }

    @Test("a zero-length sequence passes the state through", arguments: BackendCase.bothChunkedLayouts)
    func emptySequence(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeScanBackend(form: .chunked)
        var random = RandomGenerator.withFreshSeed()
        let shape = ScanShape(batch: 2, length: 0, heads: 3, keyDimension: 16, valueDimension: 5)
        let initial = random.floats(shape.stateCount), finalGradient = random.floats(shape.stateCount)
        let empty = backend.allocate(1)
        let finalState = backend.poisoned(shape.stateCount), dh0 = backend.poisoned(shape.stateCount)
        backend.deltaRuleScan(
            DeltaRuleInputs(query: empty, key: empty, value: empty, beta: empty, initialState: backend.makeBuffer(initial)), shape: shape, scale: 1,
            into: ScanOutputs(output: empty, finalState: finalState))
        #expect(try backend.download(finalState) == initial)
        backend.linearAttentionScanBackward(
            ScanInputs(query: empty, key: empty, value: empty), shape: shape, scale: 1,
            outputGradients: ScanOutputGradients(output: empty, finalState: backend.makeBuffer(finalGradient)),
            into: ScanGradients(query: empty, key: empty, value: empty, initialState: dh0))
        #expect(try backend.download(dh0) == finalGradient)
    }

    @Test("the rule: short sequences and small heads recurrent, long ones chunked")
    func formRule() {
        let rule = ScanFormRule(chunkedFromLength: 128)
        let shape = { (t: Int) in ScanShape(batch: 1, length: t, heads: 1, keyDimension: 16, valueDimension: 16) }
        #expect(rule.form(for: shape(127)) == .recurrent)
        #expect(rule.form(for: shape(128)) == .chunked)
        #expect(ScanFormRule.recurrent.form(for: shape(1 << 20)) == .recurrent)
        #expect(ScanFormRule.chunked.form(for: shape(1)) == .chunked)
        #expect(CPUBackend().scanFormRule == ScanFormRule.cpuBackend)
        // A state-size floor: chunked only where K · V reaches it, at any length past the length floor.
        let sized = ScanFormRule(chunkedFromLength: 64, chunkedFromStateCount: 128 * 128)
        let state = { (t: Int, k: Int, v: Int) in ScanShape(batch: 1, length: t, heads: 1, keyDimension: k, valueDimension: v) }
        #expect(sized.form(for: state(4096, 64, 64)) == .recurrent)
        #expect(sized.form(for: state(4096, 128, 127)) == .recurrent)
        #expect(sized.form(for: state(64, 128, 128)) == .chunked)
        #expect(sized.form(for: state(63, 256, 256)) == .recurrent)
        // The CPU backend's own floors: T ≥ 128 and K · V ≥ 32 × 32 (the MQAR recipe's heads of 16 stay recurrent).
        if ProcessInfo.processInfo.environment["KILN_SCAN_FORM"] == nil {
            #expect(ScanFormRule.cpuBackend.form(for: state(4096, 16, 16)) == .recurrent)
            #expect(ScanFormRule.cpuBackend.form(for: state(128, 32, 32)) == .chunked)
            #expect(ScanFormRule.cpuBackend.form(for: state(127, 64, 64)) == .recurrent)
        }
        // Tuning files set the two floors one at a time, each keeping the other.
        let (tuned, rejected) = OpenCLTuning.gpuDevice.setting(["scan.chunkedFromLength": 256, "scan.chunkedFromStateCount": 4096])
        #expect(rejected.isEmpty)
        if ProcessInfo.processInfo.environment["KILN_SCAN_FORM"] == nil {
            #expect(tuned.scan.form == ScanFormRule(chunkedFromLength: 256, chunkedFromStateCount: 4096))
        }
    }
}

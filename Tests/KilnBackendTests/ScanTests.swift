import Foundation
import KilnBackend
import KilnTestSupport
import Testing

/// The scan family's primitives (`ScanKernels`) against `Reference.Scan` (float64, every state kept),
/// whose own gradients are checked against central finite differences here first.
///
/// Bound: every kernel here is recurrent (float32 state, one step at a time), so forward outputs, final
/// states and every gradient must be within relative RMS error 1e-5 of the float64 reference.
@Suite("linear-attention scans against a float64 reference")
struct ScanTests {
    /// The relative RMS error bound of the recurrent kernels (DESIGN.md: scan work in float32).
    static let recurrentTolerance = CheckBound.scanRecurrent

    /// Sizes (B, T, H, K, V): T in {1, 15, 63, 64, 65, 127, 1000} around the checkpoint chunks (16 on
    /// the CPU backend, 32 on OpenCL), D in {16, 60, 64, 100, 128}, some with K ≠ V. The one long case
    /// keeps the suite fast.
    static let shapes: [(Int, Int, Int, Int, Int)] = [
        (2, 1, 2, 16, 16), (1, 15, 3, 60, 60), (2, 63, 2, 64, 64), (1, 64, 2, 100, 100), (1, 65, 1, 128, 128),
        (1, 127, 2, 16, 60), (2, 33, 1, 60, 16), (1, 1000, 1, 64, 100),
    ]
    /// Gate normalizers: g = logsigmoid(x) / n; 0.1 is strong (decays to e^−30), 16 weak.
    static let normalizers: [Double] = [0.1, 1, 16]

    /// One scan problem's inputs: the device check's (CheckCases.ScanProblem), which its scan case runs.
    typealias Problem = CheckCases.ScanProblem

    /// Runs the forward and backward primitives on a backend, every output poisoned with NaN first, as the
    /// device check's scan case does (CheckCases.runScan). `omit` leaves out the optional outputs (final
    /// state, gate and initial-state gradients); `withoutOutputGradient` passes no dO (the output did not
    /// reach the loss).
    static func run(_ problem: Problem, on backend: any Backend, omit: Bool = false, withoutOutputGradient: Bool = false) throws -> CheckCases.ScanResults {
        try CheckCases.runScan(problem, on: backend, omit: omit, withoutOutputGradient: withoutOutputGradient)
    }

    /// The device check's comparisons of a backend's results with the reference's (CheckCases.compareScan),
    /// each within `tolerance` (a gate's gradient within ``gateGradientTolerance(_:_:)``), one expectation each.
    static func check(_ problem: Problem, on backend: any Backend, omit: Bool = false, withoutOutputGradient: Bool = false, tolerance: Double, label: String) throws {
        let results = try run(problem, on: backend, omit: omit, withoutOutputGradient: withoutOutputGradient)
        for (name, error, bound) in CheckCases.compareScan(results, problem, withoutOutputGradient: withoutOutputGradient, bound: tolerance) {
            #expect(error < bound, "\(name) of \(problem.reference) on \(backend.device.id): relative error \(error) (\(label))")
        }
    }

    /// The bound for a gate's gradient: a per-head gate's gradient sums K · V products of each step, terms
    /// that largely cancel under strong gates, so its rounding grows with K; at K = V = 256 with gates of
    /// logsigmoid/0.1 the chunked OpenCL form measured 1.006e-4 against float64 (one seed in several runs),
    /// so from K = 256 on the bound is twice `tolerance`.
    static func gateGradientTolerance(_ reference: Reference.Scan, _ tolerance: Double) -> Double {
        CheckBound.scanGateGradient(keyDimension: reference.shape.keyDimension, perHead: reference.gate == .perHead, bound: tolerance)
    }

    // MARK: The reference itself

    @Test("the float64 reference's gradients match central finite differences")
    func referenceGradients() {
        var random = RandomGenerator.withFreshSeed()
        let tiny: [(Reference.Scan.Rule, Reference.Scan.GateLayout)] = [(.linearAttention, .none), (.linearAttention, .perHead), (.linearAttention, .perKey), (.deltaRule, .none), (.deltaRule, .perHead)]
        for (index, (rule, gate)) in tiny.enumerated() {
            let reference = Reference.Scan(ScanShape(batch: 2, length: 4, heads: 2, keyDimension: 3, valueDimension: 2), rule: rule, gate: gate, scale: 0.7)
            let problem = Problem(reference, normalizer: Self.normalizers[index % 3], initialState: true, finalStateGradient: true, random: &random)
            let inputs = problem.inputs
            let stateWeights = problem.finalStateGradient!.map(Double.init)
            let analytic = reference.backward(inputs, outputGradient: problem.outputGradient.map(Double.init), finalStateGradient: stateWeights)
            let computed = ["dq": analytic.query, "dk": analytic.key, "dv": analytic.value, "dh0": analytic.initialState, "dgate": analytic.gate, "dbeta": analytic.beta]
            let checks = Self.numericGradients(problem, reference).map { ($0.name, computed[$0.name]!, $0.numeric) }
            for (name, value, expected) in checks {
                let error = relativeError(value.map { Float($0) }, expected)
                #expect(error < 1e-6, "reference \(name) of \(reference): relative error \(error) against finite differences, seed \(random.seed)")
            }
            if rule == .linearAttention && gate != .none {
                // DESIGN.md's form of the gate gradient (a reverse cumulative sum) agrees with the direct one.
                let cumulative = reference.gateGradientByCumulativeSum(inputs, gradients: analytic, finalStateGradient: stateWeights)
                let error = relativeError(cumulative.map { Float($0) }, analytic.gate)
                #expect(error < 1e-6, "cumulative-sum gate gradient of \(reference): relative error \(error), seed \(random.seed)")
            }
        }
    }

    /// Central finite differences of the float64 loss (dO and dS_T of `problem` as weights) for every
    /// input the scan has: dq, dk, dv, dh0 (the initial state), dgate (gated scans) and dbeta (the delta rule).
    static func numericGradients(_ problem: Problem, _ reference: Reference.Scan) -> [(name: String, numeric: [Double])] {
        let inputs = problem.inputs
        let outputWeights = problem.outputGradient.map(Double.init), stateWeights = problem.finalStateGradient!.map(Double.init)
        func numeric(_ field: WritableKeyPath<Reference.Scan.Inputs, [Double]>) -> [Double] {
            finiteDifferenceGradient(inputs[keyPath: field]) { point in
                var perturbed = inputs
                perturbed[keyPath: field] = point
                return reference.loss(perturbed, outputWeights: outputWeights, stateWeights: stateWeights)
            }
        }
        let initialState = finiteDifferenceGradient(inputs.initialState!) { point in
            var perturbed = inputs
            perturbed.initialState = point
            return reference.loss(perturbed, outputWeights: outputWeights, stateWeights: stateWeights)
        }
        var gradients = [("dq", numeric(\.query)), ("dk", numeric(\.key)), ("dv", numeric(\.value)), ("dh0", initialState)]
        if reference.gate != .none { gradients.append(("dgate", numeric(\.gate))) }
        if reference.rule == .deltaRule { gradients.append(("dbeta", numeric(\.beta))) }
        return gradients.map { (name: $0.0, numeric: $0.1) }
    }

    // MARK: Backends

    @Test("(gated) linear attention forward and backward, per-key, per-head and no gate", arguments: BackendCase.all)
    func linearAttention(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeScanBackend(form: .recurrent)
        var random = RandomGenerator.withFreshSeed()
        let gates: [Reference.Scan.GateLayout] = [.none, .perHead, .perKey]
        for (shapeIndex, (b, t, h, k, v)) in Self.shapes.enumerated() {
            for (gateIndex, gate) in gates.enumerated() {
                let normalizer = Self.normalizers[(shapeIndex + gateIndex) % 3]
                let reference = Reference.Scan(ScanShape(batch: b, length: t, heads: h, keyDimension: k, valueDimension: v), rule: .linearAttention, gate: gate, scale: 1 / Double(k).squareRoot())
                let problem = Problem(reference, normalizer: normalizer, initialState: gateIndex != 1, finalStateGradient: (shapeIndex + gateIndex) % 2 == 0, random: &random)
                try Self.check(problem, on: backend, omit: shapeIndex == 2, tolerance: Self.recurrentTolerance, label: "gate normalizer \(normalizer), seed \(random.seed)")
            }
        }
    }

    @Test("(gated) delta rule forward and backward", arguments: BackendCase.all)
    func deltaRule(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeScanBackend(form: .recurrent)
        var random = RandomGenerator.withFreshSeed()
        let gates: [Reference.Scan.GateLayout] = [.none, .perHead]
        for (shapeIndex, (b, t, h, k, v)) in Self.shapes.enumerated() {
            for (gateIndex, gate) in gates.enumerated() {
                let normalizer = Self.normalizers[(shapeIndex + gateIndex) % 3]
                let reference = Reference.Scan(ScanShape(batch: b, length: t, heads: h, keyDimension: k, valueDimension: v), rule: .deltaRule, gate: gate, scale: 1 / Double(k).squareRoot())
                let problem = Problem(reference, normalizer: normalizer, initialState: gateIndex == 0, finalStateGradient: (shapeIndex + gateIndex) % 2 == 1, random: &random)
                try Self.check(problem, on: backend, omit: shapeIndex == 3, tolerance: Self.recurrentTolerance, label: "gate normalizer \(normalizer), seed \(random.seed)")
            }
        }
    }

    @Test("gates whose decays underflow to zero, and gates of exactly zero", arguments: BackendCase.all)
    func extremeGates(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeScanBackend(form: .recurrent)
        var random = RandomGenerator.withFreshSeed()
        for (rule, gate) in [(Reference.Scan.Rule.linearAttention, Reference.Scan.GateLayout.perKey), (.linearAttention, .perHead), (.deltaRule, .perHead)] {
            let reference = Reference.Scan(ScanShape(batch: 1, length: 40, heads: 2, keyDimension: 16, valueDimension: 24), rule: rule, gate: gate, scale: 0.25)
            var problem = Problem(reference, normalizer: 1, initialState: true, finalStateGradient: true, random: &random)
            // Every third gate is −200 (exp underflows to 0: the state is wiped), every third 0 (no decay).
            for i in problem.gate.indices where i % 3 != 2 { problem.gate[i] = i % 3 == 0 ? -200 : 0 }
            try Self.check(problem, on: backend, tolerance: Self.recurrentTolerance, label: "seed \(random.seed)")
        }
    }

    @Test("backward without dO: only the final state reached the loss", arguments: BackendCase.all)
    func finalStateGradientAlone(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeScanBackend(form: .recurrent)
        var random = RandomGenerator.withFreshSeed()
        for (rule, gate) in [(Reference.Scan.Rule.linearAttention, Reference.Scan.GateLayout.perKey), (.linearAttention, .none), (.deltaRule, .perHead)] {
            let reference = Reference.Scan(ScanShape(batch: 2, length: 37, heads: 2, keyDimension: 16, valueDimension: 21), rule: rule, gate: gate, scale: 0.25)
            let problem = Problem(reference, normalizer: 1, initialState: true, finalStateGradient: true, random: &random)
            try Self.check(problem, on: backend, withoutOutputGradient: true, tolerance: Self.recurrentTolerance, label: "seed \(random.seed)")
        }
    }

    // The CPU backend's scan loops come in three versions (portable C, AVX2 + FMA, and AVX-512 for the
    // loops down the rows, where the processor has it); the tests above run the default one, this one
    // also the portable one. Value dimensions pad to 8, 24, 40, 64 and 104 columns, so the 16-lane loops
    // meet their blocks of 32 and 64 and their masked last 8 columns.
    @Test("CPU scan loops: the default and the portable C versions against the float64 reference")
    func cpuLoopVersions() throws {
        let backend = CPUBackend()
        var random = RandomGenerator.withFreshSeed()
        let cases: [(Reference.Scan.Rule, Reference.Scan.GateLayout, ScanShape)] = [
            (.linearAttention, .perKey, ScanShape(batch: 1, length: 17, heads: 2, keyDimension: 7, valueDimension: 100)),
            (.linearAttention, .perHead, ScanShape(batch: 2, length: 9, heads: 1, keyDimension: 33, valueDimension: 5)),
            (.linearAttention, .none, ScanShape(batch: 1, length: 40, heads: 1, keyDimension: 16, valueDimension: 40)),
            (.deltaRule, .perHead, ScanShape(batch: 1, length: 33, heads: 2, keyDimension: 16, valueDimension: 21)),
            (.deltaRule, .none, ScanShape(batch: 1, length: 7, heads: 1, keyDimension: 1, valueDimension: 64)),
        ]
        let problems = cases.map { rule, gate, shape in
            Problem(Reference.Scan(shape, rule: rule, gate: gate, scale: 0.3), normalizer: 1, initialState: true, finalStateGradient: true, random: &random)
        }
        try Self.checkBothLoopVersions(problems, on: backend, tolerance: Self.recurrentTolerance, seed: random.seed)
    }

    /// `check` of every problem with the CPU backend's default C loops and again with the portable ones.
    static func checkBothLoopVersions(_ problems: [Problem], on backend: CPUBackend, tolerance: Double, seed: UInt64) throws {
        for problem in problems {
            try check(problem, on: backend, tolerance: tolerance, label: "default loops, seed \(seed)")
        }
        try withPortableCPULoops {
            for problem in problems {
                try check(problem, on: backend, tolerance: tolerance, label: "portable loops, seed \(seed)")
            }
        }
    }

    @Test("other OpenCL scan parameters: the GPU defaults, one column per work-item, odd chunks", arguments: BackendCase.openCL)
    func otherTunings(_ backendCase: BackendCase) throws {
        let device = try #require(Devices.all().first { $0.id == backendCase.deviceID })
        var random = RandomGenerator.withFreshSeed()
        // Several value tiles per (batch, head) with a ragged last tile, groups of several work-items with
        // idle ones past the edge, and chunks that do not divide T.
        let tunings = [ScanTuning.gpuDevice, ScanTuning(columnsPerItem: 1, groupSize: 8, chunkLength: 5), ScanTuning(columnsPerItem: 8, groupSize: 2, chunkLength: 7)]
        for scanTuning in tunings {
            var tuning = OpenCLTuning.defaults(for: device)
            tuning.scan = scanTuning
            let backend = try OpenCLBackend(deviceID: device.id, tuning: tuning)
            for (rule, gate) in [(Reference.Scan.Rule.linearAttention, Reference.Scan.GateLayout.perKey), (.linearAttention, .perHead), (.deltaRule, .perHead), (.deltaRule, .none)] {
                let reference = Reference.Scan(ScanShape(batch: 2, length: 23, heads: 2, keyDimension: 16, valueDimension: 19), rule: rule, gate: gate, scale: 0.25)
                let problem = Problem(reference, normalizer: 1, initialState: true, finalStateGradient: true, random: &random)
                try Self.check(problem, on: backend, tolerance: Self.recurrentTolerance, label: "\(scanTuning), seed \(random.seed)")
            }
        }
    }

    @Test("a sequence run in two halves, carrying the state, equals one run (forward and backward)", arguments: BackendCase.all)
    func stateContinuity(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeScanBackend(form: .recurrent)
        var random = RandomGenerator.withFreshSeed()
        for (rule, gate) in [(Reference.Scan.Rule.linearAttention, Reference.Scan.GateLayout.perKey), (.deltaRule, .perHead)] {
            try Self.checkContinuity(rule: rule, gate: gate, sizes: (2, 70, 2, 16, 20, 37), on: backend, tolerance: Self.recurrentTolerance, random: &random)
        }
    }

    /// Runs a sequence of `sizes` (B, T, H, K, V, split) once and in two halves (the first half's final
    /// state starting the second; the second half's initial-state gradient ending the first's backward
    /// pass), and compares every result.
    static func checkContinuity(rule: Reference.Scan.Rule, gate: Reference.Scan.GateLayout, sizes: (Int, Int, Int, Int, Int, Int), on backend: any Backend,
                                tolerance: Double, random: inout RandomGenerator) throws {
        let (batch, length, heads, keys, values, split) = sizes
        let full = Reference.Scan(ScanShape(batch: batch, length: length, heads: heads, keyDimension: keys, valueDimension: values), rule: rule, gate: gate, scale: 0.25)
        let problem = Problem(full, normalizer: 1, initialState: true, finalStateGradient: true, random: &random)
        let whole = try Self.run(problem, on: backend)

        // The halves: [B, T, ...] arrays cut along T.
        func cut(_ array: [Float], rowLength: Int, _ range: Range<Int>) -> [Float] {
            (0..<batch).flatMap { b in array[((b * length + range.lowerBound) * rowLength)..<((b * length + range.upperBound) * rowLength)] }
        }
        func half(_ range: Range<Int>, initialState: [Float]?, finalStateGradient: [Float]?) -> Problem {
            var part = problem
            part.reference.shape.length = range.count
            part.query = cut(problem.query, rowLength: heads * keys, range)
            part.key = cut(problem.key, rowLength: heads * keys, range)
            part.value = cut(problem.value, rowLength: heads * values, range)
            part.gate = cut(problem.gate, rowLength: gate == .perKey ? heads * keys : heads, range)
            part.beta = rule == .deltaRule ? cut(problem.beta, rowLength: heads, range) : []
            part.outputGradient = cut(problem.outputGradient, rowLength: heads * values, range)
            part.initialState = initialState
            part.finalStateGradient = finalStateGradient
            return part
        }
        // Forward: the first half's final state starts the second half. Backward: the second half's
        // initial-state gradient is the first half's final-state gradient.
        let firstForward = try Self.run(half(0..<split, initialState: problem.initialState, finalStateGradient: nil), on: backend)
        let second = try Self.run(half(split..<length, initialState: firstForward.finalState, finalStateGradient: problem.finalStateGradient), on: backend)
        let first = try Self.run(half(0..<split, initialState: problem.initialState, finalStateGradient: second.initialState), on: backend)
        func joined(_ a: [Float], _ b: [Float], rowLength: Int) -> [Double] {
            let firstRows = split * rowLength, secondRows = (length - split) * rowLength
            var result: [Double] = []
            for index in 0..<batch {
                let firstPart: ArraySlice<Float> = a[(index * firstRows)..<((index + 1) * firstRows)]
                let secondPart: ArraySlice<Float> = b[(index * secondRows)..<((index + 1) * secondRows)]
                result += firstPart.map(Double.init)
                result += secondPart.map(Double.init)
            }
            return result
        }
        var comparisons: [(String, [Float], [Double])] = [
            ("output", whole.output, joined(first.output, second.output, rowLength: heads * values)),
            ("final state", whole.finalState!, second.finalState!.map(Double.init)),
            ("dq", whole.query, joined(first.query, second.query, rowLength: heads * keys)),
            ("dk", whole.key, joined(first.key, second.key, rowLength: heads * keys)),
            ("dv", whole.value, joined(first.value, second.value, rowLength: heads * values)),
            ("dgate", whole.gate!, joined(first.gate!, second.gate!, rowLength: gate == .perKey ? heads * keys : heads)),
            ("dh0", whole.initialState!, first.initialState!.map(Double.init)),
        ]
        if rule == .deltaRule { comparisons.append(("dbeta", whole.beta!, joined(first.beta!, second.beta!, rowLength: heads))) }
        for (name, value, expected) in comparisons {
            let error = relativeError(value, expected)
            #expect(error < tolerance, "\(rule) \(name) on \(backend.device.id): one run against two halves, relative error \(error), seed \(random.seed)")
        }
    }

    @Test("a zero-length sequence passes the state through", arguments: BackendCase.all)
    func emptySequence(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeScanBackend(form: .recurrent)
        var random = RandomGenerator.withFreshSeed()
        let shape = ScanShape(batch: 2, length: 0, heads: 3, keyDimension: 16, valueDimension: 5)
        let initial = random.floats(shape.stateCount), finalGradient = random.floats(shape.stateCount)
        let empty = backend.allocate(1)
        let finalState = backend.poisoned(shape.stateCount), dh0 = backend.poisoned(shape.stateCount)
        backend.linearAttentionScan(
            ScanInputs(query: empty, key: empty, value: empty, initialState: backend.makeBuffer(initial)), shape: shape, scale: 1,
            into: ScanOutputs(output: empty, finalState: finalState))
        #expect(try backend.download(finalState) == initial)
        backend.deltaRuleScanBackward(
            DeltaRuleInputs(query: empty, key: empty, value: empty, beta: empty), shape: shape, scale: 1,
            outputGradients: ScanOutputGradients(output: empty, finalState: backend.makeBuffer(finalGradient)),
            into: DeltaRuleGradients(query: empty, key: empty, value: empty, beta: empty, initialState: dh0))
        #expect(try backend.download(dh0) == finalGradient)
    }
}

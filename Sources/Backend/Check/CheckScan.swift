// The scan family's check: one problem's inputs, a run of the forward and backward primitives with every
// output poisoned, and the comparisons with `Reference.Scan`; shared by ``DeviceCheck`` (CheckCases.scan)
// and the test suite's scan tests (Tests/KilnBackendTests/ScanTests.swift, ScanChunkedTests.swift).

extension CheckCases {
    /// One scan problem's inputs on the host, in float32 and as the float64 reference sees them.
    public struct ScanProblem: Sendable {
        public var reference: Reference.Scan
        public var query: [Float], key: [Float], value: [Float], gate: [Float], beta: [Float]
        public var initialState: [Float]?
        public var outputGradient: [Float]
        public var finalStateGradient: [Float]?

        public var inputs: Reference.Scan.Inputs {
            Reference.Scan.Inputs(query: query.doubles, key: key.doubles, value: value.doubles, gate: gate.doubles, beta: beta.doubles, initialState: initialState?.doubles)
        }

        public var shape: ScanShape { reference.shape }

        /// Fresh inputs: unit-norm keys for the delta rule, gates `logsigmoid(x) / normalizer` (0.1 strong,
        /// 16 weak), beta in (0.05, 0.95), and optionally an initial state and a final-state gradient.
        public init(_ reference: Reference.Scan, normalizer: Double, initialState: Bool, finalStateGradient: Bool, random: inout RandomGenerator) {
            self.reference = reference
            let shape = reference.shape
            query = random.floats(shape.keyCount)
            key = reference.rule == .deltaRule ? random.unitRows(shape.keyCount, rowLength: shape.keyDimension) : random.floats(shape.keyCount)
            value = random.floats(shape.valueCount)
            gate = random.logGates(reference.gateCount, normalizer: normalizer)
            beta = reference.rule == .deltaRule ? random.floats(shape.headStepCount, in: 0.05...0.95) : []
            self.initialState = initialState ? random.floats(shape.stateCount) : nil
            outputGradient = random.floats(shape.valueCount)
            self.finalStateGradient = finalStateGradient ? random.floats(shape.stateCount) : nil
        }
    }

    /// What a backend computed for a scan problem (nil for an output not asked for).
    public struct ScanResults: Sendable {
        public var output: [Float], finalState: [Float]?
        public var query: [Float], key: [Float], value: [Float], gate: [Float]?, beta: [Float]?, initialState: [Float]?
    }

    /// Runs the forward and backward primitives on a backend, every output poisoned with NaN first.
    /// `omit` leaves out the optional outputs (final state, gate and initial-state gradients);
    /// `withoutOutputGradient` passes no dO (the output did not reach the loss).
    public static func runScan(_ problem: ScanProblem, on backend: any Backend, omit: Bool = false, withoutOutputGradient: Bool = false) throws -> ScanResults {
        let r = problem.reference, shape = problem.shape, scale = Float(r.scale)
        let query = backend.makeBuffer(problem.query), key = backend.makeBuffer(problem.key), value = backend.makeBuffer(problem.value)
        let gateBuffer = problem.gate.isEmpty ? nil : backend.makeBuffer(problem.gate)
        let initial = problem.initialState.map { backend.makeBuffer($0) }
        let outputGradients = ScanOutputGradients(
            output: withoutOutputGradient ? nil : backend.makeBuffer(problem.outputGradient), finalState: problem.finalStateGradient.map { backend.makeBuffer($0) })
        let outputs = ScanOutputs(output: backend.poisoned(shape.valueCount), finalState: omit ? nil : backend.poisoned(shape.stateCount))
        let dq = backend.poisoned(shape.keyCount), dk = backend.poisoned(shape.keyCount), dv = backend.poisoned(shape.valueCount)
        let dg = omit || gateBuffer == nil ? nil : backend.poisoned(r.gateCount)
        let dh0 = omit ? nil : backend.poisoned(shape.stateCount)
        var dbeta: DeviceBuffer?
        switch r.rule {
        case .linearAttention:
            let gate: ScanGate = switch r.gate {
            case .none: .none
            case .perHead: .perHead(gateBuffer!)
            case .perKey: .perKey(gateBuffer!)
            }
            let inputs = ScanInputs(query: query, key: key, value: value, gate: gate, initialState: initial)
            backend.linearAttentionScan(inputs, shape: shape, scale: scale, into: outputs)
            backend.linearAttentionScanBackward(
                inputs, shape: shape, scale: scale, outputGradients: outputGradients,
                into: ScanGradients(query: dq, key: dk, value: dv, gate: dg, initialState: dh0))
        case .deltaRule:
            let inputs = DeltaRuleInputs(query: query, key: key, value: value, beta: backend.makeBuffer(problem.beta), gate: gateBuffer, initialState: initial)
            dbeta = backend.poisoned(shape.headStepCount)
            backend.deltaRuleScan(inputs, shape: shape, scale: scale, into: outputs)
            backend.deltaRuleScanBackward(
                inputs, shape: shape, scale: scale, outputGradients: outputGradients,
                into: DeltaRuleGradients(query: dq, key: dk, value: dv, beta: dbeta!, gate: dg, initialState: dh0))
        }
        return ScanResults(
            output: try backend.download(outputs.output), finalState: try outputs.finalState.map { try backend.download($0) },
            query: try backend.download(dq), key: try backend.download(dk), value: try backend.download(dv),
            gate: try dg.map { try backend.download($0) }, beta: try dbeta.map { try backend.download($0) },
            initialState: try dh0.map { try backend.download($0) })
    }

    /// Every result a backend gave for a problem against the reference's (the forward and backward of
    /// `Reference.Scan`): (name, relative error, bound), `bound` for all but a gate's gradient
    /// (``CheckBound/scanGateGradient(keyDimension:perHead:bound:)``).
    public static func compareScan(_ results: ScanResults, _ problem: ScanProblem, withoutOutputGradient: Bool = false,
                                   bound: Double) -> [(output: String, error: Double, bound: Double)] {
        let reference = problem.reference
        let (output, finalState) = reference.forward(problem.inputs)
        let gradients = reference.backward(
            problem.inputs, outputGradient: withoutOutputGradient ? nil : problem.outputGradient.doubles, finalStateGradient: problem.finalStateGradient?.doubles)
        var pairs: [(String, [Float]?, [Double])] = [
            ("output", results.output, output), ("final state", results.finalState, finalState),
            ("dq", results.query, gradients.query), ("dk", results.key, gradients.key), ("dv", results.value, gradients.value),
            ("dh0", results.initialState, gradients.initialState),
        ]
        if reference.gate != .none { pairs.append(("dgate", results.gate, gradients.gate)) }
        if reference.rule == .deltaRule { pairs.append(("dbeta", results.beta, gradients.beta)) }
        let gateBound = CheckBound.scanGateGradient(keyDimension: reference.shape.keyDimension, perHead: reference.gate == .perHead, bound: bound)
        return pairs.compactMap { name, values, expected in
            values.map { (name, relativeError($0, expected), name == "dgate" ? gateBound : bound) }
        }
    }
}

import Foundation
import Kiln
import KilnTestSupport
import Testing

/// The float64 scans (KilnTests has float64 helpers of its own named `Reference`, in GradientCheck.swift).

/// The scan ops `linearAttentionScan` and `deltaRuleScan` with autograd: forward and every gradient (from
/// the output and the final state together or alone) against `Reference.Scan`, the float64 loop over time,
/// and against central finite differences of it on tiny shapes.
@Suite("scan ops: forward and gradients through autograd against float64")
struct ScanOpTests {
    /// The kernels are recurrent: relative RMS error 1e-5 against the float64 reference's analytic
    /// gradients. Against finite differences checkOp's 1e-4 applies (float32 gradients of a float64 difference quotient).
    static let recurrentTolerance = 1e-5

    /// One problem's leaf tensors and their host values.
    struct Leaves {
        var reference: Reference.Scan
        var values: [[Float]]
        var tensors: [Tensor]

        var query: Tensor { tensors[0] }
        var key: Tensor { tensors[1] }
        var value: Tensor { tensors[2] }
        /// beta (delta rule), then the gate, then the initial state, each when present.
        var extra: [Tensor] { Array(tensors.dropFirst(3)) }

        /// Inputs in `Reference.Scan`'s form.
        var inputs: Reference.Scan.Inputs {
            let doubles = values.map { $0.map(Double.init) }
            var next = 3
            func take() -> [Double] {
                defer { next += 1 }
                return doubles[next]
            }
            let beta = reference.rule == .deltaRule ? take() : []
            let gate = reference.gate == .none ? [] : take()
            let initial = next < doubles.count ? take() : nil
            return Reference.Scan.Inputs(query: doubles[0], key: doubles[1], value: doubles[2], gate: gate, beta: beta, initialState: initial)
        }
    }

    static func shapes(_ r: Reference.Scan, initialState: Bool) -> [[Int]] {
        let s = r.shape, heads = [s.batch, s.length, s.heads]
        var shapes = [heads + [s.keyDimension], heads + [s.keyDimension], heads + [s.valueDimension]]
        if r.rule == .deltaRule { shapes.append(heads) }
        switch r.gate {
        case .none: break
        case .perHead: shapes.append(heads)
        case .perKey: shapes.append(heads + [s.keyDimension])
        }
        if initialState { shapes.append([s.batch, s.heads, s.keyDimension, s.valueDimension]) }
        return shapes
    }

    static func makeLeaves(_ r: Reference.Scan, normalizer: Double, initialState: Bool, on backend: any Backend, random: inout RandomGenerator) -> Leaves {
        var values = [random.floats(r.shape.keyCount), r.rule == .deltaRule ? random.unitRows(r.shape.keyCount, rowLength: r.shape.keyDimension) : random.floats(r.shape.keyCount), random.floats(r.shape.valueCount)]
        if r.rule == .deltaRule { values.append(random.floats(r.shape.headStepCount, in: 0.05...0.95)) }
        if r.gate != .none { values.append(random.logGates(r.gateCount, normalizer: normalizer)) }
        if initialState { values.append(random.floats(r.shape.stateCount)) }
        let tensors = zip(values, shapes(r, initialState: initialState)).map { Tensor.parameter($0, shape: $1, on: backend) }
        return Leaves(reference: r, values: values, tensors: tensors)
    }

    /// Calls the op under test on tensors in `Leaves` order.
    static func apply(_ r: Reference.Scan, _ tensors: [Tensor], initialState: Bool) -> (output: Tensor, finalState: Tensor) {
        var next = 3
        func take() -> Tensor {
            defer { next += 1 }
            return tensors[next]
        }
        let scale = Float(r.scale)
        switch r.rule {
        case .linearAttention:
            let gate = r.gate == .none ? nil : take()
            return linearAttentionScan(query: tensors[0], key: tensors[1], value: tensors[2], gate: gate, scale: scale, initialState: initialState ? take() : nil)
        case .deltaRule:
            let beta = take()
            let gate = r.gate == .none ? nil : take()
            return deltaRuleScan(query: tensors[0], key: tensors[1], value: tensors[2], beta: beta, gate: gate, scale: scale, initialState: initialState ? take() : nil)
        }
    }

    static let kinds: [(Reference.Scan.Rule, Reference.Scan.GateLayout)] = [(.linearAttention, .none), (.linearAttention, .perHead), (.linearAttention, .perKey), (.deltaRule, .none), (.deltaRule, .perHead)]

    @Test("gradients from the output and the final state match finite differences of the float64 reference", arguments: BackendCase.all)
    func finiteDifferences(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for (rule, gate) in Self.kinds {
            // K = 16 (a key dimension the other tests build kernels for too), V = 3, so K ≠ V.
            let r = Reference.Scan(ScanShape(batch: 1, length: 5, heads: 2, keyDimension: 16, valueDimension: 3), rule: rule, gate: gate, scale: 0.3)
            let shapes = Self.shapes(r, initialState: true)
            var ranges: [ClosedRange<Float>] = [-1...1, -0.6...0.6, -1...1]
            if rule == .deltaRule { ranges.append(0.1...0.9) }
            if gate != .none { ranges.append(-2 ... -0.02) }
            ranges.append(-1...1)
            let op = OpCase(
                name: "\(r)", inputs: Array(zip(shapes, ranges)),
                kiln: { tensors in
                    let (output, finalState) = Self.apply(r, tensors, initialState: true)
                    return Tensor.concatenate([output.reshaped([-1]), finalState.reshaped([-1])], axis: 0)
                },
                reference: { arrays in
                    var next = 3
                    func take() -> [Double] {
                        defer { next += 1 }
                        return arrays[next]
                    }
                    let beta = rule == .deltaRule ? take() : []
                    let gateValues = gate == .none ? [] : take()
                    let inputs = Reference.Scan.Inputs(query: arrays[0], key: arrays[1], value: arrays[2], gate: gateValues, beta: beta, initialState: take())
                    let (output, finalState) = r.forward(inputs)
                    return output + finalState
                })
            try checkOp(op, on: backend, random: &random)
        }
    }

    @Test("forward and every gradient against the float64 reference, T from 15 to 1300", arguments: BackendCase.all)
    func againstReference(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let cases: [(Reference.Scan, Double)] = [
            (Reference.Scan(ScanShape(batch: 2, length: 15, heads: 2, keyDimension: 60, valueDimension: 60), rule: .linearAttention, gate: .perKey, scale: 0.13), 0.1),
            (Reference.Scan(ScanShape(batch: 1, length: 64, heads: 2, keyDimension: 64, valueDimension: 64), rule: .linearAttention, gate: .perHead, scale: 0.125), 1),
            (Reference.Scan(ScanShape(batch: 1, length: 65, heads: 1, keyDimension: 100, valueDimension: 128), rule: .deltaRule, gate: .perHead, scale: 0.1), 16),
            (Reference.Scan(ScanShape(batch: 1, length: 127, heads: 2, keyDimension: 16, valueDimension: 16), rule: .linearAttention, gate: .none, scale: 0.25), 1),
            // Long enough that the checkpoint interval grows with √T (18 steps on the CPU backend, 36 on OpenCL).
            (Reference.Scan(ScanShape(batch: 1, length: 1300, heads: 1, keyDimension: 16, valueDimension: 60), rule: .deltaRule, gate: .none, scale: 0.25), 1),
        ]
        for (r, normalizer) in cases {
            let leaves = Self.makeLeaves(r, normalizer: normalizer, initialState: true, on: backend, random: &random)
            let (output, finalState) = Self.apply(r, leaves.tensors, initialState: true)
            let outputWeights = random.floats(r.shape.valueCount), stateWeights = random.floats(r.shape.stateCount)
            let loss = (output * Tensor(outputWeights, shape: output.shape, on: backend)).sum()
                + (finalState * Tensor(stateWeights, shape: finalState.shape, on: backend)).sum()
            loss.backward()
            let (expectedOutput, expectedState) = r.forward(leaves.inputs)
            let gradients = r.backward(leaves.inputs, outputGradient: outputWeights.map(Double.init), finalStateGradient: stateWeights.map(Double.init))
            try Self.expectGradients(leaves, gradients, label: "\(r) on \(backend.device.id), gate normalizer \(normalizer), seed \(random.seed)")
            #expect(relativeError(try output.toArray(), expectedOutput) < Self.recurrentTolerance, "output of \(r), seed \(random.seed)")
            #expect(relativeError(try finalState.toArray(), expectedState) < Self.recurrentTolerance, "final state of \(r), seed \(random.seed)")
        }
    }

    /// Every leaf's gradient against the reference's, in `Leaves` order.
    static func expectGradients(_ leaves: Leaves, _ gradients: Reference.Scan.Gradients, label: String) throws {
        var expected = [gradients.query, gradients.key, gradients.value]
        if leaves.reference.rule == .deltaRule { expected.append(gradients.beta) }
        if leaves.reference.gate != .none { expected.append(gradients.gate) }
        if leaves.tensors.count > expected.count { expected.append(gradients.initialState) }
        let names = ["dq", "dk", "dv"] + (leaves.reference.rule == .deltaRule ? ["dbeta"] : []) + (leaves.reference.gate != .none ? ["dgate"] : []) + ["dh0"]
        for (index, tensor) in leaves.tensors.enumerated() {
            let gradient = try #require(tensor.gradient, "\(names[index]) missing: \(label)").toArray()
            let error = relativeError(gradient, expected[index])
            #expect(error < recurrentTolerance, "\(names[index]): relative error \(error), \(label)")
        }
    }

    @Test("the output alone, the final state alone, and backward passes in a row", arguments: BackendCase.all)
    func partialUse(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for (rule, gate) in [(Reference.Scan.Rule.linearAttention, Reference.Scan.GateLayout.perKey), (.deltaRule, .perHead)] {
            let r = Reference.Scan(ScanShape(batch: 2, length: 20, heads: 2, keyDimension: 16, valueDimension: 12), rule: rule, gate: gate, scale: 0.35)
            let leaves = Self.makeLeaves(r, normalizer: 1, initialState: true, on: backend, random: &random)
            let outputWeights = random.floats(r.shape.valueCount), stateWeights = random.floats(r.shape.stateCount)
            // The final state alone, then (after clearing) the output alone: the second pass must not see
            // the first pass's state gradient.
            for useState in [true, false] {
                for tensor in leaves.tensors { tensor.zeroGradient() }
                let (output, finalState) = Self.apply(r, leaves.tensors, initialState: true)
                let loss = useState
                    ? (finalState * Tensor(stateWeights, shape: finalState.shape, on: backend)).sum()
                    : (output * Tensor(outputWeights, shape: output.shape, on: backend)).sum()
                loss.backward()
                let gradients = useState
                    ? r.backward(leaves.inputs, outputGradient: nil, finalStateGradient: stateWeights.map(Double.init))
                    : r.backward(leaves.inputs, outputGradient: outputWeights.map(Double.init), finalStateGradient: nil)
                try Self.expectGradients(leaves, gradients, label: "\(r), \(useState ? "state" : "output") only, seed \(random.seed)")
            }
            // Both outputs of one call, differentiated twice over a graph that is kept: gradients add up.
            for tensor in leaves.tensors { tensor.zeroGradient() }
            let (output, finalState) = Self.apply(r, leaves.tensors, initialState: true)
            let loss = (output * Tensor(outputWeights, shape: output.shape, on: backend)).sum()
                + (finalState * Tensor(stateWeights, shape: finalState.shape, on: backend)).sum()
            loss.backward()
            loss.backward()
            var doubled = r.backward(leaves.inputs, outputGradient: outputWeights.map(Double.init), finalStateGradient: stateWeights.map(Double.init))
            doubled.query = doubled.query.map { 2 * $0 }
            doubled.key = doubled.key.map { 2 * $0 }
            doubled.value = doubled.value.map { 2 * $0 }
            doubled.gate = doubled.gate.map { 2 * $0 }
            doubled.beta = doubled.beta.map { 2 * $0 }
            doubled.initialState = doubled.initialState.map { 2 * $0 }
            try Self.expectGradients(leaves, doubled, label: "\(r), two backward passes, seed \(random.seed)")
        }
    }

    @Test("two chained calls carrying the state equal one call over the whole sequence", arguments: BackendCase.all)
    func chainedCalls(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for (rule, gate) in [(Reference.Scan.Rule.linearAttention, Reference.Scan.GateLayout.perKey), (.deltaRule, .perHead)] {
            let (batch, length, heads, keys, values, split) = (1, 50, 2, 16, 16, 21)
            let r = Reference.Scan(ScanShape(batch: batch, length: length, heads: heads, keyDimension: keys, valueDimension: values), rule: rule, gate: gate, scale: 0.25)
            let leaves = Self.makeLeaves(r, normalizer: 1, initialState: true, on: backend, random: &random)
            let outputWeights = Tensor(random.floats(r.shape.valueCount), shape: [batch, length, heads, values], on: backend)
            let stateWeights = Tensor(random.floats(r.shape.stateCount), shape: [batch, heads, keys, values], on: backend)
            // One call.
            let (output, finalState) = Self.apply(r, leaves.tensors, initialState: true)
            ((output * outputWeights).sum() + (finalState * stateWeights).sum()).backward()
            let whole = try leaves.tensors.map { try #require($0.gradient).toArray() }
            for tensor in leaves.tensors { tensor.zeroGradient() }
            // Two calls on slices along T (differentiable), the first's final state starting the second.
            let sequenceInputs = leaves.tensors.count - 1
            let firstHalf = leaves.tensors.prefix(sequenceInputs).map { $0.sliced(axis: 1, 0..<split) } + [leaves.tensors.last!]
            let (firstOutput, middle) = Self.apply(r, Array(firstHalf), initialState: true)
            let secondHalf = leaves.tensors.prefix(sequenceInputs).map { $0.sliced(axis: 1, split..<length) } + [middle]
            let (secondOutput, secondState) = Self.apply(r, Array(secondHalf), initialState: true)
            let joined = Tensor.concatenate([firstOutput, secondOutput], axis: 1)
            ((joined * outputWeights).sum() + (secondState * stateWeights).sum()).backward()
            #expect(relativeError(try joined.toArray(), try output.toArray().map(Double.init)) < Self.recurrentTolerance, "\(rule) chained output, seed \(random.seed)")
            for (index, tensor) in leaves.tensors.enumerated() {
                let error = relativeError(try #require(tensor.gradient).toArray(), whole[index].map(Double.init))
                #expect(error < Self.recurrentTolerance, "\(rule) chained gradient of input \(index): relative error \(error), seed \(random.seed)")
            }
        }
    }

    @Test("no graph is recorded inside noGrad", arguments: BackendCase.all)
    func noGradient(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let r = Reference.Scan(ScanShape(batch: 1, length: 4, heads: 1, keyDimension: 16, valueDimension: 4), rule: .linearAttention, gate: .perHead, scale: 0.5)
        let leaves = Self.makeLeaves(r, normalizer: 1, initialState: false, on: backend, random: &random)
        let (output, finalState) = noGrad { Self.apply(r, leaves.tensors, initialState: false) }
        #expect(!output.requiresGradient && !finalState.requiresGradient)
    }
}

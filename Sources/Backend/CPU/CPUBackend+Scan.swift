internal import CKilnCPU
import Foundation

// Linear-attention scans on the CPU: recurrent kernels over raw memory, one (batch, head) pair at a
// time, the pairs split across cores. The state of a pair (keyDimension × valueDimension floats, with
// rows padded to a multiple of eight columns) stays in the core's cache for the whole sequence. This file
// does the per-step bookkeeping; the loops over a state's rows and columns are C (`CKilnCPU/scan.c`,
// the twin of `Kernels/scan.cl`): portable, AVX2 + FMA or AVX-512, chosen at run time, since the package
// is built for the baseline x86-64 instruction set.
//
// Backward passes recompute states instead of storing all of them: a first forward sweep keeps the
// state at the start of every chunk of C steps (the checkpoints), then the chunks are visited last to
// first, each recomputing its own states from its checkpoint before the reverse sweep through its
// steps. Memory per thread: `⌈T / C⌉ · K · V` floats of checkpoints plus `(C + 1) · K · V` of chunk
// states, with C = max(16, ⌊√T / 2⌋) (see `CPUScanProblem.chunkLength`), so about `2.5 √T` states for
// long sequences; the work is about four forward passes' worth. The gate gradient is computed directly,
// `exp(g_t) ⊙ rowsum(G_t ⊙ S_{t−1})`, from the recomputed states: the equivalent reverse cumulative sum
// of `q ⊙ dq − k ⊙ dk` loses accuracy under strong gates (measured 1.1e-5 relative RMS error at
// T = 1000 with decays down to e^−30, against 1.1e-7 for the direct form).
// The math is in the doc comments of `ScanKernels` (Families/Scan.swift).

extension CPUBackend {
    public func linearAttentionScan(_ inputs: ScanInputs, shape: ScanShape, scale: Float, into outputs: ScanOutputs) {
        shape.validate(inputs, outputs)
        let buffers = [inputs.query, inputs.key, inputs.value, outputs.output] + [inputs.gate.buffer, inputs.initialState, outputs.finalState].compactMap { $0 }
        guard buffers.allSatisfy({ ready($0) }) else { return }
        if scanFormRule.form(for: shape) == .chunked {
            return chunkedScanForward(CPUChunkedScan(inputs, shape: shape, scale: scale, backend: self), outputs)
        }
        let problem = CPUScanProblem(inputs, shape: shape, scale: scale, backend: self)
        run(problem, outputs)
    }

    public func linearAttentionScanBackward(_ inputs: ScanInputs, shape: ScanShape, scale: Float, outputGradients: ScanOutputGradients, into gradients: ScanGradients) {
        shape.validate(inputs, outputGradients, gradients)
        let buffers = [inputs.query, inputs.key, inputs.value, gradients.query, gradients.key, gradients.value]
            + [inputs.gate.buffer, inputs.initialState, outputGradients.output, outputGradients.finalState, gradients.gate, gradients.initialState].compactMap { $0 }
        guard buffers.allSatisfy({ ready($0) }) else { return }
        let targets = CPUScanGradients(
            output: outputGradients.output.map(floats), finalState: outputGradients.finalState.map(floats), query: floats(gradients.query),
            key: floats(gradients.key), value: floats(gradients.value), beta: nil, gate: gradients.gate.map(floats),
            initialState: gradients.initialState.map(floats))
        if scanFormRule.form(for: shape) == .chunked {
            return chunkedScanBackward(CPUChunkedScan(inputs, shape: shape, scale: scale, backend: self), targets)
        }
        run(CPUScanProblem(inputs, shape: shape, scale: scale, backend: self), targets)
    }

    public func deltaRuleScan(_ inputs: DeltaRuleInputs, shape: ScanShape, scale: Float, into outputs: ScanOutputs) {
        shape.validate(inputs, outputs)
        let buffers = [inputs.query, inputs.key, inputs.value, inputs.beta, outputs.output] + [inputs.gate, inputs.initialState, outputs.finalState].compactMap { $0 }
        guard buffers.allSatisfy({ ready($0) }) else { return }
        if scanFormRule.form(for: shape) == .chunked {
            return chunkedScanForward(CPUChunkedScan(inputs, shape: shape, scale: scale, backend: self), outputs)
        }
        let problem = CPUScanProblem(inputs, shape: shape, scale: scale, backend: self)
        run(problem, outputs)
    }

    public func deltaRuleScanBackward(_ inputs: DeltaRuleInputs, shape: ScanShape, scale: Float, outputGradients: ScanOutputGradients, into gradients: DeltaRuleGradients) {
        shape.validate(inputs, outputGradients, gradients)
        let buffers = [inputs.query, inputs.key, inputs.value, inputs.beta, gradients.query, gradients.key, gradients.value, gradients.beta]
            + [inputs.gate, inputs.initialState, outputGradients.output, outputGradients.finalState, gradients.gate, gradients.initialState].compactMap { $0 }
        guard buffers.allSatisfy({ ready($0) }) else { return }
        let targets = CPUScanGradients(
            output: outputGradients.output.map(floats), finalState: outputGradients.finalState.map(floats), query: floats(gradients.query),
            key: floats(gradients.key), value: floats(gradients.value), beta: floats(gradients.beta), gate: gradients.gate.map(floats),
            initialState: gradients.initialState.map(floats))
        if scanFormRule.form(for: shape) == .chunked {
            return chunkedScanBackward(CPUChunkedScan(inputs, shape: shape, scale: scale, backend: self), targets)
        }
        run(CPUScanProblem(inputs, shape: shape, scale: scale, backend: self), targets)
    }

    /// The forward scan of every (batch, head) pair, split across cores.
    private func run(_ problem: CPUScanProblem, _ outputs: ScanOutputs) {
        let out = floats(outputs.output)
        let final = outputs.finalState.map(floats)
        problem.forEachPair { pair, workspace in
            problem.forward(pair: pair, workspace: workspace, output: out, finalState: final)
        }
        problem.decay.deallocate()
    }

    /// The backward scan of every (batch, head) pair, split across cores.
    private func run(_ problem: CPUScanProblem, _ gradients: CPUScanGradients) {
        problem.forEachPair(backward: true) { pair, workspace in
            problem.backward(pair: pair, workspace: workspace, gradients: gradients)
        }
        problem.decay.deallocate()
    }
}

/// The decays `exp(g)` of a scan's gate, computed once per call (in vectors, `kiln_scan_exp`) so the
/// sweeps multiply instead of calling `exp` on every step.
struct CPUScanDecay {
    /// `exp(gate)` in the gate's layout, or nil without a gate.
    let values: UnsafeMutablePointer<Float>?
    let perKey: Bool

    init(gate: UnsafeMutablePointer<Float>?, perKey: Bool, shape: ScanShape) {
        self.perKey = perKey
        guard let gate else {
            values = nil
            return
        }
        let count = perKey ? shape.keyCount : shape.headStepCount
        let values = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        // Each range of the split writes only its own elements.
        nonisolated(unsafe) let target = values
        Parallel.forRanges(count, grain: 32_768) { range in
            kiln_scan_exp(gate + range.lowerBound, target + range.lowerBound, range.count)
        }
        self.values = values
    }

    func deallocate() { values?.deallocate() }
}

/// Where a backward pass writes its gradients (nil: not wanted).
struct CPUScanGradients {
    /// dO; nil means zero.
    let output: UnsafeMutablePointer<Float>?
    let finalState: UnsafeMutablePointer<Float>?
    let query: UnsafeMutablePointer<Float>
    let key: UnsafeMutablePointer<Float>
    let value: UnsafeMutablePointer<Float>
    let beta: UnsafeMutablePointer<Float>?
    let gate: UnsafeMutablePointer<Float>?
    let initialState: UnsafeMutablePointer<Float>?
}

/// Per-thread scratch memory of a scan, zeroed once (padding columns stay zero).
struct CPUScanWorkspace {
    /// The running state, or the running state gradient `G` in backward passes: `[K, paddedV]`.
    let state: UnsafeMutablePointer<Float>
    let gradient: UnsafeMutablePointer<Float>
    /// Rows of `paddedV` floats: the step's value (or `u`), output, output gradient, and the delta rule's
    /// `du` and `dw`, and value-gradient accumulators.
    let valueRow: UnsafeMutablePointer<Float>
    let outputRow: UnsafeMutablePointer<Float>
    let outputGradientRow: UnsafeMutablePointer<Float>
    let updateGradientRow: UnsafeMutablePointer<Float>
    let removalGradientRow: UnsafeMutablePointer<Float>
    let sumRow: UnsafeMutablePointer<Float>
    /// Rows of K floats: the step's decays, scaled query, and per-key gate-gradient terms.
    let decayRow: UnsafeMutablePointer<Float>
    let queryRow: UnsafeMutablePointer<Float>
    let gateRow: UnsafeMutablePointer<Float>
    /// Backward only: the checkpoints `[chunks, K, paddedV]`, the chunk's states `[C + 1, K, paddedV]`,
    /// and the delta rule's per-step `w = S′ᵀk` and `u` `[C, paddedV]`.
    let checkpoints: UnsafeMutablePointer<Float>?
    let slots: UnsafeMutablePointer<Float>?
    let removed: UnsafeMutablePointer<Float>?
    let updates: UnsafeMutablePointer<Float>?
    private let memory: UnsafeMutablePointer<Float>

    init(keys: Int, paddedValues: Int, length: Int, chunkLength: Int, backward: Bool) {
        let stateSize = keys * paddedValues
        let chunks = (length + chunkLength - 1) / chunkLength
        var total = 2 * stateSize + 6 * paddedValues + 3 * keys
        if backward { total += chunks * stateSize + (chunkLength + 1) * stateSize + 2 * chunkLength * paddedValues }
        memory = .allocate(capacity: total)
        memory.initialize(repeating: 0, count: total)
        var next = memory
        func take(_ count: Int) -> UnsafeMutablePointer<Float> {
            defer { next += count }
            return next
        }
        state = take(stateSize)
        gradient = take(stateSize)
        valueRow = take(paddedValues)
        outputRow = take(paddedValues)
        outputGradientRow = take(paddedValues)
        updateGradientRow = take(paddedValues)
        removalGradientRow = take(paddedValues)
        sumRow = take(paddedValues)
        decayRow = take(keys)
        queryRow = take(keys)
        gateRow = take(keys)
        if backward {
            checkpoints = take(chunks * stateSize)
            slots = take((chunkLength + 1) * stateSize)
            removed = take(chunkLength * paddedValues)
            updates = take(chunkLength * paddedValues)
        } else {
            checkpoints = nil
            slots = nil
            removed = nil
            updates = nil
        }
    }

    func deallocate() { memory.deallocate() }
}

/// One scan's sizes and inputs, read by every thread; each thread works on its own (batch, head) pairs.
struct CPUScanProblem: PaddedScanStates {
    /// Steps per checkpoint in backward passes: 16 (the chunk's states, 17 · K · V floats, stay in a
    /// core's L2 cache for K = V = 64), or √T / 2 for long sequences, so that checkpoints plus chunk
    /// states grow as √T.
    static func chunkLength(_ length: Int) -> Int { max(16, Int((Double(length) / 4).squareRoot())) }

    let batch: Int, length: Int, heads: Int, keys: Int, values: Int
    /// `values` rounded up to a multiple of 8: the row length of states in workspaces.
    let paddedValues: Int
    let scale: Float
    let query: UnsafeMutablePointer<Float>, key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>
    let beta: UnsafeMutablePointer<Float>?
    let decay: CPUScanDecay
    let initialState: UnsafeMutablePointer<Float>?

    /// Whether this is the delta rule (beta given) rather than (gated) linear attention.
    var delta: Bool { beta != nil }

    init(_ inputs: ScanInputs, shape: ScanShape, scale: Float, backend: CPUBackend) {
        self.init(shape: shape, scale: scale, query: backend.floats(inputs.query), key: backend.floats(inputs.key), value: backend.floats(inputs.value), beta: nil,
                  decay: CPUScanDecay(gate: inputs.gate.buffer.map(backend.floats), perKey: inputs.gate.isPerKey, shape: shape),
                  initialState: inputs.initialState.map(backend.floats))
    }

    init(_ inputs: DeltaRuleInputs, shape: ScanShape, scale: Float, backend: CPUBackend) {
        self.init(shape: shape, scale: scale, query: backend.floats(inputs.query), key: backend.floats(inputs.key), value: backend.floats(inputs.value),
                  beta: backend.floats(inputs.beta), decay: CPUScanDecay(gate: inputs.gate.map(backend.floats), perKey: false, shape: shape),
                  initialState: inputs.initialState.map(backend.floats))
    }

    private init(shape: ScanShape, scale: Float, query: UnsafeMutablePointer<Float>, key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>, beta: UnsafeMutablePointer<Float>?, decay: CPUScanDecay, initialState: UnsafeMutablePointer<Float>?) {
        batch = shape.batch
        length = shape.length
        heads = shape.heads
        keys = shape.keyDimension
        values = shape.valueDimension
        paddedValues = (shape.valueDimension + 7) / 8 * 8
        self.scale = scale
        self.query = query
        self.key = key
        self.value = value
        self.beta = beta
        self.decay = decay
        self.initialState = initialState
    }

    /// Offset of `(b, t, h, 0)` in q and k.
    @inline(__always) func keyOffset(_ b: Int, _ t: Int, _ h: Int) -> Int { ((b * length + t) * heads + h) * keys }
    /// Offset of `(b, t, h, 0)` in v and o.
    @inline(__always) func valueOffset(_ b: Int, _ t: Int, _ h: Int) -> Int { ((b * length + t) * heads + h) * values }
    /// Offset of `(b, t, h)` in beta and per-head gates.
    @inline(__always) func headOffset(_ b: Int, _ t: Int, _ h: Int) -> Int { (b * length + t) * heads + h }

    /// Runs `body` for every (batch, head) pair, the pairs split across cores, each thread with its own
    /// workspace.
    func forEachPair(backward: Bool = false, _ body: (Int, CPUScanWorkspace) -> Void) {
        let isBackward = backward
        // Threads read the shared inputs and write disjoint (batch, head) slices of the outputs.
        nonisolated(unsafe) let problem = self
        Parallel.forRanges(batch * heads, grain: 1) { range in
            let workspace = CPUScanWorkspace(
                keys: problem.keys, paddedValues: problem.paddedValues, length: problem.length,
                chunkLength: CPUScanProblem.chunkLength(problem.length), backward: isBackward)
            for pair in range { body(pair, workspace) }
            workspace.deallocate()
        }
    }

    // MARK: Per-step inputs

    /// The decays of step t, one per key: the gate's row, or a row filled with the per-head decay (or 1).
    @inline(__always)
    func decayRow(_ b: Int, _ t: Int, _ h: Int, _ workspace: CPUScanWorkspace) -> UnsafeMutablePointer<Float> {
        guard let values = decay.values else {
            workspace.decayRow.update(repeating: 1, count: keys)
            return workspace.decayRow
        }
        if decay.perKey { return values + keyOffset(b, t, h) }
        workspace.decayRow.update(repeating: values[headOffset(b, t, h)], count: keys)
        return workspace.decayRow
    }

    /// The per-head decay of step t (delta rule), 1 without a gate.
    @inline(__always)
    func headDecay(_ b: Int, _ t: Int, _ h: Int) -> Float {
        decay.values.map { $0[headOffset(b, t, h)] } ?? 1
    }

    /// `scale · q_t` into the workspace's query row.
    @inline(__always)
    func scaledQuery(_ b: Int, _ t: Int, _ h: Int, _ workspace: CPUScanWorkspace) -> UnsafeMutablePointer<Float> {
        let source = query + keyOffset(b, t, h)
        for k in 0..<keys { workspace.queryRow[k] = scale * source[k] }
        return workspace.queryRow
    }

    /// Copies a row of `values` floats into a padded row (whose padding stays zero).
    @inline(__always)
    func loadRow(_ source: UnsafeMutablePointer<Float>, into row: UnsafeMutablePointer<Float>) {
        row.update(from: source, count: values)
    }

    /// dO_t into a padded row; without dO the row keeps its zeros.
    @inline(__always)
    func loadOutputGradient(_ gradients: CPUScanGradients, _ b: Int, _ t: Int, _ h: Int, into row: UnsafeMutablePointer<Float>) {
        if let output = gradients.output { loadRow(output + valueOffset(b, t, h), into: row) }
    }

    // MARK: Forward

    /// The forward scan of one pair: outputs (when `output` is given), and the final state.
    func forward(pair: Int, workspace: CPUScanWorkspace, output: UnsafeMutablePointer<Float>, finalState: UnsafeMutablePointer<Float>?) {
        let b = pair / heads, h = pair % heads
        let state = workspace.state
        loadState(initialState, pair: pair, into: state)
        for t in 0..<length {
            let queryRow = scaledQuery(b, t, h, workspace)
            if delta {
                let gamma = headDecay(b, t, h)
                deltaUpdate(state: state, b, t, h, gamma: gamma, removed: workspace.sumRow, update: workspace.valueRow)
                workspace.decayRow.update(repeating: gamma, count: keys)
                kiln_scan_decay_add_and_read(state, keys, paddedValues, workspace.decayRow, key + keyOffset(b, t, h), workspace.valueRow, queryRow, workspace.outputRow)
            } else {
                loadRow(value + valueOffset(b, t, h), into: workspace.valueRow)
                kiln_scan_decay_add_and_read(state, keys, paddedValues, decayRow(b, t, h, workspace), key + keyOffset(b, t, h), workspace.valueRow, queryRow, workspace.outputRow)
            }
            (output + valueOffset(b, t, h)).update(from: workspace.outputRow, count: values)
        }
        if let finalState { storeState(state, pair: pair, into: finalState) }
    }

    /// The delta rule's removal and update of step t from the state before it: `w = γ Sᵀk` into
    /// `removed` and `u = beta (v − w)` into `update`.
    @inline(__always)
    func deltaUpdate(state: UnsafeMutablePointer<Float>, _ b: Int, _ t: Int, _ h: Int, gamma: Float, removed: UnsafeMutablePointer<Float>, update: UnsafeMutablePointer<Float>) {
        kiln_scan_column_sums(state, keys, paddedValues, key + keyOffset(b, t, h), gamma, removed)
        let strength = beta![headOffset(b, t, h)]
        let source = value + valueOffset(b, t, h)
        for j in 0..<values { update[j] = strength * (source[j] - removed[j]) }
    }

    // MARK: Backward

    /// The backward scan of one pair (see the comment at the top of this file).
    func backward(pair: Int, workspace: CPUScanWorkspace, gradients: CPUScanGradients) {
        let b = pair / heads, h = pair % heads
        let stateSize = keys * paddedValues
        let chunkLength = CPUScanProblem.chunkLength(length)
        let checkpoints = workspace.checkpoints!, slots = workspace.slots!
        let removedRows = workspace.removed!, updateRows = workspace.updates!

        // Sweep 1: the state at the start of every chunk.
        let state = workspace.state
        loadState(initialState, pair: pair, into: state)
        var chunkCount = 0
        for t in 0..<length {
            if t % chunkLength == 0 {
                (checkpoints + chunkCount * stateSize).update(from: state, count: stateSize)
                chunkCount += 1
            }
            if delta {
                let gamma = headDecay(b, t, h)
                deltaUpdate(state: state, b, t, h, gamma: gamma, removed: workspace.sumRow, update: workspace.valueRow)
                workspace.decayRow.update(repeating: gamma, count: keys)
                kiln_scan_decay_add(state, keys, paddedValues, workspace.decayRow, key + keyOffset(b, t, h), workspace.valueRow)
            } else {
                loadRow(value + valueOffset(b, t, h), into: workspace.valueRow)
                kiln_scan_decay_add(state, keys, paddedValues, decayRow(b, t, h, workspace), key + keyOffset(b, t, h), workspace.valueRow)
            }
        }

        // G = dS_T, then backwards through the chunks.
        let gradient = workspace.gradient
        loadState(gradients.finalState, pair: pair, into: gradient)
        let perKeyGateGradient = !delta && decay.perKey
        for chunk in stride(from: chunkCount - 1, through: 0, by: -1) {
            let start = chunk * chunkLength
            let steps = min(chunkLength, length - start)
            // Recompute the chunk's states (slot i holds the state before step start + i) and dq.
            slots.update(from: checkpoints + chunk * stateSize, count: stateSize)
            for i in 0..<steps {
                let t = start + i
                let previous = slots + i * stateSize, next = slots + (i + 1) * stateSize
                let update: UnsafeMutablePointer<Float>
                let decays: UnsafeMutablePointer<Float>
                if delta {
                    let gamma = headDecay(b, t, h)
                    deltaUpdate(state: previous, b, t, h, gamma: gamma, removed: removedRows + i * paddedValues, update: updateRows + i * paddedValues)
                    update = updateRows + i * paddedValues
                    workspace.decayRow.update(repeating: gamma, count: keys)
                    decays = workspace.decayRow
                } else {
                    loadRow(value + valueOffset(b, t, h), into: workspace.valueRow)
                    update = workspace.valueRow
                    decays = decayRow(b, t, h, workspace)
                }
                loadOutputGradient(gradients, b, t, h, into: workspace.outputGradientRow)
                kiln_scan_decay_add_and_dot(
                    previous, next, keys, paddedValues, decays, key + keyOffset(b, t, h), update, workspace.outputGradientRow, scale,
                    gradients.query + keyOffset(b, t, h))
            }
            // Reverse through the chunk.
            for i in stride(from: steps - 1, through: 0, by: -1) {
                let t = start + i
                let before = slots + i * stateSize
                let queryRow = scaledQuery(b, t, h, workspace)
                loadOutputGradient(gradients, b, t, h, into: workspace.outputGradientRow)
                let keyRow = key + keyOffset(b, t, h)
                if delta {
                    let gamma = headDecay(b, t, h)
                    let strength = beta![headOffset(b, t, h)]
                    // G += (scale·q) dOᵀ, du = Gᵀk.
                    kiln_scan_add_outer_and_column_sums(gradient, keys, paddedValues, queryRow, workspace.outputGradientRow, keyRow, workspace.updateGradientRow)
                    let du = workspace.updateGradientRow, dw = workspace.removalGradientRow
                    let removed = removedRows + i * paddedValues
                    let source = value + valueOffset(b, t, h)
                    let valueGradient = gradients.value + valueOffset(b, t, h)
                    var betaGradient: Float = 0
                    for j in 0..<values {
                        valueGradient[j] = strength * du[j]
                        dw[j] = -strength * du[j]
                        betaGradient += du[j] * (source[j] - removed[j])
                    }
                    gradients.beta![headOffset(b, t, h)] = betaGradient
                    let gateGradient = kiln_scan_delta_reverse(
                        gradient, before, keys, paddedValues, gamma, keyRow, updateRows + i * paddedValues, dw, gradients.key + keyOffset(b, t, h))
                    gradients.gate?[headOffset(b, t, h)] = gateGradient
                } else {
                    loadRow(value + valueOffset(b, t, h), into: workspace.valueRow)
                    let decays = decayRow(b, t, h, workspace)
                    let gateRow: UnsafeMutablePointer<Float>? = gradients.gate.map { perKeyGateGradient ? $0 + keyOffset(b, t, h) : workspace.gateRow }
                    kiln_scan_linear_reverse(
                        gradient, before, keys, paddedValues, decays, queryRow, workspace.outputGradientRow, keyRow, workspace.valueRow,
                        workspace.sumRow, gradients.key + keyOffset(b, t, h), gateRow)
                    (gradients.value + valueOffset(b, t, h)).update(from: workspace.sumRow, count: values)
                    if let gateGradient = gradients.gate, !perKeyGateGradient {
                        // A per-head gate's gradient is the sum of the per-key terms.
                        var total: Float = 0
                        for k in 0..<keys { total += workspace.gateRow[k] }
                        gateGradient[headOffset(b, t, h)] = total
                    }
                }
            }
        }
        if let initialStateGradient = gradients.initialState { storeState(gradient, pair: pair, into: initialStateGradient) }
    }
}

/// A scan whose `[K, V]` states are kept in workspaces with rows padded to `paddedValues` floats (both
/// forms on the CPU).
protocol PaddedScanStates {
    var keys: Int { get }
    var values: Int { get }
    var paddedValues: Int { get }
}

extension PaddedScanStates {
    /// Copies the pair's `[K, V]` slice of a state buffer into a padded state, or zeroes it.
    func loadState(_ source: UnsafeMutablePointer<Float>?, pair: Int, into state: UnsafeMutablePointer<Float>) {
        for k in 0..<keys {
            let row = state + k * paddedValues
            if let source {
                row.update(from: source + (pair * keys + k) * values, count: values)
            } else {
                row.update(repeating: 0, count: values)
            }
        }
    }

    func storeState(_ state: UnsafeMutablePointer<Float>, pair: Int, into target: UnsafeMutablePointer<Float>) {
        for k in 0..<keys { (target + (pair * keys + k) * values).update(from: state + k * paddedValues, count: values) }
    }
}

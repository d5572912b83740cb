internal import CKilnCPU
import Foundation

// The chunked form of the scans on the CPU: chunks of C steps, each a handful of small matrix products in
// C (`CKilnCPU/scan_chunked_loops.h`, whose top comment has the math), one (batch, head) pair at a time,
// the pairs split across cores. This file walks the chunks and keeps the saved states. C is 32 when
// K ≤ 64 and V ≤ 64 and 64 (fla's) otherwise (`kiln_scan_chunk_length`; the measurements behind it are
// in that header's "Chunk length").
//
// Forward: the state (K × V, rows padded to 16 columns) is carried from chunk to chunk; each chunk call
// writes its C outputs and advances the state by a whole chunk. Backward: a first sweep keeps the state
// at the start of every chunk (the checkpoints, ⌈T / C⌉ + 1 states per pair), then the chunks are
// visited last to first, each recomputing its own products from its checkpoint and carrying dL/dS back
// to the chunk before. The delta rule's first sweep also keeps each chunk's factors (K Kᵀ, N = (I + A)⁻¹
// and U: `kiln_scan_chunk_delta_factor_count`, 2 · C · 64 + C · V floats per chunk, O(T · 64) in all),
// so the backward chunks reuse them instead of building them a third time. Memory per thread:
// the checkpoints, the delta rule's factors, and one chunk's scratch (`kiln_scan_chunk_workspace_count`,
// about 48 × 64 × max(K, V, 64) floats); no [T, T] matrix exists.

extension ScanFormRule {
    /// The CPU backend's rule (`CPUBackend.scanFormRule`'s default), measured with `kiln-bench scan`
    /// (bench/RESULTS.md): chunked from T = 128 on, where the chunked form gains for both scans at D = 64
    /// (at T = 64 DeltaNet and GLA at D = 64 break even; at D = 128 both gain from T = 64), and only for
    /// states of at least 32 × 32 (K · V): with chunks of 32 (`chunkedScanLength`), at T 128 and 1024, B 8, the chunked
    /// form ran at 0.61–0.65× (GLA) and 0.81–1.06× (DeltaNet) the recurrent one at D = 16, at 0.92–1.08×
    /// and 1.43–1.53× at D = 32, at 1.35–1.39× and 1.71–1.94× at D = 48.
    public static let cpuBackend = ScanFormRule.environment(default: ScanFormRule(chunkedFromLength: 128, chunkedFromStateCount: 32 * 32))
}

extension CPUBackend {
    /// The steps per chunk of the CPU backend's chunked scans at these sizes: 32 when both are at most 64,
    /// else 64 (a tuning choice of this backend, measured: `CKilnCPU/scan_chunked_loops.h`).
    public static func chunkedScanLength(keyDimension: Int, valueDimension: Int) -> Int {
        kiln_scan_chunk_length(keyDimension, valueDimension)
    }
}

extension CPUBackend {
    /// The chunked forward pass of either rule (`beta` given: the delta rule).
    func chunkedScanForward(_ scan: CPUChunkedScan, _ outputs: ScanOutputs) {
        let output = floats(outputs.output)
        let finalState = outputs.finalState.map(floats)
        scan.forEachPair(backward: false) { pair, workspace in
            scan.forward(pair: pair, workspace: workspace, output: output, finalState: finalState)
        }
    }

    /// The chunked backward pass of either rule.
    func chunkedScanBackward(_ scan: CPUChunkedScan, _ gradients: CPUScanGradients) {
        scan.forEachPair(backward: true) { pair, workspace in
            scan.backward(pair: pair, workspace: workspace, gradients: gradients)
        }
    }
}

/// Per-thread memory of the chunked form: the running state and state gradient, the checkpoints and the
/// delta rule's per-chunk factors (backward only) and one chunk call's scratch.
struct CPUChunkedWorkspace {
    let state: UnsafeMutablePointer<Float>
    let gradient: UnsafeMutablePointer<Float>
    /// `[chunks + 1, K, paddedV]`: the state before every chunk, and the final state last.
    let checkpoints: UnsafeMutablePointer<Float>?
    /// `[chunks, kiln_scan_chunk_delta_factor_count]`: each delta-rule chunk's factors (backward only),
    /// written by the checkpoint sweep before the backward chunks read them.
    let factors: UnsafeMutablePointer<Float>?
    let factorCount: Int
    let scratch: UnsafeMutablePointer<Float>
    private let memory: UnsafeMutablePointer<Float>

    init(keys: Int, values: Int, paddedValues: Int, chunkLength: Int, chunks: Int, backward: Bool, delta: Bool) {
        let stateSize = keys * paddedValues
        let scratchSize = kiln_scan_chunk_workspace_count(keys, values)
        factorCount = kiln_scan_chunk_delta_factor_count(keys, values, chunkLength)
        let checkpointSize = backward ? (chunks + 1) * stateSize : 0
        let factorsSize = backward && delta ? chunks * factorCount : 0
        let total = 2 * stateSize + checkpointSize + factorsSize + scratchSize
        memory = .allocate(capacity: total)
        // Zeroed: the running state and gradient, the first checkpoint (loadState writes only its V columns)
        // and the scratch. The later checkpoints are whole copies of the one before, and every factor a
        // backward chunk reads was written by the checkpoint sweep first.
        memory.initialize(repeating: 0, count: 2 * stateSize + (backward ? stateSize : 0))
        (memory + 2 * stateSize + checkpointSize + factorsSize).initialize(repeating: 0, count: scratchSize)
        state = memory
        gradient = memory + stateSize
        checkpoints = backward ? memory + 2 * stateSize : nil
        factors = factorsSize > 0 ? memory + 2 * stateSize + checkpointSize : nil
        scratch = memory + 2 * stateSize + checkpointSize + factorsSize
    }

    /// Chunk `c`'s saved factors, or nil when there are none.
    func factors(chunk c: Int) -> UnsafeMutablePointer<Float>? { factors.map { $0 + c * factorCount } }

    func deallocate() { memory.deallocate() }
}

/// One chunked scan's sizes and inputs, read by every thread; each thread works on its own pairs.
struct CPUChunkedScan: PaddedScanStates {
    let batch: Int, length: Int, heads: Int, keys: Int, values: Int
    /// `values` rounded up to 16: the row length of states in workspaces.
    let paddedValues: Int
    let scale: Float
    let query: UnsafeMutablePointer<Float>, key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>
    /// Log-space gate values (not decays), and the gate's kind as `kiln_scan_chunk.gate` numbers it.
    let gate: UnsafeMutablePointer<Float>?
    let gateKind: Int32
    let beta: UnsafeMutablePointer<Float>?
    let initialState: UnsafeMutablePointer<Float>?
    /// Steps per chunk (`kiln_scan_chunk_length`: 32 or 64 by the sizes).
    let chunkLength: Int

    var delta: Bool { beta != nil }
    var chunks: Int { (length + chunkLength - 1) / chunkLength }

    init(_ inputs: ScanInputs, shape: ScanShape, scale: Float, backend: CPUBackend) {
        self.init(shape: shape, scale: scale, query: backend.floats(inputs.query), key: backend.floats(inputs.key), value: backend.floats(inputs.value),
                  gate: inputs.gate.buffer.map(backend.floats), gateKind: Int32(inputs.gate.kernelCode), beta: nil,
                  initialState: inputs.initialState.map(backend.floats))
    }

    init(_ inputs: DeltaRuleInputs, shape: ScanShape, scale: Float, backend: CPUBackend) {
        self.init(shape: shape, scale: scale, query: backend.floats(inputs.query), key: backend.floats(inputs.key), value: backend.floats(inputs.value),
                  gate: inputs.gate.map(backend.floats), gateKind: inputs.gate == nil ? 0 : 1, beta: backend.floats(inputs.beta),
                  initialState: inputs.initialState.map(backend.floats))
    }

    private init(shape: ScanShape, scale: Float, query: UnsafeMutablePointer<Float>, key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>,
                 gate: UnsafeMutablePointer<Float>?, gateKind: Int32, beta: UnsafeMutablePointer<Float>?, initialState: UnsafeMutablePointer<Float>?) {
        batch = shape.batch
        length = shape.length
        heads = shape.heads
        keys = shape.keyDimension
        values = shape.valueDimension
        paddedValues = kiln_scan_padded(shape.valueDimension)
        self.scale = scale
        self.query = query
        self.key = key
        self.value = value
        self.gate = gate
        self.gateKind = gateKind
        self.beta = beta
        self.initialState = initialState
        chunkLength = kiln_scan_chunk_length(shape.keyDimension, shape.valueDimension)
    }

    /// Runs `body` for every (batch, head) pair, the pairs split across cores, each thread with its own
    /// workspace.
    func forEachPair(backward: Bool, _ body: (Int, CPUChunkedWorkspace) -> Void) {
        // Threads read the shared inputs and write disjoint (batch, head) slices of the outputs.
        nonisolated(unsafe) let scan = self
        Parallel.forRanges(batch * heads, grain: 1) { range in
            let workspace = CPUChunkedWorkspace(
                keys: scan.keys, values: scan.values, paddedValues: scan.paddedValues, chunkLength: scan.chunkLength, chunks: scan.chunks, backward: backward, delta: scan.delta)
            for pair in range { body(pair, workspace) }
            workspace.deallocate()
        }
    }

    /// The operands of chunk `c` of a pair: row pointers at its first step (gradients nil in forward passes).
    func chunk(pair: Int, _ c: Int, output: UnsafeMutablePointer<Float>?, gradients: CPUScanGradients?) -> kiln_scan_chunk {
        let b = pair / heads, h = pair % heads
        let start = c * chunkLength
        let headStep = (b * length + start) * heads + h
        let keyOffset = headStep * keys, valueOffset = headStep * values
        let gateOffset = gateKind == 2 ? keyOffset : headStep
        return kiln_scan_chunk(
            length: min(chunkLength, length - start), keys: keys, values: values, key_stride: heads * keys,
            value_stride: heads * values, head_stride: heads, gate: gateKind, scale: scale,
            query: query + keyOffset, key: key + keyOffset, value: value + valueOffset, gate_values: gate.map { $0 + gateOffset },
            beta: beta.map { $0 + headStep }, output: output.map { $0 + valueOffset },
            output_gradient: gradients?.output.map { $0 + valueOffset },
            query_gradient: gradients.map { $0.query + keyOffset }, key_gradient: gradients.map { $0.key + keyOffset },
            value_gradient: gradients.map { $0.value + valueOffset }, gate_gradient: gradients?.gate.map { $0 + gateOffset },
            beta_gradient: gradients?.beta.map { $0 + headStep })
    }

    /// One chunk forward: the state advances over it; outputs are written when `output` is given, and the
    /// delta rule's factors into `factors` when given.
    private func advance(_ chunk: inout kiln_scan_chunk, state: UnsafeMutablePointer<Float>, writeOutput: Bool, workspace: CPUChunkedWorkspace,
                         factors: UnsafeMutablePointer<Float>? = nil) {
        if delta {
            kiln_scan_chunk_delta_forward(&chunk, state, writeOutput ? 1 : 0, workspace.scratch, factors)
        } else {
            kiln_scan_chunk_linear_forward(&chunk, state, writeOutput ? 1 : 0, workspace.scratch)
        }
    }

    /// The forward scan of one pair: every chunk's outputs, and the final state.
    func forward(pair: Int, workspace: CPUChunkedWorkspace, output: UnsafeMutablePointer<Float>, finalState: UnsafeMutablePointer<Float>?) {
        loadState(initialState, pair: pair, into: workspace.state)
        for c in 0..<chunks {
            var operands = chunk(pair: pair, c, output: output, gradients: nil)
            advance(&operands, state: workspace.state, writeOutput: true, workspace: workspace)
        }
        if let finalState { storeState(workspace.state, pair: pair, into: finalState) }
    }

    /// The backward scan of one pair (see the comment at the top of this file).
    func backward(pair: Int, workspace: CPUChunkedWorkspace, gradients: CPUScanGradients) {
        let stateSize = keys * paddedValues
        let checkpoints = workspace.checkpoints!
        loadState(initialState, pair: pair, into: checkpoints)
        for c in 0..<chunks {
            let next = checkpoints + (c + 1) * stateSize
            next.update(from: checkpoints + c * stateSize, count: stateSize)
            var operands = chunk(pair: pair, c, output: nil, gradients: nil)
            advance(&operands, state: next, writeOutput: false, workspace: workspace, factors: workspace.factors(chunk: c))
        }
        let gradient = workspace.gradient
        loadState(gradients.finalState, pair: pair, into: gradient)
        for c in stride(from: chunks - 1, through: 0, by: -1) {
            var operands = chunk(pair: pair, c, output: nil, gradients: gradients)
            let start = checkpoints + c * stateSize
            if delta {
                kiln_scan_chunk_delta_backward(&operands, start, gradient, workspace.scratch, workspace.factors(chunk: c))
            } else {
                kiln_scan_chunk_linear_backward(&operands, start, start + stateSize, gradient, workspace.scratch)
            }
        }
        if let initialStateGradient = gradients.initialState { storeState(gradient, pair: pair, into: initialStateGradient) }
    }
}

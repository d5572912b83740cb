import Foundation

// Linear-attention scans on OpenCL devices: `Kernels/scan.cl`, built on first use for each key
// dimension (the state tile is a private array whose size must be known when compiling). The gate is
// exponentiated once with the element-wise `exp`; backward passes run a checkpointing forward sweep, the
// reverse kernel, and one sum over value tiles per row-reduced gradient. The math is in the doc comments
// of `ScanKernels` (Families/Scan.swift).

/// The shape of the chunked kernels' work (`Kernels/scan_chunked.cl`, `scan_chunked_delta.cl`): the
/// tuning parameter `scan.chunkedLayout` (0 or 1).
public enum ScanChunkedLayout: Int, Sendable, Equatable, CaseIterable {
    /// One scalar work-item per element of each chunk's matrices, every chunk at once: for GPUs.
    case gpu = 0
    /// One work-item per register tile of float16 vectors (the `_tiles` kernels), every chunk at once:
    /// for CPU devices, which run a work-group as a loop over its work-items.
    case cpu = 1
}

/// Parameters of `Kernels/scan.cl` (see the comment at the top of that file).
public struct ScanTuning: Sendable, Equatable {
    /// Value columns per work-item, the vector width of its state tile (`VW`: 1, 2, 4, 8 or 16).
    public var columnsPerItem: Int
    /// Work-items (value tiles) per work-group.
    public var groupSize: Int
    /// Steps between state checkpoints in backward passes (at least; √T for long sequences): memory
    /// holds `⌈T / chunk⌉ + chunk` states per (batch, head).
    public var chunkLength: Int
    /// Which scans run in the chunked form (`Kernels/scan_chunked.cl` for linear attention and GLA,
    /// `Kernels/scan_chunked_delta.cl` for the delta rule) and which recurrently.
    public var form: ScanFormRule
    /// Work-items per work-group of the chunked kernels in the GPU layout (along each chunk matrix's
    /// contiguous dimension).
    public var chunkedGroupSize: Int
    /// How the chunked kernels divide their work: ``ScanChunkedLayout/gpu`` or ``ScanChunkedLayout/cpu``.
    public var chunkedLayout: ScanChunkedLayout

    public init(columnsPerItem: Int, groupSize: Int, chunkLength: Int, form: ScanFormRule = .recurrent, chunkedGroupSize: Int = 64,
                chunkedLayout: ScanChunkedLayout = .gpu) {
        precondition([1, 2, 4, 8, 16].contains(columnsPerItem), "ScanTuning: columnsPerItem must be 1, 2, 4, 8 or 16, got \(columnsPerItem)")
        precondition(groupSize >= 1 && chunkLength >= 1 && chunkedGroupSize >= 1, "ScanTuning: groupSize, chunkLength and chunkedGroupSize must be at least 1")
        self.columnsPerItem = columnsPerItem
        self.groupSize = groupSize
        self.chunkLength = chunkLength
        self.form = form
        self.chunkedGroupSize = chunkedGroupSize
        self.chunkedLayout = chunkedLayout
    }

    /// CPU devices (PoCL): one work-item per 16 columns (a float16 state tile), one per work-group; the
    /// chunked kernels in the CPU layout (register tiles of float16 vectors; the GPU layout ran at 0.06 to
    /// 0.11× the recurrent kernels there), chunked from T = 64 for states of 128 × 128 or more: in the CPU
    /// layout, on PoCL on a loaded 2-core machine, GLA ran chunked at 1.8 to 2.0× the recurrent speed at
    /// D = 128 and the delta rule at 1.3 to 1.7× (T = 64 … 4096), but at D = 64 the delta rule ran at 0.65
    /// to 0.93× (GLA 1.0 to 1.3×), and one rule serves every scan (bench/RESULTS.md, "Chunked scans
    /// (issue 15)").
    public static let cpuDevice = ScanTuning(
        columnsPerItem: 16, groupSize: 1, chunkLength: 32, form: .environment(default: ScanFormRule(chunkedFromLength: 64, chunkedFromStateCount: 128 * 128)),
        chunkedGroupSize: 16, chunkedLayout: .cpu)

    /// GPUs: four columns per work-item in groups of 16 (not measured on a GPU yet); every scan chunked
    /// from T = 64 by reasoning, not measurement: a recurrent scan keeps only B · H · V / 4 work-items busy
    /// and walks T steps one after another, while the chunked kernels run every chunk at once, so any
    /// sequence of a whole chunk or more should gain on a GPU. The delta rule's chunked form keeps a
    /// sequential part, its two carries, but they run B · H · V work-items (4× the recurrent kernel's)
    /// through T / 64 steps of independent dot products instead of T steps that each wait on the last.
    public static let gpuDevice = ScanTuning(
        columnsPerItem: 4, groupSize: 16, chunkLength: 32, form: .environment(default: ScanFormRule(chunkedFromLength: 64)), chunkedGroupSize: 64)

    /// The `-D` options for `scan.cl` at key dimension `keyDimension`.
    public func buildOptions(keyDimension: Int) -> String {
        "-D KEY_DIM=\(keyDimension) -D VW=\(columnsPerItem)"
    }
}

extension OpenCLBackend {
    private static let scanKernelNames = [
        "linear_attention_scan_forward", "linear_attention_scan_backward", "delta_rule_scan_forward", "delta_rule_scan_backward",
        "scan_sum_tiles",
    ]

    /// The kernel-name suffix of `scan.cl` built for `keyDimension`, building it on first use; nil (with
    /// the error recorded, reported by the next synchronization) when it cannot be built.
    private func scanKernels(keyDimension: Int) -> String? {
        let suffix = "_k\(keyDimension)"
        if hasKernel("scan_sum_tiles" + suffix) { return suffix }
        guard isHealthy else { return nil }
        do throws(BackendError) {
            try loadKernels(from: "scan.cl", options: tuning.scan.buildOptions(keyDimension: keyDimension), names: Self.scanKernelNames, suffix: suffix)
        } catch {
            record(error)
            return nil
        }
        return suffix
    }

    /// Launches a scan kernel over every (value tile, batch × head) pair.
    private func launchScan(_ name: String, shape: ScanShape, _ arguments: [Argument]) {
        launch(name, global: [scanTiles(shape), shape.batch * shape.heads], local: [tuning.scan.groupSize, 1], arguments)
    }

    /// Value tiles per (batch, head): how many partial sums the row-reduced gradients have.
    private func scanTiles(_ shape: ScanShape) -> Int {
        (shape.valueDimension + tuning.scan.columnsPerItem - 1) / tuning.scan.columnsPerItem
    }

    /// `exp(gate)`, or the placeholder without a gate.
    private func scanDecay(_ gate: DeviceBuffer?, count: Int) -> DeviceBuffer {
        guard let gate, count > 0 else { return placeholder }
        let decay = allocate(count)
        unary(.exp, gate, into: decay, count: count)
        return decay
    }

    /// Where a row-reduced gradient's per-tile partial sums go: the gradient itself for one tile.
    private func partialTarget(_ gradient: DeviceBuffer?, count: Int, tiles: Int) -> DeviceBuffer {
        guard let gradient else { return placeholder }
        return tiles == 1 ? gradient : allocate(max(1, tiles * count))
    }

    private func sumTiles(_ partial: DeviceBuffer, into gradient: DeviceBuffer?, count: Int, tiles: Int, suffix: String) {
        guard let gradient, tiles > 1, count > 0 else { return }
        launch1D("scan_sum_tiles" + suffix, count: count, [.int(count), .int(tiles), .buffer(partial), .buffer(gradient)])
    }

    /// Steps per checkpoint for a sequence: the tuning's chunk, or √T for long sequences (which minimizes
    /// checkpoints plus chunk states), at most the length (at least 1).
    private func scanChunk(_ shape: ScanShape) -> Int {
        max(1, min(max(tuning.scan.chunkLength, Int(Double(shape.length).squareRoot())), shape.length))
    }

    /// The kernels' leading arguments: sizes, the gate's kind, the scale, which optional buffers exist,
    /// and the steps per checkpoint (0 in a plain forward pass).
    private func scanArguments(_ shape: ScanShape, gateKind: Int, scale: Float, flags: [Bool], chunk: Int) -> [Argument] {
        [.int(shape.batch), .int(shape.length), .int(shape.heads), .int(shape.valueDimension), .int(gateKind), .float(scale)]
            + flags.map { .int($0 ? 1 : 0) } + [.int(chunk)]
    }

    // MARK: Linear attention and GLA

    public func linearAttentionScan(_ inputs: ScanInputs, shape: ScanShape, scale: Float, into outputs: ScanOutputs) {
        shape.validate(inputs, outputs)
        if tuning.scan.form.form(for: shape) == .chunked { return chunkedLinearAttentionScan(inputs, shape: shape, scale: scale, into: outputs) }
        guard shape.batch * shape.heads > 0, let suffix = scanKernels(keyDimension: shape.keyDimension) else { return }
        let decay = scanDecay(inputs.gate.buffer, count: inputs.gate.count(shape))
        launchScan("linear_attention_scan_forward" + suffix, shape: shape,
            scanArguments(shape, gateKind: inputs.gate.kernelCode, scale: scale, flags: [inputs.initialState != nil, true, outputs.finalState != nil], chunk: 0) + [
            .buffer(inputs.query), .buffer(inputs.key), .buffer(inputs.value), .buffer(decay), .buffer(inputs.initialState ?? placeholder),
            .buffer(outputs.output), .buffer(outputs.finalState ?? placeholder), .buffer(placeholder),
        ])
    }

    public func linearAttentionScanBackward(_ inputs: ScanInputs, shape: ScanShape, scale: Float, outputGradients: ScanOutputGradients, into gradients: ScanGradients) {
        shape.validate(inputs, outputGradients, gradients)
        if tuning.scan.form.form(for: shape) == .chunked {
            return chunkedLinearAttentionScanBackward(inputs, shape: shape, scale: scale, outputGradients: outputGradients, into: gradients)
        }
        guard shape.batch * shape.heads > 0, let suffix = scanKernels(keyDimension: shape.keyDimension) else { return }
        let gate = inputs.gate
        let decay = scanDecay(gate.buffer, count: gate.count(shape))
        let chunk = scanChunk(shape)
        let checkpoints = allocate(max(1, ((shape.length + chunk - 1) / chunk) * shape.stateCount))
        launchScan("linear_attention_scan_forward" + suffix, shape: shape,
            scanArguments(shape, gateKind: gate.kernelCode, scale: scale, flags: [inputs.initialState != nil, false, false], chunk: chunk) + [
            .buffer(inputs.query), .buffer(inputs.key), .buffer(inputs.value), .buffer(decay), .buffer(inputs.initialState ?? placeholder),
            .buffer(placeholder), .buffer(placeholder), .buffer(checkpoints),
        ])
        let tiles = scanTiles(shape)
        let scratch = allocate(max(1, chunk * shape.stateCount))
        let queryPartial = partialTarget(gradients.query, count: shape.keyCount, tiles: tiles)
        let keyPartial = partialTarget(gradients.key, count: shape.keyCount, tiles: tiles)
        let gatePartial = partialTarget(gradients.gate, count: gate.count(shape), tiles: tiles)
        let flags = [outputGradients.output != nil, outputGradients.finalState != nil, gradients.initialState != nil, gradients.gate != nil]
        launchScan("linear_attention_scan_backward" + suffix, shape: shape, scanArguments(shape, gateKind: gate.kernelCode, scale: scale, flags: flags, chunk: chunk) + [
            .buffer(inputs.query), .buffer(inputs.key), .buffer(inputs.value), .buffer(decay), .buffer(outputGradients.output ?? placeholder),
            .buffer(outputGradients.finalState ?? placeholder), .buffer(checkpoints), .buffer(scratch),
            .buffer(queryPartial), .buffer(keyPartial), .buffer(gradients.value), .buffer(gatePartial),
            .buffer(gradients.initialState ?? placeholder),
        ])
        sumTiles(queryPartial, into: gradients.query, count: shape.keyCount, tiles: tiles, suffix: suffix)
        sumTiles(keyPartial, into: gradients.key, count: shape.keyCount, tiles: tiles, suffix: suffix)
        sumTiles(gatePartial, into: gradients.gate, count: gate.count(shape), tiles: tiles, suffix: suffix)
    }

    // MARK: Delta rule

    public func deltaRuleScan(_ inputs: DeltaRuleInputs, shape: ScanShape, scale: Float, into outputs: ScanOutputs) {
        shape.validate(inputs, outputs)
        if tuning.scan.form.form(for: shape) == .chunked { return chunkedDeltaRuleScan(inputs, shape: shape, scale: scale, into: outputs) }
        guard shape.batch * shape.heads > 0, let suffix = scanKernels(keyDimension: shape.keyDimension) else { return }
        let decay = scanDecay(inputs.gate, count: shape.headStepCount)
        launchScan("delta_rule_scan_forward" + suffix, shape: shape,
            scanArguments(shape, gateKind: inputs.gate == nil ? 0 : 1, scale: scale, flags: [inputs.initialState != nil, true, outputs.finalState != nil], chunk: 0) + [
            .buffer(inputs.query), .buffer(inputs.key), .buffer(inputs.value), .buffer(inputs.beta), .buffer(decay),
            .buffer(inputs.initialState ?? placeholder), .buffer(outputs.output), .buffer(outputs.finalState ?? placeholder), .buffer(placeholder),
        ])
    }

    public func deltaRuleScanBackward(_ inputs: DeltaRuleInputs, shape: ScanShape, scale: Float, outputGradients: ScanOutputGradients, into gradients: DeltaRuleGradients) {
        shape.validate(inputs, outputGradients, gradients)
        if tuning.scan.form.form(for: shape) == .chunked {
            return chunkedDeltaRuleScanBackward(inputs, shape: shape, scale: scale, outputGradients: outputGradients, into: gradients)
        }
        guard shape.batch * shape.heads > 0, let suffix = scanKernels(keyDimension: shape.keyDimension) else { return }
        let decay = scanDecay(inputs.gate, count: shape.headStepCount)
        let chunk = scanChunk(shape)
        let checkpoints = allocate(max(1, ((shape.length + chunk - 1) / chunk) * shape.stateCount))
        let hasGate = inputs.gate == nil ? 0 : 1
        launchScan("delta_rule_scan_forward" + suffix, shape: shape,
            scanArguments(shape, gateKind: hasGate, scale: scale, flags: [inputs.initialState != nil, false, false], chunk: chunk) + [
            .buffer(inputs.query), .buffer(inputs.key), .buffer(inputs.value), .buffer(inputs.beta), .buffer(decay),
            .buffer(inputs.initialState ?? placeholder), .buffer(placeholder), .buffer(placeholder), .buffer(checkpoints),
        ])
        let tiles = scanTiles(shape)
        let scratch = allocate(max(1, chunk * shape.stateCount))
        let vectors = allocate(max(1, chunk * 2 * shape.batch * shape.heads * shape.valueDimension))
        let queryPartial = partialTarget(gradients.query, count: shape.keyCount, tiles: tiles)
        let keyPartial = partialTarget(gradients.key, count: shape.keyCount, tiles: tiles)
        let betaPartial = partialTarget(gradients.beta, count: shape.headStepCount, tiles: tiles)
        let gatePartial = partialTarget(gradients.gate, count: shape.headStepCount, tiles: tiles)
        let flags = [outputGradients.output != nil, outputGradients.finalState != nil, gradients.initialState != nil, gradients.gate != nil]
        launchScan("delta_rule_scan_backward" + suffix, shape: shape, scanArguments(shape, gateKind: hasGate, scale: scale, flags: flags, chunk: chunk) + [
            .buffer(inputs.query), .buffer(inputs.key), .buffer(inputs.value), .buffer(inputs.beta), .buffer(decay),
            .buffer(outputGradients.output ?? placeholder), .buffer(outputGradients.finalState ?? placeholder), .buffer(checkpoints),
            .buffer(scratch), .buffer(vectors), .buffer(queryPartial), .buffer(keyPartial), .buffer(gradients.value), .buffer(betaPartial),
            .buffer(gatePartial), .buffer(gradients.initialState ?? placeholder),
        ])
        sumTiles(queryPartial, into: gradients.query, count: shape.keyCount, tiles: tiles, suffix: suffix)
        sumTiles(keyPartial, into: gradients.key, count: shape.keyCount, tiles: tiles, suffix: suffix)
        sumTiles(betaPartial, into: gradients.beta, count: shape.headStepCount, tiles: tiles, suffix: suffix)
        sumTiles(gatePartial, into: gradients.gate, count: shape.headStepCount, tiles: tiles, suffix: suffix)
    }
}

extension ScanGate {
    /// The gate's kind as `scan.cl` numbers it (`GATE_NONE`, `GATE_PER_HEAD`, `GATE_PER_KEY`).
    var kernelCode: Int {
        switch self {
        case .none: 0
        case .perHead: 1
        case .perKey: 2
        }
    }
}

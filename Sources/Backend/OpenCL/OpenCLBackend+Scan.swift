import Foundation

// Linear-attention scans on OpenCL devices: `Kernels/linear_attention.cl`, built on first use for each
// key dimension (the state tile is a private array whose size must be known when compiling). The
// gate is exponentiated once with the element-wise `exp`; backward passes run a checkpointing forward
// sweep, the reverse kernel, and one sum over value tiles per row-reduced gradient.

extension OpenCLBackend {
    private static let scanKernelNames = [
        "linear_scan_forward", "linear_scan_backward", "delta_scan_forward", "delta_scan_backward", "scan_sum_tiles",
    ]

    /// The kernel-name suffix of `linear_attention.cl` built for `keyDimension`, building it on first
    /// use; nil (with the error recorded, reported by the next synchronization) when it cannot be built.
    private func scanKernels(keyDimension: Int) -> String? {
        let suffix = "_k\(keyDimension)"
        if hasKernel("scan_sum_tiles" + suffix) { return suffix }
        guard isHealthy else { return nil }
        do throws(BackendError) {
            try loadKernels(
                from: "linear_attention.cl", options: tuning.scan.buildOptions(keyDimension: keyDimension),
                names: Self.scanKernelNames, suffix: suffix)
        } catch {
            record(error)
            return nil
        }
        return suffix
    }

    /// Launches a scan kernel over every (value tile, batch × head) pair.
    private func launchScan(_ name: String, shape: ScanShape, _ arguments: [Argument]) {
        let tiles = (shape.valueDimension + tuning.scan.columnsPerItem - 1) / tuning.scan.columnsPerItem
        launch(name, global: [tiles, shape.batch * shape.heads], local: [tuning.scan.groupSize, 1], arguments)
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

    // MARK: Linear attention and GLA

    public func linearScan(query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, gate: ScanGate, shape: ScanShape, scale: Float, initialState: DeviceBuffer?, into output: DeviceBuffer, finalState: DeviceBuffer?) {
        ScanValidation.linear(shape, query: query, key: key, value: value, gate: gate, initialState: initialState, output: output, finalState: finalState)
        guard shape.batch * shape.heads > 0, let suffix = scanKernels(keyDimension: shape.keyDimension) else { return }
        let decay = scanDecay(gate.buffer, count: gate.count(shape))
        launchScan("linear_scan_forward" + suffix, shape: shape, [
            .int(shape.batch), .int(shape.length), .int(shape.heads), .int(shape.valueDimension), .int(gate.kernelCode), .float(scale),
            .int(initialState == nil ? 0 : 1), .int(1), .int(finalState == nil ? 0 : 1), .int(0),
            .buffer(query), .buffer(key), .buffer(value), .buffer(decay), .buffer(initialState ?? placeholder),
            .buffer(output), .buffer(finalState ?? placeholder), .buffer(placeholder),
        ])
    }

    public func linearScanBackward(query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, gate: ScanGate, shape: ScanShape, scale: Float, initialState: DeviceBuffer?, outputGradient: DeviceBuffer, finalStateGradient: DeviceBuffer?, queryGradient: DeviceBuffer, keyGradient: DeviceBuffer, valueGradient: DeviceBuffer, gateGradient: DeviceBuffer?, initialStateGradient: DeviceBuffer?) {
        ScanValidation.linearBackward(
            shape, query: query, key: key, value: value, gate: gate, initialState: initialState, outputGradient: outputGradient,
            finalStateGradient: finalStateGradient, queryGradient: queryGradient, keyGradient: keyGradient, valueGradient: valueGradient,
            gateGradient: gateGradient, initialStateGradient: initialStateGradient)
        guard shape.batch * shape.heads > 0, let suffix = scanKernels(keyDimension: shape.keyDimension) else { return }
        let decay = scanDecay(gate.buffer, count: gate.count(shape))
        let chunk = scanChunk(shape)
        let chunks = (shape.length + chunk - 1) / chunk
        let checkpoints = allocate(max(1, chunks * shape.stateCount))
        launchScan("linear_scan_forward" + suffix, shape: shape, [
            .int(shape.batch), .int(shape.length), .int(shape.heads), .int(shape.valueDimension), .int(gate.kernelCode), .float(scale),
            .int(initialState == nil ? 0 : 1), .int(0), .int(0), .int(chunk),
            .buffer(query), .buffer(key), .buffer(value), .buffer(decay), .buffer(initialState ?? placeholder),
            .buffer(placeholder), .buffer(placeholder), .buffer(checkpoints),
        ])
        let tiles = scanTiles(shape)
        let scratch = allocate(max(1, chunk * shape.stateCount))
        let queryPartial = partialTarget(queryGradient, count: shape.keyCount, tiles: tiles)
        let keyPartial = partialTarget(keyGradient, count: shape.keyCount, tiles: tiles)
        let gatePartial = partialTarget(gateGradient, count: gate.count(shape), tiles: tiles)
        launchScan("linear_scan_backward" + suffix, shape: shape, [
            .int(shape.batch), .int(shape.length), .int(shape.heads), .int(shape.valueDimension), .int(gate.kernelCode), .float(scale),
            .int(chunk), .int(finalStateGradient == nil ? 0 : 1), .int(initialStateGradient == nil ? 0 : 1), .int(gateGradient == nil ? 0 : 1),
            .buffer(query), .buffer(key), .buffer(value), .buffer(decay), .buffer(outputGradient),
            .buffer(finalStateGradient ?? placeholder), .buffer(checkpoints), .buffer(scratch),
            .buffer(queryPartial), .buffer(keyPartial), .buffer(valueGradient), .buffer(gatePartial),
            .buffer(initialStateGradient ?? placeholder),
        ])
        sumTiles(queryPartial, into: queryGradient, count: shape.keyCount, tiles: tiles, suffix: suffix)
        sumTiles(keyPartial, into: keyGradient, count: shape.keyCount, tiles: tiles, suffix: suffix)
        sumTiles(gatePartial, into: gateGradient, count: gate.count(shape), tiles: tiles, suffix: suffix)
    }

    // MARK: Delta rule

    public func deltaScan(query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, beta: DeviceBuffer, gate: DeviceBuffer?, shape: ScanShape, scale: Float, initialState: DeviceBuffer?, into output: DeviceBuffer, finalState: DeviceBuffer?) {
        ScanValidation.delta(shape, query: query, key: key, value: value, beta: beta, gate: gate, initialState: initialState, output: output, finalState: finalState)
        guard shape.batch * shape.heads > 0, let suffix = scanKernels(keyDimension: shape.keyDimension) else { return }
        let decay = scanDecay(gate, count: shape.headStepCount)
        launchScan("delta_scan_forward" + suffix, shape: shape, [
            .int(shape.batch), .int(shape.length), .int(shape.heads), .int(shape.valueDimension), .int(gate == nil ? 0 : 1), .float(scale),
            .int(initialState == nil ? 0 : 1), .int(1), .int(finalState == nil ? 0 : 1), .int(0),
            .buffer(query), .buffer(key), .buffer(value), .buffer(beta), .buffer(decay), .buffer(initialState ?? placeholder),
            .buffer(output), .buffer(finalState ?? placeholder), .buffer(placeholder),
        ])
    }

    public func deltaScanBackward(query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, beta: DeviceBuffer, gate: DeviceBuffer?, shape: ScanShape, scale: Float, initialState: DeviceBuffer?, outputGradient: DeviceBuffer, finalStateGradient: DeviceBuffer?, queryGradient: DeviceBuffer, keyGradient: DeviceBuffer, valueGradient: DeviceBuffer, betaGradient: DeviceBuffer, gateGradient: DeviceBuffer?, initialStateGradient: DeviceBuffer?) {
        ScanValidation.deltaBackward(
            shape, query: query, key: key, value: value, beta: beta, gate: gate, initialState: initialState, outputGradient: outputGradient,
            finalStateGradient: finalStateGradient, queryGradient: queryGradient, keyGradient: keyGradient, valueGradient: valueGradient,
            betaGradient: betaGradient, gateGradient: gateGradient, initialStateGradient: initialStateGradient)
        guard shape.batch * shape.heads > 0, let suffix = scanKernels(keyDimension: shape.keyDimension) else { return }
        let decay = scanDecay(gate, count: shape.headStepCount)
        let chunk = scanChunk(shape)
        let chunks = (shape.length + chunk - 1) / chunk
        let checkpoints = allocate(max(1, chunks * shape.stateCount))
        let hasGate = gate == nil ? 0 : 1
        launchScan("delta_scan_forward" + suffix, shape: shape, [
            .int(shape.batch), .int(shape.length), .int(shape.heads), .int(shape.valueDimension), .int(hasGate), .float(scale),
            .int(initialState == nil ? 0 : 1), .int(0), .int(0), .int(chunk),
            .buffer(query), .buffer(key), .buffer(value), .buffer(beta), .buffer(decay), .buffer(initialState ?? placeholder),
            .buffer(placeholder), .buffer(placeholder), .buffer(checkpoints),
        ])
        let tiles = scanTiles(shape)
        let scratch = allocate(max(1, chunk * shape.stateCount))
        let vectors = allocate(max(1, chunk * 2 * shape.batch * shape.heads * shape.valueDimension))
        let queryPartial = partialTarget(queryGradient, count: shape.keyCount, tiles: tiles)
        let keyPartial = partialTarget(keyGradient, count: shape.keyCount, tiles: tiles)
        let betaPartial = partialTarget(betaGradient, count: shape.headStepCount, tiles: tiles)
        let gatePartial = partialTarget(gateGradient, count: shape.headStepCount, tiles: tiles)
        launchScan("delta_scan_backward" + suffix, shape: shape, [
            .int(shape.batch), .int(shape.length), .int(shape.heads), .int(shape.valueDimension), .int(hasGate), .float(scale),
            .int(chunk), .int(finalStateGradient == nil ? 0 : 1), .int(initialStateGradient == nil ? 0 : 1), .int(gateGradient == nil ? 0 : 1),
            .buffer(query), .buffer(key), .buffer(value), .buffer(beta), .buffer(decay), .buffer(outputGradient),
            .buffer(finalStateGradient ?? placeholder), .buffer(checkpoints), .buffer(scratch), .buffer(vectors),
            .buffer(queryPartial), .buffer(keyPartial), .buffer(valueGradient), .buffer(betaPartial), .buffer(gatePartial),
            .buffer(initialStateGradient ?? placeholder),
        ])
        sumTiles(queryPartial, into: queryGradient, count: shape.keyCount, tiles: tiles, suffix: suffix)
        sumTiles(keyPartial, into: keyGradient, count: shape.keyCount, tiles: tiles, suffix: suffix)
        sumTiles(betaPartial, into: betaGradient, count: shape.headStepCount, tiles: tiles, suffix: suffix)
        sumTiles(gatePartial, into: gateGradient, count: shape.headStepCount, tiles: tiles, suffix: suffix)
    }
}

extension ScanGate {
    /// The gate's kind as `linear_attention.cl` numbers it (`GATE_NONE`, `GATE_PER_HEAD`, `GATE_PER_KEY`).
    var kernelCode: Int {
        switch self {
        case .none: 0
        case .perHead: 1
        case .perKey: 2
        }
    }
}

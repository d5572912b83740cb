// The chunked form of causal linear attention and GLA on OpenCL devices: `Kernels/scan_chunked.cl` (its
// top comment has the math and the launch geometry), chosen by `ScanTuning.form` (the delta rule's chunked
// form is OpenCLBackend+ScanChunkedDelta.swift). Scratch per call: the states and their gradients
// at every chunk boundary (O(T / 64 · K · V) per pair), one 64 × 64 score matrix per chunk, and a few
// [B, T, H, K] buffers (G, Q̄, K̄, ∂L/∂G, and three planes of sub-chunk boundary factors for per-key gates);
// the CPU layout keeps them packed by chunk ([B·H·NC, 64, ·]) and reads packed copies of q, k, v and dO.

extension OpenCLBackend {
    private static let chunkLength = 64
    private static let scanChunkedKernelNames = [
        "scan_chunk_prepare", "scan_chunk_scores", "scan_chunk_outer", "scan_chunk_carry_forward", "scan_chunk_output",
        "scan_chunk_carry_backward", "scan_chunk_key_gradients", "scan_chunk_value_gradient", "scan_chunk_gate_gradient",
        "scan_chunk_prepare_tiles", "scan_chunk_scores_tiles", "scan_chunk_outer_tiles", "scan_chunk_carry_forward_tiles",
        "scan_chunk_output_tiles", "scan_chunk_carry_backward_tiles", "scan_chunk_transpose", "scan_chunk_key_gradients_tiles",
        "scan_chunk_value_gradient_tiles", "scan_chunk_pack_tiles",
    ]

    /// Builds `scan_chunked.cl` on first use; false (with the error recorded) when it cannot be built.
    private func loadChunkedScanKernels() -> Bool {
        if hasKernel("scan_chunk_prepare") { return true }
        guard isHealthy else { return false }
        do throws(BackendError) {
            try loadKernels(from: "scan_chunked.cl", options: "-D CHUNK=\(Self.chunkLength)", names: Self.scanChunkedKernelNames)
        } catch {
            record(error)
            return false
        }
        return true
    }

    /// The per-chunk quantities both passes need: G, Q̄, K̄, exp(G_L), the score matrices and the states at
    /// every chunk boundary (`states`, slot 0 the initial state; `finalState` written when given). In the
    /// CPU layout G, Q̄, K̄ and the boundary factors are packed ([B·H·NC, CHUNK, ·]), and so are the copies
    /// of q, k and v its kernels read (`query`, `key`, `value`; the inputs themselves in the GPU layout).
    private struct ChunkedScanPass {
        let chunks: Int
        let gcum: DeviceBuffer, bounds: DeviceBuffer, qbar: DeviceBuffer, kbar: DeviceBuffer, decayTotal: DeviceBuffer, scores: DeviceBuffer, states: DeviceBuffer
        let query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer
    }

    /// `x` [B, T, H, width] packed into a new [B·H·NC, CHUNK, width] buffer for the CPU layout's kernels.
    private func packChunks(_ x: DeviceBuffer, width: Int, shape: ScanShape, pieces: Int) -> DeviceBuffer {
        let packed = allocate(max(1, pieces * Self.chunkLength * width))
        launchChunkTiles("scan_chunk_pack_tiles", tiles(width), 1, pieces, chunkSizes(shape, gate: .none) + [.int(width), .buffer(x), .buffer(packed)])
        return packed
    }

    private func chunkSizes(_ shape: ScanShape, gate: ScanGate) -> [Argument] {
        [.int(shape.batch), .int(shape.length), .int(shape.heads), .int(shape.keyDimension), .int(shape.valueDimension), .int(gate.kernelCode)]
    }

    /// Launches a chunked kernel over [n0, n1, chunks of every pair] (or pairs, for the carries).
    private func launchChunked(_ name: String, _ n0: Int, _ n1: Int, _ n2: Int, _ arguments: [Argument]) {
        guard n0 > 0, n1 > 0, n2 > 0 else { return }
        launch(name, global: [n0, n1, n2], local: [tuning.scan.chunkedGroupSize, 1, 1], arguments)
    }

    /// Launches a CPU-layout (`_tiles`) kernel over [n0, n1, n2] work-items (tiles, not elements) in groups
    /// of [4, 16, 1] (fewer where a dimension is 1), the same few group shapes for every size, so PoCL
    /// compiles each kernel once or twice rather than once per K and V.
    func launchChunkTiles(_ name: String, _ n0: Int, _ n1: Int, _ n2: Int, _ arguments: [Argument]) {
        guard n0 > 0, n1 > 0, n2 > 0 else { return }
        launch(name, global: [n0, n1, n2], local: [1, n1 == 1 ? 1 : 16, 1], arguments)
    }

    /// Whether the chunked kernels run in the CPU layout (the `_tiles` kernels) here.
    var chunkedScanTiles: Bool { tuning.scan.chunkedLayout == .cpu }

    /// Tiles of `width` columns, 16 each: a CPU-layout kernel's work-items along a row.
    private func tiles(_ width: Int, _ per: Int = 16) -> Int { (width + per - 1) / per }

    private func chunkedForwardPass(_ inputs: ScanInputs, shape: ScanShape, scale: Float, finalState: DeviceBuffer?) -> ChunkedScanPass {
        let chunks = (shape.length + Self.chunkLength - 1) / Self.chunkLength
        let pairs = shape.batch * shape.heads, pieces = pairs * chunks, chunk = Self.chunkLength
        let keys = shape.keyDimension, values = shape.valueDimension
        let sizes = chunkSizes(shape, gate: inputs.gate)
        let cpu = chunkedScanTiles
        // The CPU layout's packed rows: every chunk CHUNK rows long.
        let rows = cpu ? pieces * chunk : shape.batch * shape.length * shape.heads
        let gateCount = inputs.gate.isPerKey ? rows * keys : rows
        let pass = ChunkedScanPass(
            chunks: chunks, gcum: inputs.gate.buffer == nil ? placeholder : allocate(max(1, gateCount)),
            bounds: inputs.gate.kernelCode == 2 ? allocate(max(1, (Self.chunkLength / 16 - 1) * rows * keys)) : placeholder,
            qbar: allocate(max(1, rows * keys)), kbar: allocate(max(1, rows * keys)), decayTotal: allocate(max(1, pieces * keys)),
            scores: allocate(max(1, pieces * Self.chunkLength * Self.chunkLength)), states: allocate(max(1, pairs * (chunks + 1) * keys * values)),
            query: cpu ? allocate(max(1, rows * keys)) : inputs.query, key: cpu ? allocate(max(1, rows * keys)) : inputs.key,
            value: cpu ? packChunks(inputs.value, width: values, shape: shape, pieces: pieces) : inputs.value)
        let prepare: [Argument] = sizes + [
            .float(scale), .buffer(inputs.query), .buffer(inputs.key), .buffer(inputs.gate.buffer ?? placeholder),
            .buffer(pass.gcum), .buffer(pass.bounds), .buffer(pass.qbar), .buffer(pass.kbar), .buffer(pass.decayTotal),
        ]
        let scores: [Argument] = sizes + [
            .float(scale), .int(0), .buffer(pass.query), .buffer(pass.key), .buffer(pass.gcum), .buffer(pass.bounds), .buffer(pass.scores),
        ]
        let outer: [Argument] = sizes + [.int(1), .int(1), .buffer(pass.kbar), .buffer(pass.value), .buffer(pass.states)]
        let carry: [Argument] = sizes + [
            .int(inputs.initialState == nil ? 0 : 1), .int(finalState == nil ? 0 : 1), .buffer(pass.decayTotal),
            .buffer(inputs.initialState ?? placeholder), .buffer(pass.states), .buffer(finalState ?? placeholder),
        ]
        if cpu {
            // The prepare step also packs q and k (`pass.query`, `pass.key`).
            launchChunkTiles("scan_chunk_prepare_tiles", tiles(keys), 1, pieces, prepare + [.buffer(pass.query), .buffer(pass.key)])
            launchChunkTiles("scan_chunk_scores_tiles", chunk / 4, chunk / 4, pieces, scores)
            launchChunkTiles("scan_chunk_outer_tiles", tiles(values, 32), tiles(keys, 8), pieces, outer)
            launchChunkTiles("scan_chunk_carry_forward_tiles", tiles(values), keys, pairs, carry)
        } else {
            launchChunked("scan_chunk_prepare", keys, 1, pieces, prepare)
            launchChunked("scan_chunk_scores", chunk, chunk, pieces, scores)
            launchChunked("scan_chunk_outer", values, keys, pieces, outer)
            launchChunked("scan_chunk_carry_forward", values, keys, pairs, carry)
        }
        return pass
    }

    func chunkedLinearAttentionScan(_ inputs: ScanInputs, shape: ScanShape, scale: Float, into outputs: ScanOutputs) {
        guard shape.batch * shape.heads > 0, loadChunkedScanKernels() else { return }
        let pass = chunkedForwardPass(inputs, shape: shape, scale: scale, finalState: outputs.finalState)
        let pieces = shape.batch * shape.heads * pass.chunks
        let arguments = chunkSizes(shape, gate: inputs.gate) + [
            .buffer(pass.qbar), .buffer(pass.value), .buffer(pass.scores), .buffer(pass.states), .buffer(outputs.output),
        ]
        if chunkedScanTiles {
            launchChunkTiles("scan_chunk_output_tiles", tiles(shape.valueDimension, 32), Self.chunkLength / 8, pieces, arguments)
        } else {
            launchChunked("scan_chunk_output", shape.valueDimension, Self.chunkLength, pieces, arguments)
        }
    }

    func chunkedLinearAttentionScanBackward(
        _ inputs: ScanInputs, shape: ScanShape, scale: Float, outputGradients: ScanOutputGradients, into gradients: ScanGradients
    ) {
        guard shape.batch * shape.heads > 0, loadChunkedScanKernels() else { return }
        let pass = chunkedForwardPass(inputs, shape: shape, scale: scale, finalState: nil)
        let pairs = shape.batch * shape.heads, pieces = pairs * pass.chunks
        let keys = shape.keyDimension, values = shape.valueDimension, chunk = Self.chunkLength
        let sizes = chunkSizes(shape, gate: inputs.gate)
        let hasOutputGradient = outputGradients.output != nil
        let cpu = chunkedScanTiles
        let dO = outputGradients.output.map { cpu ? packChunks($0, width: values, shape: shape, pieces: pieces) : $0 } ?? placeholder
        // dL/dS at every chunk boundary: each chunk's Q̄ᵀ dO, then the carry from the last chunk.
        let stateCount = pairs * (pass.chunks + 1) * keys * values
        let stateGradients = allocate(max(1, stateCount))
        let outer: [Argument] = sizes + [.int(0), .int(hasOutputGradient ? 1 : 0), .buffer(pass.qbar), .buffer(dO), .buffer(stateGradients)]
        let carry: [Argument] = sizes + [
            .int(outputGradients.finalState == nil ? 0 : 1), .int(gradients.initialState == nil ? 0 : 1), .buffer(pass.decayTotal),
            .buffer(outputGradients.finalState ?? placeholder), .buffer(stateGradients), .buffer(gradients.initialState ?? placeholder),
        ]
        if cpu {
            launchChunkTiles("scan_chunk_outer_tiles", tiles(values, 32), tiles(keys, 8), pieces, outer)
            launchChunkTiles("scan_chunk_carry_backward_tiles", tiles(values), keys, pairs, carry)
        } else {
            launchChunked("scan_chunk_outer", values, keys, pieces, outer)
            launchChunked("scan_chunk_carry_backward", values, keys, pairs, carry)
        }
        let scoreGradients = hasOutputGradient ? allocate(max(1, pieces * chunk * chunk)) : placeholder
        if hasOutputGradient {
            let arguments: [Argument] = sizes + [
                .float(scale), .int(1), .buffer(dO), .buffer(pass.value), .buffer(pass.gcum), .buffer(pass.bounds), .buffer(scoreGradients),
            ]
            if cpu { launchChunkTiles("scan_chunk_scores_tiles", chunk / 4, chunk / 4, pieces, arguments) }
            else { launchChunked("scan_chunk_scores", chunk, chunk, pieces, arguments) }
        }
        let logGradient = gradients.gate == nil ? placeholder : allocate(max(1, shape.keyCount))
        let flags: [Argument] = [.float(scale), .int(hasOutputGradient ? 1 : 0), .int(gradients.gate == nil ? 0 : 1)]
        let operands: [Argument] = [
            .buffer(pass.query), .buffer(pass.key), .buffer(pass.value), .buffer(pass.gcum), .buffer(pass.bounds), .buffer(dO), .buffer(scoreGradients),
        ]
        let keyResults: [Argument] = [.buffer(gradients.query), .buffer(gradients.key), .buffer(logGradient)]
        let value: [Argument] = sizes + [
            .int(hasOutputGradient ? 1 : 0), .buffer(pass.kbar), .buffer(dO), .buffer(pass.scores), .buffer(stateGradients), .buffer(gradients.value),
        ]
        if cpu {
            // The key gradients read S_c and D_{c+1} by columns: transposed first, so they are rows.
            let statesT = allocate(max(1, stateCount)), gradientsT = allocate(max(1, stateCount))
            launch("scan_chunk_transpose", global: [values, 1, pairs * (pass.chunks + 1)], local: [16, 1, 1], sizes + [.buffer(pass.states), .buffer(statesT)])
            launch("scan_chunk_transpose", global: [values, 1, pairs * (pass.chunks + 1)], local: [16, 1, 1], sizes + [.buffer(stateGradients), .buffer(gradientsT)])
            launchChunkTiles("scan_chunk_key_gradients_tiles", tiles(keys), chunk / 4, pieces,
                             sizes + flags + operands + [.buffer(statesT), .buffer(gradientsT)] + keyResults)
            launchChunkTiles("scan_chunk_value_gradient_tiles", tiles(values, 32), chunk / 8, pieces, value)
        } else {
            launchChunked("scan_chunk_key_gradients", keys, chunk, pieces, sizes + flags + operands + [.buffer(pass.states), .buffer(stateGradients)] + keyResults)
            launchChunked("scan_chunk_value_gradient", values, chunk, pieces, value)
        }
        if let gateGradient = gradients.gate {
            launchChunked("scan_chunk_gate_gradient", inputs.gate.kernelCode == 2 ? keys : 1, 1, pieces, sizes + [
                .buffer(logGradient), .buffer(pass.states), .buffer(stateGradients), .buffer(gateGradient),
            ])
        }
    }
}

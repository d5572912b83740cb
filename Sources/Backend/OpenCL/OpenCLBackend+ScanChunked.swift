// The chunked form of causal linear attention and GLA on OpenCL devices: `Kernels/scan_chunked.cl` (its
// top comment has the math and the launch geometry), chosen by `ScanTuning.form` (the delta rule's chunked
// form is OpenCLBackend+ScanChunkedDelta.swift). Scratch per call: the states and their gradients
// at every chunk boundary (O(T / 64 · K · V) per pair), one 64 × 64 score matrix per chunk, and a few
// [B, T, H, K] buffers (G, Q̄, K̄, ∂L/∂G, and three planes of sub-chunk boundary factors for per-key gates).

extension OpenCLBackend {
    private static let chunkLength = 64
    private static let scanChunkedKernelNames = [
        "scan_chunk_prepare", "scan_chunk_scores", "scan_chunk_outer", "scan_chunk_carry_forward", "scan_chunk_output",
        "scan_chunk_carry_backward", "scan_chunk_key_gradients", "scan_chunk_value_gradient", "scan_chunk_gate_gradient",
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
    /// every chunk boundary (`states`, slot 0 the initial state; `finalState` written when given).
    private struct ChunkedScanPass {
        let chunks: Int
        let gcum: DeviceBuffer, bounds: DeviceBuffer, qbar: DeviceBuffer, kbar: DeviceBuffer, decayTotal: DeviceBuffer, scores: DeviceBuffer, states: DeviceBuffer
    }

    private func chunkSizes(_ shape: ScanShape, gate: ScanGate) -> [Argument] {
        [.int(shape.batch), .int(shape.length), .int(shape.heads), .int(shape.keyDimension), .int(shape.valueDimension), .int(gate.kernelCode)]
    }

    /// Launches a chunked kernel over [n0, n1, chunks of every pair] (or pairs, for the carries).
    private func launchChunked(_ name: String, _ n0: Int, _ n1: Int, _ n2: Int, _ arguments: [Argument]) {
        guard n0 > 0, n1 > 0, n2 > 0 else { return }
        launch(name, global: [n0, n1, n2], local: [tuning.scan.chunkedGroupSize, 1, 1], arguments)
    }

    private func chunkedForwardPass(_ inputs: ScanInputs, shape: ScanShape, scale: Float, finalState: DeviceBuffer?) -> ChunkedScanPass {
        let chunks = (shape.length + Self.chunkLength - 1) / Self.chunkLength
        let pairs = shape.batch * shape.heads, pieces = pairs * chunks
        let keys = shape.keyDimension, values = shape.valueDimension
        let sizes = chunkSizes(shape, gate: inputs.gate)
        let pass = ChunkedScanPass(
            chunks: chunks, gcum: inputs.gate.buffer == nil ? placeholder : allocate(max(1, inputs.gate.count(shape))),
            bounds: inputs.gate.kernelCode == 2 ? allocate(max(1, (Self.chunkLength / 16 - 1) * shape.keyCount)) : placeholder,
            qbar: allocate(max(1, shape.keyCount)), kbar: allocate(max(1, shape.keyCount)), decayTotal: allocate(max(1, pieces * keys)),
            scores: allocate(max(1, pieces * Self.chunkLength * Self.chunkLength)), states: allocate(max(1, pairs * (chunks + 1) * keys * values)))
        launchChunked("scan_chunk_prepare", keys, 1, pieces, sizes + [
            .float(scale), .buffer(inputs.query), .buffer(inputs.key), .buffer(inputs.gate.buffer ?? placeholder),
            .buffer(pass.gcum), .buffer(pass.bounds), .buffer(pass.qbar), .buffer(pass.kbar), .buffer(pass.decayTotal),
        ])
        launchChunked("scan_chunk_scores", Self.chunkLength, Self.chunkLength, pieces, sizes + [
            .float(scale), .int(0), .buffer(inputs.query), .buffer(inputs.key), .buffer(pass.gcum), .buffer(pass.bounds), .buffer(pass.scores),
        ])
        launchChunked("scan_chunk_outer", values, keys, pieces, sizes + [.int(1), .int(1), .buffer(pass.kbar), .buffer(inputs.value), .buffer(pass.states)])
        launchChunked("scan_chunk_carry_forward", values, keys, pairs, sizes + [
            .int(inputs.initialState == nil ? 0 : 1), .int(finalState == nil ? 0 : 1), .buffer(pass.decayTotal),
            .buffer(inputs.initialState ?? placeholder), .buffer(pass.states), .buffer(finalState ?? placeholder),
        ])
        return pass
    }

    func chunkedLinearAttentionScan(_ inputs: ScanInputs, shape: ScanShape, scale: Float, into outputs: ScanOutputs) {
        guard shape.batch * shape.heads > 0, loadChunkedScanKernels() else { return }
        let pass = chunkedForwardPass(inputs, shape: shape, scale: scale, finalState: outputs.finalState)
        launchChunked("scan_chunk_output", shape.valueDimension, Self.chunkLength, shape.batch * shape.heads * pass.chunks, chunkSizes(shape, gate: inputs.gate) + [
            .buffer(pass.qbar), .buffer(inputs.value), .buffer(pass.scores), .buffer(pass.states), .buffer(outputs.output),
        ])
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
        let dO = outputGradients.output ?? placeholder
        // dL/dS at every chunk boundary: each chunk's Q̄ᵀ dO, then the carry from the last chunk.
        let stateGradients = allocate(max(1, pairs * (pass.chunks + 1) * keys * values))
        launchChunked("scan_chunk_outer", values, keys, pieces, sizes + [
            .int(0), .int(hasOutputGradient ? 1 : 0), .buffer(pass.qbar), .buffer(dO), .buffer(stateGradients),
        ])
        launchChunked("scan_chunk_carry_backward", values, keys, pairs, sizes + [
            .int(outputGradients.finalState == nil ? 0 : 1), .int(gradients.initialState == nil ? 0 : 1), .buffer(pass.decayTotal),
            .buffer(outputGradients.finalState ?? placeholder), .buffer(stateGradients), .buffer(gradients.initialState ?? placeholder),
        ])
        let scoreGradients = hasOutputGradient ? allocate(max(1, pieces * chunk * chunk)) : placeholder
        if hasOutputGradient {
            launchChunked("scan_chunk_scores", chunk, chunk, pieces, sizes + [
                .float(scale), .int(1), .buffer(dO), .buffer(inputs.value), .buffer(pass.gcum), .buffer(pass.bounds), .buffer(scoreGradients),
            ])
        }
        let logGradient = gradients.gate == nil ? placeholder : allocate(max(1, shape.keyCount))
        launchChunked("scan_chunk_key_gradients", keys, chunk, pieces, sizes + [
            .float(scale), .int(hasOutputGradient ? 1 : 0), .int(gradients.gate == nil ? 0 : 1),
            .buffer(inputs.query), .buffer(inputs.key), .buffer(inputs.value), .buffer(pass.gcum), .buffer(pass.bounds), .buffer(dO), .buffer(scoreGradients),
            .buffer(pass.states), .buffer(stateGradients), .buffer(gradients.query), .buffer(gradients.key), .buffer(logGradient),
        ])
        launchChunked("scan_chunk_value_gradient", values, chunk, pieces, sizes + [
            .int(hasOutputGradient ? 1 : 0), .buffer(pass.kbar), .buffer(dO), .buffer(pass.scores), .buffer(stateGradients), .buffer(gradients.value),
        ])
        if let gateGradient = gradients.gate {
            launchChunked("scan_chunk_gate_gradient", inputs.gate.kernelCode == 2 ? keys : 1, 1, pieces, sizes + [
                .buffer(logGradient), .buffer(pass.states), .buffer(stateGradients), .buffer(gateGradient),
            ])
        }
    }
}

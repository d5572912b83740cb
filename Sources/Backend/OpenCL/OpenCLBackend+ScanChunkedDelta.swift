// The chunked form of the (gated) delta rule on OpenCL devices: `Kernels/scan_chunked_delta.cl` (its top
// comment has the math and the launch geometry), chosen by `ScanTuning.form` as linear attention and GLA
// are. Scratch per call: the states and their gradients at every chunk boundary (O(T / 64 · K · V) per
// pair), four 64 × 64 matrices per chunk forward (Γ, Γ ⊙ K Kᵀ, P, N) and four more backward (dP, dT, and
// the two steps of dA), and a few [B, T, H, K] and [B, T, H, V] buffers (Q̄, K̄, W, U′, dU, and the
// backward pass's products with the states); the CPU layout keeps those packed by chunk ([B·H·NC, 64, ·])
// and reads packed copies of q, k, v, β, the gate and dO.

extension OpenCLBackend {
    private static let deltaChunkLength = 64
    private static let deltaChunkedKernelNames = [
        "delta_chunk_prepare", "delta_chunk_matrices", "delta_chunk_inverse", "delta_chunk_triangular", "delta_chunk_carry_forward",
        "delta_chunk_output", "delta_chunk_carry_backward", "delta_chunk_state_products", "delta_chunk_pair_gradients",
        "delta_chunk_inverse_gradient", "delta_chunk_row_gradients", "delta_chunk_gate_gradient", "delta_chunk_key_gradients",
        "delta_chunk_prepare_tiles", "delta_chunk_matrices_tiles", "delta_chunk_inverse_tiles", "delta_chunk_triangular_tiles",
        "delta_chunk_carry_forward_tiles", "delta_chunk_output_tiles", "delta_chunk_carry_backward_tiles", "delta_chunk_transpose",
        "delta_chunk_state_products_tiles", "delta_chunk_pair_gradients_tiles", "delta_chunk_inverse_gradient_tiles",
        "delta_chunk_key_gradients_tiles", "delta_chunk_pack_tiles", "delta_chunk_row_gradients_tiles",
    ]

    /// Builds `scan_chunked_delta.cl` on first use; false (with the error recorded) when it cannot be built.
    private func loadChunkedDeltaKernels() -> Bool {
        if hasKernel("delta_chunk_prepare") { return true }
        guard isHealthy else { return false }
        do throws(BackendError) {
            try loadKernels(from: "scan_chunked_delta.cl", options: "-D CHUNK=\(Self.deltaChunkLength)", names: Self.deltaChunkedKernelNames)
        } catch {
            record(error)
            return false
        }
        return true
    }

    /// What both passes need: G, Q̄, K̄, exp(G_L) per chunk, the chunk matrices Γ, Γ ⊙ K Kᵀ, P and N, W, U′,
    /// and the states at every chunk boundary (`states`, slot 0 the initial state).
    private struct ChunkedDeltaPass {
        let chunks: Int
        let gcum: DeviceBuffer, qbar: DeviceBuffer, kbar: DeviceBuffer, decayTotal: DeviceBuffer
        let gamma: DeviceBuffer, kg: DeviceBuffer, p: DeviceBuffer, n: DeviceBuffer
        let w: DeviceBuffer, u: DeviceBuffer, states: DeviceBuffer
    }

    private func deltaChunkSizes(_ shape: ScanShape, gated: Bool) -> [Argument] {
        [.int(shape.batch), .int(shape.length), .int(shape.heads), .int(shape.keyDimension), .int(shape.valueDimension), .int(gated ? 1 : 0)]
    }

    /// Launches a chunked delta-rule kernel over [n0, n1, n2] work-items in groups of
    /// [ScanTuning.chunkedGroupSize, 1, 1].
    private func launchDeltaChunked(_ name: String, _ n0: Int, _ n1: Int, _ n2: Int, _ arguments: [Argument]) {
        guard n0 > 0, n1 > 0, n2 > 0 else { return }
        launch(name, global: [n0, n1, n2], local: [tuning.scan.chunkedGroupSize, 1, 1], arguments)
    }

    /// Launches one step in the layout the tuning asks for: `name` over `elements` (the GPU layout), or
    /// `name_tiles` over `tiles` (the CPU layout, `launchChunkTiles`).
    private func launchDelta(_ name: String, elements: (Int, Int, Int), tiles: (Int, Int, Int), _ arguments: [Argument]) {
        if chunkedScanTiles {
            launchChunkTiles(name + "_tiles", tiles.0, tiles.1, tiles.2, arguments)
        } else {
            launchDeltaChunked(name, elements.0, elements.1, elements.2, arguments)
        }
    }

    /// ⌈width / per⌉.
    private func deltaTiles(_ width: Int, _ per: Int = 16) -> Int { (width + per - 1) / per }

    /// Rows of the [B, T, H, ·] scratch: B·T·H, or in the CPU layout, whose kernels read every chunk's rows
    /// packed ([B·H·NC, CHUNK, ·]), CHUNK per chunk.
    private func deltaRows(_ shape: ScanShape) -> Int {
        guard chunkedScanTiles else { return shape.batch * shape.length * shape.heads }
        return shape.batch * shape.heads * ((shape.length + Self.deltaChunkLength - 1) / Self.deltaChunkLength) * Self.deltaChunkLength
    }

    /// `x` [B, T, H, width] packed into a new [B·H·NC, CHUNK, width] buffer (`delta_chunk_pack_tiles`), or
    /// (`into`) a packed buffer copied back into `into`'s [B, T, H, width].
    @discardableResult
    private func deltaPack(_ x: DeviceBuffer, width: Int, shape: ScanShape, into: DeviceBuffer? = nil) -> DeviceBuffer {
        let pieces = shape.batch * shape.heads * ((shape.length + Self.deltaChunkLength - 1) / Self.deltaChunkLength)
        let target = into ?? allocate(max(1, deltaRows(shape) * width))
        launchChunkTiles("delta_chunk_pack_tiles", deltaTiles(width), 1, pieces, deltaChunkSizes(shape, gated: false) + [
            .int(width), .int(into == nil ? 0 : 1), .buffer(x), .buffer(target),
        ])
        return target
    }

    /// The operands as the layout's kernels read them: the inputs (GPU layout), or packed copies of q, k, v,
    /// β and the gate (CPU layout; the initial state as it is).
    private func deltaOperands(_ inputs: DeltaRuleInputs, shape: ScanShape) -> DeltaRuleInputs {
        guard chunkedScanTiles else { return inputs }
        var packed = inputs
        packed.query = deltaPack(inputs.query, width: shape.keyDimension, shape: shape)
        packed.key = deltaPack(inputs.key, width: shape.keyDimension, shape: shape)
        packed.value = deltaPack(inputs.value, width: shape.valueDimension, shape: shape)
        packed.beta = deltaPack(inputs.beta, width: 1, shape: shape)
        packed.gate = inputs.gate.map { deltaPack($0, width: 1, shape: shape) }
        return packed
    }

    /// The chunk matrix `[B·H·NC, CHUNK, CHUNK]` of a pass.
    private func deltaChunkMatrix(pieces: Int) -> DeviceBuffer {
        allocate(max(1, pieces * Self.deltaChunkLength * Self.deltaChunkLength))
    }

    private func chunkedDeltaForwardPass(_ inputs: DeltaRuleInputs, shape: ScanShape, scale: Float, finalState: DeviceBuffer?) -> ChunkedDeltaPass {
        let chunk = Self.deltaChunkLength
        let chunks = (shape.length + chunk - 1) / chunk
        let pairs = shape.batch * shape.heads, pieces = pairs * chunks
        let keys = shape.keyDimension, values = shape.valueDimension
        let sizes = deltaChunkSizes(shape, gated: inputs.gate != nil)
        let rows = deltaRows(shape)
        let pass = ChunkedDeltaPass(
            chunks: chunks, gcum: allocate(max(1, rows)), qbar: allocate(max(1, rows * keys)), kbar: allocate(max(1, rows * keys)),
            decayTotal: allocate(max(1, pieces)), gamma: deltaChunkMatrix(pieces: pieces), kg: deltaChunkMatrix(pieces: pieces),
            p: deltaChunkMatrix(pieces: pieces), n: deltaChunkMatrix(pieces: pieces), w: allocate(max(1, rows * keys)),
            u: allocate(max(1, rows * values)), states: allocate(max(1, pairs * (chunks + 1) * keys * values)))
        launchDelta("delta_chunk_prepare", elements: (keys, 1, pieces), tiles: (deltaTiles(keys), 1, pieces), sizes + [
            .float(scale), .buffer(inputs.query), .buffer(inputs.key), .buffer(inputs.gate ?? placeholder),
            .buffer(pass.gcum), .buffer(pass.qbar), .buffer(pass.kbar), .buffer(pass.decayTotal),
        ])
        launchDelta("delta_chunk_matrices", elements: (chunk, chunk, pieces), tiles: (chunk / 4, chunk / 4, pieces), sizes + [
            .float(scale), .buffer(inputs.query), .buffer(inputs.key), .buffer(pass.gcum), .buffer(pass.gamma), .buffer(pass.kg), .buffer(pass.p),
        ])
        launchDelta("delta_chunk_inverse", elements: (chunk, 1, pieces), tiles: (chunk / 16, 1, pieces), sizes + [.buffer(inputs.beta), .buffer(pass.kg), .buffer(pass.n)])
        // W = N diag(β) diag(exp(G)) K and U = N diag(β) V.
        triangular(sizes, shape: shape, pieces: pieces, transpose: false, beta: inputs.beta, decay: true, matrix: pass.n, gcum: pass.gcum,
                   x: inputs.key, width: keys, into: pass.w)
        triangular(sizes, shape: shape, pieces: pieces, transpose: false, beta: inputs.beta, decay: false, matrix: pass.n, gcum: pass.gcum,
                   x: inputs.value, width: values, into: pass.u)
        launchDelta("delta_chunk_carry_forward", elements: (values, 1, pairs), tiles: (deltaTiles(values, 32), 1, pairs), sizes + [
            .int(inputs.initialState == nil ? 0 : 1), .int(finalState == nil ? 0 : 1), .buffer(pass.w), .buffer(pass.kbar), .buffer(pass.decayTotal),
            .buffer(inputs.initialState ?? placeholder), .buffer(pass.u), .buffer(pass.states), .buffer(finalState ?? placeholder),
        ])
        return pass
    }

    /// `delta_chunk_triangular`: out_i = Σ_{j≤i} M_ij s_j x_j, or (transposed) out_j = s_j Σ_{i≥j} M_ij x_i,
    /// with s_j = β_j (when `beta` is given) · exp(G_j) (when `decay`); x nil is zero.
    private func triangular(_ sizes: [Argument], shape: ScanShape, pieces: Int, transpose: Bool, beta: DeviceBuffer?, decay: Bool,
                            matrix: DeviceBuffer, gcum: DeviceBuffer, x: DeviceBuffer?, width: Int, into out: DeviceBuffer) {
        launchDelta("delta_chunk_triangular", elements: (width, Self.deltaChunkLength, pieces), tiles: (deltaTiles(width, 32), Self.deltaChunkLength / 8, pieces), sizes + [
            .int(transpose ? 1 : 0), .int(beta == nil ? 0 : 1), .int(decay ? 1 : 0), .int(x == nil ? 0 : 1), .int(width),
            .buffer(matrix), .buffer(beta ?? placeholder), .buffer(gcum), .buffer(x ?? placeholder), .buffer(out),
        ])
    }

    func chunkedDeltaRuleScan(_ inputs: DeltaRuleInputs, shape: ScanShape, scale: Float, into outputs: ScanOutputs) {
        guard shape.batch * shape.heads > 0, loadChunkedDeltaKernels() else { return }
        let inputs = deltaOperands(inputs, shape: shape)
        let pass = chunkedDeltaForwardPass(inputs, shape: shape, scale: scale, finalState: outputs.finalState)
        let pieces = shape.batch * shape.heads * pass.chunks
        launchDelta("delta_chunk_output", elements: (shape.valueDimension, Self.deltaChunkLength, pieces),
                    tiles: (deltaTiles(shape.valueDimension, 32), Self.deltaChunkLength / 8, pieces), deltaChunkSizes(shape, gated: inputs.gate != nil) + [
            .buffer(pass.qbar), .buffer(pass.u), .buffer(pass.p), .buffer(pass.states), .buffer(outputs.output),
        ])
    }

    func chunkedDeltaRuleScanBackward(
        _ inputs: DeltaRuleInputs, shape: ScanShape, scale: Float, outputGradients: ScanOutputGradients, into gradients: DeltaRuleGradients
    ) {
        guard shape.batch * shape.heads > 0, loadChunkedDeltaKernels() else { return }
        let inputs = deltaOperands(inputs, shape: shape)
        let pass = chunkedDeltaForwardPass(inputs, shape: shape, scale: scale, finalState: nil)
        let chunk = Self.deltaChunkLength
        let pairs = shape.batch * shape.heads, pieces = pairs * pass.chunks
        let keys = shape.keyDimension, values = shape.valueDimension
        let gated = inputs.gate != nil
        let sizes = deltaChunkSizes(shape, gated: gated)
        let hasOutputGradient = outputGradients.output != nil
        let cpu = chunkedScanTiles, rows = deltaRows(shape)
        let outputGradient = outputGradients.output.map { cpu ? deltaPack($0, width: values, shape: shape) : $0 }
        let dO = outputGradient ?? placeholder
        // dU = Pᵀ dO, then (the carry, last chunk first) + K̄ D_{c+1}, and D at every chunk boundary.
        let du = allocate(max(1, rows * values))
        triangular(sizes, shape: shape, pieces: pieces, transpose: true, beta: nil, decay: false, matrix: pass.p, gcum: pass.gcum,
                   x: outputGradient, width: values, into: du)
        let stateGradients = allocate(max(1, pairs * (pass.chunks + 1) * keys * values))
        launchDelta("delta_chunk_carry_backward", elements: (values, 1, pairs), tiles: (deltaTiles(values, 32), 1, pairs), sizes + [
            .int(hasOutputGradient ? 1 : 0), .int(outputGradients.finalState == nil ? 0 : 1), .int(gradients.initialState == nil ? 0 : 1),
            .buffer(pass.w), .buffer(pass.kbar), .buffer(pass.qbar), .buffer(pass.decayTotal), .buffer(dO),
            .buffer(outputGradients.finalState ?? placeholder), .buffer(du), .buffer(stateGradients), .buffer(gradients.initialState ?? placeholder),
        ])
        guard pieces > 0 else { return }
        // dO S_cᵀ, dW = −dU S_cᵀ, U′ D_{c+1}ᵀ; then dP, dT; dV = Tᵀ dU and Tᵀ dW.
        let dqs = allocate(rows * keys), dw = allocate(rows * keys), dke = allocate(rows * keys), dkw = allocate(rows * keys)
        if cpu {
            // The tiles read S_c and D_{c+1} by columns: transposed first, so they are rows.
            let stateCount = pairs * (pass.chunks + 1) * keys * values
            let statesT = allocate(max(1, stateCount)), gradientsT = allocate(max(1, stateCount))
            for (source, target) in [(pass.states, statesT), (stateGradients, gradientsT)] {
                launch("delta_chunk_transpose", global: [values, 1, pairs * (pass.chunks + 1)], local: [16, 1, 1], sizes + [.buffer(source), .buffer(target)])
            }
            launchChunkTiles("delta_chunk_state_products_tiles", deltaTiles(keys, 32), chunk / 4, pieces, sizes + [
                .int(hasOutputGradient ? 1 : 0), .buffer(dO), .buffer(du), .buffer(pass.u), .buffer(statesT), .buffer(gradientsT),
                .buffer(dqs), .buffer(dw), .buffer(dke),
            ])
        } else {
            launchDeltaChunked("delta_chunk_state_products", keys, chunk, pieces, sizes + [
                .int(hasOutputGradient ? 1 : 0), .buffer(dO), .buffer(du), .buffer(pass.u), .buffer(pass.states), .buffer(stateGradients),
                .buffer(dqs), .buffer(dw), .buffer(dke),
            ])
        }
        let dp = deltaChunkMatrix(pieces: pieces), dt = deltaChunkMatrix(pieces: pieces)
        launchDelta("delta_chunk_pair_gradients", elements: (chunk, chunk, pieces), tiles: (chunk / 4, chunk / 4, pieces), sizes + [
            .int(hasOutputGradient ? 1 : 0), .buffer(dO), .buffer(pass.u), .buffer(dw), .buffer(inputs.key), .buffer(du), .buffer(inputs.value),
            .buffer(pass.gcum), .buffer(dp), .buffer(dt),
        ])
        // dV through a packed buffer in the CPU layout.
        let dv = cpu ? allocate(rows * values) : gradients.value
        triangular(sizes, shape: shape, pieces: pieces, transpose: true, beta: inputs.beta, decay: false, matrix: pass.n, gcum: pass.gcum,
                   x: du, width: values, into: dv)
        if cpu { deltaPack(dv, width: values, shape: shape, into: gradients.value) }
        triangular(sizes, shape: shape, pieces: pieces, transpose: true, beta: inputs.beta, decay: false, matrix: pass.n, gcum: pass.gcum,
                   x: dw, width: keys, into: dkw)
        // dA = −Nᵀ (dT diag(β)) Nᵀ in two steps.
        let inverseStep = deltaChunkMatrix(pieces: pieces), da = deltaChunkMatrix(pieces: pieces)
        launchDelta("delta_chunk_inverse_gradient", elements: (chunk, chunk, pieces), tiles: (chunk / 16, chunk / 4, pieces), sizes + [
            .int(0), .buffer(inputs.beta), .buffer(pass.n), .buffer(dt), .buffer(inverseStep),
        ])
        launchDelta("delta_chunk_inverse_gradient", elements: (chunk, chunk, pieces), tiles: (chunk / 4, chunk / 4, pieces), sizes + [
            .int(1), .buffer(inputs.beta), .buffer(pass.n), .buffer(inverseStep), .buffer(da),
        ])
        let gateGradient = gated ? gradients.gate : nil
        let dlog = gateGradient == nil ? placeholder : allocate(shape.headStepCount)
        let tau = gateGradient == nil ? placeholder : allocate(shape.headStepCount)
        launchDeltaChunked(cpu ? "delta_chunk_row_gradients_tiles" : "delta_chunk_row_gradients", chunk, 1, pieces, sizes + [
            .int(gateGradient == nil ? 0 : 1), .buffer(inputs.beta), .buffer(inputs.key), .buffer(pass.qbar), .buffer(pass.kbar), .buffer(pass.gcum),
            .buffer(pass.n), .buffer(pass.kg), .buffer(pass.p), .buffer(dp), .buffer(dt), .buffer(da), .buffer(dqs), .buffer(dke), .buffer(dkw),
            .buffer(gradients.beta), .buffer(dlog), .buffer(tau),
        ])
        if let gateGradient {
            launchDeltaChunked("delta_chunk_gate_gradient", pieces, 1, 1, sizes + [
                .buffer(dlog), .buffer(tau), .buffer(pass.decayTotal), .buffer(pass.states), .buffer(stateGradients), .buffer(gateGradient),
            ])
        }
        launchDelta("delta_chunk_key_gradients", elements: (keys, chunk, pieces), tiles: (deltaTiles(keys), chunk / 4, pieces), sizes + [
            .float(scale), .buffer(inputs.query), .buffer(inputs.key), .buffer(inputs.beta), .buffer(pass.gcum), .buffer(pass.gamma),
            .buffer(dp), .buffer(da), .buffer(dqs), .buffer(dke), .buffer(dkw), .buffer(gradients.query), .buffer(gradients.key),
        ])
    }
}

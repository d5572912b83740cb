// The scan family's differentiable ops: causal (gated) linear attention and the (gated) delta rule, each
// returning the output and the final state. Both results come from one recorded operation, whose
// backward receives the gradients of both at once (nil for a result that did not reach the loss) and
// calls the backend's backward primitive once (`ScanKernels`, Sources/Backend/Families/Scan.swift).

/// Checks the shared shapes of a scan's inputs, naming the op and the shapes on a mismatch.
private func scanShape(_ op: String, query: Tensor, key: Tensor, value: Tensor, initialState: Tensor?) -> ScanShape {
    precondition(query.rank == 4, "\(op): query must be [batch, length, heads, keyDimension], got \(query.shape)")
    precondition(key.shape == query.shape, "\(op): key \(key.shape) must match query \(query.shape)")
    precondition(value.rank == 4 && Array(value.shape.prefix(3)) == Array(query.shape.prefix(3)),
                 "\(op): value \(value.shape) must be [batch, length, heads, valueDimension] matching query \(query.shape)")
    let shape = ScanShape(batch: query.shape[0], length: query.shape[1], heads: query.shape[2], keyDimension: query.shape[3], valueDimension: value.shape[3])
    precondition(shape.keyDimension > 0 && shape.valueDimension > 0, "\(op): empty key or value dimension in query \(query.shape), value \(value.shape)")
    if let initialState {
        let expected = [shape.batch, shape.heads, shape.keyDimension, shape.valueDimension]
        precondition(initialState.shape == expected, "\(op): initialState \(initialState.shape) must be \(expected) for query \(query.shape) and value \(value.shape)")
    }
    return shape
}

/// The output `[B, T, H, V]` and final state `[B, H, K, V]` of a scan, before the backend fills them.
private func scanResults(_ shape: ScanShape, on backend: any Backend) -> (output: Tensor, finalState: Tensor) {
    (Tensor(uninitialized: [shape.batch, shape.length, shape.heads, shape.valueDimension], on: backend),
     Tensor(uninitialized: [shape.batch, shape.heads, shape.keyDimension, shape.valueDimension], on: backend))
}

/// Causal (gated) linear attention over q, k [B, T, H, K], v [B, T, H, V]; gate nil, [B, T, H] (per head) or [B, T, H, K] (per key), log-space. Returns the output [B, T, H, V] and the final state [B, H, K, V]; gradients flow from both to q, k, v, the gate and the initial state.
///
/// With the state `S_0 = initialState` (or zero): `S_t = diag(exp(g_t)) S_{t−1} + k_t v_tᵀ` and
/// `o_t = S_tᵀ (scale · q_t)`, so the output includes the current token (Katharopoulos et al., 2020;
/// with gates, GLA: Yang et al., 2024). Gates must be ≤ 0 (for example `logSigmoid` of a projection);
/// nil is plain causal linear attention. Layers pass `scale = 1 / √K`.
///
/// ```swift
/// let (o, state) = linearAttentionScan(query: q, key: k, value: v, gate: g.logSigmoid(), scale: 1 / 8, initialState: nil)
/// let (next, _) = linearAttentionScan(query: q2, key: k2, value: v2, gate: g2, scale: 1 / 8, initialState: state)  // continues the sequence
/// ```
///
/// - Parameters:
///   - query, key: `[batch, length, heads, keyDimension]`.
///   - value: `[batch, length, heads, valueDimension]`.
///   - gate: nil, `[batch, length, heads]` or `[batch, length, heads, keyDimension]`, in log space.
///   - scale: multiplies q.
///   - initialState: `[batch, heads, keyDimension, valueDimension]`, or nil for zero.
/// - Returns: the output `[batch, length, heads, valueDimension]` and the final state
///   `[batch, heads, keyDimension, valueDimension]`.
/// - Complexity: `O(B·T·H·K·V)` time, forward and backward; memory linear in T.
public func linearAttentionScan(query: Tensor, key: Tensor, value: Tensor, gate: Tensor?, scale: Float, initialState: Tensor?) -> (output: Tensor, finalState: Tensor) {
    let op = "linearAttentionScan"
    for other in [key, value] + [gate, initialState].compactMap({ $0 }) { Tensor.checkSameDevice(op, query, other) }
    let shape = scanShape(op, query: query, key: key, value: value, initialState: initialState)
    let scanGate: ScanGate
    if let gate {
        if gate.shape == query.shape {
            scanGate = .perKey(gate.storage)
        } else {
            precondition(gate.shape == Array(query.shape.prefix(3)),
                         "\(op): gate \(gate.shape) must be [batch, length, heads] \(Array(query.shape.prefix(3))) or match query \(query.shape)")
            scanGate = .perHead(gate.storage)
        }
    } else {
        scanGate = .none
    }
    let backend = query.backend
    let (output, finalState) = scanResults(shape, on: backend)
    let operands = ScanInputs(query: query.storage, key: key.storage, value: value.storage, gate: scanGate, initialState: initialState?.storage)
    backend.linearAttentionScan(operands, shape: shape, scale: scale, into: ScanOutputs(output: output.storage, finalState: finalState.storage))

    let wantsGate = gate?.requiresGradient ?? false, wantsInitial = initialState?.requiresGradient ?? false
    let (queryShape, valueShape, gateShape, stateShape) = (query.shape, value.shape, gate?.shape, finalState.shape)
    Tensor.recordGradient(op, inputs: [query, key, value] + [gate, initialState].compactMap { $0 }, outputs: [output, finalState]) { resultGradients in
        let dq = Tensor(uninitialized: queryShape, on: backend), dk = Tensor(uninitialized: queryShape, on: backend)
        let dv = Tensor(uninitialized: valueShape, on: backend)
        let dg = wantsGate ? Tensor(uninitialized: gateShape!, on: backend) : nil
        let dh0 = wantsInitial ? Tensor(uninitialized: stateShape, on: backend) : nil
        backend.linearAttentionScanBackward(
            operands, shape: shape, scale: scale,
            outputGradients: ScanOutputGradients(output: resultGradients[0]?.storage, finalState: resultGradients[1]?.storage),
            into: ScanGradients(query: dq.storage, key: dk.storage, value: dv.storage, gate: dg?.storage, initialState: dh0?.storage))
        var gradients: [Tensor?] = [dq, dk, dv]
        if gateShape != nil { gradients.append(dg) }
        if operands.initialState != nil { gradients.append(dh0) }
        return gradients
    }
    return (output, finalState)
}

/// The (gated) delta rule: beta [B, T, H] in (0, 1), optional per-head log gate [B, T, H].
///
/// DeltaNet (Schlag et al., 2021; Yang et al., 2024) writes with the delta rule; gated DeltaNet (Yang,
/// Kautz & Hatamizadeh, 2025) first decays the state by `exp(g_t)`: `S′ = exp(g_t) S_{t−1}`,
/// `u_t = beta_t (v_t − S′ᵀ k_t)`, `S_t = S′ + k_t u_tᵀ`, `o_t = S_tᵀ (scale · q_t)`. Keys are
/// expected to have unit L2 norm (the layers normalize them), which keeps the state bounded.
///
/// - Parameters:
///   - query, key: `[batch, length, heads, keyDimension]`.
///   - value: `[batch, length, heads, valueDimension]`.
///   - beta: `[batch, length, heads]`, in (0, 1) (for example `sigmoid` of a projection).
///   - gate: nil or `[batch, length, heads]`, in log space (≤ 0).
///   - scale: multiplies q.
///   - initialState: `[batch, heads, keyDimension, valueDimension]`, or nil for zero.
/// - Returns: the output `[batch, length, heads, valueDimension]` and the final state
///   `[batch, heads, keyDimension, valueDimension]`; gradients flow from both to every input.
/// - Complexity: `O(B·T·H·K·V)` time, forward and backward; memory linear in T.
public func deltaRuleScan(query: Tensor, key: Tensor, value: Tensor, beta: Tensor, gate: Tensor?, scale: Float, initialState: Tensor?) -> (output: Tensor, finalState: Tensor) {
    let op = "deltaRuleScan"
    for other in [key, value, beta] + [gate, initialState].compactMap({ $0 }) { Tensor.checkSameDevice(op, query, other) }
    let shape = scanShape(op, query: query, key: key, value: value, initialState: initialState)
    let headShape = Array(query.shape.prefix(3))
    precondition(beta.shape == headShape, "\(op): beta \(beta.shape) must be [batch, length, heads] \(headShape) for query \(query.shape)")
    if let gate { precondition(gate.shape == headShape, "\(op): gate \(gate.shape) must be [batch, length, heads] \(headShape) for query \(query.shape)") }
    let backend = query.backend
    let (output, finalState) = scanResults(shape, on: backend)
    let operands = DeltaRuleInputs(query: query.storage, key: key.storage, value: value.storage, beta: beta.storage, gate: gate?.storage, initialState: initialState?.storage)
    backend.deltaRuleScan(operands, shape: shape, scale: scale, into: ScanOutputs(output: output.storage, finalState: finalState.storage))

    let wantsGate = gate?.requiresGradient ?? false, wantsInitial = initialState?.requiresGradient ?? false
    let (queryShape, valueShape, stateShape) = (query.shape, value.shape, finalState.shape)
    Tensor.recordGradient(op, inputs: [query, key, value, beta] + [gate, initialState].compactMap { $0 }, outputs: [output, finalState]) { resultGradients in
        let dq = Tensor(uninitialized: queryShape, on: backend), dk = Tensor(uninitialized: queryShape, on: backend)
        let dv = Tensor(uninitialized: valueShape, on: backend), dbeta = Tensor(uninitialized: headShape, on: backend)
        let dg = wantsGate ? Tensor(uninitialized: headShape, on: backend) : nil
        let dh0 = wantsInitial ? Tensor(uninitialized: stateShape, on: backend) : nil
        backend.deltaRuleScanBackward(
            operands, shape: shape, scale: scale,
            outputGradients: ScanOutputGradients(output: resultGradients[0]?.storage, finalState: resultGradients[1]?.storage),
            into: DeltaRuleGradients(query: dq.storage, key: dk.storage, value: dv.storage, beta: dbeta.storage, gate: dg?.storage, initialState: dh0?.storage))
        var gradients: [Tensor?] = [dq, dk, dv, dbeta]
        if operands.gate != nil { gradients.append(dg) }
        if operands.initialState != nil { gradients.append(dh0) }
        return gradients
    }
    return (output, finalState)
}

// Linear-attention scans as differentiable ops: causal (gated) linear attention and the (gated) delta
// rule, each returning the output and the final state.
//
// Two outputs, one backward primitive. Kiln records one gradient node per tensor, but the scan's
// backward needs dO and dS_T together. The output's node runs the backward primitive; the final state's
// node has the output as its (only) input, so autograd always runs it first: it leaves dS_T in a
// mailbox the two nodes share and hands the output a zero gradient, so the output's node runs even when
// only the state reaches the loss. The output's node takes dS_T from the mailbox (emptying it, so a
// later backward pass starts clean) and calls the primitive once with both. Compared with computing
// into one combined [output + state] tensor and slicing it, nothing is copied in the forward pass, and
// the backward pass adds at most one zero-filled gradient of the output's size.

/// Carries the final state's gradient from its node to the scan's node within one backward pass.
private final class FinalStateGradientMailbox {
    var gradient: Tensor?

    /// The gradient left by the final state's node, emptying the mailbox.
    func take() -> Tensor? {
        defer { gradient = nil }
        return gradient
    }
}

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

/// Records the final state's node (see the comment at the top of this file).
private func recordFinalState(_ finalState: Tensor, output: Tensor, mailbox: FinalStateGradientMailbox, op: String) {
    let outputShape = output.shape
    let backend = output.backend
    finalState.recordGradient("\(op).finalState", inputs: [output]) { gradient in
        mailbox.gradient = mailbox.gradient.map { $0 + gradient } ?? gradient
        return [Tensor.zeros(outputShape, on: backend)]
    }
}

/// Causal (gated) linear attention over q, k [B, T, H, K], v [B, T, H, V]; gate nil, [B, T, H] (per head) or [B, T, H, K] (per key), log-space. Returns the output [B, T, H, V] and the final state [B, H, K, V]; gradients flow from both to q, k, v, the gate and the initial state.
///
/// With the state `S_0 = initialState` (or zero): `S_t = diag(exp(g_t)) S_{t−1} + k_t v_tᵀ` and
/// `o_t = S_tᵀ (scale · q_t)`, so the output includes the current token (Katharopoulos et al., 2020;
/// with gates, GLA: Yang et al., 2024). Gates must be ≤ 0 (for example `logSigmoid` of a projection);
/// nil is plain causal linear attention. Layers pass `scale = 1 / √K`.
///
/// ```swift
/// let (o, state) = linearAttention(query: q, key: k, value: v, gate: g.logSigmoid(), scale: 1 / 8, initialState: nil)
/// let (next, _) = linearAttention(query: q2, key: k2, value: v2, gate: g2, scale: 1 / 8, initialState: state)  // continues the sequence
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
public func linearAttention(query: Tensor, key: Tensor, value: Tensor, gate: Tensor?, scale: Float, initialState: Tensor?) -> (output: Tensor, finalState: Tensor) {
    let op = "linearAttention"
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
    let output = Tensor(uninitialized: [shape.batch, shape.length, shape.heads, shape.valueDimension], on: backend)
    let finalState = Tensor(uninitialized: [shape.batch, shape.heads, shape.keyDimension, shape.valueDimension], on: backend)
    backend.linearScan(
        query: query.storage, key: key.storage, value: value.storage, gate: scanGate, shape: shape, scale: scale,
        initialState: initialState?.storage, into: output.storage, finalState: finalState.storage)

    let inputs = [query, key, value] + [gate, initialState].compactMap { $0 }
    let mailbox = FinalStateGradientMailbox()
    let (queryStorage, keyStorage, valueStorage) = (query.storage, key.storage, value.storage)
    let initialStorage = initialState?.storage
    let wantsGate = gate?.requiresGradient ?? false, wantsInitial = initialState?.requiresGradient ?? false
    let (queryShape, valueShape, gateShape, stateShape) = (query.shape, value.shape, gate?.shape, finalState.shape)
    output.recordGradient(op, inputs: inputs) { outputGradient in
        let finalGradient = mailbox.take()
        let dq = Tensor(uninitialized: queryShape, on: backend), dk = Tensor(uninitialized: queryShape, on: backend)
        let dv = Tensor(uninitialized: valueShape, on: backend)
        let dg = wantsGate ? Tensor(uninitialized: gateShape!, on: backend) : nil
        let dh0 = wantsInitial ? Tensor(uninitialized: stateShape, on: backend) : nil
        backend.linearScanBackward(
            query: queryStorage, key: keyStorage, value: valueStorage, gate: scanGate, shape: shape, scale: scale,
            initialState: initialStorage, outputGradient: outputGradient.storage, finalStateGradient: finalGradient?.storage,
            queryGradient: dq.storage, keyGradient: dk.storage, valueGradient: dv.storage, gateGradient: dg?.storage,
            initialStateGradient: dh0?.storage)
        var gradients: [Tensor?] = [dq, dk, dv]
        if gateShape != nil { gradients.append(dg) }
        if initialStorage != nil { gradients.append(dh0) }
        return gradients
    }
    recordFinalState(finalState, output: output, mailbox: mailbox, op: op)
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
public func deltaRule(query: Tensor, key: Tensor, value: Tensor, beta: Tensor, gate: Tensor?, scale: Float, initialState: Tensor?) -> (output: Tensor, finalState: Tensor) {
    let op = "deltaRule"
    for other in [key, value, beta] + [gate, initialState].compactMap({ $0 }) { Tensor.checkSameDevice(op, query, other) }
    let shape = scanShape(op, query: query, key: key, value: value, initialState: initialState)
    let headShape = Array(query.shape.prefix(3))
    precondition(beta.shape == headShape, "\(op): beta \(beta.shape) must be [batch, length, heads] \(headShape) for query \(query.shape)")
    if let gate { precondition(gate.shape == headShape, "\(op): gate \(gate.shape) must be [batch, length, heads] \(headShape) for query \(query.shape)") }
    let backend = query.backend
    let output = Tensor(uninitialized: [shape.batch, shape.length, shape.heads, shape.valueDimension], on: backend)
    let finalState = Tensor(uninitialized: [shape.batch, shape.heads, shape.keyDimension, shape.valueDimension], on: backend)
    backend.deltaScan(
        query: query.storage, key: key.storage, value: value.storage, beta: beta.storage, gate: gate?.storage, shape: shape,
        scale: scale, initialState: initialState?.storage, into: output.storage, finalState: finalState.storage)

    let inputs = [query, key, value, beta] + [gate, initialState].compactMap { $0 }
    let mailbox = FinalStateGradientMailbox()
    let (queryStorage, keyStorage, valueStorage, betaStorage) = (query.storage, key.storage, value.storage, beta.storage)
    let gateStorage = gate?.storage, initialStorage = initialState?.storage
    let wantsGate = gate?.requiresGradient ?? false, wantsInitial = initialState?.requiresGradient ?? false
    let (queryShape, valueShape, stateShape) = (query.shape, value.shape, finalState.shape)
    output.recordGradient(op, inputs: inputs) { outputGradient in
        let finalGradient = mailbox.take()
        let dq = Tensor(uninitialized: queryShape, on: backend), dk = Tensor(uninitialized: queryShape, on: backend)
        let dv = Tensor(uninitialized: valueShape, on: backend), dbeta = Tensor(uninitialized: headShape, on: backend)
        let dg = wantsGate ? Tensor(uninitialized: headShape, on: backend) : nil
        let dh0 = wantsInitial ? Tensor(uninitialized: stateShape, on: backend) : nil
        backend.deltaScanBackward(
            query: queryStorage, key: keyStorage, value: valueStorage, beta: betaStorage, gate: gateStorage, shape: shape,
            scale: scale, initialState: initialStorage, outputGradient: outputGradient.storage,
            finalStateGradient: finalGradient?.storage, queryGradient: dq.storage, keyGradient: dk.storage,
            valueGradient: dv.storage, betaGradient: dbeta.storage, gateGradient: dg?.storage, initialStateGradient: dh0?.storage)
        var gradients: [Tensor?] = [dq, dk, dv, dbeta]
        if gateStorage != nil { gradients.append(dg) }
        if initialStorage != nil { gradients.append(dh0) }
        return gradients
    }
    recordFinalState(finalState, output: output, mailbox: mailbox, op: op)
    return (output, finalState)
}

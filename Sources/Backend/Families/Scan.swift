// The scan family (linear attention, GLA, DeltaNet): moved here verbatim from Backend.swift and
// Operations.swift; the kernels part of issue 12 writes its final form.

/// Linear-attention scans on a device.
public protocol ScanKernels {
    /// Causal linear attention, optionally gated (GLA; Yang et al., 2024, "Gated Linear Attention
    /// Transformers with Hardware-Efficient Training"), as a recurrence over time.
    ///
    /// For each batch `b` and head `h`, with the state `S` a `keyDimension × valueDimension` matrix that
    /// starts at `initialState` (or zero), and steps `t = 1 … length`:
    /// `S_t = diag(exp(g_t)) · S_{t−1} + k_t v_tᵀ` and `o_t = S_tᵀ (scale · q_t)`: the output includes
    /// the current token. Without a gate every decay is 1; a per-head gate uses one `g_t` for every key.
    ///
    /// - Parameters:
    ///   - query: q, `[batch, length, heads, keyDimension]`.
    ///   - key: k, `[batch, length, heads, keyDimension]`.
    ///   - value: v, `[batch, length, heads, valueDimension]`.
    ///   - gate: the log-space forget gate (values ≤ 0): none, `[batch, length, heads]` or
    ///     `[batch, length, heads, keyDimension]`.
    ///   - shape: the sizes.
    ///   - scale: the factor applied to q (the layers use `keyDimension^−1/2`).
    ///   - initialState: `S_0`, `[batch, heads, keyDimension, valueDimension]`; nil means zero.
    ///   - output: o, `[batch, length, heads, valueDimension]`, overwritten.
    ///   - finalState: when given, receives `S_length`, `[batch, heads, keyDimension, valueDimension]`.
    /// - Complexity: `O(batch · length · heads · keyDimension · valueDimension)` time; memory linear in
    ///   `length`.
    func linearScan(query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, gate: ScanGate, shape: ScanShape, scale: Float, initialState: DeviceBuffer?, into output: DeviceBuffer, finalState: DeviceBuffer?)

    /// The gradients of ``linearScan(query:key:value:gate:shape:scale:initialState:into:finalState:)``
    /// given the output's gradient dO and, optionally, the final state's gradient dS_T (nil means zero).
    ///
    /// With `G_t = ∂L/∂S_t` (`G_T = dS_T + scale·q_T dO_Tᵀ`, `G_{t−1} = diag(exp(g_t)) G_t + scale·q_{t−1} dO_{t−1}ᵀ`):
    /// `dq_t = scale · S_t dO_t`, `dk_t = G_t v_t`, `dv_t = G_tᵀ k_t`, `dS_0 = diag(exp(g_1)) G_1`, and the
    /// gate gradient `dg_t = exp(g_t) ⊙ rowsum(G_t ⊙ S_{t−1})` (summed over keys for a per-head gate),
    /// which equals the reverse cumulative sum over `s ≥ t` of `q_s ⊙ dq_s − k_s ⊙ dk_s` plus
    /// `rowsum(dS_T ⊙ S_T)`. States are recomputed from checkpoints, so memory stays linear in `length`.
    ///
    /// Every gradient is overwritten (not accumulated). `gateGradient` has the gate's layout and must be
    /// nil when there is no gate; a nil gradient argument is not computed.
    func linearScanBackward(query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, gate: ScanGate, shape: ScanShape, scale: Float, initialState: DeviceBuffer?, outputGradient: DeviceBuffer, finalStateGradient: DeviceBuffer?, queryGradient: DeviceBuffer, keyGradient: DeviceBuffer, valueGradient: DeviceBuffer, gateGradient: DeviceBuffer?, initialStateGradient: DeviceBuffer?)

    /// The delta rule (DeltaNet; Schlag et al., 2021; Yang et al., 2024), optionally gated (gated
    /// DeltaNet; Yang, Kautz & Hatamizadeh, 2025), as a recurrence over time.
    ///
    /// For each batch and head, with `S_0 = initialState` (or zero) and `γ_t = exp(g_t)` (1 without a
    /// gate): `S′ = γ_t S_{t−1}`, `u_t = beta_t (v_t − S′ᵀ k_t)`, `S_t = S′ + k_t u_tᵀ`,
    /// `o_t = S_tᵀ (scale · q_t)`.
    ///
    /// - Parameters:
    ///   - query, key: `[batch, length, heads, keyDimension]` (the layers L2-normalize k).
    ///   - value: `[batch, length, heads, valueDimension]`.
    ///   - beta: the writing strength, `[batch, length, heads]`, in (0, 1).
    ///   - gate: an optional per-head log-space gate (values ≤ 0), `[batch, length, heads]`.
    ///   - shape, scale, initialState, output, finalState: as in
    ///     ``linearScan(query:key:value:gate:shape:scale:initialState:into:finalState:)``.
    /// - Complexity: `O(batch · length · heads · keyDimension · valueDimension)` time; memory linear in
    ///   `length`.
    func deltaScan(query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, beta: DeviceBuffer, gate: DeviceBuffer?, shape: ScanShape, scale: Float, initialState: DeviceBuffer?, into output: DeviceBuffer, finalState: DeviceBuffer?)

    /// The gradients of ``deltaScan(query:key:value:beta:gate:shape:scale:initialState:into:finalState:)``
    /// given dO and, optionally, dS_T (nil means zero).
    ///
    /// With `G_t = ∂L/∂S_t` including `scale·q_t dO_tᵀ`: `dq_t = scale · S_t dO_t`, `du = G_tᵀ k_t`,
    /// `dv_t = beta_t du`, `dw = −beta_t du`, `dbeta_t = du · (v_t − S′ᵀ k_t)`,
    /// `dk_t = G_t u_t + S′ dw`, `dS′ = G_t + k_t dwᵀ`, `dg_t = Σ dS′ ⊙ S′`, `G_{t−1} = γ_t dS′`
    /// (plus the output term of step `t−1`), `dS_0 = G_0`. States are recomputed from checkpoints.
    ///
    /// Every gradient is overwritten. `gateGradient` (`[batch, length, heads]`) must be nil when `gate`
    /// is; a nil gradient argument is not computed.
    func deltaScanBackward(query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, beta: DeviceBuffer, gate: DeviceBuffer?, shape: ScanShape, scale: Float, initialState: DeviceBuffer?, outputGradient: DeviceBuffer, finalStateGradient: DeviceBuffer?, queryGradient: DeviceBuffer, keyGradient: DeviceBuffer, valueGradient: DeviceBuffer, betaGradient: DeviceBuffer, gateGradient: DeviceBuffer?, initialStateGradient: DeviceBuffer?)
}

/// Sizes of a linear-attention scan: q and k [batch, length, heads, keyDimension], v and the output [batch, length, heads, valueDimension], states [batch, heads, keyDimension, valueDimension].
public struct ScanShape: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var batch: Int
    public var length: Int
    public var heads: Int
    public var keyDimension: Int
    public var valueDimension: Int

    public init(batch: Int, length: Int, heads: Int, keyDimension: Int, valueDimension: Int) {
        self.batch = batch
        self.length = length
        self.heads = heads
        self.keyDimension = keyDimension
        self.valueDimension = valueDimension
    }

    /// Elements of q, k and a per-key gate: `batch · length · heads · keyDimension`.
    public var keyCount: Int { batch * length * heads * keyDimension }
    /// Elements of v and the output: `batch · length · heads · valueDimension`.
    public var valueCount: Int { batch * length * heads * valueDimension }
    /// Elements of one state: `batch · heads · keyDimension · valueDimension`.
    public var stateCount: Int { batch * heads * keyDimension * valueDimension }
    /// Elements of beta and a per-head gate: `batch · length · heads`.
    public var headStepCount: Int { batch * length * heads }

    public var description: String {
        "[B \(batch), T \(length), H \(heads), K \(keyDimension), V \(valueDimension)]"
    }

    /// Traps with a message naming the op when a size is negative or a buffer is too small.
    func validate(_ op: String, _ buffers: [(name: String, buffer: DeviceBuffer?, count: Int)]) {
        precondition(batch >= 0 && length >= 0 && heads >= 0 && keyDimension >= 1 && valueDimension >= 1,
                     "\(op): invalid shape \(self) (every size ≥ 0, keyDimension and valueDimension ≥ 1)")
        for (name, buffer, count) in buffers {
            guard let buffer else { continue }
            precondition(buffer.count >= count, "\(op): \(name) holds \(buffer.count) elements, shape \(self) needs \(count)")
        }
    }
}

/// The forget gate of a scan, in log space (every value ≤ 0).
public enum ScanGate {
    /// No gate: plain causal linear attention (every decay is 1).
    case none
    /// One log-decay per head and step, `[batch, length, heads]`, broadcast over the key dimension.
    case perHead(DeviceBuffer)
    /// One log-decay per key, `[batch, length, heads, keyDimension]` (GLA).
    case perKey(DeviceBuffer)

    /// The gate's buffer, if any.
    public var buffer: DeviceBuffer? {
        switch self {
        case .none: nil
        case let .perHead(buffer), let .perKey(buffer): buffer
        }
    }

    /// Whether the gate has one value per key.
    public var isPerKey: Bool {
        if case .perKey = self { return true }
        return false
    }

    /// Elements of the gate (and of its gradient) for a shape.
    public func count(_ shape: ScanShape) -> Int {
        switch self {
        case .none: 0
        case .perHead: shape.headStepCount
        case .perKey: shape.keyCount
        }
    }
}

/// The size checks every backend's scan methods share (programming errors: they trap with the op's name).
enum ScanValidation {
    static func linear(_ shape: ScanShape, query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, gate: ScanGate, initialState: DeviceBuffer?, output: DeviceBuffer, finalState: DeviceBuffer?) {
        shape.validate("linearScan", [
            ("query", query, shape.keyCount), ("key", key, shape.keyCount), ("value", value, shape.valueCount),
            ("gate", gate.buffer, gate.count(shape)), ("initialState", initialState, shape.stateCount),
            ("output", output, shape.valueCount), ("finalState", finalState, shape.stateCount),
        ])
    }

    static func linearBackward(_ shape: ScanShape, query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, gate: ScanGate, initialState: DeviceBuffer?, outputGradient: DeviceBuffer, finalStateGradient: DeviceBuffer?, queryGradient: DeviceBuffer, keyGradient: DeviceBuffer, valueGradient: DeviceBuffer, gateGradient: DeviceBuffer?, initialStateGradient: DeviceBuffer?) {
        precondition(gate.buffer != nil || gateGradient == nil, "linearScanBackward: a gate gradient was asked for, but there is no gate")
        shape.validate("linearScanBackward", [
            ("query", query, shape.keyCount), ("key", key, shape.keyCount), ("value", value, shape.valueCount),
            ("gate", gate.buffer, gate.count(shape)), ("initialState", initialState, shape.stateCount),
            ("outputGradient", outputGradient, shape.valueCount), ("finalStateGradient", finalStateGradient, shape.stateCount),
            ("queryGradient", queryGradient, shape.keyCount), ("keyGradient", keyGradient, shape.keyCount),
            ("valueGradient", valueGradient, shape.valueCount), ("gateGradient", gateGradient, gate.count(shape)),
            ("initialStateGradient", initialStateGradient, shape.stateCount),
        ])
    }

    static func delta(_ shape: ScanShape, query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, beta: DeviceBuffer, gate: DeviceBuffer?, initialState: DeviceBuffer?, output: DeviceBuffer, finalState: DeviceBuffer?) {
        shape.validate("deltaScan", [
            ("query", query, shape.keyCount), ("key", key, shape.keyCount), ("value", value, shape.valueCount),
            ("beta", beta, shape.headStepCount), ("gate", gate, shape.headStepCount), ("initialState", initialState, shape.stateCount),
            ("output", output, shape.valueCount), ("finalState", finalState, shape.stateCount),
        ])
    }

    static func deltaBackward(_ shape: ScanShape, query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, beta: DeviceBuffer, gate: DeviceBuffer?, initialState: DeviceBuffer?, outputGradient: DeviceBuffer, finalStateGradient: DeviceBuffer?, queryGradient: DeviceBuffer, keyGradient: DeviceBuffer, valueGradient: DeviceBuffer, betaGradient: DeviceBuffer, gateGradient: DeviceBuffer?, initialStateGradient: DeviceBuffer?) {
        precondition(gate != nil || gateGradient == nil, "deltaScanBackward: a gate gradient was asked for, but there is no gate")
        shape.validate("deltaScanBackward", [
            ("query", query, shape.keyCount), ("key", key, shape.keyCount), ("value", value, shape.valueCount),
            ("beta", beta, shape.headStepCount), ("gate", gate, shape.headStepCount), ("initialState", initialState, shape.stateCount),
            ("outputGradient", outputGradient, shape.valueCount), ("finalStateGradient", finalStateGradient, shape.stateCount),
            ("queryGradient", queryGradient, shape.keyCount), ("keyGradient", keyGradient, shape.keyCount),
            ("valueGradient", valueGradient, shape.valueCount), ("betaGradient", betaGradient, shape.headStepCount),
            ("gateGradient", gateGradient, shape.headStepCount), ("initialStateGradient", initialStateGradient, shape.stateCount),
        ])
    }
}

import Foundation

// The scan family: linear-attention scans (causal linear attention, GLA, the (gated) delta rule) as
// recurrences over time, forward and backward. One name from the op to the kernel:
//   frontend op   Sources/Frontend/Ops/Scan.swift        linearAttentionScan(...), deltaRuleScan(...)
//   protocol      here                                   ScanKernels, ScanShape, ScanGate, the operand structs
//   CPU           Sources/Backend/CPU/CPUBackend+Scan.swift, inner loops in Sources/CKilnCPU/scan.c
//   OpenCL        Sources/Backend/OpenCL/OpenCLBackend+Scan.swift, Kernels/scan.cl, ScanTuning
//   reference     Sources/Backend/Reference/Reference+Scan.swift (float64, every state kept)
//
// Layouts (row-major, float32): q, k and a per-key gate [batch, length, heads, keyDimension]; v and the
// output [batch, length, heads, valueDimension]; beta and a per-head gate [batch, length, heads]; states
// [batch, heads, keyDimension, valueDimension].

/// Linear-attention scans, forward and backward. Every size check is written once, in ``ScanShape``.
public protocol ScanKernels: AnyObject {
    /// Causal linear attention, optionally gated (GLA; Yang et al., 2024, "Gated Linear Attention
    /// Transformers with Hardware-Efficient Training"), as a recurrence over time.
    ///
    /// For each batch `b` and head `h`, with the state `S` a `keyDimension × valueDimension` matrix that
    /// starts at `initialState` (or zero), and steps `t = 1 … length`:
    /// `S_t = diag(exp(g_t)) · S_{t−1} + k_t v_tᵀ` and `o_t = S_tᵀ (scale · q_t)`: the output includes
    /// the current token. Without a gate every decay is 1; a per-head gate uses one `g_t` for every key.
    ///
    /// - Parameters:
    ///   - inputs: q, k, v, the log-space gate (values ≤ 0) and `S_0` (nil means zero).
    ///   - shape: the sizes.
    ///   - scale: the factor applied to q (the layers use `keyDimension^−1/2`).
    ///   - outputs: o, overwritten, and, when given, the final state `S_length`.
    /// - Complexity: `O(batch · length · heads · keyDimension · valueDimension)` time; memory linear in
    ///   `length`.
    func linearAttentionScan(_ inputs: ScanInputs, shape: ScanShape, scale: Float, into outputs: ScanOutputs)

    /// The gradients of ``linearAttentionScan(_:shape:scale:into:)`` given the gradients of its outputs,
    /// dO and dS_T (either nil means zero).
    ///
    /// With `G_t = ∂L/∂S_t` (`G_T = dS_T + scale·q_T dO_Tᵀ`, `G_{t−1} = diag(exp(g_t)) G_t + scale·q_{t−1} dO_{t−1}ᵀ`):
    /// `dq_t = scale · S_t dO_t`, `dk_t = G_t v_t`, `dv_t = G_tᵀ k_t`, `dS_0 = diag(exp(g_1)) G_1`, and the
    /// gate gradient `dg_t = exp(g_t) ⊙ rowsum(G_t ⊙ S_{t−1})` (summed over keys for a per-head gate),
    /// which equals the reverse cumulative sum over `s ≥ t` of `q_s ⊙ dq_s − k_s ⊙ dk_s` plus
    /// `rowsum(dS_T ⊙ S_T)`. States are recomputed from checkpoints, so memory stays linear in `length`.
    ///
    /// Every gradient is overwritten (not accumulated). The gate's gradient has the gate's layout and
    /// must be nil when there is no gate; a nil gradient is not computed.
    func linearAttentionScanBackward(_ inputs: ScanInputs, shape: ScanShape, scale: Float, outputGradients: ScanOutputGradients, into gradients: ScanGradients)

    /// The delta rule (DeltaNet; Schlag et al., 2021; Yang et al., 2024), optionally gated (gated
    /// DeltaNet; Yang, Kautz & Hatamizadeh, 2025), as a recurrence over time.
    ///
    /// For each batch and head, with `S_0 = initialState` (or zero) and `γ_t = exp(g_t)` (1 without a
    /// gate): `S′ = γ_t S_{t−1}`, `u_t = beta_t (v_t − S′ᵀ k_t)`, `S_t = S′ + k_t u_tᵀ`,
    /// `o_t = S_tᵀ (scale · q_t)`. The layers L2-normalize k, which keeps the state bounded.
    ///
    /// - Parameters: as in ``linearAttentionScan(_:shape:scale:into:)``, with beta (the writing strength,
    ///   in (0, 1)) and an optional per-head gate in `inputs`.
    /// - Complexity: `O(batch · length · heads · keyDimension · valueDimension)` time; memory linear in
    ///   `length`.
    func deltaRuleScan(_ inputs: DeltaRuleInputs, shape: ScanShape, scale: Float, into outputs: ScanOutputs)

    /// The gradients of ``deltaRuleScan(_:shape:scale:into:)`` given dO and dS_T (either nil means zero).
    ///
    /// With `G_t = ∂L/∂S_t` including `scale·q_t dO_tᵀ`: `dq_t = scale · S_t dO_t`, `du = G_tᵀ k_t`,
    /// `dv_t = beta_t du`, `dw = −beta_t du`, `dbeta_t = du · (v_t − S′ᵀ k_t)`,
    /// `dk_t = G_t u_t + S′ dw`, `dS′ = G_t + k_t dwᵀ`, `dg_t = Σ dS′ ⊙ S′`, `G_{t−1} = γ_t dS′`
    /// (plus the output term of step `t−1`), `dS_0 = G_0`. States are recomputed from checkpoints.
    ///
    /// Every gradient is overwritten. The gate's gradient must be nil when there is no gate; a nil
    /// gradient is not computed.
    func deltaRuleScanBackward(_ inputs: DeltaRuleInputs, shape: ScanShape, scale: Float, outputGradients: ScanOutputGradients, into gradients: DeltaRuleGradients)
}

/// Sizes of a linear-attention scan: q and k `[batch, length, heads, keyDimension]`, v and the output
/// `[batch, length, heads, valueDimension]`, states `[batch, heads, keyDimension, valueDimension]`.
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
}

/// How a scan is computed. Both forms compute the same function (to float32 rounding); which is faster
/// depends on the device and the sequence length, so backends choose with a ``ScanFormRule``.
public enum ScanForm: String, Sendable, CaseIterable, Codable {
    /// One step at a time, a state tile in registers or cache: `O(T)` sequential rank-1 updates. The
    /// decoding form (one token at a time) and the faster one for short sequences.
    case recurrent
    /// Chunks of 64 steps as small matrix products (fla's algorithms: GLA with sub-chunks of 16, the delta
    /// rule in the WY/UT form), sequential only across chunks: the faster form for long sequences.
    case chunked
}

/// The choice between the two forms of a scan, a tuning parameter of each backend (`CPUBackend.scanFormRule`,
/// `ScanTuning.form` for OpenCL; every scan has both forms on both backends), measured with
/// `kiln-bench scan` per device type (README, bench/RESULTS.md) so that a tuning database can hold it later. `KILN_SCAN_FORM=recurrent` or `chunked`
/// replaces the built-in default for the whole process (for benchmarks and timing runs); a rule set in
/// code is kept as it is.
public struct ScanFormRule: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Sequences of at least this many steps run chunked, shorter ones recurrently: `Int.max` is always
    /// recurrent, 0 always chunked.
    public var chunkedFromLength: Int
    /// And only states of at least this many elements (K · V) run chunked: 0 for every size. A chunk costs
    /// about C · (K + V) per step in its intra-chunk products against the recurrent form's K · V, so at
    /// small heads the chunked form does several times the arithmetic for nothing.
    public var chunkedFromStateCount: Int

    public init(chunkedFromLength: Int, chunkedFromStateCount: Int = 0) {
        precondition(chunkedFromLength >= 0 && chunkedFromStateCount >= 0,
                     "ScanFormRule: chunkedFromLength and chunkedFromStateCount must be ≥ 0, got \(chunkedFromLength) and \(chunkedFromStateCount)")
        self.chunkedFromLength = chunkedFromLength
        self.chunkedFromStateCount = chunkedFromStateCount
    }

    /// Every scan recurrent.
    public static let recurrent = ScanFormRule(chunkedFromLength: .max)
    /// Every scan chunked (a single step too).
    public static let chunked = ScanFormRule(chunkedFromLength: 0)

    /// The form of a scan of this shape.
    public func form(for shape: ScanShape) -> ScanForm {
        shape.length >= chunkedFromLength && shape.keyDimension * shape.valueDimension >= chunkedFromStateCount ? .chunked : .recurrent
    }

    /// `default`, unless `KILN_SCAN_FORM` is `recurrent` or `chunked` (`auto` or unset keeps it; any other
    /// value keeps it too, with a warning on standard error that names the values there are).
    public static func environment(default rule: ScanFormRule) -> ScanFormRule {
        guard let text = ProcessInfo.processInfo.environment["KILN_SCAN_FORM"], !text.isEmpty, text != "auto" else { return rule }
        guard let form = ScanForm(rawValue: text) else {
            FileHandle.standardError.write(Data("warning: KILN_SCAN_FORM=\(text) is not recurrent, chunked or auto; using \(rule)\n".utf8))
            return rule
        }
        return form == .chunked ? .chunked : .recurrent
    }

    public var description: String {
        let states = chunkedFromStateCount > 0 ? " and K · V ≥ \(chunkedFromStateCount)" : ""
        switch chunkedFromLength {
        case .max: return "recurrent"
        case 0: return states.isEmpty ? "chunked" : "chunked for K · V ≥ \(chunkedFromStateCount)"
        default: return "chunked from T = \(chunkedFromLength)" + states
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

/// The operands of ``ScanKernels/linearAttentionScan(_:shape:scale:into:)``.
public struct ScanInputs {
    /// q and k, `[batch, length, heads, keyDimension]`.
    public var query: DeviceBuffer
    public var key: DeviceBuffer
    /// v, `[batch, length, heads, valueDimension]`.
    public var value: DeviceBuffer
    /// None, per head or per key, in log space.
    public var gate: ScanGate
    /// `S_0`, `[batch, heads, keyDimension, valueDimension]`; nil means zero.
    public var initialState: DeviceBuffer?

    public init(query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, gate: ScanGate = .none, initialState: DeviceBuffer? = nil) {
        self.query = query
        self.key = key
        self.value = value
        self.gate = gate
        self.initialState = initialState
    }
}

/// The operands of ``ScanKernels/deltaRuleScan(_:shape:scale:into:)``.
public struct DeltaRuleInputs {
    /// q and k, `[batch, length, heads, keyDimension]` (k with unit L2 norm in the layers).
    public var query: DeviceBuffer
    public var key: DeviceBuffer
    /// v, `[batch, length, heads, valueDimension]`.
    public var value: DeviceBuffer
    /// The writing strength, `[batch, length, heads]`, in (0, 1).
    public var beta: DeviceBuffer
    /// An optional per-head log-space gate (values ≤ 0), `[batch, length, heads]`.
    public var gate: DeviceBuffer?
    /// `S_0`, `[batch, heads, keyDimension, valueDimension]`; nil means zero.
    public var initialState: DeviceBuffer?

    public init(query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, beta: DeviceBuffer, gate: DeviceBuffer? = nil, initialState: DeviceBuffer? = nil) {
        self.query = query
        self.key = key
        self.value = value
        self.beta = beta
        self.gate = gate
        self.initialState = initialState
    }
}

/// Where a scan writes its results.
public struct ScanOutputs {
    /// o, `[batch, length, heads, valueDimension]`, overwritten.
    public var output: DeviceBuffer
    /// When given, receives `S_length`, `[batch, heads, keyDimension, valueDimension]`.
    public var finalState: DeviceBuffer?

    public init(output: DeviceBuffer, finalState: DeviceBuffer? = nil) {
        self.output = output
        self.finalState = finalState
    }
}

/// The gradients of a scan's two results, laid out as ``ScanOutputs``: nil means zero (that result did
/// not reach the loss), so nothing of the result's size is made for it.
public struct ScanOutputGradients {
    /// dO, `[batch, length, heads, valueDimension]`.
    public var output: DeviceBuffer?
    /// dS_T, `[batch, heads, keyDimension, valueDimension]`.
    public var finalState: DeviceBuffer?

    public init(output: DeviceBuffer?, finalState: DeviceBuffer? = nil) {
        self.output = output
        self.finalState = finalState
    }
}

/// Where ``ScanKernels/linearAttentionScanBackward(_:shape:scale:outputGradients:into:)`` writes, laid
/// out as ``ScanInputs``; nil gradients are not computed.
public struct ScanGradients {
    public var query: DeviceBuffer
    public var key: DeviceBuffer
    public var value: DeviceBuffer
    /// The gate's layout; must be nil without a gate.
    public var gate: DeviceBuffer?
    public var initialState: DeviceBuffer?

    public init(query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, gate: DeviceBuffer? = nil, initialState: DeviceBuffer? = nil) {
        self.query = query
        self.key = key
        self.value = value
        self.gate = gate
        self.initialState = initialState
    }
}

/// Where ``ScanKernels/deltaRuleScanBackward(_:shape:scale:outputGradients:into:)`` writes, laid out as
/// ``DeltaRuleInputs``; nil gradients are not computed.
public struct DeltaRuleGradients {
    public var query: DeviceBuffer
    public var key: DeviceBuffer
    public var value: DeviceBuffer
    public var beta: DeviceBuffer
    /// `[batch, length, heads]`; must be nil without a gate.
    public var gate: DeviceBuffer?
    public var initialState: DeviceBuffer?

    public init(query: DeviceBuffer, key: DeviceBuffer, value: DeviceBuffer, beta: DeviceBuffer, gate: DeviceBuffer? = nil, initialState: DeviceBuffer? = nil) {
        self.query = query
        self.key = key
        self.value = value
        self.beta = beta
        self.gate = gate
        self.initialState = initialState
    }
}

// MARK: - Checks, written once for every backend

/// A buffer's role in a call, and the elements the shape needs in it (nil: not passed).
typealias ScanOperand = (name: String, buffer: DeviceBuffer?, count: Int)

extension ScanShape {
    /// The checks of ``ScanKernels/linearAttentionScan(_:shape:scale:into:)``.
    func validate(_ inputs: ScanInputs, _ outputs: ScanOutputs) {
        validate("linearAttentionScan", operands(inputs) + operands(outputs))
    }

    /// The checks of ``ScanKernels/linearAttentionScanBackward(_:shape:scale:outputGradients:into:)``.
    func validate(_ inputs: ScanInputs, _ outputGradients: ScanOutputGradients, _ gradients: ScanGradients) {
        let op = "linearAttentionScanBackward"
        precondition(inputs.gate.buffer != nil || gradients.gate == nil, "\(op): a gate gradient was asked for, but there is no gate")
        validate(op, operands(inputs) + operands(outputGradients) + [
            ("queryGradient", gradients.query, keyCount), ("keyGradient", gradients.key, keyCount),
            ("valueGradient", gradients.value, valueCount), ("gateGradient", gradients.gate, inputs.gate.count(self)),
            ("initialStateGradient", gradients.initialState, stateCount),
        ])
    }

    /// The checks of ``ScanKernels/deltaRuleScan(_:shape:scale:into:)``.
    func validate(_ inputs: DeltaRuleInputs, _ outputs: ScanOutputs) {
        validate("deltaRuleScan", operands(inputs) + operands(outputs))
    }

    /// The checks of ``ScanKernels/deltaRuleScanBackward(_:shape:scale:outputGradients:into:)``.
    func validate(_ inputs: DeltaRuleInputs, _ outputGradients: ScanOutputGradients, _ gradients: DeltaRuleGradients) {
        let op = "deltaRuleScanBackward"
        precondition(inputs.gate != nil || gradients.gate == nil, "\(op): a gate gradient was asked for, but there is no gate")
        validate(op, operands(inputs) + operands(outputGradients) + [
            ("queryGradient", gradients.query, keyCount), ("keyGradient", gradients.key, keyCount),
            ("valueGradient", gradients.value, valueCount), ("betaGradient", gradients.beta, headStepCount),
            ("gateGradient", gradients.gate, headStepCount), ("initialStateGradient", gradients.initialState, stateCount),
        ])
    }

    /// Traps with a message naming the op when a size is negative or a buffer is too small.
    private func validate(_ op: String, _ operands: [ScanOperand]) {
        precondition(batch >= 0 && length >= 0 && heads >= 0 && keyDimension >= 1 && valueDimension >= 1,
                     "\(op): invalid shape \(self) (every size ≥ 0, keyDimension and valueDimension ≥ 1)")
        for (name, buffer, count) in operands {
            guard let buffer else { continue }
            precondition(buffer.count >= count, "\(op): \(name) holds \(buffer.count) elements, shape \(self) needs \(count)")
        }
    }

    private func operands(_ inputs: ScanInputs) -> [ScanOperand] {
        [
            ("query", inputs.query, keyCount), ("key", inputs.key, keyCount), ("value", inputs.value, valueCount),
            ("gate", inputs.gate.buffer, inputs.gate.count(self)), ("initialState", inputs.initialState, stateCount),
        ]
    }

    private func operands(_ inputs: DeltaRuleInputs) -> [ScanOperand] {
        [
            ("query", inputs.query, keyCount), ("key", inputs.key, keyCount), ("value", inputs.value, valueCount),
            ("beta", inputs.beta, headStepCount), ("gate", inputs.gate, headStepCount), ("initialState", inputs.initialState, stateCount),
        ]
    }

    private func operands(_ outputs: ScanOutputs) -> [ScanOperand] {
        [("output", outputs.output, valueCount), ("finalState", outputs.finalState, stateCount)]
    }

    private func operands(_ gradients: ScanOutputGradients) -> [ScanOperand] {
        [("outputGradient", gradients.output, valueCount), ("finalStateGradient", gradients.finalState, stateCount)]
    }
}

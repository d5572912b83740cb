/// Gated linear attention (GLA; Yang et al., 2024), per head:
///
///     g_t = logsigmoid(W_up · W_down · x_t) / 16                  (per key, ≤ 0; rank 16)
///     S_t = diag(exp(g_t)) S_{t−1} + k_t v_tᵀ,    o_t = S_tᵀ (scale · q_t)
///     y   = W_o · (RMSNorm(o) ⊙ silu(W_g x))
///
/// The gate's rank and its normalizer 16 are the paper's and flash-linear-attention's. For μP, `W_down`
/// (fan-out 16) is an output weight whose input is scaled by 1/m, `W_up` (fan-in 16) an input weight with
/// a bias, and `W_g` a hidden weight.
public final class GatedLinearAttentionMixer: TokenMixer {
    public let projections: AttentionProjections
    let gateDown: Linear, gateUp: Linear, outputGate: Linear
    static let gateRank = 16
    static let gateNormalizer: Float = 16

    init(_ settings: AttentionProjections.Settings, generator: inout RandomGenerator, on backend: any Backend) {
        projections = AttentionProjections(settings, generator: &generator, on: backend)
        let (width, rank) = (settings.width, Self.gateRank)
        gateDown = Linear.fanInNormal(width, rank, bias: false, role: .output, generator: &generator, on: backend)
        gateUp = Linear.fanInNormal(rank, width, bias: true, role: .input, generator: &generator, on: backend)
        outputGate = Linear.fanInNormal(width, width, bias: false, role: .hidden, generator: &generator, on: backend)
    }

    public var children: [(name: String, module: any Module)] {
        projections.children + [("gate_down", gateDown), ("gate_up", gateUp), ("g", outputGate)]
    }

    public func callAsFunction(_ x: Tensor, state: RecurrentState.Layer?) -> Tensor {
        let p = projections
        let (q, k, v) = (p.splitHeads(p.query(x)), p.splitHeads(p.key(x)), p.splitHeads(p.value(x)))
        let gate = p.splitHeads(gateUp(gateDown(p.fixedFanOutInput(x))).logSigmoid() / Self.gateNormalizer)
        let (o, finalState) = linearAttentionScan(query: q, key: k, value: v, gate: gate, scale: p.attentionScale, initialState: state?.scan)
        state?.scan = finalState.detached()
        return p.output(p.normalizedHeads(o) * outputGate(x).silu())
    }
}

/// Causal linear attention (Katharopoulos et al., 2020), per head:
///
///     S_t = S_{t−1} + k_t v_tᵀ,    o_t = S_tᵀ (scale · q_t),    y = W_o · RMSNorm(o)
///
/// with `q, k, v = W_q x, W_k x, W_v x` (see ``AttentionProjections``).
public final class LinearAttentionMixer: TokenMixer {
    public let projections: AttentionProjections

    init(_ settings: AttentionProjections.Settings, generator: inout RandomGenerator, on backend: any Backend) {
        projections = AttentionProjections(settings, generator: &generator, on: backend)
    }

    public var children: [(name: String, module: any Module)] { projections.children }

    public func callAsFunction(_ x: Tensor, state: RecurrentState.Layer?) -> Tensor {
        let p = projections
        let (q, k, v) = (p.splitHeads(p.query(x)), p.splitHeads(p.key(x)), p.splitHeads(p.value(x)))
        let (o, finalState) = linearAttentionScan(query: q, key: k, value: v, gate: nil, scale: p.attentionScale, initialState: state?.scan)
        state?.scan = finalState.detached()
        return p.output(p.normalizedHeads(o))
    }
}

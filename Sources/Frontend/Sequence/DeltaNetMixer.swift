/// DeltaNet (Schlag et al., 2021; Yang et al., 2024), per head:
///
///     q, k, v = silu(conv(W_q x)), silu(conv(W_k x)), silu(conv(W_v x))    (short causal convolutions)
///     q, k    = q / ‖q‖, k / ‖k‖,    β_t = sigmoid(W_β x_t)                   (one β per head)
///     u_t = β_t (v_t − S_{t−1}ᵀ k_t),    S_t = S_{t−1} + k_t u_tᵀ,    o_t = S_tᵀ (scale · q_t)
///     y   = W_o · RMSNorm(o)
///
/// For μP, `W_β` (fan-out: the heads) is an output weight whose input is scaled by 1/m, and the
/// convolution kernels (fan-in 4) are input weights.
public final class DeltaNetMixer: TokenMixer {
    public let projections: AttentionProjections
    let beta: Linear
    let queryConvolution: ShortConvolution, keyConvolution: ShortConvolution, valueConvolution: ShortConvolution

    init(_ settings: AttentionProjections.Settings, generator: inout RandomGenerator, on backend: any Backend) {
        projections = AttentionProjections(settings, generator: &generator, on: backend)
        beta = Linear.fanInNormal(settings.width, settings.heads, bias: false, role: .output, generator: &generator, on: backend)
        queryConvolution = ShortConvolution(width: settings.width, generator: &generator, on: backend)
        keyConvolution = ShortConvolution(width: settings.width, generator: &generator, on: backend)
        valueConvolution = ShortConvolution(width: settings.width, generator: &generator, on: backend)
    }

    public var ownParameters: [Parameter] {
        [Parameter("q_conv", queryConvolution.weight, role: .input), Parameter("k_conv", keyConvolution.weight, role: .input),
         Parameter("v_conv", valueConvolution.weight, role: .input)]
    }

    public var children: [(name: String, module: any Module)] { projections.children + [("beta", beta)] }

    /// `x / sqrt(Σ x² + ε)` over the last axis.
    static func l2Normalized(_ x: Tensor) -> Tensor {
        x * (x.square().sum(axis: -1, keepingDimensions: true) + 1e-6).rsqrt()
    }

    public func callAsFunction(_ x: Tensor, state: RecurrentState.Layer?) -> Tensor {
        let p = projections
        let histories = state?.convolutionHistories
        let (q, queryHistory) = queryConvolution(p.query(x), history: histories?.query)
        let (k, keyHistory) = keyConvolution(p.key(x), history: histories?.key)
        let (v, valueHistory) = valueConvolution(p.value(x), history: histories?.value)
        state?.convolutionHistories = (queryHistory, keyHistory, valueHistory)
        let beta = beta(p.fixedFanOutInput(x)).sigmoid()
        let (o, finalState) = deltaRuleScan(query: Self.l2Normalized(p.splitHeads(q.silu())), key: Self.l2Normalized(p.splitHeads(k.silu())),
                                        value: p.splitHeads(v.silu()), beta: beta, gate: nil, scale: p.attentionScale, initialState: state?.scan)
        state?.scan = finalState.detached()
        return p.output(p.normalizedHeads(o))
    }
}

/// A short causal depthwise convolution over time, `y_t = Σ_j w_j ⊙ x_{t − (size − 1) + j}` with a kernel
/// `w` [size, width] drawn from N(0, 1/size); the `size − 1` inputs before the first are a carried
/// history (zeros at the start of a sequence).
struct ShortConvolution {
    static let size = 4
    let weight: Tensor

    init(width: Int, generator: inout RandomGenerator, on backend: any Backend) {
        let size = Self.size
        weight = Tensor.parameter(Parametrization.fanInNormal(width * size, fanIn: size, generator: &generator), shape: [size, width], on: backend)
    }

    /// y for `x` [batch, length, width] after `history` [batch, size − 1, width], and the new history.
    func callAsFunction(_ x: Tensor, history: Tensor?) -> (output: Tensor, history: Tensor) {
        let (batch, length, size) = (x.shape[0], x.shape[1], Self.size)
        let past = history ?? Tensor.zeros([batch, size - 1, weight.shape[1]], on: x.backend)
        let padded = Tensor.concatenate([past, x], axis: 1)
        func tap(_ j: Int) -> Tensor { padded.sliced(axis: 1, j..<(j + length)) * weight.sliced(axis: 0, j..<(j + 1)) }
        let output = (1..<size).reduce(tap(0)) { sum, j in sum + tap(j) }
        return (output, padded.sliced(axis: 1, length..<(length + size - 1)))
    }
}

import Foundation

/// The token mixers of the `lm` model (`--mixer`).
public enum MixerKind: String, Codable, CaseIterable, Sendable {
    /// Causal linear attention (Katharopoulos et al., 2020): S_t = S_{t−1} + k_t v_tᵀ.
    case linear
    /// Gated linear attention (Yang et al., 2024): a per-key forget gate from a low-rank projection.
    case gla
    /// DeltaNet (Schlag et al., 2021; Yang et al., 2024): the delta rule with L2-normalized q and k.
    case delta
}

/// A linear-attention token mixer: projections to heads, a scan, a per-head RMSNorm of the output, and
/// an output projection. Queries and keys have `width / heads` features per head. Under μP the q·k scale is
/// 1/d_head relative to `baseHeadDimension` (the head size at the base width): with a fixed number of
/// heads that is base width / heads; when heads are added as width grows (`--head-dim`), the head size
/// itself.
///
/// - `linear`: o = scan(q, k, v).
/// - `gla`: the gate is `logsigmoid(W_up · W_down · x) / 16` per key (rank 16, as in the GLA paper and
///   flash-linear-attention), and the normalized output is multiplied by `silu(W_g · x)`.
/// - `delta`: q, k and v pass a short causal depthwise convolution (kernel 4) and SiLU; q and k are
///   L2-normalized per head; `beta = sigmoid(W_β · x)` per head.
public final class TokenMixer: Module {
    public let kind: MixerKind
    public let width: Int
    public let heads: Int
    public let headDimension: Int
    /// q·k scale: 1/√d_head (SP) or 1/d_head (μP).
    public let attentionScale: Float
    /// Input multiplier of projections whose fan-out does not grow with width (1/m under μP).
    let fixedOutputMultiplier: Float
    let query: Linear, key: Linear, value: Linear, output: Linear
    let outputNorm: RMSNorm
    let gateDown: Linear?, gateUp: Linear?, outputGate: Linear?
    let betaProjection: Linear?
    let queryConvolution: Tensor?, keyConvolution: Tensor?, valueConvolution: Tensor?
    static let gateRank = 16
    static let gateNormalizer: Float = 16
    static let convolutionSize = 4

    init(kind: MixerKind, width: Int, heads: Int, baseHeadDimension: Int?, parametrization: Parametrization, generator: inout RandomGenerator, on backend: any Backend) {
        precondition(width % heads == 0, "TokenMixer: width \(width) is not a multiple of heads \(heads)")
        self.kind = kind
        self.width = width
        self.heads = heads
        headDimension = width / heads
        let baseHeadDimension = baseHeadDimension ?? max(1, parametrization.baseWidth / heads)
        attentionScale = parametrization.attentionScale(headDimension: headDimension, baseHeadDimension: baseHeadDimension)
        fixedOutputMultiplier = 1 / parametrization.widthMultiplier(width: width)
        func linear(_ fanIn: Int, _ fanOut: Int, bias: Bool = false) -> Linear {
            let weight = Tensor.parameter(Parametrization.fanInNormal(fanIn * fanOut, fanIn: fanIn, generator: &generator), shape: [fanOut, fanIn], on: backend)
            let biasTensor = bias ? Tensor.parameter(Parametrization.fanInNormal(fanOut, fanIn: fanIn, generator: &generator), shape: [fanOut], on: backend) : nil
            return Linear(weight: weight, bias: biasTensor)
        }
        query = linear(width, width)
        key = linear(width, width)
        value = linear(width, width)
        output = linear(width, width)
        // The scan output passes this per-head RMSNorm: with a fixed ε, μP's smaller q·k scale shrank the
        // mixer's output by 32% from width 64 to 1024 with 4 DeltaNet heads.
        let epsilonScale = parametrization.attentionNormEpsilonScale(headDimension: headDimension, baseHeadDimension: baseHeadDimension)
        outputNorm = RMSNorm(features: headDimension, epsilon: 1e-5 * epsilonScale, on: backend)
        if kind == .gla {
            gateDown = linear(width, TokenMixer.gateRank)
            gateUp = linear(TokenMixer.gateRank, width, bias: true)
            outputGate = linear(width, width)
        } else {
            gateDown = nil
            gateUp = nil
            outputGate = nil
        }
        if kind == .delta {
            betaProjection = linear(width, heads)
            func convolution() -> Tensor {
                Tensor.parameter(Parametrization.fanInNormal(width * TokenMixer.convolutionSize, fanIn: TokenMixer.convolutionSize, generator: &generator),
                                 shape: [TokenMixer.convolutionSize, width], on: backend)
            }
            queryConvolution = convolution()
            keyConvolution = convolution()
            valueConvolution = convolution()
        } else {
            betaProjection = nil
            queryConvolution = nil
            keyConvolution = nil
            valueConvolution = nil
        }
    }

    public var ownParameters: [(name: String, tensor: Tensor)] {
        [("q_conv", queryConvolution), ("k_conv", keyConvolution), ("v_conv", valueConvolution)].compactMap { name, tensor in tensor.map { (name, $0) } }
    }

    public var children: [(name: String, module: any Module)] {
        var result: [(name: String, module: any Module)] = [("q", query), ("k", key), ("v", value), ("o", output), ("o_norm", outputNorm)]
        if let gateDown, let gateUp, let outputGate { result += [("gate_down", gateDown), ("gate_up", gateUp), ("g", outputGate)] }
        if let betaProjection { result.append(("beta", betaProjection)) }
        return result
    }

    /// μP roles of this mixer's parameters (names relative to the mixer).
    var roles: [(name: String, role: ParameterRole)] {
        var result: [(name: String, role: ParameterRole)] = [
            ("q.weight", .hidden), ("k.weight", .hidden), ("v.weight", .hidden), ("o.weight", .hidden), ("o_norm.weight", .gain),
        ]
        if kind == .gla {
            result += [("gate_down.weight", .output), ("gate_up.weight", .input), ("gate_up.bias", .bias), ("g.weight", .hidden)]
        }
        if kind == .delta { result += [("beta.weight", .output), ("q_conv", .input), ("k_conv", .input), ("v_conv", .input)] }
        return result
    }


    /// Causal depthwise convolution over time: y[t] = Σ_j w[j] · x[t − (size − 1) + j], with `history`
    /// (the previous size − 1 inputs, zeros at the start) prepended. Returns y and the new history.
    func convolve(_ x: Tensor, weight: Tensor, history: Tensor?) -> (Tensor, Tensor) {
        let (batch, length) = (x.shape[0], x.shape[1])
        let size = TokenMixer.convolutionSize
        let past = history ?? Tensor.zeros([batch, size - 1, width], on: x.backend)
        let padded = Tensor.concatenate([past, x], axis: 1)
        var result: Tensor?
        for tap in 0..<size {
            let term = padded.sliced(axis: 1, tap..<(tap + length)) * weight.sliced(axis: 0, tap..<(tap + 1))
            result = result.map { $0 + term } ?? term
        }
        let newHistory = padded.sliced(axis: 1, (length)..<(length + size - 1))
        return (result!, newHistory)
    }

    /// `x / sqrt(Σ x² + ε)` over the last axis.
    func l2Normalized(_ x: Tensor) -> Tensor {
        x * (x.square().sum(axis: -1, keepingDimensions: true) + 1e-6).rsqrt()
    }

    /// Mixes `x` [batch, length, width]; with `state`, continues from and updates it (generation).
    public func callAsFunction(_ x: Tensor, state: RecurrentState.Layer? = nil) -> Tensor {
        let (batch, length) = (x.shape[0], x.shape[1])
        let headShape = [batch, length, heads, headDimension]
        var q = query(x), k = key(x), v = value(x)
        var scanOutput: Tensor
        var finalState: Tensor
        switch kind {
        case .linear:
            (scanOutput, finalState) = linearAttentionScan(query: q.reshaped(headShape), key: k.reshaped(headShape), value: v.reshaped(headShape), gate: nil,
                                                       scale: attentionScale, initialState: state?.scan)
        case .gla:
            let gate = (gateUp!(gateDown!(fixedOutputMultiplier == 1 ? x : x * fixedOutputMultiplier)).logSigmoid() / TokenMixer.gateNormalizer).reshaped(headShape)
            (scanOutput, finalState) = linearAttentionScan(query: q.reshaped(headShape), key: k.reshaped(headShape), value: v.reshaped(headShape), gate: gate,
                                                       scale: attentionScale, initialState: state?.scan)
        case .delta:
            let histories = state?.convolutionInputs ?? []
            var newHistories: [Tensor] = []
            for (index, weight) in [queryConvolution!, keyConvolution!, valueConvolution!].enumerated() {
                let input = [q, k, v][index]
                let (convolved, history) = convolve(input, weight: weight, history: histories.count == 3 ? histories[index] : nil)
                newHistories.append(history)
                switch index {
                case 0: q = convolved.silu()
                case 1: k = convolved.silu()
                default: v = convolved.silu()
                }
            }
            state?.convolutionInputs = newHistories
            let beta = betaProjection!(fixedOutputMultiplier == 1 ? x : x * fixedOutputMultiplier).sigmoid()
            (scanOutput, finalState) = deltaRuleScan(query: l2Normalized(q.reshaped(headShape)), key: l2Normalized(k.reshaped(headShape)), value: v.reshaped(headShape),
                                                 beta: beta, gate: nil, scale: attentionScale, initialState: state?.scan)
        }
        state?.scan = finalState.detached()
        var mixed = outputNorm(scanOutput).reshaped([batch, length, width])
        if let outputGate { mixed = mixed * outputGate(x).silu() }
        return output(mixed)
    }
}

/// SwiGLU feed-forward (Shazeer, 2020): W_down(silu(W_gate x) ⊙ W_up x), hidden size ≈ 8/3 × width
/// (rounded up to a multiple of 8).
public final class SwiGLU: Layer {
    let gate: Linear, up: Linear, down: Linear

    init(width: Int, generator: inout RandomGenerator, on backend: any Backend) {
        let hidden = (width * 8 / 3 + 7) / 8 * 8
        func linear(_ fanIn: Int, _ fanOut: Int) -> Linear {
            Linear(weight: Tensor.parameter(Parametrization.fanInNormal(fanIn * fanOut, fanIn: fanIn, generator: &generator), shape: [fanOut, fanIn], on: backend), bias: nil)
        }
        gate = linear(width, hidden)
        up = linear(width, hidden)
        down = linear(hidden, width)
    }

    public var children: [(name: String, module: any Module)] { [("gate", gate), ("up", up), ("down", down)] }
    public func callAsFunction(_ x: Tensor) -> Tensor { down(gate(x).silu() * up(x)) }
}

/// One block: x + mixer(RMSNorm(x)), then + SwiGLU(RMSNorm(x)).
public final class SequenceBlock: Module {
    let mixerNorm: RMSNorm, mixer: TokenMixer, mlpNorm: RMSNorm, mlp: SwiGLU

    init(kind: MixerKind, width: Int, heads: Int, baseHeadDimension: Int?, parametrization: Parametrization, generator: inout RandomGenerator, on backend: any Backend) {
        mixerNorm = RMSNorm(features: width, epsilon: 1e-5, on: backend)
        mixer = TokenMixer(kind: kind, width: width, heads: heads, baseHeadDimension: baseHeadDimension, parametrization: parametrization,
                           generator: &generator, on: backend)
        mlpNorm = RMSNorm(features: width, epsilon: 1e-5, on: backend)
        mlp = SwiGLU(width: width, generator: &generator, on: backend)
    }

    public var children: [(name: String, module: any Module)] { [("mixer_norm", mixerNorm), ("mixer", mixer), ("mlp_norm", mlpNorm), ("mlp", mlp)] }

    func callAsFunction(_ x: Tensor, name: String, recorder: ActivationRecorder?, state: RecurrentState.Layer?) -> Tensor {
        let mixed = mixer(mixerNorm(x), state: state)
        recorder?.record("\(name).mixer", mixed)
        let h = x + mixed
        let fed = mlp(mlpNorm(h))
        recorder?.record("\(name).mlp", fed)
        return h + fed
    }
}

/// The `lm` model: token embedding, `layers` blocks of a linear-attention mixer and a SwiGLU MLP, a final
/// RMSNorm and a linear readout to the vocabulary (zero-initialized, with μP's 1/m multiplier).
public final class LanguageModel: TaskModel, ParametrizedModel {
    public let vocabulary: Int
    public let width: Int
    public let mixer: MixerKind
    let embedding: Embedding
    let blocks: [SequenceBlock]
    let norm: RMSNorm
    let readout: Linear
    let readoutMultiplier: Float

    /// - Parameter baseHeadDimension: the head size at the base width for μP's q·k scale; nil: base width / heads.
    public init(vocabulary: Int, width: Int, layers: Int, heads: Int, baseHeadDimension: Int? = nil, mixer: MixerKind, parametrization: Parametrization,
                generator: inout RandomGenerator, on backend: any Backend) {
        self.vocabulary = vocabulary
        self.width = width
        self.mixer = mixer
        embedding = Embedding(count: vocabulary, features: width, generator: &generator, on: backend)
        blocks = (0..<layers).map { _ in SequenceBlock(kind: mixer, width: width, heads: heads, baseHeadDimension: baseHeadDimension, parametrization: parametrization,
                                                                generator: &generator, on: backend) }
        norm = RMSNorm(features: width, epsilon: 1e-5, on: backend)
        let readoutWeights = parametrization.readoutZeroInit
            ? [Float](repeating: 0, count: vocabulary * width) : Parametrization.fanInNormal(vocabulary * width, fanIn: width, generator: &generator)
        readout = Linear(weight: Tensor.parameter(readoutWeights, shape: [vocabulary, width], on: backend), bias: nil)
        readoutMultiplier = 1 / parametrization.widthMultiplier(width: width)
    }

    public var children: [(name: String, module: any Module)] {
        [("embedding", embedding)] + blocks.enumerated().map { ("blocks.\($0.offset)", $0.element) } + [("norm", norm), ("readout", readout)]
    }

    public var parameterRoles: [(name: String, tensor: Tensor, role: ParameterRole)] {
        let tensors = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.tensor) })
        var roles: [(String, ParameterRole)] = [("embedding.weight", .embedding)]
        for (index, block) in blocks.enumerated() {
            let prefix = "blocks.\(index)"
            roles += [("\(prefix).mixer_norm.weight", .gain), ("\(prefix).mlp_norm.weight", .gain)]
            roles += block.mixer.roles.map { ("\(prefix).mixer.\($0.name)", $0.role) }
            roles += ["gate", "up", "down"].map { ("\(prefix).mlp.\($0).weight", ParameterRole.hidden) }
        }
        roles += [("norm.weight", .gain), ("readout.weight", .output)]
        return roles.map { name, role in
            guard let tensor = tensors[name] else { preconditionFailure("LanguageModel: no parameter \(name)") }
            return (name, tensor, role)
        }
    }

    /// Logits [batch, length, vocabulary] for token ids [batch, length]; with `state`, the sequence
    /// continues from it (generation, one token at a time, in constant memory) and the state is updated.
    public func forward(_ tokens: IndexTensor, recorder: ActivationRecorder? = nil, state: RecurrentState? = nil) -> Tensor {
        var x = embedding(tokens)
        recorder?.record("embedding", x)
        for (index, block) in blocks.enumerated() {
            x = block(x, name: "blocks.\(index)", recorder: recorder, state: state?.layers[index])
        }
        let normalized = norm(x)
        let logits = readout(readoutMultiplier == 1 ? normalized : normalized * readoutMultiplier)
        recorder?.record("logits", logits)
        return logits
    }

    public func outputs(for batch: HostBatch, on backend: any Backend) -> Tensor {
        forward(IndexTensor(batch.tokens ?? [], shape: [batch.rows, batch.features], on: backend))
    }

    /// An empty recurrent state for generation.
    public func initialState() -> RecurrentState { RecurrentState(layers: blocks.count) }

    public var layerCount: Int { blocks.count }
}

/// What a language model carries from one call to the next when it generates token by token: per block,
/// the scan state and (for DeltaNet) the last inputs of its short convolutions. Its size does not grow
/// with the sequence.
public final class RecurrentState {
    public final class Layer {
        /// The scan state [batch, heads, headDimension, headDimension].
        var scan: Tensor?
        /// The last `convolutionSize − 1` projected inputs of q, k and v, each [batch, 3, width] (DeltaNet).
        var convolutionInputs: [Tensor] = []
    }

    public let layers: [Layer]

    public init(layers: Int) {
        self.layers = (0..<layers).map { _ in Layer() }
    }
}

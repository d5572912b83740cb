/// The token mixers of the `lm` model (`--mixer`).
public enum MixerKind: String, Codable, CaseIterable, Sendable {
    /// Causal linear attention (Katharopoulos et al., 2020): S_t = S_{t−1} + k_t v_tᵀ.
    case linear
    /// Gated linear attention (Yang et al., 2024): a per-key forget gate from a low-rank projection.
    case gla
    /// DeltaNet (Schlag et al., 2021; Yang et al., 2024): the delta rule with L2-normalized q and k.
    case delta

    /// A mixer of this kind with its weights drawn from `generator`.
    func makeMixer(_ projections: AttentionProjections.Settings, generator: inout RandomGenerator, on backend: any Backend) -> any TokenMixer {
        switch self {
        case .linear: LinearAttentionMixer(projections, generator: &generator, on: backend)
        case .gla: GatedLinearAttentionMixer(projections, generator: &generator, on: backend)
        case .delta: DeltaNetMixer(projections, generator: &generator, on: backend)
        }
    }
}

/// A token mixer of the `lm` model: maps `x` [batch, length, width] to [batch, length, width], each token
/// seeing only itself and earlier tokens, through a linear-attention scan whose state does not grow with
/// the sequence. Every mixer projects to heads, scans, normalizes each head's output and projects back
/// (``AttentionProjections``); the types differ in what they feed the scan.
public protocol TokenMixer: Module {
    /// The q, k, v and o projections, the heads and the q·k scale.
    var projections: AttentionProjections { get }
    /// Mixes `x` [batch, length, width]; with `state`, continues from it and updates it (generation).
    func callAsFunction(_ x: Tensor, state: RecurrentState.Layer?) -> Tensor
}

extension TokenMixer {
    public var width: Int { projections.width }
    public var heads: Int { projections.heads }
    public var headDimension: Int { projections.headDimension }
    /// q·k scale: 1/√d_head (SP) or √d_base / d_head (μP).
    public var attentionScale: Float { projections.attentionScale }
}

/// What every token mixer has: `q = W_q x`, `k = W_k x`, `v = W_v x` split into `heads` heads of
/// `headDimension = width / heads` features, the q·k scale, a per-head RMSNorm of the scan output and the
/// output projection `W_o` (all hidden weights for μP, drawn in that order).
///
/// Under μP the q·k scale is 1/d_head relative to `baseHeadDimension` (the head size at the base width):
/// with a fixed number of heads that is base width / heads; when heads are added as width grows
/// (`--head-dim`), the head size itself.
public struct AttentionProjections {
    /// The sizes and parametrization a mixer is built with.
    struct Settings {
        var width: Int
        var heads: Int
        /// The head size at the base width; nil: base width / heads.
        var baseHeadDimension: Int?
        var parametrization: Parametrization
    }

    public let width: Int
    public let heads: Int
    public let headDimension: Int
    /// q·k scale: 1/√d_head (SP) or √d_base / d_head (μP).
    public let attentionScale: Float
    /// Input multiplier of projections whose fan-out does not grow with width (1/m under μP).
    let fixedFanOutMultiplier: Float
    let query: Linear, key: Linear, value: Linear, output: Linear
    let outputNorm: RMSNorm

    init(_ settings: Settings, generator: inout RandomGenerator, on backend: any Backend) {
        let (width, heads, parametrization) = (settings.width, settings.heads, settings.parametrization)
        precondition(heads > 0 && width % heads == 0, "TokenMixer: width \(width) is not a multiple of heads \(heads)")
        self.width = width
        self.heads = heads
        headDimension = width / heads
        let baseHeadDimension = settings.baseHeadDimension ?? max(1, parametrization.baseWidth / heads)
        attentionScale = parametrization.attentionScale(headDimension: headDimension, baseHeadDimension: baseHeadDimension)
        fixedFanOutMultiplier = 1 / parametrization.widthMultiplier(width: width)
        func hidden() -> Linear { Linear.fanInNormal(width, width, bias: false, role: .hidden, generator: &generator, on: backend) }
        query = hidden()
        key = hidden()
        value = hidden()
        output = hidden()
        // The scan output passes this per-head RMSNorm: with a fixed ε, μP's smaller q·k scale shrank the
        // mixer's output by 32% from width 64 to 1024 with 4 DeltaNet heads.
        let epsilonScale = parametrization.attentionNormEpsilonScale(headDimension: headDimension, baseHeadDimension: baseHeadDimension)
        outputNorm = RMSNorm(features: headDimension, epsilon: 1e-5 * epsilonScale, on: backend)
    }

    /// `q`, `k`, `v`, `o` and `o_norm`: the children every mixer lists first (checkpoint names).
    var children: [(name: String, module: any Module)] { [("q", query), ("k", key), ("v", value), ("o", output), ("o_norm", outputNorm)] }

    /// `[batch, length, width]` as heads, `[batch, length, heads, headDimension]`.
    func splitHeads(_ x: Tensor) -> Tensor { x.reshaped([x.shape[0], x.shape[1], heads, headDimension]) }

    /// Each head's scan output `[batch, length, heads, headDimension]` through the RMSNorm, heads joined
    /// again to `[batch, length, width]`.
    func normalizedHeads(_ scanOutput: Tensor) -> Tensor { outputNorm(scanOutput).reshaped([scanOutput.shape[0], scanOutput.shape[1], width]) }

    /// `x` as the input of a projection whose fan-out stays fixed as width grows: times 1/m under μP.
    func fixedFanOutInput(_ x: Tensor) -> Tensor { fixedFanOutMultiplier == 1 ? x : x * fixedFanOutMultiplier }
}

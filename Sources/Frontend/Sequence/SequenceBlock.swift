/// SwiGLU feed-forward (Shazeer, 2020): `W_down(silu(W_gate x) ⊙ W_up x)`, hidden size ≈ 8/3 × width
/// (rounded up to a multiple of 8); all three are hidden weights for μP.
public final class SwiGLU: Layer {
    let gate: Linear, up: Linear, down: Linear

    init(width: Int, generator: inout RandomGenerator, on backend: any Backend) {
        let hidden = (width * 8 / 3 + 7) / 8 * 8
        gate = Linear.fanInNormal(width, hidden, bias: false, role: .hidden, generator: &generator, on: backend)
        up = Linear.fanInNormal(width, hidden, bias: false, role: .hidden, generator: &generator, on: backend)
        down = Linear.fanInNormal(hidden, width, bias: false, role: .hidden, generator: &generator, on: backend)
    }

    public var children: [(name: String, module: any Module)] { [("gate", gate), ("up", up), ("down", down)] }
    public func callAsFunction(_ x: Tensor) -> Tensor { down(gate(x).silu() * up(x)) }
}

/// One block, pre-norm: `h = x + mixer(RMSNorm(x))`, then `h + SwiGLU(RMSNorm(h))`.
public final class SequenceBlock: Module {
    let mixerNorm: RMSNorm, mixer: any TokenMixer, mlpNorm: RMSNorm, mlp: SwiGLU

    init(mixer kind: MixerKind, _ settings: AttentionProjections.Settings, generator: inout RandomGenerator, on backend: any Backend) {
        mixerNorm = RMSNorm(features: settings.width, epsilon: 1e-5, on: backend)
        mixer = kind.makeMixer(settings, generator: &generator, on: backend)
        mlpNorm = RMSNorm(features: settings.width, epsilon: 1e-5, on: backend)
        mlp = SwiGLU(width: settings.width, generator: &generator, on: backend)
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

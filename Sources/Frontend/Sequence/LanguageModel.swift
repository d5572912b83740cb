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
        let settings = AttentionProjections.Settings(width: width, heads: heads, baseHeadDimension: baseHeadDimension, parametrization: parametrization)
        blocks = (0..<layers).map { _ in SequenceBlock(mixer: mixer, settings, generator: &generator, on: backend) }
        norm = RMSNorm(features: width, epsilon: 1e-5, on: backend)
        readout = parametrization.readoutZeroInit
            ? Linear.zeros(width, vocabulary, bias: false, role: .output, on: backend)
            : Linear.fanInNormal(width, vocabulary, bias: false, role: .output, generator: &generator, on: backend)
        readoutMultiplier = 1 / parametrization.widthMultiplier(width: width)
    }

    public var children: [(name: String, module: any Module)] {
        [("embedding", embedding)] + blocks.enumerated().map { ("blocks.\($0.offset)", $0.element) } + [("norm", norm), ("readout", readout)]
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
        /// DeltaNet: the last `ShortConvolution.size − 1` projected inputs of q, k and v, each [batch, 3, width].
        var convolutionHistories: (query: Tensor, key: Tensor, value: Tensor)?
    }

    public let layers: [Layer]

    public init(layers: Int) {
        self.layers = (0..<layers).map { _ in Layer() }
    }
}

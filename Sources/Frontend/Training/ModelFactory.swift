/// A model `kiln train` can train: maps a batch's inputs to outputs (logits or values).
public protocol TaskModel: Module {
    func outputs(for batch: HostBatch, on backend: any Backend) -> Tensor
}

extension MLP: TaskModel {
    public func outputs(for batch: HostBatch, on backend: any Backend) -> Tensor {
        self(Tensor(batch.inputs, shape: [batch.rows, batch.features], on: backend))
    }
}

/// Builds models from their configuration, with weights drawn from the seed on the host.
public enum ModelFactory {
    /// - Throws: ``TaskError`` for sizes out of range (see ``ModelConfiguration/validate()``).
    public static func make(_ configuration: ModelConfiguration, on backend: any Backend) throws -> any TaskModel {
        try configuration.validate()
        var generator = RandomGenerator(seed: configuration.seed, stream: "model/\(configuration.kind.rawValue)")
        switch configuration {
        case let .mlp(mlp):
            return MLP(inputCount: mlp.inputCount, width: mlp.width, depth: mlp.depth, outputCount: mlp.targetKind.outputCount, activation: mlp.activation,
                       dropout: mlp.dropout, parametrization: mlp.parametrization, generator: &generator, on: backend)
        case let .kan(kan):
            return KANModel(architecture: kan.architecture, intervals: kan.gridIntervals, order: kan.splineOrder, gridEpsilon: kan.gridEpsilon,
                            generator: &generator, on: backend)
        case let .lm(lm):
            guard lm.heads > 0, lm.width % lm.heads == 0 else { throw TaskError("--width \(lm.width) must be a multiple of --heads \(lm.heads)") }
            return LanguageModel(vocabulary: lm.vocabulary, width: lm.width, layers: lm.layers, heads: lm.heads, baseHeadDimension: lm.baseHeadDimension,
                                 mixer: lm.mixer, parametrization: lm.parametrization, generator: &generator, on: backend)
        }
    }
}

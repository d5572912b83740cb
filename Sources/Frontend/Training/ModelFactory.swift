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
    /// - Throws: ``TaskError`` for an unknown model kind.
    public static func make(_ configuration: ModelConfiguration, on backend: any Backend) throws -> any TaskModel {
        var generator = RandomGenerator(seed: configuration.seed, stream: "model/\(configuration.kind)")
        switch configuration.kind {
        case "mlp":
            return MLP(inputCount: configuration.inputCount, width: configuration.width, depth: configuration.depth,
                       outputCount: configuration.outputCount, activation: configuration.activation, dropout: configuration.dropout,
                       parametrization: configuration.parametrization, generator: &generator, on: backend)
        case "kan":
            return KANModel(architecture: configuration.architecture ?? [configuration.inputCount, configuration.width, configuration.outputCount],
                            intervals: configuration.gridIntervals ?? 5, order: configuration.splineOrder ?? 3,
                            gridEpsilon: configuration.gridEpsilon ?? 0.02, generator: &generator, on: backend)
        case "lm":
            guard case let .classes(vocabulary) = configuration.targetKind else {
                throw TaskError("model lm needs a token task (mqar or text:FILE)")
            }
            let heads = configuration.heads ?? 4
            guard configuration.width % heads == 0 else { throw TaskError("--width \(configuration.width) must be a multiple of --heads \(heads)") }
            return LanguageModel(vocabulary: vocabulary, width: configuration.width, layers: configuration.layers ?? 2, heads: heads,
                                 baseHeadDimension: configuration.baseHeadDimension, mixer: configuration.mixer ?? .delta,
                                 parametrization: configuration.parametrization, generator: &generator, on: backend)
        default:
            throw TaskError("unknown model '\(configuration.kind)'; known models: mlp, kan, lm")
        }
    }
}

/// A fully connected layer, `y = x·Wᵀ + b`, with PyTorch's weight layout `[out, in]` and default
/// initialization: weight and bias uniform in `±1/√in` (Kaiming-uniform with a = √5).
public final class Linear: Layer {
    public let weight: Tensor
    public let bias: Tensor?

    public init(weight: Tensor, bias: Tensor?) {
        precondition(weight.rank == 2, "Linear: weight must be [out, in], got \(weight.shape)")
        if let bias { precondition(bias.shape == [weight.shape[0]], "Linear: bias \(bias.shape) does not match weight \(weight.shape)") }
        self.weight = weight
        self.bias = bias
    }

    /// A layer with PyTorch's default initialization from `generator`.
    public convenience init(_ inputCount: Int, _ outputCount: Int, bias: Bool = true, generator: inout RandomGenerator, on backend: any Backend) {
        let bound = 1 / Float(inputCount).squareRoot()
        let weight = Tensor.parameter(generator.uniform(outputCount * inputCount, low: -bound, high: bound), shape: [outputCount, inputCount], on: backend)
        let biasTensor = bias ? Tensor.parameter(generator.uniform(outputCount, low: -bound, high: bound), shape: [outputCount], on: backend) : nil
        self.init(weight: weight, bias: biasTensor)
    }

    public var inputCount: Int { weight.shape[1] }
    public var outputCount: Int { weight.shape[0] }

    public var ownParameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func callAsFunction(_ input: Tensor) -> Tensor { linear(input, weight: weight, bias: bias) }
}

/// Element-wise activation functions, by name (`--activation`).
public enum ActivationKind: String, Codable, CaseIterable, Sendable {
    case relu, gelu, silu, tanh, sigmoid

    public func apply(_ x: Tensor) -> Tensor {
        switch self {
        case .relu: x.relu()
        case .gelu: x.gelu()
        case .silu: x.silu()
        case .tanh: x.tanh()
        case .sigmoid: x.sigmoid()
        }
    }
}

/// An activation function as a layer (no parameters).
public final class Activation: Layer {
    public let kind: ActivationKind
    public init(_ kind: ActivationKind) { self.kind = kind }
    public func callAsFunction(_ input: Tensor) -> Tensor { kind.apply(input) }
}

/// Layers applied in order; children are named `0`, `1`, … (as `nn.Sequential`).
public final class Sequential: Layer {
    public let layers: [any Layer]
    public init(_ layers: [any Layer]) { self.layers = layers }
    public var children: [(name: String, module: any Module)] { layers.enumerated().map { (String($0.offset), $0.element) } }
    public func callAsFunction(_ input: Tensor) -> Tensor { layers.reduce(input) { $1($0) } }
}

/// A multilayer perceptron: `depth` hidden layers of `width` units with an activation (and optional
/// dropout) after each, then a linear readout. Parameters are `layers.0.weight`, `layers.2.weight`, … as
/// in `nn.Sequential`.
public final class MLP: Layer {
    public let layers: Sequential
    public let inputCount: Int
    public let width: Int
    public let depth: Int
    public let outputCount: Int
    public let activation: ActivationKind

    public init(
        inputCount: Int, width: Int, depth: Int, outputCount: Int, activation: ActivationKind = .relu, dropout: Float = 0,
        generator: inout RandomGenerator, on backend: any Backend
    ) {
        precondition(inputCount > 0 && width > 0 && depth >= 0 && outputCount > 0, "MLP: sizes must be positive (input \(inputCount), width \(width), depth \(depth), output \(outputCount))")
        var layers: [any Layer] = []
        var features = inputCount
        for _ in 0..<depth {
            layers.append(Linear(features, width, generator: &generator, on: backend))
            layers.append(Activation(activation))
            if dropout > 0 { layers.append(Dropout(probability: dropout, seed: generator.next())) }
            features = width
        }
        layers.append(Linear(features, outputCount, generator: &generator, on: backend))
        self.layers = Sequential(layers)
        self.inputCount = inputCount
        self.width = width
        self.depth = depth
        self.outputCount = outputCount
        self.activation = activation
    }

    /// The linear layers from input to readout.
    public var linearLayers: [Linear] { layers.layers.compactMap { $0 as? Linear } }

    public var children: [(name: String, module: any Module)] { [("layers", layers)] }
    public func callAsFunction(_ input: Tensor) -> Tensor { layers(input) }
}

/// A table of learned vectors looked up by index, initialized from N(0, 1) like `nn.Embedding`.
public final class Embedding: Module {
    public let weight: Tensor

    public init(count: Int, features: Int, generator: inout RandomGenerator, on backend: any Backend) {
        weight = Tensor.parameter(generator.normal(count * features), shape: [count, features], on: backend)
    }

    public var ownParameters: [(name: String, tensor: Tensor)] { [("weight", weight)] }
    public func callAsFunction(_ indices: IndexTensor) -> Tensor { embeddingLookup(weight, indices: indices) }
}

/// RMSNorm over the last axis with a learned gain initialized to 1.
public final class RMSNorm: Layer {
    public let weight: Tensor
    public let epsilon: Float

    public init(features: Int, epsilon: Float = 1e-6, on backend: any Backend) {
        weight = Tensor.parameter([Float](repeating: 1, count: features), shape: [features], on: backend)
        self.epsilon = epsilon
    }

    public var ownParameters: [(name: String, tensor: Tensor)] { [("weight", weight)] }
    public func callAsFunction(_ input: Tensor) -> Tensor { rmsNorm(input, weight: weight, epsilon: epsilon) }
}

/// LayerNorm over the last axis with a learned gain (1) and bias (0).
public final class LayerNorm: Layer {
    public let weight: Tensor
    public let bias: Tensor
    public let epsilon: Float

    public init(features: Int, epsilon: Float = 1e-5, on backend: any Backend) {
        weight = Tensor.parameter([Float](repeating: 1, count: features), shape: [features], on: backend)
        bias = Tensor.parameter([Float](repeating: 0, count: features), shape: [features], on: backend)
        self.epsilon = epsilon
    }

    public var ownParameters: [(name: String, tensor: Tensor)] { [("weight", weight), ("bias", bias)] }
    public func callAsFunction(_ input: Tensor) -> Tensor { layerNorm(input, weight: weight, bias: bias, epsilon: epsilon) }
}

/// Inverted dropout, active only in training mode. Its masks depend on `(seed, step, call)`, so a resumed
/// run draws the same masks as an uninterrupted one.
public final class Dropout: Layer, TrainingModeDependent {
    public let probability: Float
    public let seed: UInt64
    public var isTraining = true
    public var step = 0 {
        didSet { callsThisStep = 0 }
    }
    private var callsThisStep: UInt64 = 0

    public init(probability: Float, seed: UInt64) {
        precondition(probability >= 0 && probability < 1, "Dropout: probability \(probability) must be in [0, 1)")
        self.probability = probability
        self.seed = seed
    }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        guard isTraining, probability > 0 else { return input }
        defer { callsThisStep += 1 }
        // Counter ranges: 2^32 elements per call, 2^8 calls per step, then the step.
        precondition(callsThisStep < 256, "Dropout: more than 256 calls in one step")
        let offset = UInt64(step) << 40 | callsThisStep << 32
        return dropout(input, probability: probability, seed: seed, offset: offset)
    }
}

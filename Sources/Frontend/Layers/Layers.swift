/// A fully connected layer, `y = x·Wᵀ + b`, with PyTorch's weight layout `[out, in]`.
///
/// Its μP role is the weight's (input, hidden or output, by how its fan-in and fan-out grow with width);
/// the bias is a vector-like ``ParameterRole/bias``, or the readout's fixed-size ``ParameterRole/outputBias``.
public final class Linear: Layer {
    public let weight: Tensor
    public let bias: Tensor?
    /// The weight's μP role.
    public let role: ParameterRole

    public init(weight: Tensor, bias: Tensor?, role: ParameterRole) {
        precondition(weight.rank == 2, "Linear: weight must be [out, in], got \(weight.shape)")
        if let bias { precondition(bias.shape == [weight.shape[0]], "Linear: bias \(bias.shape) does not match weight \(weight.shape)") }
        self.weight = weight
        self.bias = bias
        self.role = role
    }

    /// A layer with PyTorch's default initialization from `generator`: weight and bias uniform in
    /// `±1/√in` (Kaiming-uniform with a = √5).
    public convenience init(_ inputCount: Int, _ outputCount: Int, bias: Bool = true, role: ParameterRole, generator: inout RandomGenerator, on backend: any Backend) {
        let bound = 1 / Float(inputCount).squareRoot()
        let weight = Tensor.parameter(generator.uniform(outputCount * inputCount, low: -bound, high: bound), shape: [outputCount, inputCount], on: backend)
        let biasTensor = bias ? Tensor.parameter(generator.uniform(outputCount, low: -bound, high: bound), shape: [outputCount], on: backend) : nil
        self.init(weight: weight, bias: biasTensor, role: role)
    }

    /// A layer with weight and bias drawn from N(0, 1/fan_in) (weight first), the initialization of every
    /// parametrized model.
    public static func fanInNormal(_ inputCount: Int, _ outputCount: Int, bias: Bool, role: ParameterRole,
                                   generator: inout RandomGenerator, on backend: any Backend) -> Linear {
        let weight = Parametrization.fanInNormal(outputCount * inputCount, fanIn: inputCount, generator: &generator)
        let biasValues = bias ? Parametrization.fanInNormal(outputCount, fanIn: inputCount, generator: &generator) : nil
        return Linear(weight: Tensor.parameter(weight, shape: [outputCount, inputCount], on: backend),
                      bias: biasValues.map { Tensor.parameter($0, shape: [outputCount], on: backend) }, role: role)
    }

    /// A layer whose weight and bias start at zero (μP's readout).
    public static func zeros(_ inputCount: Int, _ outputCount: Int, bias: Bool, role: ParameterRole, on backend: any Backend) -> Linear {
        Linear(weight: Tensor.parameter([Float](repeating: 0, count: outputCount * inputCount), shape: [outputCount, inputCount], on: backend),
               bias: bias ? Tensor.parameter([Float](repeating: 0, count: outputCount), shape: [outputCount], on: backend) : nil, role: role)
    }

    public var inputCount: Int { weight.shape[1] }
    public var outputCount: Int { weight.shape[0] }

    public var ownParameters: [Parameter] {
        [Parameter("weight", weight, role: role)] + (bias.map { [Parameter("bias", $0, role: role == .output ? .outputBias : .bias)] } ?? [])
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
///
/// Without a parametrization, layers use PyTorch's default initialization. With one, weights and biases
/// are drawn from N(0, 1/fan_in), the readout starts at zero (by default) and, under μP, its input is
/// multiplied by 1/m (see ``Parametrization``).
public final class MLP: Layer, ParametrizedModel {
    public let layers: Sequential
    public let inputCount: Int
    public let width: Int
    public let depth: Int
    public let outputCount: Int
    public let activation: ActivationKind
    /// The readout's forward multiplier (1/m under μP, else 1).
    public let readoutMultiplier: Float

    public init(
        inputCount: Int, width: Int, depth: Int, outputCount: Int, activation: ActivationKind = .relu, dropout: Float = 0,
        parametrization: Parametrization? = nil, generator: inout RandomGenerator, on backend: any Backend
    ) {
        precondition(inputCount > 0 && width > 0 && depth >= 0 && outputCount > 0, "MLP: sizes must be positive (input \(inputCount), width \(width), depth \(depth), output \(outputCount))")
        // μP roles by position: the first layer's fan-in is fixed (input), the readout's fan-out (output).
        let linearCount = depth + 1
        func makeLinear(_ fanIn: Int, _ fanOut: Int, position: Int, generator: inout RandomGenerator) -> Linear {
            let role: ParameterRole = position == linearCount - 1 ? .output : (position == 0 ? .input : .hidden)
            guard let parametrization else { return Linear(fanIn, fanOut, role: role, generator: &generator, on: backend) }
            // A zero-initialized readout zeroes its bias too, as microsoft/mup's MuReadout does, so the
            // logits start at exactly zero at every width.
            if role == .output && parametrization.readoutZeroInit { return Linear.zeros(fanIn, fanOut, bias: true, role: role, on: backend) }
            return Linear.fanInNormal(fanIn, fanOut, bias: true, role: role, generator: &generator, on: backend)
        }
        var layers: [any Layer] = []
        var features = inputCount
        for position in 0..<depth {
            layers.append(makeLinear(features, width, position: position, generator: &generator))
            layers.append(Activation(activation))
            if dropout > 0 { layers.append(Dropout(probability: dropout, seed: generator.next())) }
            features = width
        }
        layers.append(makeLinear(features, outputCount, position: depth, generator: &generator))
        self.layers = Sequential(layers)
        self.inputCount = inputCount
        self.width = width
        self.depth = depth
        self.outputCount = outputCount
        self.activation = activation
        self.readoutMultiplier = depth > 0 ? 1 / (parametrization?.widthMultiplier(width: width) ?? 1) : 1
    }

    /// The linear layers from input to readout.
    public var linearLayers: [Linear] { layers.layers.compactMap { $0 as? Linear } }

    public var children: [(name: String, module: any Module)] { [("layers", layers)] }

    public func callAsFunction(_ input: Tensor) -> Tensor { forward(input, recorder: nil) }

    /// The forward pass; with a recorder, records each linear layer's output (pre-activations, then the
    /// logits) under its parameter prefix, for coordinate checks.
    public func forward(_ input: Tensor, recorder: ActivationRecorder?) -> Tensor {
        var x = input
        let all = layers.layers
        for (index, layer) in all.enumerated() {
            if index == all.count - 1 && readoutMultiplier != 1 { x = x * readoutMultiplier }
            x = layer(x)
            if layer is Linear { recorder?.record(index == all.count - 1 ? "logits" : "layers.\(index)", x) }
        }
        return x
    }
}

/// A table of learned vectors looked up by index, initialized from N(0, 1) like `nn.Embedding`.
public final class Embedding: Module {
    public let weight: Tensor

    public init(count: Int, features: Int, generator: inout RandomGenerator, on backend: any Backend) {
        weight = Tensor.parameter(generator.normal(count * features), shape: [count, features], on: backend)
    }

    public var ownParameters: [Parameter] { [Parameter("weight", weight, role: .embedding)] }
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

    public var ownParameters: [Parameter] { [Parameter("weight", weight, role: .gain)] }
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

    public var ownParameters: [Parameter] { [Parameter("weight", weight, role: .gain), Parameter("bias", bias, role: .bias)] }
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
    /// The row of the global batch where this process's inputs start (a data-parallel rank's shard; 0
    /// alone): a shard's masks are then the rows of the masks one process draws for the whole batch.
    public var firstRow = 0

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
        var offset = UInt64(step) << 40 | callsThisStep << 32
        if firstRow > 0, let rows = input.shape.first, rows > 0 { offset += UInt64(firstRow * (input.elementCount / rows)) }
        return dropout(input, probability: probability, seed: seed, offset: offset)
    }
}

/// Collects intermediate tensors of a forward pass by name (coordinate checks look at their sizes).
public final class ActivationRecorder {
    public private(set) var records: [(name: String, tensor: Tensor)] = []
    public init() {}
    public func record(_ name: String, _ tensor: Tensor) { records.append((name, tensor)) }
}

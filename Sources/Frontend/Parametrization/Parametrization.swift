/// How a model's initialization, forward multipliers and per-parameter learning rates depend on its width.
///
/// - ``Kind/sp``, the standard parametrization: every width is treated like the base width.
/// - ``Kind/mup``, the Maximal Update Parametrization (Yang & Hu, "Feature Learning in Infinite-Width
///   Neural Networks", 2021; "Tensor Programs V", 2022, Table 8), as microsoft/mup implements it. With
///   the width multiplier m = width / baseWidth:
///   - input weights and all biases: init variance 1/fan_in, multiplier 1; Adam LR η; SGD LR η·m (the
///     readout's bias, whose size does not grow, keeps LR η as in mup);
///   - hidden weights: init variance 1/fan_in; Adam LR η/m; SGD LR η;
///   - output (readout) weights: zero init by default, forward multiplier 1/m; Adam LR η; SGD LR η·m;
///   - attention logits scaled by 1/d_head instead of 1/√d_head (normalized to agree at the base width);
///   - decoupled weight decay scaled by m where the LR is divided by m, so lr·wd per group stays as at the
///     base width; Adam's ε scaled by 1/m (Adam-atan2 has none).
///
/// Both use the same initializers, so at `width == baseWidth` μP and SP build the same model and train it
/// the same way; they differ only in how that model changes with width.
public struct Parametrization: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, CaseIterable, Sendable {
        case sp
        case mup
    }

    public var kind: Kind
    /// The width at which μP and SP coincide (`--base-width`).
    public var baseWidth: Int
    /// Whether readout weights start at zero (μP's recommendation); otherwise N(0, 1/fan_in).
    public var readoutZeroInit: Bool

    public init(kind: Kind = .sp, baseWidth: Int = 64, readoutZeroInit: Bool = true) {
        self.kind = kind
        self.baseWidth = baseWidth
        self.readoutZeroInit = readoutZeroInit
    }

    /// m = width / baseWidth under μP; 1 under SP.
    public func widthMultiplier(width: Int) -> Float {
        kind == .mup ? Float(width) / Float(baseWidth) : 1
    }

    /// The multiplier on attention logits (q·k): 1/√d_head under SP; under μP it falls as 1/d_head,
    /// normalized to equal SP's at the base width, `√(d_base) / d_head` (microsoft/mup's GPT-2 example
    /// uses 8/d_head with d_base = 64).
    ///
    /// - Parameters:
    ///   - headDimension: features per head at this width.
    ///   - baseHeadDimension: features per head at the base width.
    public func attentionScale(headDimension: Int, baseHeadDimension: Int) -> Float {
        kind == .mup ? Float(baseHeadDimension).squareRoot() / Float(headDimension) : 1 / Float(headDimension).squareRoot()
    }

    /// The factor on the ε of a norm that follows a q·k-scaled product: the square of `attentionScale`'s
    /// ratio to SP's, d_base / d_head under μP, 1 under SP. A norm divides out the scale itself, so without
    /// this the scale would act only through ε, which takes over as heads widen under μP.
    public func attentionNormEpsilonScale(headDimension: Int, baseHeadDimension: Int) -> Float {
        kind == .mup ? Float(baseHeadDimension) / Float(headDimension) : 1
    }

    /// The role-specific scales of the optimizer's learning rate, weight decay and ε.
    public func groupScales(role: ParameterRole, width: Int, optimizer: OptimizerKind) -> (learningRate: Float, weightDecay: Float, epsilon: Float) {
        let m = widthMultiplier(width: width)
        let decoupled = optimizer == .adamw || optimizer == .adamAtan2
        switch optimizer {
        case .sgd:
            switch role {
            case .hidden, .outputBias: return (1, 1, 1)
            case .input, .output, .bias, .gain, .embedding: return (m, 1, 1)
            }
        case .adam, .adamw, .adamAtan2:
            switch role {
            case .hidden: return (1 / m, decoupled ? m : 1, 1 / m)
            case .input, .output, .bias, .gain, .embedding: return (1, 1, 1 / m)
            case .outputBias: return (1, 1, 1)
            }
        case .lbfgs:
            return (1, 1, 1)
        }
    }

    /// One optimizer group per role present, with that role's scales.
    public func parameterGroups(_ parameters: [(name: String, tensor: Tensor, role: ParameterRole)], width: Int, optimizer: OptimizerKind) -> [ParameterGroup] {
        ParameterRole.allCases.compactMap { role in
            let members = parameters.filter { $0.role == role }.map { ($0.name, $0.tensor) }
            guard !members.isEmpty else { return nil }
            let scales = groupScales(role: role, width: width, optimizer: optimizer)
            return ParameterGroup(name: role.rawValue, parameters: members, learningRateScale: scales.learningRate,
                                  weightDecayScale: scales.weightDecay, epsilonScale: scales.epsilon)
        }
    }

    /// N(0, 1/fan_in) samples for a weight `[fanOut, fanIn]` (or a bias of a layer with that fan-in).
    static func fanInNormal(_ count: Int, fanIn: Int, generator: inout RandomGenerator) -> [Float] {
        generator.normal(count, standardDeviation: 1 / Float(max(fanIn, 1)).squareRoot())
    }
}

/// What a parameter is to μP: how its fan-in and fan-out grow with width decides its scaling.
public enum ParameterRole: String, Codable, CaseIterable, Sendable {
    /// Fan-in fixed, fan-out grows (the first layer, embeddings' projections).
    case input
    /// Fan-in and fan-out grow.
    case hidden
    /// Fan-in grows, fan-out fixed (the readout).
    case output
    /// Biases of width-sized layers (vector-like: one dimension grows).
    case bias
    /// The readout's bias: a fixed size, so it keeps the base learning rate (scalar-like in mup's terms).
    case outputBias
    /// Normalization gains (width-sized vectors, treated like biases).
    case gain
    /// Embedding tables (fan-in is the vocabulary; treated like input weights).
    case embedding
}

/// A model whose every parameter has a μP role, given where the parameter is created (`Linear(…, role:)`,
/// a norm's gain, an embedding table).
public protocol ParametrizedModel: Module {
    /// The width μP scales by.
    var width: Int { get }
}

extension ParametrizedModel {
    /// Every parameter with its dotted name and its role, read from the model tree, in parameter order.
    public var parameterRoles: [(name: String, tensor: Tensor, role: ParameterRole)] {
        declaredParameters.map { parameter in
            guard let role = parameter.role else { preconditionFailure("\(type(of: self)): parameter \(parameter.name) was created without a μP role") }
            return (parameter.name, parameter.tensor, role)
        }
    }
}

import Foundation

/// The optimizers `kiln train --optimizer` offers.
public enum OptimizerKind: String, Codable, CaseIterable, Sendable {
    case sgd
    case adam
    case adamw
    case adamAtan2 = "adam-atan2"
    /// L-BFGS with a strong-Wolfe line search (``LBFGS``); full-batch, driven by a closure.
    case lbfgs
}

/// Hyperparameters of an optimizer (PyTorch's defaults where it has them).
public struct OptimizerSettings: Codable, Equatable, Sendable {
    public var kind: OptimizerKind
    /// SGD momentum (0 disables it) and whether it is Nesterov momentum.
    public var momentum: Float = 0
    public var nesterov = false
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    /// L2 penalty (SGD, Adam) or decoupled decay (AdamW, Adam-atan2).
    public var weightDecay: Float = 0
    /// Adam-atan2's scale `a` and the divisor `b` inside the arctangent.
    public var atan2Scale: Float = 1.27
    public var atan2Divisor: Float = 1
    /// Clip gradients to this global L2 norm before each update (nil: no clipping).
    public var maximumGradientNorm: Float?

    public init(kind: OptimizerKind) {
        self.kind = kind
        if kind == .adamw { weightDecay = 0.01 }
    }

    /// The backend update rule for one parameter group.
    func rule(for group: ParameterGroup) -> UpdateRule {
        let decay = weightDecay * group.weightDecayScale
        switch kind {
        case .sgd: return .sgd(momentum: momentum, nesterov: nesterov, weightDecay: decay)
        case .adam: return .adam(beta1: beta1, beta2: beta2, epsilon: epsilon * group.epsilonScale, weightDecay: decay, decoupledWeightDecay: false)
        case .adamw: return .adam(beta1: beta1, beta2: beta2, epsilon: epsilon * group.epsilonScale, weightDecay: decay, decoupledWeightDecay: true)
        case .adamAtan2: return .adamAtan2(beta1: beta1, beta2: beta2, a: atan2Scale, b: atan2Divisor, weightDecay: decay)
        case .lbfgs: preconditionFailure("L-BFGS is not a per-parameter update rule; use the LBFGS optimizer")
        }
    }
}

/// Parameters that share learning-rate and weight-decay multipliers (μP assigns one group per role).
public struct ParameterGroup {
    public var name: String
    public var parameters: [(name: String, tensor: Tensor)]
    /// This group's learning rate is the schedule's rate times this.
    public var learningRateScale: Float
    /// This group's weight decay is the optimizer's times this.
    public var weightDecayScale: Float
    /// This group's Adam ε is the optimizer's times this.
    public var epsilonScale: Float

    public init(name: String, parameters: [(name: String, tensor: Tensor)], learningRateScale: Float = 1, weightDecayScale: Float = 1, epsilonScale: Float = 1) {
        self.name = name
        self.parameters = parameters
        self.learningRateScale = learningRateScale
        self.weightDecayScale = weightDecayScale
        self.epsilonScale = epsilonScale
    }
}

/// Updates parameters from their gradients with fused device kernels: one kernel per parameter tensor,
/// no host round trip. Gradient clipping computes the global norm and the clip factor on the device too.
///
/// ```swift
/// let optimizer = Optimizer(settings: OptimizerSettings(kind: .adam), groups: [ParameterGroup(name: "all", parameters: model.parameters)])
/// loss.backward()
/// optimizer.step(learningRate: 1e-3)
/// model.zeroGradients()
/// ```
public final class Optimizer {
    public let settings: OptimizerSettings
    public let groups: [ParameterGroup]
    /// Updates applied so far (Adam's bias corrections use it).
    public private(set) var stepCount = 0
    /// The global gradient norm of the last clipped step, on the device (read it only when logging).
    public private(set) var lastGradientNorm: Tensor?
    /// Per-parameter state tensors, in the order of `groups` and their parameters.
    private var states: [[Tensor]]

    public init(settings: OptimizerSettings, groups: [ParameterGroup]) {
        self.settings = settings
        self.groups = groups
        let stateCount = settings.rule(for: groups.first ?? ParameterGroup(name: "", parameters: [])).stateCount
        states = groups.flatMap(\.parameters).map { _, tensor in
            (0..<stateCount).map { _ in Tensor.zeros(tensor.shape, on: tensor.backend) }
        }
    }

    /// Applies one update with the given base learning rate to every parameter that has a gradient.
    public func step(learningRate: Float) {
        stepCount += 1
        let all = groups.flatMap { group in group.parameters.map { (group, $0.tensor) } }
        let scale = settings.maximumGradientNorm.flatMap { clipFactor(maximumNorm: $0, tensors: all.map(\.1)) }
        for (index, (group, parameter)) in all.enumerated() {
            guard let gradient = parameter.gradient else { continue }
            let update = OptimizerUpdate(
                settings.rule(for: group), count: parameter.elementCount, learningRate: learningRate * group.learningRateScale, step: stepCount)
            parameter.backend.optimizerStep(
                update, parameter: parameter.storage, gradient: gradient.storage, state: states[index].map(\.storage), gradientScale: scale?.storage)
        }
    }

    /// `min(1, maximumNorm / (‖g‖ + 1e-6))` over all gradients, as a one-element device tensor.
    private func clipFactor(maximumNorm: Float, tensors: [Tensor]) -> Tensor? {
        let gradients = tensors.compactMap(\.gradient)
        guard let first = gradients.first else { return nil }
        let backend = first.backend
        let squares = backend.allocate(gradients.count)
        let partial = backend.allocate(1)
        for (index, gradient) in gradients.enumerated() {
            backend.reduce(.sumOfSquares, gradient.storage, into: partial, shape: ReduceShape(outer: 1, length: gradient.elementCount, inner: 1))
            backend.copy(partial, offset: 0, to: squares, offset: index, count: 1)
        }
        let norm = Tensor(uninitialized: [], on: backend)
        backend.reduce(.sum, squares, into: norm.storage, shape: ReduceShape(outer: 1, length: gradients.count, inner: 1))
        backend.unary(.sqrt, norm.storage, into: norm.storage, count: 1)
        lastGradientNorm = norm
        let factor = Tensor(uninitialized: [], on: backend)
        backend.unary(.affine(scale: 1, shift: 1e-6), norm.storage, into: factor.storage, count: 1)
        backend.unary(.reciprocal, factor.storage, into: factor.storage, count: 1)
        backend.unary(.scale(maximumNorm), factor.storage, into: factor.storage, count: 1)
        backend.unary(.clamp(low: 0, high: 1), factor.storage, into: factor.storage, count: 1)
        return factor
    }

    /// State tensors with checkpoint names: `optimizer.<parameter>.momentum`, `.exp_avg`, `.exp_avg_sq`.
    public var namedState: [(name: String, tensor: Tensor)] {
        let names = groups.flatMap(\.parameters).map(\.name)
        let suffixes = settings.kind == .sgd ? ["momentum"] : ["exp_avg", "exp_avg_sq"]
        return zip(names, states).flatMap { name, tensors in
            zip(suffixes, tensors).map { ("optimizer.\(name).\($0)", $1) }
        }
    }

    /// Restores state tensors and the step count from a checkpoint.
    ///
    /// - Throws: ``ModelLoadingError`` when a state tensor is missing or has another shape.
    public func load(state values: [String: (shape: [Int], values: [Float])], stepCount: Int) throws(ModelLoadingError) {
        for (name, tensor) in namedState {
            guard let entry = values[name] else { throw .missingTensor(name) }
            guard entry.shape == tensor.shape else { throw .shapeMismatch(name, expected: tensor.shape, found: entry.shape) }
            tensor.assign(entry.values)
        }
        self.stepCount = stepCount
    }
}

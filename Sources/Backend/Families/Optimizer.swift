import Foundation

// The optimizer family: one fused update of a parameter tensor from its gradient and the rule's state.
// Frontend: Sources/Frontend/Optimizers/Optimizer.swift · CPU: CPU/CPUBackend+Optimizer.swift,
// CKilnCPU/optimizer.c · OpenCL: OpenCL/OpenCLBackend+Optimizer.swift, Kernels/optimizer.cl · float64:
// Reference/Reference+Optimizer.swift.

/// Fused optimizer updates on a device.
public protocol OptimizerKernels {
    /// One update of `update.count` parameters in place (see ``UpdateRule`` for each rule's math).
    ///
    /// - Parameters:
    ///   - update: the rule, the element count, this step's learning rate and the 1-based step number.
    ///   - parameter: the parameters, updated in place.
    ///   - gradient: their gradient (not modified).
    ///   - state: the rule's per-parameter state buffers, `rule.stateCount` of them (momentum; Adam's first
    ///     and second moments), updated in place.
    ///   - gradientScale: an optional one-element buffer the gradient is multiplied by first (gradient
    ///     clipping computed on the device, so the host never waits for the norm).
    func optimizerStep(_ update: OptimizerUpdate, parameter: DeviceBuffer, gradient: DeviceBuffer, state: [DeviceBuffer], gradientScale: DeviceBuffer?)
}

/// An optimizer's update rule with its hyperparameters. With `g` the (scaled) gradient, `η` the learning
/// rate and `t` the 1-based step:
public enum UpdateRule: Sendable, Equatable {
    /// SGD with optional momentum, PyTorch's form: `g ← g + λθ`, `b ← μb + g`, `θ ← θ − η·(g + μb)` with
    /// Nesterov and `θ ← θ − η·b` without (`θ ← θ − η·g` when `μ = 0`, which keeps no state).
    case sgd(momentum: Float, nesterov: Bool, weightDecay: Float)
    /// Adam (Kingma & Ba, 2015): `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
    /// `θ ← θ − η·m̂ / (√v̂ + ε)` with `m̂ = m / (1−β₁ᵗ)`, `v̂ = v / (1−β₂ᵗ)`. With `decoupledWeightDecay` it
    /// is AdamW (Loshchilov & Hutter, 2019): `θ ← θ − η·λ·θ` before the Adam step; otherwise `λθ` is added
    /// to the gradient (PyTorch's `Adam(weight_decay=)`).
    case adam(beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float, decoupledWeightDecay: Bool)
    /// Adam-atan2 (Everett et al., 2024): Adam's moments, then `θ ← θ·(1 − ηλ) − η·a·atan2(m̂, b·√v̂)`,
    /// scale-invariant and free of ε.
    case adamAtan2(beta1: Float, beta2: Float, a: Float, b: Float, weightDecay: Float)

    /// How many state buffers (each as large as the parameter) the rule keeps.
    public var stateCount: Int {
        switch self {
        case let .sgd(momentum, _, _): momentum == 0 ? 0 : 1
        case .adam, .adamAtan2: 2
        }
    }
}

/// One optimizer step over one parameter tensor: what ``OptimizerKernels/optimizerStep(_:parameter:gradient:state:gradientScale:)``
/// applies.
public struct OptimizerUpdate: Sendable, Equatable {
    public var rule: UpdateRule
    /// Parameters updated.
    public var count: Int
    /// This step's learning rate.
    public var learningRate: Float
    /// The 1-based step number, for Adam's bias corrections.
    public var step: Int

    public init(_ rule: UpdateRule, count: Int, learningRate: Float, step: Int) {
        self.rule = rule
        self.count = count
        self.learningRate = learningRate
        self.step = step
    }

    /// Traps with the op's name and the sizes when the state does not fit the rule or a buffer is too
    /// small; every backend's `optimizerStep` starts with it.
    func validate(parameter: DeviceBuffer, gradient: DeviceBuffer, state: [DeviceBuffer], gradientScale: DeviceBuffer?) {
        precondition(state.count == rule.stateCount, "optimizerStep: \(rule) needs \(rule.stateCount) state buffers, got \(state.count)")
        precondition(count >= 0 && ([parameter, gradient] + state).allSatisfy { $0.count >= count }, "optimizerStep: count \(count) exceeds a buffer")
        precondition(step >= 1, "optimizerStep: steps count from 1, got \(step)")
        precondition(gradientScale.map { $0.count >= 1 } ?? true, "optimizerStep: the gradient scale buffer is empty")
    }

    /// The scalars the CPU loop and the OpenCL kernel take, computed once on the host; bias corrections
    /// in double precision.
    enum Kernel {
        case sgd(learningRate: Float, momentum: Float, nesterov: Bool, weightDecay: Float)
        /// `stepSize = η / (1 − β₁ᵗ)`, `correction2 = 1 / √(1 − β₂ᵗ)`; `decay` is `1 − ηλ` for AdamW and
        /// 1 otherwise, `l2` is `λ` for Adam and 0 for AdamW: `θ ← θ·decay − stepSize·m / (√v·correction2 + ε)`.
        case adam(stepSize: Float, beta1: Float, beta2: Float, epsilon: Float, correction2: Float, decay: Float, l2: Float)
        /// `θ ← θ·decay − η·a·atan2(m·correction1, b·√v·correction2)`, `correction1 = 1 / (1 − β₁ᵗ)`.
        case adamAtan2(learningRate: Float, beta1: Float, beta2: Float, correction1: Float, correction2: Float, a: Float, b: Float, decay: Float)
    }

    var kernel: Kernel {
        let first = 1 / (1 - pow(Double(rule.beta1), Double(step)))
        let secondRoot = 1 / (1 - pow(Double(rule.beta2), Double(step))).squareRoot()
        switch rule {
        case let .sgd(momentum, nesterov, weightDecay):
            return .sgd(learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
        case let .adam(beta1, beta2, epsilon, weightDecay, decoupled):
            return .adam(
                stepSize: Float(Double(learningRate) * first), beta1: beta1, beta2: beta2, epsilon: epsilon,
                correction2: Float(secondRoot), decay: decoupled ? 1 - learningRate * weightDecay : 1, l2: decoupled ? 0 : weightDecay)
        case let .adamAtan2(beta1, beta2, a, b, weightDecay):
            return .adamAtan2(
                learningRate: learningRate, beta1: beta1, beta2: beta2, correction1: Float(first), correction2: Float(secondRoot),
                a: a, b: b, decay: 1 - learningRate * weightDecay)
        }
    }
}

extension UpdateRule {
    /// Adam's moment decays (zero for SGD, which has none).
    var beta1: Float {
        switch self {
        case .sgd: 0
        case let .adam(beta1, _, _, _, _), let .adamAtan2(beta1, _, _, _, _): beta1
        }
    }

    var beta2: Float {
        switch self {
        case .sgd: 0
        case let .adam(_, beta2, _, _, _), let .adamAtan2(_, beta2, _, _, _): beta2
        }
    }
}

import Foundation

// The optimizer family in float64 (see Families/Optimizer.swift), written as the papers and PyTorch
// write the updates, with bias-corrected moments rather than the backends' folded scalars.

extension Reference {
    /// ``OptimizerKernels/optimizerStep(_:parameter:gradient:state:gradientScale:)``: one update of every
    /// element with `g = gradient · gradientScale` (or `gradient`) and `η = update.learningRate`:
    /// - SGD: `g += λθ`; with momentum `b ← μb + g` and `g ← g + μb` (Nesterov) or `g ← b`; `θ ← θ − ηg`.
    /// - Adam: `g += λθ` (or, decoupled, `θ ← θ·(1 − ηλ)` first); `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
    ///   `θ ← θ − η·m̂ / (√v̂ + ε)` with `m̂ = m / (1 − β₁ᵗ)`, `v̂ = v / (1 − β₂ᵗ)`.
    /// - Adam-atan2: `θ ← θ·(1 − ηλ)`; Adam's moments; `θ ← θ − η·a·atan2(m̂, b·√v̂)`.
    ///
    /// Returns the parameters and the state (`update.rule.stateCount` arrays) after the step.
    public static func optimizerStep(_ update: OptimizerUpdate, parameter: [Double], gradient: [Double], state: [[Double]], gradientScale: Double?) -> (parameter: [Double], state: [[Double]]) {
        precondition(state.count == update.rule.stateCount, "Reference.optimizerStep: \(update.rule) needs \(update.rule.stateCount) state arrays")
        var theta = parameter, moments = state
        let learningRate = Double(update.learningRate), t = Double(update.step)
        for i in 0..<update.count {
            var g = gradient[i] * (gradientScale ?? 1)
            switch update.rule {
            case let .sgd(momentum, nesterov, weightDecay):
                g += Double(weightDecay) * theta[i]
                if momentum != 0 {
                    moments[0][i] = Double(momentum) * moments[0][i] + g
                    g = nesterov ? g + Double(momentum) * moments[0][i] : moments[0][i]
                }
                theta[i] -= learningRate * g
            case let .adam(beta1, beta2, epsilon, weightDecay, decoupled):
                if decoupled { theta[i] *= 1 - learningRate * Double(weightDecay) } else { g += Double(weightDecay) * theta[i] }
                moments[0][i] = Double(beta1) * moments[0][i] + (1 - Double(beta1)) * g
                moments[1][i] = Double(beta2) * moments[1][i] + (1 - Double(beta2)) * g * g
                let mHat = moments[0][i] / (1 - pow(Double(beta1), t))
                let vHat = moments[1][i] / (1 - pow(Double(beta2), t))
                theta[i] -= learningRate * mHat / (vHat.squareRoot() + Double(epsilon))
            case let .adamAtan2(beta1, beta2, a, b, weightDecay):
                theta[i] *= 1 - learningRate * Double(weightDecay)
                moments[0][i] = Double(beta1) * moments[0][i] + (1 - Double(beta1)) * g
                moments[1][i] = Double(beta2) * moments[1][i] + (1 - Double(beta2)) * g * g
                let mHat = moments[0][i] / (1 - pow(Double(beta1), t))
                let vHat = moments[1][i] / (1 - pow(Double(beta2), t))
                theta[i] -= learningRate * Double(a) * atan2(mHat, Double(b) * vHat.squareRoot())
            }
        }
        return (theta, moments)
    }
}

internal import CKilnCPU

// The optimizer family on the CPU: one pass per parameter tensor, split across cores; the loops are
// `CKilnCPU/optimizer.c`.

extension CPUBackend {
    public func optimizerStep(_ update: OptimizerUpdate, parameter: DeviceBuffer, gradient: DeviceBuffer, state: [DeviceBuffer], gradientScale: DeviceBuffer?) {
        update.validate(parameter: parameter, gradient: gradient, state: state, gradientScale: gradientScale)
        guard update.count > 0, ready(parameter, gradient), state.allSatisfy({ ready($0) }) else { return }
        if let gradientScale, !ready(gradientScale) { return }
        let scale: Float = gradientScale.map { floats($0)[0] } ?? 1
        // Threads own disjoint element ranges of the parameter and its state.
        nonisolated(unsafe) let p = floats(parameter), g = floats(gradient)
        nonisolated(unsafe) let s0 = state.first.map { floats($0) }, s1 = state.count > 1 ? floats(state[1]) : nil
        let kernel = update.kernel
        Parallel.forRanges(update.count, grain: 16_384) { range in
            let i = range.lowerBound, n = range.count
            switch kernel {
            case let .sgd(learningRate, momentum, nesterov, weightDecay):
                kiln_sgd_step(n, learningRate, momentum, nesterov ? 1 : 0, weightDecay, scale, p + i, g + i, s0.map { $0 + i })
            case let .adam(stepSize, beta1, beta2, epsilon, correction2, decay, l2):
                kiln_adam_step(n, stepSize, beta1, beta2, epsilon, correction2, decay, l2, scale, p + i, g + i, s0! + i, s1! + i)
            case let .adamAtan2(learningRate, beta1, beta2, correction1, correction2, a, b, decay):
                kiln_adam_atan2_step(n, learningRate, beta1, beta2, correction1, correction2, a, b, decay, scale, p + i, g + i, s0! + i, s1! + i)
            }
        }
    }
}

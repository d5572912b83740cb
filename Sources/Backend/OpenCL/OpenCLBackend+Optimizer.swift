// The optimizer family on OpenCL devices: `Kernels/optimizer.cl`, one kernel launch per parameter tensor
// with the step's scalars (OptimizerUpdate.kernel) as arguments.

extension OpenCLBackend {
    func loadOptimizerKernels() throws(BackendError) {
        try loadKernels(from: "optimizer.cl", options: "", names: ["sgd_step", "adam_step", "adam_atan2_step"])
    }

    public func optimizerStep(_ update: OptimizerUpdate, parameter: DeviceBuffer, gradient: DeviceBuffer, state: [DeviceBuffer], gradientScale: DeviceBuffer?) {
        update.validate(parameter: parameter, gradient: gradient, state: state, gradientScale: gradientScale)
        let scale: [Argument] = [.int(gradientScale == nil ? 0 : 1), .buffer(gradientScale ?? placeholder)]
        let count = update.count
        switch update.kernel {
        case let .sgd(learningRate, momentum, nesterov, weightDecay):
            launch1D("sgd_step", count: count, [
                .int(count), .float(learningRate), .float(momentum), .int(nesterov ? 1 : 0), .float(weightDecay),
                .buffer(parameter), .buffer(gradient), .buffer(state.first ?? placeholder),
            ] + scale)
        case let .adam(stepSize, beta1, beta2, epsilon, correction2, decay, l2):
            launch1D("adam_step", count: count, [
                .int(count), .float(stepSize), .float(beta1), .float(beta2), .float(epsilon), .float(correction2), .float(decay), .float(l2),
                .buffer(parameter), .buffer(gradient), .buffer(state[0]), .buffer(state[1]),
            ] + scale)
        case let .adamAtan2(learningRate, beta1, beta2, correction1, correction2, a, b, decay):
            launch1D("adam_atan2_step", count: count, [
                .int(count), .float(learningRate), .float(beta1), .float(beta2), .float(correction1), .float(correction2),
                .float(a), .float(b), .float(decay), .buffer(parameter), .buffer(gradient), .buffer(state[0]), .buffer(state[1]),
            ] + scale)
        }
    }
}

// The rows family on OpenCL devices: `Kernels/rows.cl`, one row per work-item (CPU devices) or per
// work-group (GPUs, `GROUP_SIZE` = `OpenCLTuning.rowGroupSize`).

extension OpenCLBackend {
    func loadRowKernels() throws(BackendError) {
        try loadKernels(from: "rows.cl", options: "-D GROUP_SIZE=\(tuning.rowGroupSize)", names: [
            "softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward", "cross_entropy_forward",
            "cross_entropy_backward", "rms_norm_forward", "rms_norm_backward_input", "rms_norm_backward_weight",
        ])
    }

    /// Launches a kernel of `rows.cl` over the rows of `shape`.
    private func launchRows(_ name: String, _ shape: RowShape, _ arguments: [Argument]) {
        guard shape.rows > 0 else { return }
        let sizes: [Argument] = [.int(shape.rows), .int(shape.columns)]
        if tuning.rowGroupSize > 1 {
            launch(name, global: [shape.rows * tuning.rowGroupSize], local: [tuning.rowGroupSize], sizes + arguments)
        } else {
            launch(name, global: [shape.rows], local: [tuning.rowsPerGroup], sizes + arguments)
        }
    }

    public func softmax(_ x: DeviceBuffer, into y: DeviceBuffer, shape: RowShape) {
        shape.validate("softmax", matrices: [x, y])
        launchRows("softmax_forward", shape, [.buffer(x), .buffer(y)])
    }

    public func softmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, shape: RowShape) {
        shape.validate("softmaxBackward", matrices: [y, dy, dx])
        launchRows("softmax_backward", shape, [.buffer(y), .buffer(dy), .buffer(dx)])
    }

    public func logSoftmax(_ x: DeviceBuffer, into y: DeviceBuffer, shape: RowShape) {
        shape.validate("logSoftmax", matrices: [x, y])
        launchRows("log_softmax_forward", shape, [.buffer(x), .buffer(y)])
    }

    public func logSoftmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, shape: RowShape) {
        shape.validate("logSoftmaxBackward", matrices: [y, dy, dx])
        launchRows("log_softmax_backward", shape, [.buffer(y), .buffer(dy), .buffer(dx)])
    }

    public func softmaxCrossEntropy(logits: DeviceBuffer, labels: DeviceBuffer, into losses: DeviceBuffer, shape: RowShape) {
        shape.validate("softmaxCrossEntropy", matrices: [logits], perRow: [labels, losses])
        launchRows("cross_entropy_forward", shape, [.buffer(logits), .buffer(labels), .buffer(losses)])
    }

    public func softmaxCrossEntropyBackward(logits: DeviceBuffer, labels: DeviceBuffer, lossGradient: DeviceBuffer, into logitsGradient: DeviceBuffer, shape: RowShape) {
        shape.validate("softmaxCrossEntropyBackward", matrices: [logits, logitsGradient], perRow: [labels, lossGradient])
        launchRows("cross_entropy_backward", shape, [.buffer(logits), .buffer(labels), .buffer(lossGradient), .buffer(logitsGradient)])
    }

    public func rmsNorm(_ x: DeviceBuffer, weight: DeviceBuffer, into y: DeviceBuffer, inverseRMS: DeviceBuffer, shape: RowShape, epsilon: Float) {
        shape.validate("rmsNorm", matrices: [x, y], perRow: [inverseRMS], perColumn: [weight])
        launchRows("rms_norm_forward", shape, [.float(epsilon), .buffer(x), .buffer(weight), .buffer(y), .buffer(inverseRMS)])
    }

    public func rmsNormBackward(_ x: DeviceBuffer, weight: DeviceBuffer, inverseRMS: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, weightGradient: DeviceBuffer, shape: RowShape) {
        shape.validate("rmsNormBackward", matrices: [x, dy, dx], perRow: [inverseRMS], perColumn: [weight, weightGradient])
        launchRows("rms_norm_backward_input", shape, [.buffer(x), .buffer(weight), .buffer(inverseRMS), .buffer(dy), .buffer(dx)])
        launch1D("rms_norm_backward_weight", count: shape.columns, [
            .int(shape.rows), .int(shape.columns), .buffer(x), .buffer(inverseRMS), .buffer(dy), .buffer(weightGradient),
        ])
    }
}

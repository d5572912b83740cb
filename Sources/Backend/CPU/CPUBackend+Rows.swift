internal import CKilnCPU

// The rows family on the CPU: rows split across cores, one row per thread at a time; the loops are
// `CKilnCPU/rows.c`.

extension CPUBackend {
    /// Runs `body` on disjoint ranges of rows in parallel (at least 16 K elements per range).
    private func forRows(_ shape: RowShape, _ body: (Range<Int>) -> Void) {
        Parallel.forRanges(shape.rows, grain: max(1, 16_384 / max(shape.columns, 1)), body)
    }

    public func softmax(_ x: DeviceBuffer, into y: DeviceBuffer, shape: RowShape) {
        shape.validate("softmax", matrices: [x, y])
        guard shape.count > 0, ready(x, y) else { return }
        // Each row is written by one thread.
        nonisolated(unsafe) let input = floats(x), output = floats(y)
        forRows(shape) { kiln_softmax(input, output, $0.lowerBound, $0.upperBound, shape.columns) }
    }

    public func softmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, shape: RowShape) {
        shape.validate("softmaxBackward", matrices: [y, dy, dx])
        guard shape.count > 0, ready(y, dy, dx) else { return }
        // Each row is written by one thread.
        nonisolated(unsafe) let py = floats(y), pdy = floats(dy), pdx = floats(dx)
        forRows(shape) { kiln_softmax_backward(py, pdy, pdx, $0.lowerBound, $0.upperBound, shape.columns) }
    }

    public func logSoftmax(_ x: DeviceBuffer, into y: DeviceBuffer, shape: RowShape) {
        shape.validate("logSoftmax", matrices: [x, y])
        guard shape.count > 0, ready(x, y) else { return }
        // Each row is written by one thread.
        nonisolated(unsafe) let input = floats(x), output = floats(y)
        forRows(shape) { kiln_log_softmax(input, output, $0.lowerBound, $0.upperBound, shape.columns) }
    }

    public func logSoftmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, shape: RowShape) {
        shape.validate("logSoftmaxBackward", matrices: [y, dy, dx])
        guard shape.count > 0, ready(y, dy, dx) else { return }
        // Each row is written by one thread.
        nonisolated(unsafe) let py = floats(y), pdy = floats(dy), pdx = floats(dx)
        forRows(shape) { kiln_log_softmax_backward(py, pdy, pdx, $0.lowerBound, $0.upperBound, shape.columns) }
    }

    public func softmaxCrossEntropy(logits: DeviceBuffer, labels: DeviceBuffer, into losses: DeviceBuffer, shape: RowShape) {
        shape.validate("softmaxCrossEntropy", matrices: [logits], perRow: [labels, losses])
        guard shape.rows > 0, ready(logits, labels, losses) else { return }
        // Each row's loss is written by one thread.
        nonisolated(unsafe) let input = floats(logits), targets = integers(labels), output = floats(losses)
        forRows(shape) { kiln_cross_entropy(input, targets, output, $0.lowerBound, $0.upperBound, shape.columns) }
    }

    public func softmaxCrossEntropyBackward(logits: DeviceBuffer, labels: DeviceBuffer, lossGradient: DeviceBuffer, into logitsGradient: DeviceBuffer, shape: RowShape) {
        shape.validate("softmaxCrossEntropyBackward", matrices: [logits, logitsGradient], perRow: [labels, lossGradient])
        guard shape.count > 0, ready(logits, labels, lossGradient, logitsGradient) else { return }
        // Each row is written by one thread.
        nonisolated(unsafe) let input = floats(logits), targets = integers(labels), upstream = floats(lossGradient), output = floats(logitsGradient)
        forRows(shape) { kiln_cross_entropy_backward(input, targets, upstream, output, $0.lowerBound, $0.upperBound, shape.columns) }
    }

    public func rmsNorm(_ x: DeviceBuffer, weight: DeviceBuffer, into y: DeviceBuffer, inverseRMS: DeviceBuffer, shape: RowShape, epsilon: Float) {
        shape.validate("rmsNorm", matrices: [x, y], perRow: [inverseRMS], perColumn: [weight])
        guard shape.count > 0, ready(x, weight, y, inverseRMS) else { return }
        // Each row (and its saved statistic) is written by one thread.
        nonisolated(unsafe) let px = floats(x), pw = floats(weight), py = floats(y), pr = floats(inverseRMS)
        forRows(shape) { kiln_rms_norm(px, pw, py, pr, $0.lowerBound, $0.upperBound, shape.columns, epsilon) }
    }

    public func rmsNormBackward(_ x: DeviceBuffer, weight: DeviceBuffer, inverseRMS: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, weightGradient: DeviceBuffer, shape: RowShape) {
        shape.validate("rmsNormBackward", matrices: [x, dy, dx], perRow: [inverseRMS], perColumn: [weight, weightGradient])
        guard shape.columns > 0, ready(x, weight, inverseRMS, dy, dx, weightGradient) else { return }
        // Rows of dx, and column ranges of the weight gradient, are each written by one thread.
        nonisolated(unsafe) let px = floats(x), pw = floats(weight), pr = floats(inverseRMS), pdy = floats(dy), pdx = floats(dx), pdw = floats(weightGradient)
        forRows(shape) { kiln_rms_norm_backward_input(px, pw, pr, pdy, pdx, $0.lowerBound, $0.upperBound, shape.columns) }
        Parallel.forRanges(shape.columns, grain: max(1, 16_384 / max(shape.rows, 1))) { range in
            kiln_rms_norm_backward_weight(px, pr, pdy, pdw, range.lowerBound, range.upperBound, shape.rows, shape.columns)
        }
    }
}

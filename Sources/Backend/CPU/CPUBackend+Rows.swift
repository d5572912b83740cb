internal import CKilnCPU

// The rows family on the CPU: rows split across cores, one row per thread at a time; the loops are
// `CKilnCPU/rows.c`.

extension CPUBackend {
    /// Runs `body(pointers, rows)` on disjoint ranges of rows in parallel (at least 16 K elements per range),
    /// with the buffers' memory in the order given; nothing when the shape is empty or an allocation failed.
    private func forRows(_ shape: RowShape, _ buffers: DeviceBuffer..., body: ([UnsafeMutablePointer<Float>], Range<Int>) -> Void) {
        guard shape.count > 0, buffers.allSatisfy({ ready($0) }) else { return }
        // Every range writes only its own rows (and their per-row values).
        nonisolated(unsafe) let pointers = buffers.map { floats($0) }
        Parallel.forRanges(shape.rows, grain: max(1, 16_384 / max(shape.columns, 1))) { body(pointers, $0) }
    }

    public func softmax(_ x: DeviceBuffer, into y: DeviceBuffer, shape: RowShape) {
        shape.validate("softmax", matrices: [x, y])
        forRows(shape, x, y) { p, rows in kiln_softmax(p[0], p[1], rows.lowerBound, rows.upperBound, shape.columns) }
    }

    public func softmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, shape: RowShape) {
        shape.validate("softmaxBackward", matrices: [y, dy, dx])
        forRows(shape, y, dy, dx) { p, rows in kiln_softmax_backward(p[0], p[1], p[2], rows.lowerBound, rows.upperBound, shape.columns) }
    }

    public func logSoftmax(_ x: DeviceBuffer, into y: DeviceBuffer, shape: RowShape) {
        shape.validate("logSoftmax", matrices: [x, y])
        forRows(shape, x, y) { p, rows in kiln_log_softmax(p[0], p[1], rows.lowerBound, rows.upperBound, shape.columns) }
    }

    public func logSoftmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, shape: RowShape) {
        shape.validate("logSoftmaxBackward", matrices: [y, dy, dx])
        forRows(shape, y, dy, dx) { p, rows in kiln_log_softmax_backward(p[0], p[1], p[2], rows.lowerBound, rows.upperBound, shape.columns) }
    }

    public func softmaxCrossEntropy(logits: DeviceBuffer, labels: DeviceBuffer, into losses: DeviceBuffer, shape: RowShape) {
        shape.validate("softmaxCrossEntropy", matrices: [logits], perRow: [labels, losses])
        if shape.columns == 0, shape.rows > 0, ready(losses) {
            // Every label is out of range: every loss is 0.
            return fill(losses, offset: 0, count: shape.rows, value: 0)
        }
        forRows(shape, logits, labels, losses) { p, rows in
            kiln_cross_entropy(p[0], Self.labels(p[1]), p[2], rows.lowerBound, rows.upperBound, shape.columns)
        }
    }

    public func softmaxCrossEntropyBackward(logits: DeviceBuffer, labels: DeviceBuffer, lossGradient: DeviceBuffer, into logitsGradient: DeviceBuffer, shape: RowShape) {
        shape.validate("softmaxCrossEntropyBackward", matrices: [logits, logitsGradient], perRow: [labels, lossGradient])
        forRows(shape, logits, labels, lossGradient, logitsGradient) { p, rows in
            kiln_cross_entropy_backward(p[0], Self.labels(p[1]), p[2], p[3], rows.lowerBound, rows.upperBound, shape.columns)
        }
    }

    public func rmsNorm(_ x: DeviceBuffer, weight: DeviceBuffer, into y: DeviceBuffer, inverseRMS: DeviceBuffer, shape: RowShape, epsilon: Float) {
        shape.validate("rmsNorm", matrices: [x, y], perRow: [inverseRMS], perColumn: [weight])
        forRows(shape, x, weight, y, inverseRMS) { p, rows in
            kiln_rms_norm(p[0], p[1], p[2], p[3], rows.lowerBound, rows.upperBound, shape.columns, epsilon)
        }
    }

    public func rmsNormBackward(_ x: DeviceBuffer, weight: DeviceBuffer, inverseRMS: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, weightGradient: DeviceBuffer, shape: RowShape) {
        shape.validate("rmsNormBackward", matrices: [x, dy, dx], perRow: [inverseRMS], perColumn: [weight, weightGradient])
        forRows(shape, x, weight, inverseRMS, dy, dx) { p, rows in
            kiln_rms_norm_backward_input(p[0], p[1], p[2], p[3], p[4], rows.lowerBound, rows.upperBound, shape.columns)
        }
        guard shape.columns > 0, ready(x, inverseRMS, dy, weightGradient) else { return }
        // Each range of columns of the weight gradient is written by one thread (zeros when there are no rows).
        nonisolated(unsafe) let px = floats(x), pr = floats(inverseRMS), pdy = floats(dy), pdw = floats(weightGradient)
        Parallel.forRanges(shape.columns, grain: max(1, 16_384 / max(shape.rows, 1))) { range in
            kiln_rms_norm_backward_weight(px, pr, pdy, pdw, range.lowerBound, range.upperBound, shape.rows, shape.columns)
        }
    }

    /// A buffer's memory read as the `Int32` labels it holds.
    private static func labels(_ pointer: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Int32> {
        UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: Int32.self)
    }
}

import Foundation

// The OpenCL backend's primitives: each validates its sizes, then enqueues one or a few kernels.

extension OpenCLBackend {
    // MARK: Element-wise

    public func unary(_ op: UnaryOp, _ x: DeviceBuffer, into y: DeviceBuffer, count: Int) {
        precondition(count >= 0 && x.count >= count && y.count >= count, "unary \(op): count \(count) exceeds x \(x.count) or y \(y.count)")
        let (a, b) = op.parameters
        launch1D("unary", count: count, [.int(count), .int(Int(op.code)), .float(a), .float(b), .buffer(x), .buffer(y)])
    }

    public func unaryBackward(_ op: UnaryOp, input x: DeviceBuffer, output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, count: Int) {
        precondition(count >= 0 && [x, y, dy, dx].allSatisfy { $0.count >= count }, "unaryBackward \(op): count \(count) exceeds a buffer")
        let (a, b) = op.parameters
        launch1D("unary_backward", count: count, [.int(count), .int(Int(op.code)), .float(a), .float(b), .buffer(x), .buffer(y), .buffer(dy), .buffer(dx)])
    }

    public func binary(_ op: BinaryOp, _ a: DeviceBuffer, _ aLayout: StridedLayout, _ b: DeviceBuffer, _ bLayout: StridedLayout, into out: DeviceBuffer, shape: [Int]) {
        let count = shape.reduce(1, *)
        precondition(aLayout.strides.count == shape.count && bLayout.strides.count == shape.count, "binary \(op): layouts do not match shape \(shape)")
        precondition(aLayout.extent(shape) <= a.count && bLayout.extent(shape) <= b.count && count <= out.count,
                     "binary \(op): shape \(shape) overflows a (\(a.count)), b (\(b.count)) or out (\(out.count))")
        guard count > 0 else { return }
        let dense = StridedLayout.contiguous(shape)
        if aLayout == dense && bLayout == dense {
            launch1D("binary_contiguous", count: count, [.int(count), .int(Int(op.rawValue)), .buffer(a), .buffer(b), .buffer(out)])
            return
        }
        let merged = CoalescedLayouts(shape: shape, layouts: [aLayout, bLayout, dense])
        for piece in merged.pieces(maximumRank: 4) {
            let pieceCount = piece.elementCount
            launch1D("binary_strided", count: pieceCount, [
                .int(pieceCount), .int(Int(op.rawValue)), .int4(vector(piece.shape)),
                .buffer(a), .int(piece.layouts[0].offset), .int4(vector(piece.layouts[0].strides)),
                .buffer(b), .int(piece.layouts[1].offset), .int4(vector(piece.layouts[1].strides)),
                .buffer(out), .int(piece.layouts[2].offset),
            ])
        }
    }

    public func copy(_ source: DeviceBuffer, _ sourceLayout: StridedLayout, to destination: DeviceBuffer, _ destinationLayout: StridedLayout, shape: [Int]) {
        precondition(sourceLayout.strides.count == shape.count && destinationLayout.strides.count == shape.count, "strided copy: layouts do not match shape \(shape)")
        precondition(sourceLayout.extent(shape) <= source.count && destinationLayout.extent(shape) <= destination.count,
                     "strided copy: shape \(shape) overflows source (\(source.count)) or destination (\(destination.count))")
        guard !shape.contains(0) else { return }
        let merged = CoalescedLayouts(shape: shape, layouts: [sourceLayout, destinationLayout])
        if merged.shape.count <= 1, merged.layouts.allSatisfy({ $0.strides.first ?? 1 == 1 }) {
            copy(source, offset: sourceLayout.offset, to: destination, offset: destinationLayout.offset, count: merged.elementCount)
            return
        }
        for piece in merged.pieces(maximumRank: 4) {
            let pieceCount = piece.elementCount
            launch1D("copy_strided", count: pieceCount, [
                .int(pieceCount), .int4(vector(piece.shape)),
                .buffer(source), .int(piece.layouts[0].offset), .int4(vector(piece.layouts[0].strides)),
                .buffer(destination), .int(piece.layouts[1].offset), .int4(vector(piece.layouts[1].strides)),
            ])
        }
    }

    private func vector(_ values: [Int]) -> SIMD4<Int32> {
        precondition(values.count == 4)
        return SIMD4(values.map { value in
            precondition(value >= Int(Int32.min) && value <= Int(Int32.max), "stride or size \(value) does not fit in 32 bits")
            return Int32(value)
        })
    }

    // MARK: Reductions

    public func reduce(_ op: ReductionOp, _ x: DeviceBuffer, into y: DeviceBuffer, outer: Int, length: Int, inner: Int) {
        precondition(outer >= 0 && length >= 0 && inner >= 0 && outer * length * inner <= x.count && outer * inner <= y.count,
                     "reduce \(op): [\(outer), \(length), \(inner)] overflows x (\(x.count)) or y (\(y.count))")
        precondition(length > 0 || (op != .max && op != .min), "reduce \(op): cannot take the \(op) of an empty axis")
        guard outer * inner > 0 else { return }
        if tuning.rowGroupSize > 1 && inner == 1 && length >= 4 * tuning.rowGroupSize {
            launch("reduce_rows", global: [outer * tuning.rowGroupSize], local: [tuning.rowGroupSize],
                   [.int(outer), .int(length), .int(Int(op.rawValue)), .buffer(x), .buffer(y)])
        } else {
            launch1D("reduce_columns", count: outer * inner, [.int(outer), .int(length), .int(inner), .int(Int(op.rawValue)), .buffer(x), .buffer(y)])
        }
    }

    // MARK: Fused row operations

    private func checkRows(_ name: String, rows: Int, columns: Int, _ buffers: DeviceBuffer...) {
        precondition(rows >= 0 && columns >= 0, "\(name): negative size [\(rows), \(columns)]")
        for buffer in buffers {
            precondition(buffer.count >= rows * columns, "\(name): [\(rows), \(columns)] overflows a buffer of \(buffer.count)")
        }
    }

    public func softmax(_ x: DeviceBuffer, into y: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("softmax", rows: rows, columns: columns, x, y)
        launchRows("softmax_forward", rows: rows, [.int(rows), .int(columns), .buffer(x), .buffer(y)])
    }

    public func softmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("softmaxBackward", rows: rows, columns: columns, y, dy, dx)
        launchRows("softmax_backward", rows: rows, [.int(rows), .int(columns), .buffer(y), .buffer(dy), .buffer(dx)])
    }

    public func logSoftmax(_ x: DeviceBuffer, into y: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("logSoftmax", rows: rows, columns: columns, x, y)
        launchRows("log_softmax_forward", rows: rows, [.int(rows), .int(columns), .buffer(x), .buffer(y)])
    }

    public func logSoftmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("logSoftmaxBackward", rows: rows, columns: columns, y, dy, dx)
        launchRows("log_softmax_backward", rows: rows, [.int(rows), .int(columns), .buffer(y), .buffer(dy), .buffer(dx)])
    }

    public func softmaxCrossEntropy(logits: DeviceBuffer, labels: DeviceBuffer, into losses: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("softmaxCrossEntropy", rows: rows, columns: columns, logits)
        precondition(labels.count >= rows && losses.count >= rows, "softmaxCrossEntropy: \(rows) rows but \(labels.count) labels and \(losses.count) losses")
        launchRows("cross_entropy_forward", rows: rows, [.int(rows), .int(columns), .buffer(logits), .buffer(labels), .buffer(losses)])
    }

    public func softmaxCrossEntropyBackward(logits: DeviceBuffer, labels: DeviceBuffer, lossGradient: DeviceBuffer, into logitsGradient: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("softmaxCrossEntropyBackward", rows: rows, columns: columns, logits, logitsGradient)
        precondition(labels.count >= rows && lossGradient.count >= rows, "softmaxCrossEntropyBackward: \(rows) rows but \(labels.count) labels and \(lossGradient.count) loss gradients")
        launchRows("cross_entropy_backward", rows: rows, [.int(rows), .int(columns), .buffer(logits), .buffer(labels), .buffer(lossGradient), .buffer(logitsGradient)])
    }

    public func rmsNorm(_ x: DeviceBuffer, weight: DeviceBuffer, into y: DeviceBuffer, inverseRMS: DeviceBuffer, rows: Int, columns: Int, epsilon: Float) {
        checkRows("rmsNorm", rows: rows, columns: columns, x, y)
        precondition(weight.count >= columns && inverseRMS.count >= rows, "rmsNorm: weight \(weight.count) < \(columns) columns or inverseRMS \(inverseRMS.count) < \(rows) rows")
        launchRows("rms_norm_forward", rows: rows, [.int(rows), .int(columns), .float(epsilon), .buffer(x), .buffer(weight), .buffer(y), .buffer(inverseRMS)])
    }

    public func rmsNormBackward(_ x: DeviceBuffer, weight: DeviceBuffer, inverseRMS: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, weightGradient: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("rmsNormBackward", rows: rows, columns: columns, x, dy, dx)
        precondition(weight.count >= columns && weightGradient.count >= columns && inverseRMS.count >= rows, "rmsNormBackward: weight, weightGradient or inverseRMS too small")
        launchRows("rms_norm_backward_input", rows: rows, [.int(rows), .int(columns), .buffer(x), .buffer(weight), .buffer(inverseRMS), .buffer(dy), .buffer(dx)])
        launch1D("rms_norm_backward_weight", count: columns, [.int(rows), .int(columns), .buffer(x), .buffer(inverseRMS), .buffer(dy), .buffer(weightGradient)])
    }

    // MARK: Rows by index

    public func gatherRows(_ table: DeviceBuffer, tableRows: Int, indices: DeviceBuffer, into out: DeviceBuffer, indexCount: Int, columns: Int) {
        precondition(table.count >= tableRows * columns && indices.count >= indexCount && out.count >= indexCount * columns,
                     "gatherRows: table [\(tableRows), \(columns)] / \(indexCount) indices overflow their buffers")
        launch1D("gather_rows", count: indexCount * columns, [.int(indexCount), .int(columns), .int(tableRows), .buffer(table), .buffer(indices), .buffer(out)])
    }

    public func scatterAddRows(_ source: DeviceBuffer, indices: DeviceBuffer, indexCount: Int, into table: DeviceBuffer, tableRows: Int, columns: Int) {
        precondition(table.count >= tableRows * columns && indices.count >= indexCount && source.count >= indexCount * columns,
                     "scatterAddRows: table [\(tableRows), \(columns)] / \(indexCount) indices overflow their buffers")
        guard indexCount > 0 else { return }
        launch1D("scatter_add_rows", count: columns, [.int(indexCount), .int(columns), .int(tableRows), .buffer(source), .buffer(indices), .buffer(table)])
    }

    // MARK: Randomness

    public func randomUniform(into buffer: DeviceBuffer, count: Int, seed: UInt64, offset: UInt64) {
        precondition(count >= 0 && count <= buffer.count, "randomUniform: count \(count) exceeds buffer \(buffer.count)")
        launch1D("random_uniform", count: count, [.int(count), .uint64(seed), .uint64(offset), .buffer(buffer)])
    }

    // MARK: Optimizers

    public func optimizerStep(_ rule: UpdateRule, parameter: DeviceBuffer, gradient: DeviceBuffer, state: [DeviceBuffer], count: Int, learningRate: Float, step: Int, gradientScale: DeviceBuffer?) {
        precondition(state.count == rule.stateCount, "optimizerStep: \(rule) needs \(rule.stateCount) state buffers, got \(state.count)")
        precondition(([parameter, gradient] + state).allSatisfy { $0.count >= count }, "optimizerStep: count \(count) exceeds a buffer")
        precondition(step >= 1, "optimizerStep: steps count from 1, got \(step)")
        let scale: Argument = .buffer(gradientScale ?? placeholder)
        let hasScale: Argument = .int(gradientScale == nil ? 0 : 1)
        switch rule {
        case let .sgd(momentum, nesterov, weightDecay):
            let velocity = state.first ?? placeholder
            launch1D("sgd_step", count: count, [
                .int(count), .float(learningRate), .float(momentum), .int(nesterov ? 1 : 0), .float(weightDecay),
                .buffer(parameter), .buffer(gradient), .buffer(velocity), hasScale, scale,
            ])
        case let .adam(beta1, beta2, epsilon, weightDecay, decoupled):
            let corrections = UpdateRule.biasCorrections(beta1: beta1, beta2: beta2, step: step)
            launch1D("adam_step", count: count, [
                .int(count), .float(Float(Double(learningRate) * corrections.first)), .float(beta1), .float(beta2),
                .float(epsilon), .float(Float(corrections.secondRoot)),
                .float(decoupled ? 1 - learningRate * weightDecay : 1), .float(decoupled ? 0 : weightDecay),
                .buffer(parameter), .buffer(gradient), .buffer(state[0]), .buffer(state[1]), hasScale, scale,
            ])
        case let .adamAtan2(beta1, beta2, a, b, weightDecay):
            let corrections = UpdateRule.biasCorrections(beta1: beta1, beta2: beta2, step: step)
            launch1D("adam_atan2_step", count: count, [
                .int(count), .float(learningRate), .float(beta1), .float(beta2), .float(Float(corrections.first)),
                .float(Float(corrections.secondRoot)), .float(a), .float(b), .float(1 - learningRate * weightDecay),
                .buffer(parameter), .buffer(gradient), .buffer(state[0]), .buffer(state[1]), hasScale, scale,
            ])
        }
    }

    // MARK: Matrix multiplication

    public func gemm(_ problem: GemmProblem, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer) {
        problem.validate(aCount: a.count, bCount: b.count, cCount: c.count)
        guard problem.m > 0, problem.n > 0, problem.batchCount > 0, isHealthy else { return }
        let matmul = tuning.matmul
        if problem.k == 0 || matmul.usesDirectKernel(m: problem.m, n: problem.n, k: problem.k) {
            launchDirectGemm(problem, a: a, b: b, c: c)
            return
        }
        var fast = problem
        var bOperand = b
        if problem.transposeB {
            // gemm_fast reads B row-major; transpose each batch's B (n × k) into a scratch k × n first.
            let batches = problem.strideB == 0 ? 1 : problem.batchCount
            let scratch = allocate(batches * problem.k * problem.n)
            copy(b, StridedLayout(offset: problem.offsetB, strides: [problem.strideB, 1, problem.ldb]),
                 to: scratch, .contiguous([batches, problem.k, problem.n]), shape: [batches, problem.k, problem.n])
            bOperand = scratch
            fast.transposeB = false
            fast.offsetB = 0
            fast.ldb = problem.n
            fast.strideB = problem.strideB == 0 ? 0 : problem.k * problem.n
        }
        let groupColumns = (fast.n + matmul.vectorWidth - 1) / matmul.vectorWidth
        let groupRows = (fast.m + matmul.rowsPerItem - 1) / matmul.rowsPerItem
        launch(fast.transposeA ? "gemm_fast_transposed_a" : "gemm_fast",
               global: [groupColumns, groupRows, fast.batchCount], local: [matmul.groupColumns, matmul.groupRows, 1], [
                .int(fast.m), .int(fast.n), .int(fast.k), .float(fast.alpha),
                .buffer(a), .int(fast.offsetA), .int(fast.lda), .int(fast.strideA),
                .buffer(bOperand), .int(fast.offsetB), .int(fast.ldb), .int(fast.strideB),
                .float(fast.beta), .buffer(c), .int(fast.offsetC), .int(fast.ldc), .int(fast.strideC),
               ])
    }

    private func launchDirectGemm(_ problem: GemmProblem, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer) {
        let matmul = tuning.matmul
        let columns = (problem.n + matmul.directColumnsPerItem - 1) / matmul.directColumnsPerItem
        let rows = (problem.m + matmul.directRowsPerItem - 1) / matmul.directRowsPerItem
        launch("gemm_direct", global: [columns, rows, problem.batchCount], local: [matmul.directGroupSize, matmul.directGroupSize, 1], [
            .int(problem.m), .int(problem.n), .int(problem.k), .float(problem.alpha),
            .buffer(a), .int(problem.offsetA), .int(problem.lda), .int(problem.strideA), .int(problem.transposeA ? 1 : 0),
            .buffer(b), .int(problem.offsetB), .int(problem.ldb), .int(problem.strideB), .int(problem.transposeB ? 1 : 0),
            .float(problem.beta), .buffer(c), .int(problem.offsetC), .int(problem.ldc), .int(problem.strideC),
        ])
    }
}

extension UpdateRule {
    /// Adam's bias corrections for a 1-based step, in double precision: `1 / (1 − β₁ᵗ)` and
    /// `1 / √(1 − β₂ᵗ)`.
    static func biasCorrections(beta1: Float, beta2: Float, step: Int) -> (first: Double, secondRoot: Double) {
        let first = 1 / (1 - pow(Double(beta1), Double(step)))
        let secondRoot = 1 / (1 - pow(Double(beta2), Double(step))).squareRoot()
        return (first, secondRoot)
    }
}

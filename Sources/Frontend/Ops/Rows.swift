// The rows family's ops, over the last axis: softmax and log-softmax, the softmax cross-entropy loss (and
// mean squared error beside it), RMSNorm (fused backend kernels, with their gradients) and LayerNorm
// (composed). Backend: RowKernels (Sources/Backend/Families/Rows.swift).

extension Tensor {
    /// Softmax over the last axis: `exp(x − max) / Σ exp(x − max)`.
    public func softmax() -> Tensor {
        rowOperation("softmax", forward: { $0.softmax($1, into: $2, shape: $3) },
                     backward: { $0.softmaxBackward(output: $1, outputGradient: $2, into: $3, shape: $4) })
    }

    /// Log-softmax over the last axis: `x − max − log Σ exp(x − max)`.
    public func logSoftmax() -> Tensor {
        rowOperation("logSoftmax", forward: { $0.logSoftmax($1, into: $2, shape: $3) },
                     backward: { $0.logSoftmaxBackward(output: $1, outputGradient: $2, into: $3, shape: $4) })
    }

    /// A row operation over the last axis whose gradient is computed from its output: `forward(backend, x,
    /// y, shape)` and `backward(backend, y, dy, dx, shape)`.
    private func rowOperation(
        _ name: String, forward: (any Backend, DeviceBuffer, DeviceBuffer, RowShape) -> Void,
        backward: @escaping (any Backend, DeviceBuffer, DeviceBuffer, DeviceBuffer, RowShape) -> Void
    ) -> Tensor {
        precondition(rank >= 1, "\(name): needs at least one dimension")
        let matrix = RowShape(lastAxisOf: shape)
        let out = Tensor(uninitialized: shape, on: backend)
        forward(backend, storage, out.storage, matrix)
        let outputStorage = out.storage
        let inputShape = shape
        let inputBackend = backend
        out.recordGradient(name, inputs: [self]) { gradient in
            let result = Tensor(uninitialized: inputShape, on: inputBackend)
            backward(inputBackend, outputStorage, gradient.storage, result.storage, matrix)
            return [result]
        }
        return out
    }
}

extension RowShape {
    /// The rows of a tensor of `shape` over its last axis: `[…, columns]` as `[rows, columns]`.
    init(lastAxisOf shape: [Int]) {
        let columns = shape.last ?? 1
        self.init(rows: shape.reduce(1, *) / Swift.max(columns, 1), columns: columns)
    }
}

// MARK: Losses

/// The mean softmax cross-entropy of `logits` (`[..., classes]`) against integer `labels` (`[...]`),
/// averaged over the labels that are not negative (negative labels are ignored, like PyTorch's
/// `ignore_index`). One fused kernel computes per-row losses; the gradient is `(softmax − onehot) / count`.
public func crossEntropy(_ logits: Tensor, labels: IndexTensor) -> Tensor {
    precondition(logits.rank >= 1, "crossEntropy: logits need a class dimension")
    let classes = logits.shape[logits.rank - 1]
    let rows = logits.elementCount / max(classes, 1)
    precondition(labels.elementCount == rows, "crossEntropy: \(rows) rows of logits \(logits.shape) but \(labels.elementCount) labels \(labels.shape)")
    precondition(labels.backend === logits.backend || labels.backend.device.id == logits.backend.device.id,
                 "crossEntropy: logits on \(logits.backend.device.id) but labels on \(labels.backend.device.id)")
    let backend = logits.backend
    let shape = RowShape(rows: rows, columns: classes)
    let losses = Tensor(uninitialized: [rows], on: backend)
    backend.softmaxCrossEntropy(logits: logits.storage, labels: labels.storage, into: losses.storage, shape: shape)
    let count = Swift.max(labels.validCount, 1)
    let total = noGrad { losses.sum() }
    let out = total.scaledValues(1 / Float(count))
    out.recordGradient("crossEntropy", inputs: [logits]) { gradient in
        // Every row's loss gradient is the scalar upstream gradient divided by the label count.
        let perRow = gradient.expandedValues(to: [rows]).scaledValues(1 / Float(count))
        let result = Tensor(uninitialized: logits.shape, on: backend)
        backend.softmaxCrossEntropyBackward(logits: logits.storage, labels: labels.storage, lossGradient: perRow.storage, into: result.storage, shape: shape)
        return [result]
    }
    return out
}

/// The mean of `(prediction − target)²` over all elements (shapes must broadcast).
public func meanSquaredError(_ prediction: Tensor, _ target: Tensor) -> Tensor {
    (prediction - target).square().mean()
}

// MARK: Normalization

/// RMSNorm (Zhang & Sennrich, 2019) over the last axis: `x / sqrt(mean(x²) + ε) · weight`.
///
/// - Parameters:
///   - x: `[..., features]`.
///   - weight: `[features]`.
public func rmsNorm(_ x: Tensor, weight: Tensor, epsilon: Float = 1e-6) -> Tensor {
    Tensor.checkSameDevice("rmsNorm", x, weight)
    let columns = x.shape.last ?? 1
    precondition(weight.shape == [columns], "rmsNorm: weight \(weight.shape) does not match features of \(x.shape)")
    let shape = RowShape(lastAxisOf: x.shape)
    let backend = x.backend
    let out = Tensor(uninitialized: x.shape, on: backend)
    let inverseRMS = backend.allocate(shape.rows)
    backend.rmsNorm(x.storage, weight: weight.storage, into: out.storage, inverseRMS: inverseRMS, shape: shape, epsilon: epsilon)
    out.recordGradient("rmsNorm", inputs: [x, weight]) { gradient in
        let dx = Tensor(uninitialized: x.shape, on: backend)
        let dw = Tensor(uninitialized: weight.shape, on: backend)
        backend.rmsNormBackward(x.storage, weight: weight.storage, inverseRMS: inverseRMS, outputGradient: gradient.storage, into: dx.storage, weightGradient: dw.storage, shape: shape)
        return [x.requiresGradient ? dx : nil, weight.requiresGradient ? dw : nil]
    }
    return out
}

/// LayerNorm (Ba et al., 2016) over the last axis: `(x − mean) / sqrt(var + ε) · weight + bias`, with the
/// biased variance as PyTorch computes it. Composed from differentiable ops.
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float = 1e-5) -> Tensor {
    let centered = x - x.mean(axis: -1, keepingDimensions: true)
    let variance = centered.square().mean(axis: -1, keepingDimensions: true)
    var out = centered * (variance + epsilon).rsqrt()
    if let weight { out = out * weight }
    if let bias { out = out + bias }
    return out
}

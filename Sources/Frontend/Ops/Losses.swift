// Loss functions: fused softmax cross-entropy over integer labels, and mean squared error.

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
    let losses = Tensor(uninitialized: [rows], on: backend)
    backend.softmaxCrossEntropy(logits: logits.storage, labels: labels.storage, into: losses.storage, rows: rows, columns: classes)
    let count = Swift.max(labels.validCount, 1)
    let total = noGrad { losses.sum() }
    let out = total.scaledValues(1 / Float(count))
    out.recordGradient("crossEntropy", inputs: [logits]) { gradient in
        // Every row's loss gradient is the scalar upstream gradient divided by the label count.
        let perRow = gradient.expandedValues(to: [rows]).scaledValues(1 / Float(count))
        let result = Tensor(uninitialized: logits.shape, on: backend)
        backend.softmaxCrossEntropyBackward(logits: logits.storage, labels: labels.storage, lossGradient: perRow.storage, into: result.storage, rows: rows, columns: classes)
        return [result]
    }
    return out
}

/// The mean of `(prediction − target)²` over all elements (shapes must broadcast).
public func meanSquaredError(_ prediction: Tensor, _ target: Tensor) -> Tensor {
    (prediction - target).square().mean()
}

// Softmax and log-softmax over the last axis (fused backend kernels), with their gradients.

extension Tensor {
    /// Softmax over the last axis: `exp(x − max) / Σ exp(x − max)`.
    public func softmax() -> Tensor {
        precondition(rank >= 1, "softmax: needs at least one dimension")
        let columns = shape[rank - 1], rows = elementCount / Swift.max(columns, 1)
        let out = Tensor(uninitialized: shape, on: backend)
        backend.softmax(storage, into: out.storage, rows: rows, columns: columns)
        let outputStorage = out.storage
        let inputShape = shape
        let inputBackend = backend
        out.recordGradient("softmax", inputs: [self]) { gradient in
            let result = Tensor(uninitialized: inputShape, on: inputBackend)
            inputBackend.softmaxBackward(output: outputStorage, outputGradient: gradient.storage, into: result.storage, rows: rows, columns: columns)
            return [result]
        }
        return out
    }

    /// Log-softmax over the last axis: `x − max − log Σ exp(x − max)`.
    public func logSoftmax() -> Tensor {
        precondition(rank >= 1, "logSoftmax: needs at least one dimension")
        let columns = shape[rank - 1], rows = elementCount / Swift.max(columns, 1)
        let out = Tensor(uninitialized: shape, on: backend)
        backend.logSoftmax(storage, into: out.storage, rows: rows, columns: columns)
        let outputStorage = out.storage
        let inputShape = shape
        let inputBackend = backend
        out.recordGradient("logSoftmax", inputs: [self]) { gradient in
            let result = Tensor(uninitialized: inputShape, on: inputBackend)
            inputBackend.logSoftmaxBackward(output: outputStorage, outputGradient: gradient.storage, into: result.storage, rows: rows, columns: columns)
            return [result]
        }
        return out
    }
}

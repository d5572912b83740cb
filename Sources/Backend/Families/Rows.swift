// The rows family: fused operations on each row of a row-major `[rows, columns]` matrix: softmax,
// log-softmax, softmax cross-entropy and RMSNorm, forward and backward (LayerNorm is composed in the
// frontend from reduce and elementwise primitives).
// Frontend: Ops/Rows.swift (softmax, logSoftmax, crossEntropy, rmsNorm, layerNorm) · CPU:
// CPU/CPUBackend+Rows.swift, CKilnCPU/rows.c · OpenCL: OpenCL/OpenCLBackend+Rows.swift, Kernels/rows.cl ·
// float64: Reference/Reference+Rows.swift.

/// Row-wise fused operations on a device. `x` and the outputs are `[rows, columns]` unless said otherwise.
public protocol RowKernels {
    /// Softmax of each row: `y = exp(x − max) / Σ exp(x − max)`. `y` may be `x`.
    func softmax(_ x: DeviceBuffer, into y: DeviceBuffer, shape: RowShape)
    /// `dx = y ⊙ (dy − Σ_row dy ⊙ y)` from the softmax output `y`.
    func softmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, shape: RowShape)
    /// Log-softmax of each row: `y = x − max − log Σ exp(x − max)`. `y` may be `x`.
    func logSoftmax(_ x: DeviceBuffer, into y: DeviceBuffer, shape: RowShape)
    /// `dx = dy − exp(y) · Σ_row dy` from the log-softmax output `y`.
    func logSoftmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, shape: RowShape)

    /// Per-row softmax cross-entropy with integer labels: `loss[r] = logsumexp(x[r]) − x[r, label[r]]`.
    /// `labels` (`[rows]`) holds `Int32` class indices; a label outside `0..<columns` (negative marks an
    /// ignored row) gives loss 0 and gradient 0. `losses` is `[rows]`.
    func softmaxCrossEntropy(logits: DeviceBuffer, labels: DeviceBuffer, into losses: DeviceBuffer, shape: RowShape)
    /// `dlogits[r] = (softmax(x[r]) − onehot(label[r])) · dloss[r]`, zero for ignored rows; `lossGradient`
    /// is `[rows]`.
    func softmaxCrossEntropyBackward(logits: DeviceBuffer, labels: DeviceBuffer, lossGradient: DeviceBuffer, into logitsGradient: DeviceBuffer, shape: RowShape)

    /// RMSNorm (Zhang & Sennrich, 2019): `rstd[r] = 1 / sqrt(mean(x[r]²) + epsilon)`,
    /// `y[r, c] = x[r, c] · rstd[r] · weight[c]`. Writes `y` and the saved `inverseRMS` (`[rows]`);
    /// `weight` is `[columns]`.
    func rmsNorm(_ x: DeviceBuffer, weight: DeviceBuffer, into y: DeviceBuffer, inverseRMS: DeviceBuffer, shape: RowShape, epsilon: Float)
    /// RMSNorm's gradients: overwrites `dx` (`[rows, columns]`),
    /// `dx = rstd · w ⊙ dy − rstd³ · x · Σ_c (dy ⊙ w ⊙ x) / columns`, and `weightGradient` (`[columns]`,
    /// `Σ_r dy · x · rstd`, summed over rows in order).
    func rmsNormBackward(_ x: DeviceBuffer, weight: DeviceBuffer, inverseRMS: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, weightGradient: DeviceBuffer, shape: RowShape)
}

/// The matrix a row operation works on: `rows` rows of `columns` contiguous elements.
public struct RowShape: Sendable, Hashable, CustomStringConvertible {
    public var rows: Int
    public var columns: Int

    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
    }

    /// `rows · columns`.
    public var count: Int { rows * columns }

    public var description: String { "[rows \(rows), columns \(columns)]" }

    /// Traps with a message naming the op, the operand and the shape when a size is negative or a buffer
    /// is too small: `matrices` hold `[rows, columns]`, `perRow` one value per row (labels, losses,
    /// statistics), `perColumn` one per column (a weight). Every backend's row operations start with it.
    func validate(_ op: StaticString, matrices: [DeviceBuffer], perRow: [DeviceBuffer] = [], perColumn: [DeviceBuffer] = []) {
        precondition(rows >= 0 && columns >= 0, "\(op): negative size \(self)")
        for buffer in matrices { buffer.require(count, "a [rows, columns] operand", of: op, "\(self)") }
        for buffer in perRow { buffer.require(rows, "a per-row operand", of: op, "\(self)") }
        for buffer in perColumn { buffer.require(columns, "a per-column operand", of: op, "\(self)") }
    }
}

// The spline family: B-spline evaluation for Kolmogorov–Arnold Network layers, forward and backward. One
// name from the op to the kernel:
//   frontend op   Sources/Frontend/Ops/Spline.swift        splineLayer(...)
//   protocol      here                                     SplineKernels, SplineShape, the operand structs
//   CPU           Sources/Backend/CPU/CPUBackend+Spline.swift, inner loops in Sources/CKilnCPU/spline.c
//   OpenCL        Sources/Backend/OpenCL/OpenCLBackend+Spline.swift, Kernels/spline.cl, SplineTuning
//   reference     Sources/Backend/Reference/Reference+Spline.swift (Cox–de Boor in float64)

/// KAN spline layers, forward and backward. Every size check is written once, in ``SplineShape``.
public protocol SplineKernels: AnyObject {
    /// One Kolmogorov–Arnold Network layer (Liu et al., 2024, with pykan's conventions): every edge
    /// `(i, j)` applies a learnable activation to `x[b, i]`, and each output sums its edges:
    ///
    ///     y[b, j] = Σ_i scaleBase[i, j] · silu(x[b, i]) + scaleSpline[i, j] · Σ_n c[i, j, n] · B_n(x[b, i])
    ///
    /// with `silu(x) = x · σ(x)` and `B_n` (`n < G + k`) the order-k B-spline bases of input `i`'s knots
    /// `t_0 < … < t_{G+2k}` (Cox–de Boor: order 0 is 1 on the half-open `[t_m, t_{m+1})`). At most `k + 1`
    /// bases are non-zero at any `x`, so the work is `O(batch · in · out · k)`, whatever `G`; outside
    /// `[t_0, t_{G+2k})` the spline part is zero. Knots may be non-uniform (after a grid update); with
    /// `shape.uniform` (equally spaced knots, the caller's promise) cubic splines use a closed form.
    ///
    /// - Parameters:
    ///   - operands: x, the knots, the coefficients and the two scales (``SplineOperands``).
    ///   - shape: the sizes, the order `k` (1...5) and whether the knots are uniform.
    ///   - y: `[batch, out]`, overwritten (never read).
    /// - Complexity: `O(batch · in · (out · (k + 1) + k²))`; no scratch of size `batch · in · (G + k)`.
    func splineForward(_ operands: SplineOperands, shape: SplineShape, into y: DeviceBuffer)

    /// The gradients of ``splineForward(_:shape:into:)`` given `dy [batch, out]`; each non-nil gradient
    /// is overwritten (never read), and a nil one is not computed:
    ///
    ///     dx[b, i]                = Σ_j dy[b, j] · (scaleBase[i, j] · silu′(x[b, i]) + scaleSpline[i, j] · Σ_n c[i, j, n] · B_n′(x[b, i]))
    ///     dCoefficients[i, j, n]  = Σ_b dy[b, j] · scaleSpline[i, j] · B_n(x[b, i])
    ///     dScaleBase[i, j]        = Σ_b dy[b, j] · silu(x[b, i])
    ///     dScaleSpline[i, j]      = Σ_b dy[b, j] · Σ_n c[i, j, n] · B_n(x[b, i])
    ///
    /// Sums over the batch run in a fixed order (no atomics), so results do not depend on scheduling and
    /// stay exact when every sample falls into one grid interval. No gradient flows to the knots.
    func splineBackward(_ operands: SplineOperands, shape: SplineShape, outputGradient dy: DeviceBuffer, into gradients: SplineGradients)
}

/// Sizes of a KAN layer's spline evaluation (see ``SplineKernels/splineForward(_:shape:into:)``).
///
/// A layer maps `x [batch, inputs]` to `y [batch, outputs]`. Input `i` has `knotCount = G + 2k + 1`
/// ascending knots (pykan's grid of `G + 1` points extended by `k` knots on each side), and each edge
/// `(i, j)` has `coefficientCount = G + k` B-spline coefficients.
public struct SplineShape: Sendable, Equatable, Hashable {
    public var batch: Int
    public var inputs: Int
    public var outputs: Int
    /// Grid intervals G and spline order k (1...5).
    public var intervals: Int
    public var order: Int
    /// True when every input's knots are equally spaced (enables the closed form for k = 3).
    public var uniform: Bool

    public init(batch: Int, inputs: Int, outputs: Int, intervals: Int, order: Int, uniform: Bool) {
        self.batch = batch
        self.inputs = inputs
        self.outputs = outputs
        self.intervals = intervals
        self.order = order
        self.uniform = uniform
    }

    /// G + k coefficients per edge.
    public var coefficientCount: Int { intervals + order }
    /// G + 2k + 1 knots per input.
    public var knotCount: Int { intervals + 2 * order + 1 }
}

/// The operands of a KAN layer's spline evaluation.
public struct SplineOperands {
    /// `[batch, in]`.
    public var x: DeviceBuffer
    /// `[in, G+2k+1]`, ascending in each row.
    public var knots: DeviceBuffer
    /// `[in, out, G+k]`.
    public var coefficients: DeviceBuffer
    /// `[in, out]` each.
    public var scaleBase: DeviceBuffer
    public var scaleSpline: DeviceBuffer

    public init(x: DeviceBuffer, knots: DeviceBuffer, coefficients: DeviceBuffer, scaleBase: DeviceBuffer, scaleSpline: DeviceBuffer) {
        self.x = x
        self.knots = knots
        self.coefficients = coefficients
        self.scaleBase = scaleBase
        self.scaleSpline = scaleSpline
    }
}

/// Where ``SplineKernels/splineBackward(_:shape:outputGradient:into:)`` writes, laid out as the operands
/// (no gradient flows to the knots); a nil gradient is not computed.
public struct SplineGradients {
    /// dx, `[batch, in]`.
    public var input: DeviceBuffer?
    /// `[in, out, G+k]`.
    public var coefficients: DeviceBuffer?
    /// `[in, out]` each.
    public var scaleBase: DeviceBuffer?
    public var scaleSpline: DeviceBuffer?

    public init(input: DeviceBuffer? = nil, coefficients: DeviceBuffer? = nil, scaleBase: DeviceBuffer? = nil, scaleSpline: DeviceBuffer? = nil) {
        self.input = input
        self.coefficients = coefficients
        self.scaleBase = scaleBase
        self.scaleSpline = scaleSpline
    }

    /// Whether any of the sums over the batch (coefficients, scaleBase, scaleSpline) is wanted.
    var wantsBatchSums: Bool { coefficients != nil || scaleBase != nil || scaleSpline != nil }

    /// The gradients asked for.
    var requested: [DeviceBuffer] { [input, coefficients, scaleBase, scaleSpline].compactMap { $0 } }
}

// MARK: - Checks and empty sums, written once for every backend

extension SplineShape {
    /// The checks of ``SplineKernels/splineForward(_:shape:into:)``.
    func validate(_ operands: SplineOperands, output y: DeviceBuffer) {
        validate("splineForward", self.operands(operands) + [("y [batch, out]", y, batch * outputs)])
    }

    /// The checks of ``SplineKernels/splineBackward(_:shape:outputGradient:into:)``.
    func validate(_ operands: SplineOperands, outputGradient dy: DeviceBuffer, gradients: SplineGradients) {
        validate("splineBackward", self.operands(operands) + [
            ("outputGradient [batch, out]", dy, batch * outputs),
            ("inputGradient [batch, in]", gradients.input, batch * inputs),
            ("coefficientGradient [in, out, G+k]", gradients.coefficients, inputs * outputs * coefficientCount),
            ("scaleBaseGradient [in, out]", gradients.scaleBase, inputs * outputs),
            ("scaleSplineGradient [in, out]", gradients.scaleSpline, inputs * outputs),
        ])
    }

    /// Traps with a message naming `operation` when the sizes are malformed or a buffer holds fewer
    /// elements than its role needs.
    private func validate(_ operation: String, _ buffers: [(name: String, buffer: DeviceBuffer?, needed: Int)]) {
        precondition(batch >= 0 && inputs >= 0 && outputs >= 0, "\(operation): negative size in \(self)")
        precondition((1...5).contains(order), "\(operation): spline order \(order) is outside 1...5")
        precondition(intervals >= 1, "\(operation): \(intervals) grid intervals; a grid needs at least 1")
        for (name, buffer, needed) in buffers {
            guard let buffer else { continue }
            precondition(buffer.count >= needed, "\(operation): \(name) holds \(buffer.count) elements but \(self) needs \(needed)")
        }
    }

    private func operands(_ operands: SplineOperands) -> [(name: String, buffer: DeviceBuffer?, needed: Int)] {
        [
            ("x [batch, in]", operands.x, batch * inputs),
            ("knots [in, G+2k+1]", operands.knots, inputs * knotCount),
            ("coefficients [in, out, G+k]", operands.coefficients, inputs * outputs * coefficientCount),
            ("scaleBase [in, out]", operands.scaleBase, inputs * outputs),
            ("scaleSpline [in, out]", operands.scaleSpline, inputs * outputs),
        ]
    }
}

extension Backend {
    /// A forward pass with nothing to sum (no inputs) writes zeros. Returns whether it was one.
    func writesEmptySplineSums(_ shape: SplineShape, into y: DeviceBuffer) -> Bool {
        guard shape.inputs == 0 else { return false }
        fill(y, offset: 0, count: shape.batch * shape.outputs, value: 0)
        return true
    }

    /// A backward pass with nothing to sum (an empty batch, or no inputs or outputs) writes zeros into
    /// every gradient asked for. Returns whether it was one.
    func writesEmptySplineSums(_ shape: SplineShape, into gradients: SplineGradients) -> Bool {
        guard shape.batch * shape.inputs * shape.outputs == 0 else { return false }
        let (batch, inputs, outputs) = (shape.batch, shape.inputs, shape.outputs)
        if let input = gradients.input { fill(input, offset: 0, count: batch * inputs, value: 0) }
        if let coefficients = gradients.coefficients { fill(coefficients, offset: 0, count: inputs * outputs * shape.coefficientCount, value: 0) }
        if let scaleBase = gradients.scaleBase { fill(scaleBase, offset: 0, count: inputs * outputs, value: 0) }
        if let scaleSpline = gradients.scaleSpline { fill(scaleSpline, offset: 0, count: inputs * outputs, value: 0) }
        return true
    }
}

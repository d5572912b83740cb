// The spline family (KAN layers): moved here verbatim from Backend.swift and Operations.swift; the
// kernels part of issue 12 writes its final form.

/// B-spline evaluation on a device.
public protocol SplineKernels {
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
    ///   - x: `[batch, in]`.
    ///   - knots: `[in, G+2k+1]`, ascending in each row.
    ///   - coefficients: `[in, out, G+k]`.
    ///   - scaleBase: `[in, out]`.
    ///   - scaleSpline: `[in, out]`.
    ///   - y: `[batch, out]`, overwritten (never read).
    ///   - shape: the sizes, the order `k` (1...5) and whether the knots are uniform.
    /// - Complexity: `O(batch · in · (out · (k + 1) + k²))`; no scratch of size `batch · in · (G + k)`.
    func splineForward(_ x: DeviceBuffer, knots: DeviceBuffer, coefficients: DeviceBuffer, scaleBase: DeviceBuffer, scaleSpline: DeviceBuffer, into y: DeviceBuffer, shape: SplineShape)

    /// The gradients of ``splineForward(_:knots:coefficients:scaleBase:scaleSpline:into:shape:)`` given
    /// `dy [batch, out]`; each non-nil output is overwritten (never read), and a nil one is not computed:
    ///
    ///     dx[b, i]                = Σ_j dy[b, j] · (scaleBase[i, j] · silu′(x[b, i]) + scaleSpline[i, j] · Σ_n c[i, j, n] · B_n′(x[b, i]))
    ///     coefficientGradient[i, j, n] = Σ_b dy[b, j] · scaleSpline[i, j] · B_n(x[b, i])
    ///     scaleBaseGradient[i, j]      = Σ_b dy[b, j] · silu(x[b, i])
    ///     scaleSplineGradient[i, j]    = Σ_b dy[b, j] · Σ_n c[i, j, n] · B_n(x[b, i])
    ///
    /// Sums over the batch run in a fixed order (no atomics), so results do not depend on scheduling and
    /// stay exact when every sample falls into one grid interval. No gradient flows to the knots.
    ///
    /// - Parameters:
    ///   - inputGradient: `[batch, in]`.
    ///   - coefficientGradient: `[in, out, G+k]`.
    ///   - scaleBaseGradient, scaleSplineGradient: `[in, out]`.
    func splineBackward(_ x: DeviceBuffer, knots: DeviceBuffer, coefficients: DeviceBuffer, scaleBase: DeviceBuffer, scaleSpline: DeviceBuffer, outputGradient dy: DeviceBuffer, shape: SplineShape, inputGradient: DeviceBuffer?, coefficientGradient: DeviceBuffer?, scaleBaseGradient: DeviceBuffer?, scaleSplineGradient: DeviceBuffer?)
}

/// Sizes of a KAN layer's spline evaluation (see `Backend.splineForward`).
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

    /// Traps with a message naming `operation` when the sizes are malformed or a buffer holds fewer
    /// elements than its role needs.
    func validate(_ operation: String, _ buffers: [(name: String, buffer: DeviceBuffer?, needed: Int)]) {
        precondition(batch >= 0 && inputs >= 0 && outputs >= 0, "\(operation): negative size in \(self)")
        precondition((1...5).contains(order), "\(operation): spline order \(order) is outside 1...5")
        precondition(intervals >= 1, "\(operation): \(intervals) grid intervals; a grid needs at least 1")
        for (name, buffer, needed) in buffers {
            guard let buffer else { continue }
            precondition(buffer.count >= needed, "\(operation): \(name) holds \(buffer.count) elements but \(self) needs \(needed)")
        }
    }

    /// The operand sizes shared by ``Backend/splineForward`` and ``Backend/splineBackward``.
    func parameterBuffers(x: DeviceBuffer, knots: DeviceBuffer, coefficients: DeviceBuffer, scaleBase: DeviceBuffer, scaleSpline: DeviceBuffer)
        -> [(name: String, buffer: DeviceBuffer?, needed: Int)]
    {
        [
            ("x [batch, in]", x, batch * inputs),
            ("knots [in, G+2k+1]", knots, inputs * knotCount),
            ("coefficients [in, out, G+k]", coefficients, inputs * outputs * coefficientCount),
            ("scaleBase [in, out]", scaleBase, inputs * outputs),
            ("scaleSpline [in, out]", scaleSpline, inputs * outputs),
        ]
    }
}

// The spline family's differentiable op: KAN layers' spline evaluation over the backend's fused spline
// kernels (`SplineKernels`, Sources/Backend/Families/Spline.swift).

/// One KAN layer's activations summed per output (see SplineKernels.splineForward); gradients flow to x, coefficients, scaleBase and scaleSpline (not to the knots).
///
/// Each edge `(i, j)` of a Kolmogorov–Arnold Network layer (Liu et al., 2024, "KAN: Kolmogorov–Arnold
/// Networks") applies `scaleBase[i, j] · silu(x) + scaleSpline[i, j] · Σ_n coefficients[i, j, n] · B_n(x)`
/// to `x[:, i]`, with `B_n` the order-k B-splines of input i's knots, and each output sums its edges:
///
///     y[b, j] = Σ_i scaleBase[i, j] · silu(x[b, i]) + scaleSpline[i, j] · Σ_n c[i, j, n] · B_n(x[b, i])
///
/// The spline part is zero outside `[knots[i, 0], knots[i, G+2k])`. The work per sample does not grow
/// with the grid size G: only k + 1 bases are non-zero at any point.
///
/// ```swift
/// let knots = Tensor(inputRows.flatMap { BSpline.extendedKnots(points: $0, order: 3).map(Float.init) }, shape: [inputs, grid + 7], on: backend)
/// let y = splineLayer(x, knots: knots, coefficients: c, scaleBase: sb, scaleSpline: ss, order: 3, uniform: true)
/// ```
///
/// - Parameters:
///   - x: `[batch, in]`.
///   - knots: `[in, G+2k+1]`, ascending in each row (``BSpline/extendedKnots(points:order:)``).
///   - coefficients: `[in, out, G+k]`.
///   - scaleBase: `[in, out]`.
///   - scaleSpline: `[in, out]`.
///   - order: the spline order k, 1...5.
///   - uniform: whether every row of knots is equally spaced (the caller's promise; enables the closed
///     form for cubic splines).
/// - Returns: `[batch, out]`.
/// - Complexity: `O(batch · in · out · (k + 1))` forward and backward, whatever G.
public func splineLayer(_ x: Tensor, knots: Tensor, coefficients: Tensor, scaleBase: Tensor, scaleSpline: Tensor, order: Int, uniform: Bool) -> Tensor {
    Tensor.checkSameDevice("splineLayer", x, knots, coefficients, scaleBase, scaleSpline)
    precondition((1...5).contains(order), "splineLayer: spline order \(order) is outside 1...5")
    precondition(x.rank == 2, "splineLayer: x \(x.shape) must be [batch, in]")
    let (batch, inputs) = (x.shape[0], x.shape[1])
    precondition(knots.rank == 2 && knots.shape[0] == inputs && knots.shape[1] >= 2 * order + 2,
                 "splineLayer: knots \(knots.shape) must be [in, G+2k+1] with G ≥ 1 for x \(x.shape) and order \(order)")
    let intervals = knots.shape[1] - 2 * order - 1
    precondition(coefficients.rank == 3 && coefficients.shape[0] == inputs && coefficients.shape[2] == intervals + order,
                 "splineLayer: coefficients \(coefficients.shape) must be [in, out, G+k] = [\(inputs), out, \(intervals + order)] for x \(x.shape) and knots \(knots.shape)")
    let outputs = coefficients.shape[1]
    precondition(scaleBase.shape == [inputs, outputs], "splineLayer: scaleBase \(scaleBase.shape) must be [in, out] = [\(inputs), \(outputs)] for coefficients \(coefficients.shape)")
    precondition(scaleSpline.shape == [inputs, outputs], "splineLayer: scaleSpline \(scaleSpline.shape) must be [in, out] = [\(inputs), \(outputs)] for coefficients \(coefficients.shape)")

    let backend = x.backend
    let shape = SplineShape(batch: batch, inputs: inputs, outputs: outputs, intervals: intervals, order: order, uniform: uniform)
    let operands = SplineOperands(x: x.storage, knots: knots.storage, coefficients: coefficients.storage, scaleBase: scaleBase.storage, scaleSpline: scaleSpline.storage)
    let out = Tensor(uninitialized: [batch, outputs], on: backend)
    backend.splineForward(operands, shape: shape, into: out.storage)
    out.recordGradient("splineLayer", inputs: [x, knots, coefficients, scaleBase, scaleSpline]) { gradient in
        let dx = x.requiresGradient ? Tensor(uninitialized: x.shape, on: backend) : nil
        let dc = coefficients.requiresGradient ? Tensor(uninitialized: coefficients.shape, on: backend) : nil
        let dBase = scaleBase.requiresGradient ? Tensor(uninitialized: scaleBase.shape, on: backend) : nil
        let dSpline = scaleSpline.requiresGradient ? Tensor(uninitialized: scaleSpline.shape, on: backend) : nil
        backend.splineBackward(
            operands, shape: shape, outputGradient: gradient.storage,
            into: SplineGradients(input: dx?.storage, coefficients: dc?.storage, scaleBase: dBase?.storage, scaleSpline: dSpline?.storage))
        return [dx, nil, dc, dBase, dSpline]
    }
    return out
}

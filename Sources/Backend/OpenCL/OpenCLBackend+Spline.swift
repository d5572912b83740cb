import Foundation

// KAN spline layers on OpenCL: `Kernels/spline.cl`, built on first use once per spline order (see the
// comment at the top of that file for the math, the layouts and the launch geometry).

extension OpenCLBackend {
    /// Outputs per work-item (`VW` in `spline.cl`): explicit float8 vectors on CPU devices (PoCL), one
    /// output per work-item on GPUs so that neighbouring work-items read neighbouring outputs.
    var splineVectorWidth: Int { device.type == "cpu" ? 8 : 1 }

    /// Work-group shape of the 2D spline kernels (first dimension, second dimension).
    private var splineGroup: (Int, Int) { device.type == "cpu" ? (8, 1) : (64, 1) }

    private static let splineKernelNames = [
        "spline_basis", "spline_scaled_rows", "spline_derivative_rows", "spline_forward", "spline_input_gradient",
        "spline_coefficient_gradient",
    ]

    /// The name suffix of the spline kernels for `order`, building `spline.cl` on first use. A missing file
    /// or a failed build is recorded as the backend's pending error (reported by the next synchronize or
    /// download) and returns nil.
    private func splineKernels(order: Int) -> String? {
        let suffix = "_order\(order)"
        if Self.splineKernelNames.allSatisfy({ hasKernel($0 + suffix) }) { return suffix }
        guard isHealthy else { return nil }
        do {
            try loadKernels(from: "spline.cl", options: "-D SPLINE_ORDER=\(order) -D VW=\(splineVectorWidth)", names: Self.splineKernelNames, suffix: suffix)
        } catch {
            record(error)
            return nil
        }
        return suffix
    }

    /// Scratch tables of the non-zero bases at every x[b, i] (batch × in × (k+1) floats at most).
    private struct SplineTables {
        var starts: DeviceBuffer
        var values: DeviceBuffer
        var silu: DeviceBuffer
        var lowerStarts: DeviceBuffer?
        var lowerValues: DeviceBuffer?
        var siluGradient: DeviceBuffer?
    }

    private func splineTables(_ x: DeviceBuffer, knots: DeviceBuffer, shape: SplineShape, derivatives: Bool, suffix: String) -> SplineTables {
        let count = shape.batch * shape.inputs
        let tables = SplineTables(
            starts: allocate(count), values: allocate(count * (shape.order + 1)), silu: allocate(count),
            lowerStarts: derivatives ? allocate(count) : nil, lowerValues: derivatives ? allocate(count * shape.order) : nil,
            siluGradient: derivatives ? allocate(count) : nil)
        launch1D("spline_basis" + suffix, count: count, [
            .int(shape.batch), .int(shape.inputs), .int(shape.intervals), .int(shape.uniform ? 1 : 0), .int(derivatives ? 1 : 0),
            .buffer(x), .buffer(knots), .buffer(tables.starts), .buffer(tables.values), .buffer(tables.silu),
            .buffer(tables.lowerStarts ?? placeholder), .buffer(tables.lowerValues ?? placeholder), .buffer(tables.siluGradient ?? placeholder),
        ])
        return tables
    }

    public func splineForward(_ x: DeviceBuffer, knots: DeviceBuffer, coefficients: DeviceBuffer, scaleBase: DeviceBuffer, scaleSpline: DeviceBuffer, into y: DeviceBuffer, shape: SplineShape) {
        shape.validate("splineForward", shape.parameterBuffers(x: x, knots: knots, coefficients: coefficients, scaleBase: scaleBase, scaleSpline: scaleSpline)
            + [("y [batch, out]", y, shape.batch * shape.outputs)])
        guard shape.batch * shape.outputs > 0, isHealthy else { return }
        if shape.inputs == 0 {
            fill(y, offset: 0, count: shape.batch * shape.outputs, value: 0)
            return
        }
        guard let suffix = splineKernels(order: shape.order) else { return }
        let (batch, inputs, outputs, rows) = (shape.batch, shape.inputs, shape.outputs, shape.coefficientCount)
        let tables = splineTables(x, knots: knots, shape: shape, derivatives: false, suffix: suffix)
        let weights = allocate(inputs * rows * outputs)
        launch1D("spline_scaled_rows" + suffix, count: inputs * rows * outputs, [
            .int(inputs), .int(outputs), .int(rows), .buffer(coefficients), .buffer(scaleSpline), .buffer(weights),
        ])
        let vectors = (outputs + splineVectorWidth - 1) / splineVectorWidth
        launch("spline_forward" + suffix, global: [vectors, batch], local: [splineGroup.0, splineGroup.1], [
            .int(batch), .int(inputs), .int(outputs), .int(rows), .buffer(tables.starts), .buffer(tables.values),
            .buffer(tables.silu), .buffer(weights), .buffer(scaleBase), .buffer(y),
        ])
    }

    public func splineBackward(_ x: DeviceBuffer, knots: DeviceBuffer, coefficients: DeviceBuffer, scaleBase: DeviceBuffer, scaleSpline: DeviceBuffer, outputGradient dy: DeviceBuffer, shape: SplineShape, inputGradient: DeviceBuffer?, coefficientGradient: DeviceBuffer?, scaleBaseGradient: DeviceBuffer?, scaleSplineGradient: DeviceBuffer?) {
        let (batch, inputs, outputs, rows) = (shape.batch, shape.inputs, shape.outputs, shape.coefficientCount)
        shape.validate("splineBackward", shape.parameterBuffers(x: x, knots: knots, coefficients: coefficients, scaleBase: scaleBase, scaleSpline: scaleSpline) + [
            ("outputGradient [batch, out]", dy, batch * outputs),
            ("inputGradient [batch, in]", inputGradient, batch * inputs),
            ("coefficientGradient [in, out, G+k]", coefficientGradient, inputs * outputs * rows),
            ("scaleBaseGradient [in, out]", scaleBaseGradient, inputs * outputs),
            ("scaleSplineGradient [in, out]", scaleSplineGradient, inputs * outputs),
        ])
        guard isHealthy else { return }
        if batch * inputs * outputs == 0 {
            // Empty sums: every gradient is zero.
            if let inputGradient { fill(inputGradient, offset: 0, count: batch * inputs, value: 0) }
            if let coefficientGradient { fill(coefficientGradient, offset: 0, count: inputs * outputs * rows, value: 0) }
            if let scaleBaseGradient { fill(scaleBaseGradient, offset: 0, count: inputs * outputs, value: 0) }
            if let scaleSplineGradient { fill(scaleSplineGradient, offset: 0, count: inputs * outputs, value: 0) }
            return
        }
        guard let suffix = splineKernels(order: shape.order) else { return }
        let tables = splineTables(x, knots: knots, shape: shape, derivatives: inputGradient != nil, suffix: suffix)

        if let scaleBaseGradient {
            // Σ_b silu(x[b, i]) · dy[b, j] = silu(x)ᵀ · dy, by the (deterministic) gemm kernels.
            gemm(GemmProblem(m: inputs, n: outputs, k: batch, transposeA: true), a: tables.silu, b: dy, c: scaleBaseGradient)
        }
        if let inputGradient {
            let derivativeWeights = allocate(inputs * (rows + 1) * outputs)
            launch1D("spline_derivative_rows" + suffix, count: inputs * (rows + 1) * outputs, [
                .int(inputs), .int(outputs), .int(rows), .buffer(coefficients), .buffer(scaleSpline), .buffer(knots), .buffer(derivativeWeights),
            ])
            launch("spline_input_gradient" + suffix, global: [inputs, batch], local: [splineGroup.0, splineGroup.1], [
                .int(batch), .int(inputs), .int(outputs), .int(rows), .buffer(tables.lowerStarts!), .buffer(tables.lowerValues!),
                .buffer(tables.siluGradient!), .buffer(derivativeWeights), .buffer(scaleBase), .buffer(dy), .buffer(inputGradient),
            ])
        }
        if coefficientGradient != nil || scaleSplineGradient != nil {
            let sums = allocate(inputs * rows * outputs)
            let vectors = (outputs + splineVectorWidth - 1) / splineVectorWidth
            launch("spline_coefficient_gradient" + suffix, global: [vectors, inputs], local: [splineGroup.0, splineGroup.1], [
                .int(batch), .int(inputs), .int(outputs), .int(rows), .buffer(tables.starts), .buffer(tables.values), .buffer(dy),
                .buffer(coefficients), .buffer(scaleSpline), .buffer(sums),
                .int(coefficientGradient == nil ? 0 : 1), .buffer(coefficientGradient ?? placeholder),
                .int(scaleSplineGradient == nil ? 0 : 1), .buffer(scaleSplineGradient ?? placeholder),
            ])
        }
    }
}

import Foundation

// KAN spline layers on OpenCL: `Kernels/spline.cl`, built on first use once per spline order (see the
// comment at the top of that file for the math, the layouts and the launch geometry, and `SplineKernels`
// in Families/Spline.swift for the API).

/// Compile-time shape and work-groups of the spline kernels (`VW`, `ROWS`, `TILE` in `Kernels/spline.cl`).
public struct SplineTuning: Sendable, Equatable {
    /// Outputs per work-item and vector width (`VW`: 1, 4 or 8).
    public var vectorWidth: Int
    /// Samples per work-item in the forward (`ROWS`).
    public var rowsPerItem: Int
    /// Outputs per tile of the tiled layouts (`TILE`, a multiple of `vectorWidth`).
    public var tile: Int
    /// Interleaved partial sums per work-item in the sums over the batch (`PARTS`).
    public var parts: Int
    /// Work-group shapes of `spline_forward`, `spline_input_gradient` and `spline_batch_sums`.
    public var forwardGroup: [Int]
    public var inputGradientGroup: [Int]
    public var batchSumGroup: [Int]

    /// `spline.cl` checks the values when it is built (VW in {1, 4, 8}, TILE a multiple of VW): a
    /// combination it rejects is a build error, recorded by the backend like any other.
    public init(vectorWidth: Int, rowsPerItem: Int, tile: Int, parts: Int, forwardGroup: [Int], inputGradientGroup: [Int], batchSumGroup: [Int]) {
        self.vectorWidth = vectorWidth
        self.rowsPerItem = rowsPerItem
        self.tile = tile
        self.parts = parts
        self.forwardGroup = forwardGroup
        self.inputGradientGroup = inputGradientGroup
        self.batchSumGroup = batchSumGroup
    }

    /// CPU devices (PoCL): explicit float8 vectors, four samples per work-item, and work-groups whose
    /// work-items share a slice of outputs (PoCL runs a group's work-items one after another, so that
    /// slice stays in cache). Measured on PoCL 3.1 (bench/RESULTS.md).
    public static let cpuDevice = SplineTuning(vectorWidth: 8, rowsPerItem: 4, tile: 8, parts: 4, forwardGroup: [1, 16], inputGradientGroup: [8, 1], batchSumGroup: [1, 8])

    /// GPUs: one output per work-item, neighbouring work-items on neighbouring floats of 32-wide tiles
    /// (not measured on a GPU yet; checked for correctness on PoCL).
    public static let gpuDevice = SplineTuning(vectorWidth: 1, rowsPerItem: 1, tile: 32, parts: 1, forwardGroup: [64, 1], inputGradientGroup: [64, 1], batchSumGroup: [64, 1])

    var options: String { "-D VW=\(vectorWidth) -D ROWS=\(rowsPerItem) -D TILE=\(tile) -D PARTS=\(parts)" }
}

extension OpenCLBackend {
    var splineTuning: SplineTuning { tuning.spline }

    private static let splineKernelNames = [
        "spline_basis", "spline_forward_rows", "spline_derivative_rows", "spline_tile_columns", "spline_forward",
        "spline_input_gradient", "spline_batch_sums",
    ]

    /// The name suffix of the spline kernels for `order`, building `spline.cl` on first use. A missing file
    /// or a failed build is recorded as the backend's pending error (reported by the next synchronize or
    /// download) and returns nil.
    private func splineKernels(order: Int) -> String? {
        let suffix = "_spline_order\(order)"
        if Self.splineKernelNames.allSatisfy({ hasKernel($0 + suffix) }) { return suffix }
        guard isHealthy else { return nil }
        do {
            try loadKernels(from: "spline.cl", options: "-D SPLINE_ORDER=\(order) \(splineTuning.options)", names: Self.splineKernelNames, suffix: suffix)
        } catch {
            record(error)
            return nil
        }
        return suffix
    }

    /// Scratch tables of silu and the non-zero bases at every x[b, i] (in × batch × (k+1) floats at most).
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

    /// Outputs rounded up to whole tiles.
    private func paddedOutputs(_ shape: SplineShape) -> Int {
        (shape.outputs + splineTuning.tile - 1) / splineTuning.tile * splineTuning.tile
    }

    public func splineForward(_ operands: SplineOperands, shape: SplineShape, into y: DeviceBuffer) {
        shape.validate(operands, output: y)
        guard shape.batch * shape.outputs > 0, isHealthy, !writesEmptySplineSums(shape, into: y), let suffix = splineKernels(order: shape.order) else { return }
        let (batch, inputs, outputs, rows) = (shape.batch, shape.inputs, shape.outputs, shape.coefficientCount)
        let tuning = splineTuning, padded = paddedOutputs(shape)
        let tables = splineTables(operands.x, knots: operands.knots, shape: shape, derivatives: false, suffix: suffix)
        let weights = allocate(inputs * (rows + 1) * padded)
        launch1D("spline_forward_rows" + suffix, count: inputs * (rows + 1) * padded, [
            .int(inputs), .int(outputs), .int(rows), .buffer(operands.coefficients), .buffer(operands.scaleSpline), .buffer(operands.scaleBase),
            .buffer(weights),
        ])
        let vectors = (outputs + tuning.vectorWidth - 1) / tuning.vectorWidth
        let sampleGroups = (batch + tuning.rowsPerItem - 1) / tuning.rowsPerItem
        launch("spline_forward" + suffix, global: [vectors, sampleGroups], local: tuning.forwardGroup, [
            .int(batch), .int(inputs), .int(outputs), .int(rows), .buffer(tables.starts), .buffer(tables.values),
            .buffer(tables.silu), .buffer(weights), .buffer(y),
        ])
    }

    public func splineBackward(_ operands: SplineOperands, shape: SplineShape, outputGradient dy: DeviceBuffer, into gradients: SplineGradients) {
        shape.validate(operands, outputGradient: dy, gradients: gradients)
        guard isHealthy, !writesEmptySplineSums(shape, into: gradients), !gradients.requested.isEmpty,
              let suffix = splineKernels(order: shape.order) else { return }
        let (batch, inputs, outputs, rows) = (shape.batch, shape.inputs, shape.outputs, shape.coefficientCount)
        let tuning = splineTuning, padded = paddedOutputs(shape)
        let tables = splineTables(operands.x, knots: operands.knots, shape: shape, derivatives: gradients.input != nil, suffix: suffix)

        if let inputGradient = gradients.input {
            let derivativeWeights = allocate(inputs * (rows + 2) * outputs)
            launch1D("spline_derivative_rows" + suffix, count: inputs * (rows + 2) * outputs, [
                .int(inputs), .int(outputs), .int(rows), .buffer(operands.coefficients), .buffer(operands.scaleSpline), .buffer(operands.scaleBase),
                .buffer(operands.knots), .buffer(derivativeWeights),
            ])
            launch("spline_input_gradient" + suffix, global: [inputs, batch], local: tuning.inputGradientGroup, [
                .int(batch), .int(inputs), .int(outputs), .int(rows), .buffer(tables.lowerStarts!), .buffer(tables.lowerValues!),
                .buffer(tables.siluGradient!), .buffer(derivativeWeights), .buffer(dy), .buffer(inputGradient),
            ])
        }
        if gradients.wantsBatchSums {
            let dyTiles = allocate(batch * padded)
            launch1D("spline_tile_columns" + suffix, count: batch * padded, [.int(batch), .int(outputs), .buffer(dy), .buffer(dyTiles)])
            let sums = allocate(inputs * tuning.parts * rows * padded)
            let vectors = (outputs + tuning.vectorWidth - 1) / tuning.vectorWidth
            launch("spline_batch_sums" + suffix, global: [vectors, inputs], local: tuning.batchSumGroup, [
                .int(batch), .int(inputs), .int(outputs), .int(rows), .buffer(tables.starts), .buffer(tables.values), .buffer(tables.silu),
                .buffer(dyTiles), .buffer(operands.coefficients), .buffer(operands.scaleSpline), .buffer(sums),
                .int(gradients.coefficients == nil ? 0 : 1), .buffer(gradients.coefficients ?? placeholder),
                .int(gradients.scaleSpline == nil ? 0 : 1), .buffer(gradients.scaleSpline ?? placeholder),
                .int(gradients.scaleBase == nil ? 0 : 1), .buffer(gradients.scaleBase ?? placeholder),
            ])
        }
    }
}

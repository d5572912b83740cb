// The rows family's search space for `kiln tune` (Kernels/rows.cl and the row reductions of reduce.cl:
// GROUP_SIZE work-items per row, a power of two, or one row per work-item in groups of rowsPerGroup).

extension TuningSpace {
    public static let rows = TuningSpace(
        family: .rows,
        parameters: [("rows.groupSize", [1, 8, 16, 32, 64, 128, 256]), ("rows.rowsPerGroup", [1, 2, 4, 8, 16, 32, 64])],
        checks: [.rows, .reduce],
        isValid: { tuning, limits in
            // rowsPerGroup applies only to the serial-row variant (groupSize 1): one value for the others.
            let serial = tuning.rowGroupSize == 1
            return tuning.rowGroupSize <= limits.maximumGroupSize && tuning.rowsPerGroup <= limits.maximumGroupSize && (serial || tuning.rowsPerGroup == 1)
        },
        workloads: {
            [
                TuningWorkload(name: "cross-entropy forward+backward [2048, 1000]", work: Double(2048 * 1000), unit: "Gelem/s") { backend in
                    let shape = RowShape(rows: 2048, columns: 1000)
                    var random = RandomGenerator(seed: 13)
                    let logits = backend.makeBuffer(random.floats(shape.count)), labels = backend.makeBuffer(random.integers(shape.rows, in: 0..<1000))
                    let upstream = backend.makeBuffer([Float](repeating: 1, count: shape.rows))
                    let losses = backend.allocate(shape.rows), gradient = backend.allocate(shape.count)
                    return {
                        backend.softmaxCrossEntropy(logits: logits, labels: labels, into: losses, shape: shape)
                        backend.softmaxCrossEntropyBackward(logits: logits, labels: labels, lossGradient: upstream, into: gradient, shape: shape)
                    }
                },
                TuningWorkload(name: "RMSNorm forward+backward [8192, 512]", work: Double(8192 * 512), unit: "Gelem/s") { backend in
                    let shape = RowShape(rows: 8192, columns: 512)
                    var random = RandomGenerator(seed: 14)
                    let x = backend.makeBuffer(random.floats(shape.count)), weight = backend.makeBuffer(random.floats(shape.columns, in: 0.5...1.5))
                    let dy = backend.makeBuffer(random.floats(shape.count))
                    let y = backend.allocate(shape.count), rstd = backend.allocate(shape.rows), dx = backend.allocate(shape.count), dw = backend.allocate(shape.columns)
                    return {
                        backend.rmsNorm(x, weight: weight, into: y, inverseRMS: rstd, shape: shape, epsilon: 1e-5)
                        backend.rmsNormBackward(x, weight: weight, inverseRMS: rstd, outputGradient: dy, into: dx, weightGradient: dw, shape: shape)
                    }
                },
                TuningWorkload(name: "row sums [4096, 1024]", work: Double(4096 * 1024), unit: "Gelem/s") { backend in
                    let shape = ReduceShape(outer: 4096, length: 1024, inner: 1)
                    var random = RandomGenerator(seed: 15)
                    let x = backend.makeBuffer(random.floats(shape.inputCount)), y = backend.allocate(shape.outputCount)
                    return { backend.reduce(.sum, x, into: y, shape: shape) }
                },
            ]
        })
}

// The spline family's search space for `kiln tune` (Kernels/spline.cl, SplineTuning in
// OpenCLBackend+Spline.swift): vector width, samples per work-item, tile, partial sums and the three
// work-group shapes; spline.cl rejects at build time a TILE that is not a multiple of VW.

extension TuningSpace {
    public static let spline = TuningSpace(
        family: .spline,
        parameters: [
            ("spline.vectorWidth", [1, 4, 8]), ("spline.rowsPerItem", [1, 2, 4, 8]), ("spline.tile", [8, 16, 32, 64]), ("spline.parts", [1, 2, 4, 8]),
            ("spline.forwardGroup0", [1, 4, 16, 64]), ("spline.forwardGroup1", [1, 4, 16, 64]),
            ("spline.inputGradientGroup0", [1, 8, 32, 64]), ("spline.inputGradientGroup1", [1, 4]),
            ("spline.batchSumGroup0", [1, 8, 32, 64]), ("spline.batchSumGroup1", [1, 8, 32]),
        ],
        checks: [.spline],
        isValid: { tuning, limits in
            let s = tuning.spline
            return s.tile % s.vectorWidth == 0
                && [s.forwardGroup, s.inputGradientGroup, s.batchSumGroup].allSatisfy { $0.reduce(1, *) <= limits.maximumGroupSize }
        },
        workloads: {
            // The benchmark's KAN layer (kiln-bench spline): batch 1024, 256 → 256, cubic, G = 5 and 20.
            [5, 20].map { intervals in
                let shape = SplineShape(batch: 1024, inputs: 256, outputs: 256, intervals: intervals, order: 3, uniform: true)
                return TuningWorkload(name: "KAN layer 1024 × 256 → 256, G \(intervals), forward+backward", work: Double(shape.batch * shape.inputs * shape.outputs), unit: "Gedge/s") { backend in
                    var random = RandomGenerator(seed: 13)
                    let knots = random.splineKnots(inputs: shape.inputs, intervals: intervals, order: 3, uniform: true)
                    let edges = shape.inputs * shape.outputs
                    let operands = SplineOperands(
                        x: backend.makeBuffer(random.floats(shape.batch * shape.inputs)), knots: backend.makeBuffer(knots),
                        coefficients: backend.makeBuffer(random.floats(edges * shape.coefficientCount)),
                        scaleBase: backend.makeBuffer(random.floats(edges)), scaleSpline: backend.makeBuffer(random.floats(edges)))
                    let dy = backend.makeBuffer(random.floats(shape.batch * shape.outputs)), y = backend.allocate(shape.batch * shape.outputs)
                    let gradients = SplineGradients(input: backend.allocate(shape.batch * shape.inputs), coefficients: backend.allocate(edges * shape.coefficientCount),
                                                    scaleBase: backend.allocate(edges), scaleSpline: backend.allocate(edges))
                    return {
                        backend.splineForward(operands, shape: shape, into: y)
                        backend.splineBackward(operands, shape: shape, outputGradient: dy, into: gradients)
                    }
                }
            }
        })
}

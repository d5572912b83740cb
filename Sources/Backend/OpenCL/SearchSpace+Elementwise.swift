// The elementwise family's search space for `kiln tune` (Kernels/elementwise.cl; the work-group size of
// every one-dimensional kernel, OpenCLTuning.elementwiseGroupSize).

extension TuningSpace {
    public static let elementwise = TuningSpace(
        family: .elementwise,
        parameters: [("elementwise.groupSize", [8, 16, 32, 64, 128, 256, 512, 1024])],
        checks: [.elementwise, .optimizer],
        isValid: { tuning, limits in tuning.elementwiseGroupSize <= limits.maximumGroupSize },
        workloads: {
            [
                TuningWorkload(name: "gelu forward+backward, 2²² elements", work: Double(1 << 22), unit: "Gelem/s") { backend in
                    let count = 1 << 22
                    var random = RandomGenerator(seed: 13)
                    let x = backend.makeBuffer(random.floats(count)), dy = backend.makeBuffer(random.floats(count))
                    let y = backend.allocate(count), dx = backend.allocate(count)
                    return {
                        backend.unary(.gelu, x, into: y, count: count)
                        backend.unaryBackward(.gelu, input: x, output: y, outputGradient: dy, into: dx, count: count)
                    }
                },
                TuningWorkload(name: "bias add [4096, 1024] + [1024]", work: Double(4096 * 1024), unit: "Gelem/s") { backend in
                    var random = RandomGenerator(seed: 14)
                    let a = backend.makeBuffer(random.floats(4096 * 1024)), b = backend.makeBuffer(random.floats(1024)), out = backend.allocate(4096 * 1024)
                    return { backend.binary(.add, a, .contiguous([4096, 1024]), b, StridedLayout(strides: [0, 1]), into: out, shape: [4096, 1024]) }
                },
            ]
        })
}

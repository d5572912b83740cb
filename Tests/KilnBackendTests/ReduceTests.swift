import KilnBackend
import KilnTestSupport
import Testing

@Suite("reductions against the float64 reference")
struct ReduceTests {
    // Long reductions (DESIGN.md): relative error below 1e-4.
    static let bound = CheckBound.longReduction

    @Test("sum, mean, max, min and sum of squares along an axis", arguments: BackendCase.withGPUParameters)
    func reductions(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let shapes = [
            (1, 1, 1), (1, 513, 1), (7, 33, 1), (1, 7, 127), (33, 127, 7), (3, 1, 513), (127, 7, 33), (1, 100_003, 1),
            (2, 5000, 3), (5, 1031, 1), (2, 3, 300),
        ]
        for (outer, length, inner) in shapes {
            let shape = ReduceShape(outer: outer, length: length, inner: inner)
            let x = random.floats(shape.inputCount, in: -2...3)
            let input = backend.makeBuffer(x)
            for op in ReductionOp.allCases {
                let out = backend.poisoned(shape.outputCount)
                backend.reduce(op, input, into: out, shape: shape)
                let error = relativeError(try backend.download(out), Reference.reduce(op, x.doubles, shape: shape))
                #expect(error < Self.bound, "\(op) \(shape): error \(error), seed \(random.seed)")
            }
        }
    }
}

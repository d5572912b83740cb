import KilnBackend
import KilnTestSupport
import Testing

/// The CPU backend's C loops come in a portable version and wider ones (AVX2 + FMA, AVX-512) chosen at run
/// time, which must round exactly as the portable one (`CKilnCPU/loops.h`): a result may not depend on the
/// processor, or on a test switching the vector level while others run.
@Suite("CPU loops: the vector versions give the portable version's bits")
struct CPULoopTests {
    /// `body`'s result with the portable loops and with the widest ones the processor has.
    static func bothVersions(_ body: () throws -> [Float]) throws -> (portable: [Float], wide: [Float]) {
        (try withWideVectors(false, body), try withWideVectors(true, body))
    }

    static func expectSameBits(_ label: String, seed: UInt64, _ body: () throws -> [Float]) throws {
        let (portable, wide) = try bothVersions(body)
        let differing = portable.indices.filter { portable[$0].bitPattern != wide[$0].bitPattern }
        #expect(portable.count == wide.count && differing.isEmpty,
                "\(label): \(differing.count) of \(portable.count) elements differ, the first at \(differing.first ?? -1); seed \(seed)")
    }

    @Test("element-wise, reduce, rows, embedding, random and optimizer loops")
    func families() throws {
        let backend = CPUBackend()
        var random = RandomGenerator.withFreshSeed()
        let seed = random.seed
        let count = 10_007
        let x = backend.makeBuffer(random.floats(count, in: -3...3)), dy = backend.makeBuffer(random.floats(count))
        let positive = backend.makeBuffer(random.floats(count, in: 0.1...3))
        for op in ElementwiseTests.unaryOps {
            let input = [.log, .sqrt, .reciprocalSqrt, .reciprocal, .power(1.7)].contains(op) ? positive : x
            try Self.expectSameBits("\(op)", seed: seed) {
                let y = backend.allocate(count), dx = backend.allocate(count)
                backend.unary(op, input, into: y, count: count)
                backend.unaryBackward(op, input: input, output: y, outputGradient: dy, into: dx, count: count)
                return try backend.download(y) + backend.download(dx)
            }
        }
        let dense = StridedLayout.contiguous([97, 103])
        try Self.expectSameBits("binary with broadcasting", seed: seed) {
            let out = backend.allocate(97 * 103)
            backend.binary(.divide, x, dense, dy, StridedLayout(strides: [0, 1]), into: out, shape: [97, 103])
            return try backend.download(out)
        }
        for shape in [ReduceShape(outer: 1, length: count, inner: 1), ReduceShape(outer: 7, length: 13, inner: 109)] {
            for op in ReductionOp.allCases {
                try Self.expectSameBits("reduce \(op) \(shape)", seed: seed) {
                    let out = backend.allocate(shape.outputCount)
                    backend.reduce(op, x, into: out, shape: shape)
                    return try backend.download(out)
                }
            }
        }
        let rows = RowShape(rows: 97, columns: 103)
        let labels = backend.makeBuffer(random.integers(rows.rows, in: 0..<Int32(rows.columns)))
        try Self.expectSameBits("rows", seed: seed) {
            let y = backend.allocate(rows.count), dx = backend.allocate(rows.count), losses = backend.allocate(rows.rows)
            let rstd = backend.allocate(rows.rows), dw = backend.allocate(rows.columns)
            var results: [Float] = []
            backend.softmax(x, into: y, shape: rows)
            backend.softmaxBackward(output: y, outputGradient: dy, into: dx, shape: rows)
            results += try backend.download(y) + backend.download(dx)
            backend.logSoftmax(x, into: y, shape: rows)
            backend.logSoftmaxBackward(output: y, outputGradient: dy, into: dx, shape: rows)
            results += try backend.download(y) + backend.download(dx)
            backend.softmaxCrossEntropy(logits: x, labels: labels, into: losses, shape: rows)
            backend.softmaxCrossEntropyBackward(logits: x, labels: labels, lossGradient: dy, into: dx, shape: rows)
            results += try backend.download(losses) + backend.download(dx)
            backend.rmsNorm(x, weight: positive, into: y, inverseRMS: rstd, shape: rows, epsilon: 1e-5)
            backend.rmsNormBackward(x, weight: positive, inverseRMS: rstd, outputGradient: dy, into: dx, weightGradient: dw, shape: rows)
            return try results + backend.download(y) + backend.download(rstd) + backend.download(dx) + backend.download(dw)
        }
        let lookup = EmbeddingShape(tableRows: 50, indexCount: 193, columns: 51)
        let indices = backend.makeBuffer(random.integers(lookup.indexCount, in: -1..<51))
        try Self.expectSameBits("embedding", seed: seed) {
            let gathered = backend.allocate(lookup.indexCount * lookup.columns), table = backend.makeBuffer([Float](repeating: 0.5, count: 50 * 51))
            backend.gatherRows(x, indices: indices, into: gathered, shape: lookup)
            backend.scatterAddRows(dy, indices: indices, into: table, shape: lookup)
            return try backend.download(gathered) + backend.download(table)
        }
        try Self.expectSameBits("random", seed: seed) {
            let out = backend.allocate(count)
            backend.randomUniform(into: out, count: count, seed: seed, offset: 12_345)
            return try backend.download(out)
        }
        for rule in OptimizerTests.rules {
            try Self.expectSameBits("\(rule)", seed: seed) {
                let parameter = backend.makeBuffer(try backend.download(x))
                let state = (0..<rule.stateCount).map { _ in backend.makeBuffer([Float](repeating: 0.1, count: count)) }
                backend.optimizerStep(OptimizerUpdate(rule, count: count, learningRate: 0.01, step: 3), parameter: parameter, gradient: dy, state: state, gradientScale: nil)
                return try state.reduce(backend.download(parameter)) { try $0 + backend.download($1) }
            }
        }
    }
}

import Foundation
import KilnBackend
import KilnTestSupport
import Testing

@Suite("fused row operations against the float64 reference")
struct RowsTests {
    // Outputs of one row (element-wise work): relative error below 1e-5 (the check's cases: gradients that
    // subtract a row's sum from each element below 1e-4, the bound of long reductions, DESIGN.md).
    static let forwardBound = CheckBound.elementwise

    static let shapes = [(1, 1), (1, 7), (7, 33), (33, 127), (5, 513), (3, 2000), (2, 8), (9, 17)].map { RowShape(rows: $0.0, columns: $0.1) }

    // The check's rows case (CheckCases.rows): softmax, log-softmax and their gradients, cross-entropy with
    // an ignored and an out-of-range label, RMSNorm (from two columns on) and its gradients, every output
    // poisoned first; here over the long list of shapes.
    @Test("softmax, log-softmax, cross-entropy with ignored rows and RMSNorm, forward and backward", arguments: BackendCase.withGPUParameters)
    func rowsCases(_ backendCase: BackendCase) throws {
        expectCheckCasesPass(.rows, on: try backendCase.makeBackend(), "\(backendCase)") { $0.rows = Self.shapes }
    }

    @Test("softmax may run in place", arguments: BackendCase.all)
    func inPlace(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let shape = RowShape(rows: 7, columns: 33)
        let x = random.floats(shape.count, in: -6...6)
        let buffer = backend.makeBuffer(x), logBuffer = backend.makeBuffer(x)
        backend.softmax(buffer, into: buffer, shape: shape)
        backend.logSoftmax(logBuffer, into: logBuffer, shape: shape)
        #expect(relativeError(try backend.download(buffer), Reference.softmax(x.doubles, shape: shape)) < Self.forwardBound, "seed \(random.seed)")
        #expect(relativeError(try backend.download(logBuffer), Reference.logSoftmax(x.doubles, shape: shape)) < Self.forwardBound, "seed \(random.seed)")
    }

    @Test("the reference gradients match central differences of the reference functions")
    func referenceGradients() {
        var random = RandomGenerator.withFreshSeed()
        let shape = RowShape(rows: 3, columns: 7)
        let x = random.floats(shape.count, in: -2...2).doubles, dy = random.floats(shape.count).doubles
        let weight = random.floats(shape.columns, in: 0.5...1.5).doubles
        let labels: [Int32] = [2, -1, 6]
        func projected(_ values: [Double]) -> Double { zip(values, dy).map(*).reduce(0, +) }
        let checks: [(String, analytic: [Double], numeric: [Double])] = [
            ("softmax", Reference.softmaxBackward(output: Reference.softmax(x, shape: shape), outputGradient: dy, shape: shape),
             finiteDifferenceGradient(x) { projected(Reference.softmax($0, shape: shape)) }),
            ("log-softmax", Reference.logSoftmaxBackward(output: Reference.logSoftmax(x, shape: shape), outputGradient: dy, shape: shape),
             finiteDifferenceGradient(x) { projected(Reference.logSoftmax($0, shape: shape)) }),
            ("cross-entropy", Reference.softmaxCrossEntropyBackward(logits: x, labels: labels, lossGradient: Array(dy.prefix(3)), shape: shape),
             finiteDifferenceGradient(x) { zip(Reference.softmaxCrossEntropy(logits: $0, labels: labels, shape: shape), dy).map(*).reduce(0, +) }),
            ("RMSNorm input", Reference.rmsNormBackward(x, weight: weight, outputGradient: dy, shape: shape, epsilon: 1e-5).input,
             finiteDifferenceGradient(x) { projected(Reference.rmsNorm($0, weight: weight, shape: shape, epsilon: 1e-5).output) }),
            ("RMSNorm weight", Reference.rmsNormBackward(x, weight: weight, outputGradient: dy, shape: shape, epsilon: 1e-5).weight,
             finiteDifferenceGradient(weight) { projected(Reference.rmsNorm(x, weight: $0, shape: shape, epsilon: 1e-5).output) }),
        ]
        for (name, analytic, numeric) in checks {
            #expect(relativeError(analytic.map(Float.init), numeric) < 1e-6, "\(name), seed \(random.seed)")
        }
    }
}

import Foundation
import KilnBackend
import KilnTestSupport
import Testing

@Suite("fused row operations against the float64 reference")
struct RowsTests {
    // Outputs of one row (element-wise work): relative error below 1e-5; gradients that subtract a row's
    // sum from each element: below 1e-4 (the bound of long reductions, DESIGN.md).
    static let forwardBound = CheckBound.elementwise
    static let gradientBound = CheckBound.longReduction

    static let shapes = [(1, 1), (1, 7), (7, 33), (33, 127), (5, 513), (3, 2000), (2, 8), (9, 17)].map { RowShape(rows: $0.0, columns: $0.1) }

    @Test("softmax and log-softmax, forward and backward", arguments: BackendCase.withGPUParameters)
    func softmaxFamily(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for shape in Self.shapes {
            let x = random.floats(shape.count, in: -6...6), dy = random.floats(shape.count)
            let xBuffer = backend.makeBuffer(x), dyBuffer = backend.makeBuffer(dy)
            let y = backend.poisoned(shape.count), logY = backend.poisoned(shape.count)
            let dx = backend.poisoned(shape.count), logDx = backend.poisoned(shape.count)
            backend.softmax(xBuffer, into: y, shape: shape)
            backend.logSoftmax(xBuffer, into: logY, shape: shape)
            backend.softmaxBackward(output: y, outputGradient: dyBuffer, into: dx, shape: shape)
            backend.logSoftmaxBackward(output: logY, outputGradient: dyBuffer, into: logDx, shape: shape)
            // The backward references take the float64 outputs, so the device's rounding of y counts.
            let probabilities = Reference.softmax(x.doubles, shape: shape), logProbabilities = Reference.logSoftmax(x.doubles, shape: shape)
            let label = "\(shape), seed \(random.seed)"
            #expect(relativeError(try backend.download(y), probabilities) < Self.forwardBound, "softmax \(label)")
            #expect(relativeError(try backend.download(logY), logProbabilities) < Self.forwardBound, "log-softmax \(label)")
            #expect(relativeError(try backend.download(dx), Reference.softmaxBackward(output: probabilities, outputGradient: dy.doubles, shape: shape)) < Self.gradientBound, "softmax backward \(label)")
            #expect(relativeError(try backend.download(logDx), Reference.logSoftmaxBackward(output: logProbabilities, outputGradient: dy.doubles, shape: shape)) < Self.gradientBound, "log-softmax backward \(label)")
        }
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

    @Test("softmax cross-entropy with ignored rows, forward and backward", arguments: BackendCase.withGPUParameters)
    func crossEntropy(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for shape in Self.shapes {
            let logits = random.floats(shape.count, in: -5...5)
            var labels = random.integers(shape.rows, in: 0..<Int32(shape.columns))
            if shape.rows > 2 { labels[1] = -1 }  // an ignored row
            if shape.rows > 3 { labels[2] = Int32(shape.columns) }  // out of range: ignored too
            let upstream = random.floats(shape.rows, in: 0.1...2)
            let logitsBuffer = backend.makeBuffer(logits), labelBuffer = backend.makeBuffer(labels)
            let losses = backend.poisoned(shape.rows), gradient = backend.poisoned(shape.count)
            backend.softmaxCrossEntropy(logits: logitsBuffer, labels: labelBuffer, into: losses, shape: shape)
            backend.softmaxCrossEntropyBackward(logits: logitsBuffer, labels: labelBuffer, lossGradient: backend.makeBuffer(upstream), into: gradient, shape: shape)
            let label = "\(shape), seed \(random.seed)"
            // A row's loss is log Σ exp(z) − z[label], a difference that can cancel to near 0 (one row of 7
            // once gave 2e-5 relative error for 1e-7 absolute): its rounding scales with the two terms.
            let magnitudes = (0..<shape.rows).map { row -> Double in
                let z = logits[(row * shape.columns)..<((row + 1) * shape.columns)].map(Double.init)
                guard labels[row] >= 0, Int(labels[row]) < shape.columns, let top = z.max() else { return 0 }
                return abs(top + log(z.map { exp($0 - top) }.reduce(0, +))) + abs(z[Int(labels[row])])
            }
            #expect(relativeError(try backend.download(losses), Reference.softmaxCrossEntropy(logits: logits.doubles, labels: labels, shape: shape), magnitude: magnitudes) < Self.forwardBound, "loss \(label)")
            let expectedGradient = Reference.softmaxCrossEntropyBackward(logits: logits.doubles, labels: labels, lossGradient: upstream.doubles, shape: shape)
            #expect(relativeError(try backend.download(gradient), expectedGradient) < Self.forwardBound, "gradient \(label)")
        }
    }

    @Test("RMSNorm forward and backward", arguments: BackendCase.withGPUParameters)
    func rmsNorm(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let epsilon: Float = 1e-5
        // With one column the output is ±weight and dx is O(epsilon), pure cancellation: not a meaningful
        // relative-error test, so RMSNorm starts at two columns.
        for shape in Self.shapes.map({ RowShape(rows: $0.rows, columns: max($0.columns, 2)) }) {
            let x = random.floats(shape.count, in: -2...2), weight = random.floats(shape.columns, in: 0.5...1.5)
            let dy = random.floats(shape.count)
            let xBuffer = backend.makeBuffer(x), wBuffer = backend.makeBuffer(weight)
            let y = backend.poisoned(shape.count), rstd = backend.poisoned(shape.rows)
            let dx = backend.poisoned(shape.count), dw = backend.poisoned(shape.columns)
            backend.rmsNorm(xBuffer, weight: wBuffer, into: y, inverseRMS: rstd, shape: shape, epsilon: epsilon)
            backend.rmsNormBackward(xBuffer, weight: wBuffer, inverseRMS: rstd, outputGradient: backend.makeBuffer(dy), into: dx, weightGradient: dw, shape: shape)
            let forward = Reference.rmsNorm(x.doubles, weight: weight.doubles, shape: shape, epsilon: Double(epsilon))
            let backward = Reference.rmsNormBackward(x.doubles, weight: weight.doubles, outputGradient: dy.doubles, shape: shape, epsilon: Double(epsilon))
            let label = "\(shape), seed \(random.seed)"
            #expect(relativeError(try backend.download(y), forward.output) < Self.forwardBound, "y \(label)")
            #expect(relativeError(try backend.download(rstd), forward.inverseRMS) < Self.forwardBound, "rstd \(label)")
            #expect(relativeError(try backend.download(dx), backward.input) < Self.gradientBound, "dx \(label)")
            #expect(relativeError(try backend.download(dw), backward.weight) < Self.gradientBound, "dw \(label)")
        }
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

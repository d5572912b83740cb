import Foundation
import KilnBackend
import KilnTestSupport
import Testing

@Suite("reductions and fused row operations against float64 references")
struct ReductionTests {
    static func reference(_ op: ReductionOp, _ x: [Float], outer: Int, length: Int, inner: Int) -> [Double] {
        var result: [Double] = []
        for o in 0..<outer {
            for i in 0..<inner {
                let values = (0..<length).map { Double(x[(o * length + $0) * inner + i]) }
                switch op {
                case .sum: result.append(values.reduce(0, +))
                case .mean: result.append(values.reduce(0, +) / Double(length))
                case .max: result.append(values.max()!)
                case .min: result.append(values.min()!)
                case .sumOfSquares: result.append(values.map { $0 * $0 }.reduce(0, +))
                }
            }
        }
        return result
    }

    // Long reductions (DESIGN.md): relative error below 1e-4.
    @Test("sum, mean, max, min and sum of squares along an axis", arguments: BackendCase.all)
    func reductions(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let shapes = [(1, 1, 1), (1, 513, 1), (7, 33, 1), (1, 7, 127), (33, 127, 7), (3, 1, 513), (127, 7, 33), (1, 100_003, 1), (2, 5000, 3)]
        for (outer, length, inner) in shapes {
            let x = random.floats(outer * length * inner, in: -2...3)
            let input = backend.makeBuffer(x)
            for op in ReductionOp.allCases {
                let out = backend.poisoned(outer * inner)
                backend.reduce(op, input, into: out, outer: outer, length: length, inner: inner)
                let expected = Self.reference(op, x, outer: outer, length: length, inner: inner)
                #expect(relativeError(try backend.download(out), expected) < 1e-4, "\(op) [\(outer), \(length), \(inner)] seed \(random.seed)")
            }
        }
    }

    static func softmaxRow(_ row: ArraySlice<Float>) -> [Double] {
        let values = row.map(Double.init)
        let largest = values.max()!
        let exps = values.map { Foundation.exp($0 - largest) }
        let total = exps.reduce(0, +)
        return exps.map { $0 / total }
    }

    static let rowShapes = [(1, 1), (1, 7), (7, 33), (33, 127), (5, 513), (3, 2000)]

    @Test("softmax and log-softmax, forward and backward", arguments: BackendCase.all)
    func softmaxFamily(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for (rows, columns) in Self.rowShapes {
            let x = random.floats(rows * columns, in: -6...6)
            let dy = random.floats(rows * columns)
            let count = rows * columns
            let xBuffer = backend.makeBuffer(x), dyBuffer = backend.makeBuffer(dy)
            var expectedSoftmax: [Double] = [], expectedLog: [Double] = []
            var expectedSoftmaxGrad: [Double] = [], expectedLogGrad: [Double] = []
            for r in 0..<rows {
                let p = Self.softmaxRow(x[r * columns..<(r + 1) * columns])
                let g = dy[r * columns..<(r + 1) * columns].map(Double.init)
                expectedSoftmax += p
                expectedLog += p.map { Foundation.log($0) }
                let dot = zip(p, g).map(*).reduce(0, +)
                expectedSoftmaxGrad += zip(p, g).map { $0 * ($1 - dot) }
                let total = g.reduce(0, +)
                expectedLogGrad += zip(p, g).map { $1 - $0 * total }
            }
            let y = backend.poisoned(count), logY = backend.poisoned(count)
            let dx = backend.poisoned(count), logDx = backend.poisoned(count)
            backend.softmax(xBuffer, into: y, rows: rows, columns: columns)
            backend.logSoftmax(xBuffer, into: logY, rows: rows, columns: columns)
            backend.softmaxBackward(output: y, outputGradient: dyBuffer, into: dx, rows: rows, columns: columns)
            backend.logSoftmaxBackward(output: logY, outputGradient: dyBuffer, into: logDx, rows: rows, columns: columns)
            let label = "[\(rows), \(columns)] seed \(random.seed)"
            #expect(relativeError(try backend.download(y), expectedSoftmax) < 1e-5, "softmax \(label)")
            #expect(relativeError(try backend.download(logY), expectedLog) < 1e-5, "log-softmax \(label)")
            #expect(relativeError(try backend.download(dx), expectedSoftmaxGrad) < 1e-4, "softmax backward \(label)")
            #expect(relativeError(try backend.download(logDx), expectedLogGrad) < 1e-4, "log-softmax backward \(label)")
        }
    }

    @Test("softmax cross-entropy with ignored rows, forward and backward", arguments: BackendCase.all)
    func crossEntropy(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for (rows, columns) in Self.rowShapes {
            let logits = random.floats(rows * columns, in: -5...5)
            var labels = random.integers(rows, in: 0..<Int32(columns))
            if rows > 2 { labels[1] = -1 }  // ignored row
            let upstream = random.floats(rows, in: 0.1...2)
            let logitsBuffer = backend.makeBuffer(logits), labelBuffer = backend.makeBuffer(labels)
            let losses = backend.poisoned(rows), gradient = backend.poisoned(rows * columns)
            backend.softmaxCrossEntropy(logits: logitsBuffer, labels: labelBuffer, into: losses, rows: rows, columns: columns)
            backend.softmaxCrossEntropyBackward(logits: logitsBuffer, labels: labelBuffer, lossGradient: backend.makeBuffer(upstream), into: gradient, rows: rows, columns: columns)
            var expectedLoss: [Double] = [], expectedGradient: [Double] = []
            for r in 0..<rows {
                let row = logits[r * columns..<(r + 1) * columns]
                guard labels[r] >= 0 else {
                    expectedLoss.append(0)
                    expectedGradient += [Double](repeating: 0, count: columns)
                    continue
                }
                let p = Self.softmaxRow(row)
                expectedLoss.append(-Foundation.log(p[Int(labels[r])]))
                expectedGradient += p.enumerated().map { c, value in (value - (c == Int(labels[r]) ? 1 : 0)) * Double(upstream[r]) }
            }
            let label = "[\(rows), \(columns)] seed \(random.seed)"
            #expect(relativeError(try backend.download(losses), expectedLoss) < 1e-5, "loss \(label)")
            #expect(relativeError(try backend.download(gradient), expectedGradient) < 1e-5, "gradient \(label)")
        }
    }

    @Test("RMSNorm forward and backward; the reference gradient matches finite differences", arguments: BackendCase.all)
    func rmsNorm(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let epsilon: Float = 1e-5
        // With one column the output is ±weight and dx is O(epsilon), pure cancellation: not a meaningful
        // relative-error test, so RMSNorm starts at two columns.
        for (rows, columns) in Self.rowShapes.map({ ($0.0, max($0.1, 2)) }) {
            let x = random.floats(rows * columns, in: -2...2)
            let weight = random.floats(columns, in: 0.5...1.5)
            let dy = random.floats(rows * columns)
            var expectedY: [Double] = [], expectedRstd: [Double] = [], expectedDx: [Double] = []
            var expectedDw = [Double](repeating: 0, count: columns)
            for r in 0..<rows {
                let row = x[r * columns..<(r + 1) * columns].map(Double.init)
                let g = dy[r * columns..<(r + 1) * columns].map(Double.init)
                let w = weight.map(Double.init)
                let rstd = 1 / (row.map { $0 * $0 }.reduce(0, +) / Double(columns) + Double(epsilon)).squareRoot()
                expectedRstd.append(rstd)
                expectedY += row.indices.map { row[$0] * rstd * w[$0] }
                let dot = row.indices.map { g[$0] * w[$0] * row[$0] }.reduce(0, +)
                expectedDx += row.indices.map { rstd * w[$0] * g[$0] - rstd * rstd * rstd * row[$0] * dot / Double(columns) }
                for c in 0..<columns { expectedDw[c] += g[c] * row[c] * rstd }
            }
            if rows == 7 {
                // Check the closed form itself on one row against central differences of Σ dy·y.
                let row = x[0..<columns].map(Double.init), g = dy[0..<columns].map(Double.init)
                let numeric = finiteDifferenceGradient(row) { v in
                    let rstd = 1 / (v.map { $0 * $0 }.reduce(0, +) / Double(columns) + Double(epsilon)).squareRoot()
                    return v.indices.map { v[$0] * rstd * Double(weight[$0]) * g[$0] }.reduce(0, +)
                }
                #expect(relativeError(numeric.map(Float.init), Array(expectedDx[0..<columns])) < 1e-6)
            }
            let xBuffer = backend.makeBuffer(x), wBuffer = backend.makeBuffer(weight)
            let y = backend.poisoned(rows * columns), rstd = backend.poisoned(rows)
            let dx = backend.poisoned(rows * columns), dw = backend.poisoned(columns)
            backend.rmsNorm(xBuffer, weight: wBuffer, into: y, inverseRMS: rstd, rows: rows, columns: columns, epsilon: epsilon)
            backend.rmsNormBackward(xBuffer, weight: wBuffer, inverseRMS: rstd, outputGradient: backend.makeBuffer(dy), into: dx, weightGradient: dw, rows: rows, columns: columns)
            let label = "[\(rows), \(columns)] seed \(random.seed)"
            #expect(relativeError(try backend.download(y), expectedY) < 1e-5, "y \(label)")
            #expect(relativeError(try backend.download(rstd), expectedRstd) < 1e-5, "rstd \(label)")
            #expect(relativeError(try backend.download(dx), expectedDx) < 1e-4, "dx \(label)")
            #expect(relativeError(try backend.download(dw), expectedDw) < 1e-4, "dw \(label)")
        }
    }
}

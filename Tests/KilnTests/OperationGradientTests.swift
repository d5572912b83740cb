import Foundation
import Kiln
import KilnTestSupport
import Testing

/// Every differentiable op: forward against float64, gradients against finite differences, on every backend.
@Suite("operations: forward and gradients against float64 references")
struct OperationGradientTests {
    static func unary(_ name: String, range: ClosedRange<Float> = -2...2, _ kiln: @escaping (Tensor) -> Tensor, _ f: @escaping (Double) -> Double) -> OpCase {
        OpCase(name: name, inputs: [([3, 7], range)], kiln: { kiln($0[0]) }, reference: { $0[0].map(f) })
    }

    static var unaryCases: [OpCase] { [
        unary("negate", { -$0 }, { -$0 }),
        unary("relu", { $0.relu() }, { max($0, 0) }),
        unary("gelu", { $0.gelu() }, { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }),
        unary("silu", { $0.silu() }, { $0 / (1 + exp(-$0)) }),
        unary("sigmoid", { $0.sigmoid() }, { 1 / (1 + exp(-$0)) }),
        unary("logSigmoid", { $0.logSigmoid() }, { -log(1 + exp(-$0)) }),
        unary("tanh", { $0.tanh() }, { Foundation.tanh($0) }),
        unary("exp", { $0.exp() }, { exp($0) }),
        unary("log", range: 0.2...3, { $0.log() }, { log($0) }),
        unary("sqrt", range: 0.2...3, { $0.sqrt() }, { $0.squareRoot() }),
        unary("rsqrt", range: 0.2...3, { $0.rsqrt() }, { 1 / $0.squareRoot() }),
        unary("square", { $0.square() }, { $0 * $0 }),
        unary("abs", { $0.abs() }, { Swift.abs($0) }),
        unary("pow", range: 0.2...3, { $0.pow(2.5) }, { Foundation.pow($0, 2.5) }),
        unary("clamped", { $0.clamped(low: -0.5, high: 0.7) }, { min(max($0, -0.5), 0.7) }),
        unary("scalar arithmetic", { (2 * $0 + 1) / 4 - 3 }, { (2 * $0 + 1) / 4 - 3 }),
        unary("reciprocal", range: 0.3...2, { $0.reciprocal() }, { 1 / $0 }),
    ] }

    static func binary(_ name: String, _ aShape: [Int], _ bShape: [Int], bRange: ClosedRange<Float> = -2...2, _ kiln: @escaping (Tensor, Tensor) -> Tensor, _ f: @escaping (Double, Double) -> Double) -> OpCase {
        OpCase(name: "\(name) \(aShape) \(bShape)", inputs: [(aShape, -2...2), (bShape, bRange)], kiln: { kiln($0[0], $0[1]) },
               reference: { TensorReference.broadcast($0[0], aShape, $0[1], bShape, f) })
    }

    static var binaryCases: [OpCase] {
        let shapes: [([Int], [Int])] = [([3, 4], [3, 4]), ([3, 4], [4]), ([2, 1, 3], [4, 1]), ([5], []), ([2, 3, 1, 2], [3, 4, 1])]
        return shapes.flatMap { a, b in
            [
                binary("add", a, b, { $0 + $1 }, { $0 + $1 }),
                binary("subtract", a, b, { $0 - $1 }, { $0 - $1 }),
                binary("multiply", a, b, { $0 * $1 }, { $0 * $1 }),
                binary("divide", a, b, bRange: 0.5...2, { $0 / $1 }, { $0 / $1 }),
                binary("maximum", a, b, { maximum($0, $1) }, { max($0, $1) }),
            ]
        }
    }

    static func reduction(_ name: String, _ shape: [Int], axes: [Int]?, keep: Bool, _ kiln: @escaping (Tensor) -> Tensor, _ combine: @escaping ([Double]) -> Double) -> OpCase {
        OpCase(name: "\(name) \(shape) axes \(axes.map { "\($0)" } ?? "all") keep \(keep)", inputs: [(shape, -2...2)], kiln: { kiln($0[0]) },
               reference: { TensorReference.reduce($0[0], shape, axes: (axes ?? Array(shape.indices)).map { $0 < 0 ? $0 + shape.count : $0 }, combine) }, forwardTolerance: 1e-5)
    }

    static var reductionCases: [OpCase] {
        var cases: [OpCase] = []
        for (shape, axes) in [([4, 5], [0] as [Int]?), ([4, 5], [1]), ([2, 3, 4], [0, 2]), ([2, 3, 4], [1, 2]), ([3, 5], nil), ([2, 3, 4], [-1])] {
            for keep in [false, true] {
                cases.append(reduction("sum", shape, axes: axes, keep: keep, { $0.sum(axes: axes, keepingDimensions: keep) }, { $0.reduce(0, +) }))
                cases.append(reduction("mean", shape, axes: axes, keep: keep, { $0.mean(axes: axes, keepingDimensions: keep) }, { $0.reduce(0, +) / Double($0.count) }))
                cases.append(reduction("max", shape, axes: axes, keep: keep, { $0.max(axes: axes, keepingDimensions: keep) }, { $0.max()! }))
            }
        }
        return cases
    }

    static var shapeCases: [OpCase] {
        var cases: [OpCase] = []
        cases.append(OpCase(name: "reshape", inputs: [([2, 6], -1...1)], kiln: { $0[0].reshaped([3, -1]).square() }, reference: { $0[0].map { $0 * $0 } }))
        cases.append(OpCase(name: "transpose", inputs: [([3, 5], -1...1)], kiln: { $0[0].transposed() }, reference: { (x: [[Double]]) -> [Double] in
            var out: [Double] = []
            for j in 0..<5 { for i in 0..<3 { out.append(x[0][i * 5 + j]) } }
            return out
        }))
        cases.append(OpCase(name: "permute [2,3,4] → (2,0,1)", inputs: [([2, 3, 4], -1...1)], kiln: { $0[0].permuted([2, 0, 1]) }, reference: { (x: [[Double]]) -> [Double] in
            TensorReference.indices([4, 2, 3]).map { (i: [Int]) -> Double in x[0][i[1] * 12 + i[2] * 4 + i[0]] }
        }))
        cases.append(OpCase(name: "slice", inputs: [([4, 6], -1...1)], kiln: { $0[0].sliced(axis: 1, 2..<5) }, reference: { (x: [[Double]]) -> [Double] in
            var out: [Double] = []
            for i in 0..<4 { for j in 2..<5 { out.append(x[0][i * 6 + j]) } }
            return out
        }))
        cases.append(OpCase(name: "concatenate", inputs: [([2, 3], -1...1), ([2, 2], -1...1)], kiln: { Tensor.concatenate([$0[0], $0[1]], axis: 1) }, reference: { (x: [[Double]]) -> [Double] in
            var out: [Double] = []
            for i in 0..<2 {
                for j in 0..<3 { out.append(x[0][i * 3 + j]) }
                for j in 0..<2 { out.append(x[1][i * 2 + j]) }
            }
            return out
        }))
        cases.append(OpCase(name: "expand", inputs: [([3, 1], -1...1)], kiln: { $0[0].expanded(to: [2, 3, 4]) }, reference: { (x: [[Double]]) -> [Double] in
            TensorReference.indices([2, 3, 4]).map { (i: [Int]) -> Double in x[0][i[1]] }
        }))
        cases.append(OpCase(name: "flatten", inputs: [([2, 3, 2], -1...1)], kiln: { $0[0].flattened(from: 1).exp() }, reference: { $0[0].map { exp($0) } }))
        return cases
    }

    static func matmulCase(_ aShape: [Int], _ bShape: [Int]) -> OpCase {
        OpCase(name: "matmul \(aShape) \(bShape)", inputs: [(aShape, -1...1), (bShape, -1...1)], kiln: { matmul($0[0], $0[1]) },
               reference: { TensorReference.matmul($0[0], aShape, $0[1], bShape) }, forwardTolerance: 1e-4)
    }

    static var matmulCases: [OpCase] { [
        matmulCase([3, 4], [4, 5]), matmulCase([1, 7], [7, 1]), matmulCase([2, 3, 4], [4, 5]), matmulCase([3, 4], [2, 4, 5]),
        matmulCase([2, 3, 4], [2, 4, 5]), matmulCase([2, 1, 3, 4], [1, 3, 4, 2]), matmulCase([2, 2, 5, 3], [3, 6]),
    ] }

    static func linearCase(_ inputShape: [Int], outputs: Int, bias: Bool) -> OpCase {
        let inputs = inputShape.last!
        let rows = inputShape.reduce(1, *) / inputs
        return OpCase(
            name: "linear \(inputShape) → \(outputs) bias \(bias)",
            inputs: [(inputShape, -1...1), ([outputs, inputs], -1...1)] + (bias ? [([outputs], -1...1)] : []),
            kiln: { linear($0[0], weight: $0[1], bias: bias ? $0[2] : nil) },
            reference: { x in
                (0..<rows).flatMap { r in
                    (0..<outputs).map { o in
                        (0..<inputs).map { x[0][r * inputs + $0] * x[1][o * inputs + $0] }.reduce(0, +) + (bias ? x[2][o] : 0)
                    }
                }
            }, forwardTolerance: 1e-4)
    }

    static var linearCases: [OpCase] { [linearCase([5, 3], outputs: 4, bias: true), linearCase([2, 3, 7], outputs: 2, bias: false), linearCase([1, 1], outputs: 1, bias: true)] }

    static var rowCases: [OpCase] {
        var cases: [OpCase] = []
        cases.append(
            OpCase(name: "softmax", inputs: [([3, 6], -3...3)], kiln: { $0[0].softmax() }, reference: { TensorReference.rows($0[0], columns: 6, TensorReference.softmax) }))
        cases.append(
            OpCase(name: "logSoftmax", inputs: [([2, 2, 5], -3...3)], kiln: { $0[0].logSoftmax() },
                   reference: { TensorReference.rows($0[0], columns: 5) { TensorReference.softmax($0).map { log($0) } } }))
        cases.append(
            OpCase(name: "rmsNorm", inputs: [([4, 6], -2...2), ([6], 0.5...1.5)], kiln: { rmsNorm($0[0], weight: $0[1], epsilon: 1e-5) },
                   reference: { x in
                       TensorReference.rows(x[0], columns: 6) { (row: [Double]) -> [Double] in
                           let meanSquare: Double = row.map { $0 * $0 }.reduce(0, +) / 6
                           let rstd: Double = 1 / (meanSquare + 1e-5).squareRoot()
                           var out: [Double] = []
                           for c in 0..<6 { out.append(row[c] * rstd * x[1][c]) }
                           return out
                       }
                   }))
        cases.append(
            OpCase(name: "layerNorm", inputs: [([3, 5], -2...2), ([5], 0.5...1.5), ([5], -1...1)], kiln: { layerNorm($0[0], weight: $0[1], bias: $0[2], epsilon: 1e-5) },
                   reference: { x in
                       TensorReference.rows(x[0], columns: 5) { (row: [Double]) -> [Double] in
                           let mean: Double = row.reduce(0, +) / 5
                           let variance: Double = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 5
                           let rstd: Double = 1 / (variance + 1e-5).squareRoot()
                           var out: [Double] = []
                           for c in 0..<5 { out.append((row[c] - mean) * rstd * x[1][c] + x[2][c]) }
                           return out
                       }
                   }))
        cases.append(
            OpCase(name: "meanSquaredError", inputs: [([4, 3], -2...2), ([4, 3], -2...2)], kiln: { meanSquaredError($0[0], $0[1]) },
                   reference: { (x: [[Double]]) -> [Double] in
                       var total = 0.0
                       for i in 0..<12 { total += (x[0][i] - x[1][i]) * (x[0][i] - x[1][i]) }
                       return [total / 12]
                   }))
        return cases
    }

    static var allCases: [OpCase] { unaryCases + binaryCases + reductionCases + shapeCases + matmulCases + linearCases + rowCases }

    @Test("every op on every backend", arguments: BackendCase.all)
    func allOps(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for op in Self.allCases { try checkOp(op, on: backend, random: &random) }
    }

    @Test("cross-entropy with ignored labels: loss and gradient", arguments: BackendCase.all)
    func crossEntropyGradient(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let labels: [Int32] = [2, -1, 0, 4, 4]
        let op = OpCase(name: "crossEntropy", inputs: [([5, 5], -3...3)],
                        kiln: { crossEntropy($0[0], labels: IndexTensor(labels, shape: [5], on: backend)) },
                        reference: { (x: [[Double]]) -> [Double] in
                            var total = 0.0
                            var count = 0.0
                            for r in 0..<5 where labels[r] >= 0 {
                                let probabilities = TensorReference.softmax(Array(x[0][(r * 5)..<(r * 5 + 5)]))
                                total -= log(probabilities[Int(labels[r])])
                                count += 1
                            }
                            return [total / count]
                        })
        try checkOp(op, on: backend, random: &random)
    }

    @Test("embedding lookup: gradient adds every use of a row", arguments: BackendCase.all)
    func embeddingGradient(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let indices: [Int32] = [1, 3, 1, 0, 1, 4]
        let op = OpCase(name: "embeddingLookup", inputs: [([5, 3], -1...1)],
                        kiln: { embeddingLookup($0[0], indices: IndexTensor(indices, shape: [2, 3], on: backend)) },
                        reference: { x in indices.flatMap { row in (0..<3).map { x[0][Int(row) * 3 + $0] } } })
        try checkOp(op, on: backend, random: &random)
    }

    @Test("dropout: the mask from the counter-based generator, scaled by 1/(1−p)", arguments: BackendCase.all)
    func dropoutGradient(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let p: Float = 0.3
        let op = OpCase(name: "dropout", inputs: [([4, 25], -1...1)],
                        kiln: { dropout($0[0], probability: p, seed: 77, offset: 5) },
                        reference: { x in
                            zip(x[0], KilnBackend.Reference.randomUniform(count: x[0].count, seed: 77, offset: 5)).map { value, uniform in
                                uniform >= Double(p) ? value / Double(1 - p) : 0
                            }
                        })
        try checkOp(op, on: backend, random: &random)
    }

    @Test("gradients accumulate across backward calls and sum over shared uses", arguments: BackendCase.all)
    func accumulation(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        let x = Tensor.parameter([1, 2, 3], shape: [3], on: backend)
        // y = Σ (x·x + x): dy/dx = 2x + 1, used twice along shared paths.
        (x * x + x).sum().backward()
        #expect(try x.gradient!.toArray() == [3, 5, 7])
        (x * x + x).sum().backward()
        #expect(try x.gradient!.toArray() == [6, 10, 14])
        x.zeroGradient()
        #expect(x.gradient == nil)
        let y = noGrad { (x * x).sum() }
        #expect(!y.requiresGradient)
    }
}

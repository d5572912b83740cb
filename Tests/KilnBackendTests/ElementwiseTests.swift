import Foundation
import KilnBackend
import KilnTestSupport
import Testing

/// Float64 definitions of every unary op and its derivative, written plainly.
enum UnaryReference {
    static func value(_ op: UnaryOp, _ x: Double) -> Double {
        switch op {
        case .negate: -x
        case .relu: max(x, 0)
        case .gelu: 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
        case .silu: x / (1 + Foundation.exp(-x))
        case .sigmoid: 1 / (1 + Foundation.exp(-x))
        case .logSigmoid: -Foundation.log(1 + Foundation.exp(-x))
        case .tanh: Foundation.tanh(x)
        case .exp: Foundation.exp(x)
        case .log: Foundation.log(x)
        case .sqrt: x.squareRoot()
        case .reciprocalSqrt: 1 / x.squareRoot()
        case .reciprocal: 1 / x
        case .square: x * x
        case .abs: Swift.abs(x)
        case let .scale(a): Double(a) * x
        case let .affine(a, b): Double(a) * x + Double(b)
        case let .power(p): Foundation.pow(x, Double(p))
        case let .clamp(low, high): min(max(x, Double(low)), Double(high))
        case let .step(threshold): x >= Double(threshold) ? 1 : 0
        }
    }

    /// The derivative, from the definition by central differences where that is exact enough in float64,
    /// and in closed form for the ops with kinks (whose finite differences are wrong at the kink).
    static func derivative(_ op: UnaryOp, _ x: Double) -> Double {
        switch op {
        case .relu: return x > 0 ? 1 : 0
        case .abs: return x > 0 ? 1 : (x < 0 ? -1 : 0)
        case let .clamp(low, high): return x >= Double(low) && x <= Double(high) ? 1 : 0
        case .step: return 0
        default:
            let h = 1e-6 * max(1, Swift.abs(x))
            return (value(op, x + h) - value(op, x - h)) / (2 * h)
        }
    }

    /// The input range each op is tested on (positive where the op needs it; away from kinks).
    static func range(_ op: UnaryOp) -> ClosedRange<Float> {
        switch op {
        case .log, .sqrt, .reciprocalSqrt, .reciprocal, .power: 0.1...3
        case .exp: -5...5
        default: -4...4
        }
    }

    static let all: [UnaryOp] = [
        .negate, .relu, .gelu, .silu, .sigmoid, .logSigmoid, .tanh, .exp, .log, .sqrt, .reciprocalSqrt, .reciprocal,
        .square, .abs, .scale(-1.5), .affine(scale: 0.5, shift: 2), .power(1.7), .clamp(low: -0.5, high: 0.75),
        .step(threshold: 0.25),
    ]
}

@Suite("element-wise ops against float64 references")
struct ElementwiseTests {
    // Element-wise tolerance (DESIGN.md): relative error below 1e-5.
    static let tolerance = 1e-5

    @Test("unary forward and backward", arguments: BackendCase.all, [1, 7, 33, 127, 513, 100_003])
    func unary(_ backendCase: BackendCase, count: Int) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for op in UnaryReference.all {
            let x = random.floats(count, in: UnaryReference.range(op))
            let dy = random.floats(count)
            let xBuffer = backend.makeBuffer(x), dyBuffer = backend.makeBuffer(dy)
            let y = backend.poisoned(count), dx = backend.poisoned(count)
            backend.unary(op, xBuffer, into: y, count: count)
            backend.unaryBackward(op, input: xBuffer, output: y, outputGradient: dyBuffer, into: dx, count: count)
            let forward = try backend.download(y)
            let backward = try backend.download(dx)
            let expectedForward = x.map { UnaryReference.value(op, Double($0)) }
            let expectedBackward = zip(x, dy).map { UnaryReference.derivative(op, Double($0)) * Double($1) }
            #expect(relativeError(forward, expectedForward) < Self.tolerance, "\(op) forward, n \(count), seed \(random.seed)")
            #expect(relativeError(backward, expectedBackward) < Self.tolerance, "\(op) backward, n \(count), seed \(random.seed)")
        }
    }

    @Test("unary ops may run in place", arguments: BackendCase.all)
    func inPlace(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let x = random.floats(1000)
        let buffer = backend.makeBuffer(x)
        backend.unary(.scale(3), buffer, into: buffer, count: 1000)
        #expect(relativeError(try backend.download(buffer), x.map { 3 * Double($0) }) < Self.tolerance)
    }

    /// Broadcasting cases: (shape, strides of a, strides of b), with a and b stored densely in their own
    /// (broadcast-free) shapes.
    static let broadcastCases: [(shape: [Int], aShape: [Int], bShape: [Int])] = [
        ([513], [513], [513]),
        ([7, 33], [7, 33], [33]),
        ([7, 33], [7, 1], [7, 33]),
        ([127, 5], [1], [127, 5]),
        ([3, 7, 33], [3, 1, 33], [1, 7, 1]),
        ([2, 3, 4, 5, 6], [2, 1, 4, 1, 6], [3, 1, 5, 1]),
        ([2, 3, 1, 5, 2, 3], [2, 3, 1, 5, 2, 3], [1, 3, 1, 1, 2, 1]),
        ([1], [1], [1]),
    ]

    /// Strides that broadcast a dense `stored` shape (right-aligned) to `shape`.
    static func broadcastLayout(_ stored: [Int], to shape: [Int]) -> StridedLayout {
        let dense = StridedLayout.contiguous(stored).strides
        let padding = shape.count - stored.count
        let strides = shape.indices.map { axis -> Int in
            guard axis >= padding else { return 0 }
            return stored[axis - padding] == 1 && shape[axis] != 1 ? 0 : dense[axis - padding]
        }
        return StridedLayout(strides: strides)
    }

    static func flatIndices(_ shape: [Int]) -> [[Int]] {
        var result: [[Int]] = [[]]
        for size in shape { result = result.flatMap { prefix in (0..<size).map { prefix + [$0] } } }
        return result
    }

    static func reference(_ op: BinaryOp, _ a: Double, _ b: Double) -> Double {
        switch op {
        case .add: a + b
        case .subtract: a - b
        case .multiply: a * b
        case .divide: a / b
        case .maximum: max(a, b)
        case .minimum: min(a, b)
        case .equal: a == b ? 1 : 0
        case .greater: a > b ? 1 : 0
        }
    }

    @Test("binary ops with broadcasting", arguments: BackendCase.all)
    func binary(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for (shape, aShape, bShape) in Self.broadcastCases {
            let aLayout = Self.broadcastLayout(aShape, to: shape), bLayout = Self.broadcastLayout(bShape, to: shape)
            // Small integers make `equal` and `greater` meaningful; divisors stay away from zero.
            let a = (0..<aShape.reduce(1, *)).map { _ in Float(Int.random(in: -3...3, using: &random)) }
            let b = (0..<bShape.reduce(1, *)).map { _ in Float(Int.random(in: 1...3, using: &random)) * (Bool.random(using: &random) ? 1 : -1) }
            let aBuffer = backend.makeBuffer(a), bBuffer = backend.makeBuffer(b)
            for op in BinaryOp.allCases {
                let out = backend.poisoned(shape.reduce(1, *))
                backend.binary(op, aBuffer, aLayout, bBuffer, bLayout, into: out, shape: shape)
                let expected = Self.flatIndices(shape).map { index -> Double in
                    let aOffset = zip(index, aLayout.strides).map(*).reduce(0, +)
                    let bOffset = zip(index, bLayout.strides).map(*).reduce(0, +)
                    return Self.reference(op, Double(a[aOffset]), Double(b[bOffset]))
                }
                #expect(relativeError(try backend.download(out), expected) < Self.tolerance, "\(op) \(shape) ← \(aShape), \(bShape)")
            }
        }
    }

    @Test("binary op writing into one of its operands (gradient accumulation)", arguments: BackendCase.all)
    func accumulateInPlace(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let a = random.floats(777), b = random.floats(777)
        let aBuffer = backend.makeBuffer(a), bBuffer = backend.makeBuffer(b)
        let dense = StridedLayout.contiguous([777])
        backend.binary(.add, aBuffer, dense, bBuffer, dense, into: aBuffer, shape: [777])
        #expect(relativeError(try backend.download(aBuffer), zip(a, b).map { Double($0) + Double($1) }) < Self.tolerance)
    }

    @Test("strided copies: transpose, slice, concatenate, permute beyond four dimensions", arguments: BackendCase.all)
    func stridedCopy(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()

        // Transpose [33, 127] -> [127, 33].
        let x = random.floats(33 * 127)
        let source = backend.makeBuffer(x)
        let transposed = backend.poisoned(33 * 127)
        backend.copy(source, StridedLayout(strides: [1, 127]), to: transposed, .contiguous([127, 33]), shape: [127, 33])
        let expectedTranspose = (0..<127).flatMap { j in (0..<33).map { i in Double(x[i * 127 + j]) } }
        #expect(relativeError(try backend.download(transposed), expectedTranspose) < Self.tolerance)

        // Slice columns 5..<40 of rows 2..<9 of [33, 127] -> [7, 35].
        let slice = backend.poisoned(7 * 35)
        backend.copy(source, StridedLayout(offset: 2 * 127 + 5, strides: [127, 1]), to: slice, .contiguous([7, 35]), shape: [7, 35])
        let expectedSlice = (2..<9).flatMap { i in (5..<40).map { j in Double(x[i * 127 + j]) } }
        #expect(relativeError(try backend.download(slice), expectedSlice) < Self.tolerance)

        // Concatenate [4, 3] and [4, 5] along the last axis into [4, 8].
        let left = random.floats(12), right = random.floats(20)
        let joined = backend.poisoned(32)
        backend.copy(backend.makeBuffer(left), .contiguous([4, 3]), to: joined, StridedLayout(strides: [8, 1]), shape: [4, 3])
        backend.copy(backend.makeBuffer(right), .contiguous([4, 5]), to: joined, StridedLayout(offset: 3, strides: [8, 1]), shape: [4, 5])
        var expectedJoin: [Double] = []
        for i in 0..<4 {
            for j in 0..<3 { expectedJoin.append(Double(left[i * 3 + j])) }
            for j in 0..<5 { expectedJoin.append(Double(right[i * 5 + j])) }
        }
        #expect(relativeError(try backend.download(joined), expectedJoin) < Self.tolerance)

        // Reverse the axes of a [2, 3, 4, 5, 6] tensor.
        let shape = [2, 3, 4, 5, 6]
        let y = random.floats(720)
        let dense = StridedLayout.contiguous(shape).strides
        let reversedShape = Array(shape.reversed())
        let permuted = backend.poisoned(720)
        backend.copy(backend.makeBuffer(y), StridedLayout(strides: Array(dense.reversed())), to: permuted, .contiguous(reversedShape), shape: reversedShape)
        let expectedPermute = Self.flatIndices(reversedShape).map { index in
            Double(y[zip(index.reversed(), dense).map(*).reduce(0, +)])
        }
        #expect(relativeError(try backend.download(permuted), expectedPermute) < Self.tolerance)
    }

    @Test("memory: upload at an offset, copy, fill, download a range", arguments: BackendCase.all)
    func memory(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let values = random.floats(100)
        let buffer = backend.poisoned(130)
        backend.upload(values, to: buffer, offset: 30)
        backend.fill(buffer, offset: 0, count: 30, value: 2.5)
        let other = backend.poisoned(50)
        backend.copy(buffer, offset: 40, to: other, offset: 10, count: 40)
        backend.fill(other, offset: 0, count: 10, value: -1)
        let all = try backend.download(buffer)
        #expect(all == [Float](repeating: 2.5, count: 30) + values)
        #expect(try backend.download(other) == [Float](repeating: -1, count: 10) + Array(values[10..<50]))
        #expect(try backend.download(buffer, offset: 35, count: 5) == Array(values[5..<10]))
        let integers: [Int32] = [3, -7, Int32.max, 0]
        #expect(try backend.downloadIntegers(backend.makeBuffer(integers)) == integers)
    }

    @Test("counter-based random numbers are the same on every backend", arguments: BackendCase.all)
    func random(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        let buffer = backend.poisoned(10_001)
        backend.randomUniform(into: buffer, count: 10_001, seed: 1234, offset: 99)
        let values = try backend.download(buffer)
        let expected = (0..<10_001).map { Double(CounterRandom.uniform(seed: 1234, counter: 99 + UInt64($0))) }
        #expect(relativeError(values, expected) == 0)
        #expect(values.allSatisfy { $0 >= 0 && $0 < 1 })
        let mean = values.reduce(0, +) / Float(values.count)
        #expect(abs(mean - 0.5) < 0.02)
    }

    @Test("gather and deterministic scatter-add of rows, repeated and out-of-range indices", arguments: BackendCase.all)
    func rowsByIndex(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for columns in [1, 7, 33, 127] {
            let tableRows = 11
            let table = random.floats(tableRows * columns)
            var indices = random.integers(300, in: 0..<Int32(tableRows))
            indices[5] = -1
            indices[17] = Int32(tableRows)
            indices[100..<200] = ArraySlice(repeating: 3, count: 100)  // many rows into one entry
            let indexBuffer = backend.makeBuffer(indices)
            let gathered = backend.poisoned(300 * columns)
            backend.gatherRows(backend.makeBuffer(table), tableRows: tableRows, indices: indexBuffer, into: gathered, indexCount: 300, columns: columns)
            let expectedGather = indices.flatMap { row in
                (0..<columns).map { c in row >= 0 && row < tableRows ? Double(table[Int(row) * columns + c]) : 0 }
            }
            #expect(relativeError(try backend.download(gathered), expectedGather) < Self.tolerance)

            let source = random.floats(300 * columns)
            let start = random.floats(tableRows * columns)
            let accumulated = backend.makeBuffer(start)
            backend.scatterAddRows(backend.makeBuffer(source), indices: indexBuffer, indexCount: 300, into: accumulated, tableRows: tableRows, columns: columns)
            var expected = start.map(Double.init)
            for (n, row) in indices.enumerated() where row >= 0 && row < tableRows {
                for c in 0..<columns { expected[Int(row) * columns + c] += Double(source[n * columns + c]) }
            }
            #expect(relativeError(try backend.download(accumulated), expected) < Self.tolerance, "columns \(columns)")
        }
    }
}

import Foundation
import Kiln
import KilnTestSupport
import Testing

/// One op under test: how to build it from Kiln tensors, and the same computation in float64.
struct OpCase: CustomStringConvertible {
    var name: String
    /// Shapes of the inputs and the range their values are drawn from.
    var inputs: [(shape: [Int], range: ClosedRange<Float>)]
    var kiln: ([Tensor]) -> Tensor
    /// The op written plainly in float64 over flat row-major inputs.
    var reference: ([[Double]]) -> [Double]
    var forwardTolerance = 1e-5
    var gradientTolerance = 1e-4
    /// Inputs whose gradients are checked (all by default).
    var differentiable: [Int]? = nil

    var description: String { name }
}

/// Runs `op` on `backend`: the forward output against the float64 reference, and every input's
/// gradient of `Σ out ⊙ R` (a fixed random projection R, so every output element matters) against
/// central finite differences of the same float64 reference.
func checkOp(_ op: OpCase, on backend: any Backend, random: inout RandomGenerator) throws {
    let values = op.inputs.map { random.floats($0.shape.reduce(1, *), in: $0.range) }
    let tensors = zip(values, op.inputs).map { Tensor.parameter($0, shape: $1.shape, on: backend) }
    let out = op.kiln(tensors)
    let projection = random.floats(out.elementCount)
    let loss = (out * Tensor(projection, shape: out.shape, on: backend)).sum()
    loss.backward()

    let doubles = values.map { $0.map(Double.init) }
    let expected = op.reference(doubles)
    let forwardError = relativeError(try out.toArray(), expected)
    #expect(forwardError < op.forwardTolerance, "\(op.name) forward on \(backend.device.id): error \(forwardError), seed \(random.seed)")

    for index in op.differentiable ?? Array(op.inputs.indices) {
        let numeric = finiteDifferenceGradient(doubles[index]) { point in
            var all = doubles
            all[index] = point
            return zip(op.reference(all), projection).map { $0 * Double($1) }.reduce(0, +)
        }
        let analytic = try #require(tensors[index].gradient, "\(op.name): input \(index) received no gradient").toArray()
        let error = relativeError(analytic, numeric)
        #expect(error < op.gradientTolerance, "\(op.name) gradient of input \(index) on \(backend.device.id): error \(error), seed \(random.seed)")
    }
}

/// Float64 helpers for the tensor-op references of these tests (shapes, broadcasting, reductions).
enum TensorReference {
    /// Row-major strides of a shape.
    static func strides(_ shape: [Int]) -> [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            result[axis] = running
            running *= shape[axis]
        }
        return result
    }

    /// Every multi-index of a shape in row-major order.
    static func indices(_ shape: [Int]) -> [[Int]] {
        var result: [[Int]] = [[]]
        for size in shape { result = result.flatMap { prefix in (0..<size).map { prefix + [$0] } } }
        return result
    }

    /// NumPy broadcasting of a binary function.
    static func broadcast(_ a: [Double], _ aShape: [Int], _ b: [Double], _ bShape: [Int], _ f: (Double, Double) -> Double) -> [Double] {
        let rank = max(aShape.count, bShape.count)
        let paddedA = [Int](repeating: 1, count: rank - aShape.count) + aShape
        let paddedB = [Int](repeating: 1, count: rank - bShape.count) + bShape
        let outShape = zip(paddedA, paddedB).map { max($0, $1) }
        let aStrides = strides(paddedA), bStrides = strides(paddedB)
        return indices(outShape).map { index in
            let aOffset = index.indices.map { paddedA[$0] == 1 ? 0 : index[$0] * aStrides[$0] }.reduce(0, +)
            let bOffset = index.indices.map { paddedB[$0] == 1 ? 0 : index[$0] * bStrides[$0] }.reduce(0, +)
            return f(a[aOffset], b[bOffset])
        }
    }

    /// Reduces `axes` of a tensor with `combine`, returning the kept-dimension values in row-major order.
    static func reduce(_ x: [Double], _ shape: [Int], axes: [Int], _ combine: ([Double]) -> Double) -> [Double] {
        let outShape = shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
        let xStrides = strides(shape)
        return indices(outShape).map { outIndex in
            let reducedShape = axes.map { shape[$0] }
            let values = indices(reducedShape).map { inner -> Double in
                var full = outIndex
                for (position, axis) in axes.enumerated() { full[axis] = inner[position] }
                return x[zip(full, xStrides).map(*).reduce(0, +)]
            }
            return combine(values)
        }
    }

    /// Matrix product of `[batch..., m, k]` and `[batch..., k, n]` with broadcast batch dimensions.
    static func matmul(_ a: [Double], _ aShape: [Int], _ b: [Double], _ bShape: [Int]) -> [Double] {
        let (m, k, n) = (aShape[aShape.count - 2], aShape[aShape.count - 1], bShape[bShape.count - 1])
        let aBatch = Array(aShape.dropLast(2)), bBatch = Array(bShape.dropLast(2))
        let rank = max(aBatch.count, bBatch.count)
        let paddedA = [Int](repeating: 1, count: rank - aBatch.count) + aBatch
        let paddedB = [Int](repeating: 1, count: rank - bBatch.count) + bBatch
        let batchShape = zip(paddedA, paddedB).map { max($0, $1) }
        let aStrides = strides(paddedA), bStrides = strides(paddedB)
        var out: [Double] = []
        for index in indices(batchShape) {
            let aBase = index.indices.map { paddedA[$0] == 1 ? 0 : index[$0] * aStrides[$0] }.reduce(0, +) * m * k
            let bBase = index.indices.map { paddedB[$0] == 1 ? 0 : index[$0] * bStrides[$0] }.reduce(0, +) * k * n
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for l in 0..<k { sum += a[aBase + i * k + l] * b[bBase + l * n + j] }
                    out.append(sum)
                }
            }
        }
        return out
    }

    static func softmax(_ row: [Double]) -> [Double] {
        let largest = row.max()!
        let exps = row.map { exp($0 - largest) }
        let total = exps.reduce(0, +)
        return exps.map { $0 / total }
    }

    /// Applies `f` to each row of length `columns`.
    static func rows(_ x: [Double], columns: Int, _ f: ([Double]) -> [Double]) -> [Double] {
        stride(from: 0, to: x.count, by: columns).flatMap { f(Array(x[$0..<($0 + columns)])) }
    }
}

import Foundation
import Kiln
import KilnTestSupport
import Testing

/// The float64 splines (KilnTests has float64 helpers of its own named `Reference`, in GradientCheck.swift).

/// The float64 `BSpline` helpers against the recursive Cox–de Boor definition, and the differentiable
/// `splineLayer` op (forward and autograd) against the float64 layer and finite differences.
@Suite("KAN splines: BSpline helpers and the splineLayer op")
struct SplineLayerTests {
    /// Knot rows in float64 for k = 1…5, G ∈ {1, 3, 5, 20}, uniform and not.
    static func knotRows(random: inout RandomGenerator) -> [(order: Int, intervals: Int, knots: [Double])] {
        var rows: [(Int, Int, [Double])] = []
        for order in 1...5 {
            for intervals in [1, 3, 5, 20] {
                for uniform in [true, false] {
                    let knots = random.splineKnots(inputs: 1, intervals: intervals, order: order, uniform: uniform)
                    rows.append((order, intervals, knots.map(Double.init)))
                }
            }
        }
        return rows
    }

    /// Knots exactly, both ends, just inside and outside, far outside, and random points.
    static func probePoints(_ t: [Double], random: inout RandomGenerator) -> [Double] {
        let first = t[0], last = t[t.count - 1], span = last - first
        return t + [first.nextUp, last.nextDown, first.nextDown, last.nextUp, first - span, last + span]
            + (0..<40).map { _ in Double.random(in: (first - 0.1 * span)...(last + 0.1 * span), using: &random) }
    }

    // Bases are exact up to float64 rounding: absolute error below 1e-12.
    @Test("the k + 1 non-zero bases against Cox–de Boor, on knots, at both ends and outside")
    func nonZeroBases() {
        var random = RandomGenerator.withFreshSeed()
        for (order, intervals, t) in Self.knotRows(random: &random) {
            let count = intervals + order
            for x in Self.probePoints(t, random: &random) {
                let reference = Reference.Spline.bases(order: order, at: x, knots: t)
                let plain = BSpline.coxDeBoor(at: x, knots: t, order: order)
                #expect(plain.count == count)
                #expect(zip(plain, reference).allSatisfy { abs($0 - $1) < 1e-12 }, "coxDeBoor at \(x), k \(order), G \(intervals), seed \(random.seed)")
                guard let (first, values) = BSpline.nonZeroBases(at: x, knots: t, order: order) else {
                    #expect(x < t[0] || x >= t[t.count - 1], "nil inside the grid at \(x), k \(order), G \(intervals)")
                    #expect(reference.allSatisfy { $0 == 0 })
                    continue
                }
                #expect(x >= t[0] && x < t[t.count - 1], "bases outside the grid at \(x)")
                #expect(values.count == order + 1)
                // The interval m with t_m ≤ x < t_{m+1} starts the window at m − k.
                let m = first + order
                #expect(t[m] <= x && x < t[m + 1], "first \(first) does not match x = \(x), k \(order)")
                var expanded = [Double](repeating: 0, count: count)
                for (r, value) in values.enumerated() {
                    if first + r >= 0 && first + r < count { expanded[first + r] = value } else { #expect(value == 0) }
                }
                #expect(zip(expanded, reference).allSatisfy { abs($0 - $1) < 1e-12 }, "bases at \(x), k \(order), G \(intervals), seed \(random.seed)")
            }
        }
    }

    // Derivatives: against the recursive derivative formula everywhere (absolute error below 1e-9 relative
    // to 1/h), and against central differences of Cox–de Boor away from the knots (below 1e-5 relative).
    @Test("their derivatives against the recursion and against finite differences")
    func nonZeroDerivatives() {
        var random = RandomGenerator.withFreshSeed()
        for (order, intervals, t) in Self.knotRows(random: &random) {
            let count = intervals + order
            let scale = Double(order) / (t[1] - t[0])
            for x in Self.probePoints(t, random: &random) {
                let reference = Reference.Spline.basisDerivatives(order: order, at: x, knots: t)
                guard let (first, values) = BSpline.nonZeroDerivatives(at: x, knots: t, order: order) else {
                    #expect(x < t[0] || x >= t[t.count - 1])
                    continue
                }
                var expanded = [Double](repeating: 0, count: count)
                for (r, value) in values.enumerated() where first + r >= 0 && first + r < count { expanded[first + r] = value }
                #expect(zip(expanded, reference).allSatisfy { abs($0 - $1) < 1e-9 * max(scale, 1) }, "derivatives at \(x), k \(order), G \(intervals), seed \(random.seed)")
                let nearKnot = t.contains { abs($0 - x) < 1e-5 }
                if !nearKnot {
                    let step = 1e-7
                    let plus = BSpline.coxDeBoor(at: x + step, knots: t, order: order), minus = BSpline.coxDeBoor(at: x - step, knots: t, order: order)
                    let numeric = zip(plus, minus).map { ($0 - $1) / (2 * step) }
                    let difference = zip(expanded, numeric).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
                    let norm = numeric.map { $0 * $0 }.reduce(0, +).squareRoot()
                    #expect(difference <= 1e-5 * max(norm, 1), "derivatives vs finite differences at \(x), k \(order), G \(intervals), seed \(random.seed)")
                }
            }
        }
    }

    // Σ_n B_n(x) = 1 on [t_k, t_{G+k}) (absolute error below 1e-12), and no basis is negative.
    @Test("partition of unity inside the original grid")
    func partitionOfUnity() {
        var random = RandomGenerator.withFreshSeed()
        for (order, intervals, t) in Self.knotRows(random: &random) {
            let low = t[order], high = t[intervals + order]
            for x in [low] + (0..<50).map({ _ in Double.random(in: low..<high, using: &random) }) {
                let (_, values) = BSpline.nonZeroBases(at: x, knots: t, order: order)!
                #expect(abs(values.reduce(0, +) - 1) < 1e-12, "Σ B_n(\(x)) = \(values.reduce(0, +)), k \(order), G \(intervals)")
                #expect(values.allSatisfy { $0 >= 0 })
            }
        }
    }

    @Test("extendedKnots follows pykan's extend_grid")
    func extendedKnots() {
        // Uniform grid: linspace(−1, 1, G+1) extended by k knots of spacing 2/G.
        for order in 1...5 {
            for intervals in [1, 3, 5, 20] {
                let h = 2 / Double(intervals)
                let points = (0...intervals).map { -1 + Double($0) * h }
                let knots = BSpline.extendedKnots(points: points, order: order)
                #expect(knots.count == intervals + 2 * order + 1)
                let expected = (0..<(intervals + 2 * order + 1)).map { -1 + Double($0 - order) * h }
                #expect(zip(knots, expected).allSatisfy { abs($0 - $1) < 1e-12 }, "k \(order), G \(intervals): \(knots)")
            }
        }
        // A non-uniform grid (after an update from samples) is extended with the mean spacing, as pykan does.
        let knots = BSpline.extendedKnots(points: [0, 0.1, 0.5, 2], order: 2)
        let h = 2.0 / 3
        #expect(zip(knots, [-2 * h, -h, 0, 0.1, 0.5, 2, 2 + h, 2 + 2 * h]).allSatisfy { abs($0 - $1) < 1e-12 }, "\(knots)")
    }

    // evaluate = Σ c_n B_n (absolute error below 1e-12 times the coefficients' scale).
    @Test("evaluate sums coefficients times bases")
    func evaluate() {
        var random = RandomGenerator.withFreshSeed()
        for (order, intervals, t) in Self.knotRows(random: &random) {
            let coefficients = (0..<(intervals + order)).map { _ in Double.random(in: -2...2, using: &random) }
            for x in Self.probePoints(t, random: &random) {
                let expected = zip(coefficients, Reference.Spline.bases(order: order, at: x, knots: t)).map(*).reduce(0, +)
                #expect(abs(BSpline.evaluate(at: x, knots: t, coefficients: coefficients, order: order) - expected) < 1e-12, "x \(x), k \(order), G \(intervals)")
            }
        }
    }

    /// The op as an `OpCase` over (x, coefficients, scaleBase, scaleSpline), with fixed knots.
    static func layerCase(batch: Int, inputs: Int, outputs: Int, intervals: Int, order: Int, uniform: Bool, random: inout RandomGenerator) -> OpCase {
        let knots = random.splineKnots(inputs: inputs, intervals: intervals, order: order, uniform: uniform)
        let count = knots.count / inputs
        let reach = (0..<inputs).map { max(abs(knots[$0 * count]), abs(knots[$0 * count + count - 1])) }.max()! + 0.2
        return OpCase(
            name: "splineLayer batch \(batch), \(inputs) → \(outputs), G \(intervals), k \(order), \(uniform ? "uniform" : "non-uniform")",
            inputs: [([batch, inputs], -reach...reach), ([inputs, outputs, intervals + order], -1...1), ([inputs, outputs], -1...1), ([inputs, outputs], 0.5...1.5)],
            kiln: { tensors in
                let knotTensor = Tensor(knots, shape: [inputs, count], on: tensors[0].backend)
                return splineLayer(tensors[0], knots: knotTensor, coefficients: tensors[1], scaleBase: tensors[2], scaleSpline: tensors[3], order: order, uniform: uniform)
            },
            reference: { values in
                Reference.Spline.Layer(SplineShape(batch: batch, inputs: inputs, outputs: outputs, intervals: intervals, order: order, uniform: uniform), x: values[0], knots: knots.map(Double.init),
                                      coefficients: values[1], scaleBase: values[2], scaleSpline: values[3]).forward()
            })
    }

    // checkOp: forward relative error below 1e-5 against the float64 layer; each input's gradient of
    // Σ y ⊙ R below 1e-4 against central finite differences of the float64 layer.
    @Test("splineLayer forward and gradients (x, coefficients, scaleBase, scaleSpline)", arguments: BackendCase.all)
    func layerGradients(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for order in 1...5 {
            for (intervals, uniform, batch, inputs, outputs) in [(3, true, 7, 3, 2), (5, false, 5, 2, 3)] {
                try checkOp(Self.layerCase(batch: batch, inputs: inputs, outputs: outputs, intervals: intervals, order: order, uniform: uniform, random: &random), on: backend, random: &random)
            }
        }
        try checkOp(Self.layerCase(batch: 33, inputs: 7, outputs: 9, intervals: 20, order: 3, uniform: true, random: &random), on: backend, random: &random)
    }

    @Test("knots receive no gradient; two stacked layers backpropagate through x", arguments: BackendCase.all)
    func stackedLayers(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let points = (0...5).map { -1 + Double($0) * 0.4 }
        let row = BSpline.extendedKnots(points: points, order: 3).map(Float.init)
        let knots = Tensor.parameter(row + row, shape: [2, row.count], on: backend)
        let x = Tensor.parameter(random.floats(8 * 2), shape: [8, 2], on: backend)
        func parameters(_ shape: [Int]) -> Tensor { Tensor.parameter(random.floats(shape.reduce(1, *), in: -0.5...0.5), shape: shape, on: backend) }
        let c1 = parameters([2, 2, 8]), b1 = parameters([2, 2]), s1 = parameters([2, 2])
        let c2 = parameters([2, 1, 8]), b2 = parameters([2, 1]), s2 = parameters([2, 1])
        let hidden = splineLayer(x, knots: knots, coefficients: c1, scaleBase: b1, scaleSpline: s1, order: 3, uniform: true)
        let y = splineLayer(hidden, knots: knots, coefficients: c2, scaleBase: b2, scaleSpline: s2, order: 3, uniform: true)
        y.sum().backward()
        #expect(knots.gradient == nil)
        for tensor in [x, c1, b1, s1, c2, b2, s2] {
            let gradient = try #require(tensor.gradient, "a parameter of shape \(tensor.shape) received no gradient")
            #expect(try gradient.toArray().allSatisfy(\.isFinite))
        }
        // The composition in float64: y = L2(L1(x)); dL/dx by the chain rule through the reference.
        let t = (row + row).map(Double.init)
        func doubles(_ tensor: Tensor) throws -> [Double] { try tensor.toArray().map(Double.init) }
        let first = Reference.Spline.Layer(SplineShape(batch: 8, inputs: 2, outputs: 2, intervals: 5, order: 3, uniform: true), x: try doubles(x), knots: t, coefficients: try doubles(c1), scaleBase: try doubles(b1), scaleSpline: try doubles(s1))
        let h = first.forward()
        let second = Reference.Spline.Layer(SplineShape(batch: 8, inputs: 2, outputs: 1, intervals: 5, order: 3, uniform: true), x: h, knots: t, coefficients: try doubles(c2), scaleBase: try doubles(b2), scaleSpline: try doubles(s2))
        #expect(relativeError(try y.toArray(), second.forward()) < 1e-5)
        let dh = second.backward([Double](repeating: 1, count: 8)).input
        // Gradient of x: relative error below 1e-4.
        #expect(relativeError(try x.gradient!.toArray(), first.backward(dh).input) < 1e-4, "seed \(random.seed)")
    }
}

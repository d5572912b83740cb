import Foundation
import KilnBackend

/// A KAN layer written plainly in float64, straight from the definitions (pykan's conventions): B-splines
/// by the recursive Cox–de Boor definition, the layer sum, and its gradients from the product and chain
/// rules. Tests compare the backends and the `BSpline` helpers with it.
public enum SplineReference {
    /// B_{n,p}(x) over `knots` by the recursive definition (order 0 is 1 on the half-open [t_n, t_{n+1})).
    public static func basis(_ n: Int, order p: Int, at x: Double, knots t: [Double]) -> Double {
        if p == 0 { return x >= t[n] && x < t[n + 1] ? 1 : 0 }
        return (x - t[n]) / (t[n + p] - t[n]) * basis(n, order: p - 1, at: x, knots: t)
            + (t[n + p + 1] - x) / (t[n + p + 1] - t[n + 1]) * basis(n + 1, order: p - 1, at: x, knots: t)
    }

    /// dB_{n,p}/dx = p/(t_{n+p} − t_n)·B_{n,p−1} − p/(t_{n+p+1} − t_{n+1})·B_{n+1,p−1}.
    public static func basisDerivative(_ n: Int, order p: Int, at x: Double, knots t: [Double]) -> Double {
        Double(p) / (t[n + p] - t[n]) * basis(n, order: p - 1, at: x, knots: t)
            - Double(p) / (t[n + p + 1] - t[n + 1]) * basis(n + 1, order: p - 1, at: x, knots: t)
    }

    /// Every order-p basis (count `knots.count − p − 1`) at x.
    public static func bases(order p: Int, at x: Double, knots t: [Double]) -> [Double] {
        (0..<(t.count - p - 1)).map { basis($0, order: p, at: x, knots: t) }
    }

    public static func basisDerivatives(order p: Int, at x: Double, knots t: [Double]) -> [Double] {
        (0..<(t.count - p - 1)).map { basisDerivative($0, order: p, at: x, knots: t) }
    }

    public static func silu(_ x: Double) -> Double { x / (1 + exp(-x)) }
    public static func siluDerivative(_ x: Double) -> Double {
        let s = 1 / (1 + exp(-x))
        return s * (1 + x * (1 - s))
    }

    /// The layer's parameters in float64, flat row-major: x [batch, in], knots [in, G+2k+1],
    /// coefficients [in, out, G+k], scaleBase and scaleSpline [in, out].
    public struct Layer {
        public var batch: Int, inputs: Int, outputs: Int, intervals: Int, order: Int
        public var x: [Double], knots: [Double], coefficients: [Double], scaleBase: [Double], scaleSpline: [Double]

        public init(batch: Int, inputs: Int, outputs: Int, intervals: Int, order: Int, x: [Double], knots: [Double], coefficients: [Double], scaleBase: [Double], scaleSpline: [Double]) {
            (self.batch, self.inputs, self.outputs, self.intervals, self.order) = (batch, inputs, outputs, intervals, order)
            (self.x, self.knots, self.coefficients, self.scaleBase, self.scaleSpline) = (x, knots, coefficients, scaleBase, scaleSpline)
        }

        public var coefficientCount: Int { intervals + order }
        public var knotCount: Int { intervals + 2 * order + 1 }

        func knotRow(_ i: Int) -> [Double] { Array(knots[(i * knotCount)..<((i + 1) * knotCount)]) }

        /// y [batch, out].
        public func forward() -> [Double] { forward(absolute: false) }

        /// The size of the sums that make y [batch, out]: every term of the forward pass taken by its
        /// absolute value. A float32 sum of terms each rounded by ε is off by at most about ε times this,
        /// so it is the scale a forward error is measured against where terms may cancel (a batch of one
        /// sample into one output sums only a few edges, which can nearly cancel).
        public func forwardMagnitude() -> [Double] { forward(absolute: true) }

        private func forward(absolute: Bool) -> [Double] {
            var y = [Double](repeating: 0, count: batch * outputs)
            let size: (Double) -> Double = absolute ? { Swift.abs($0) } : { $0 }
            for i in 0..<inputs {
                let t = knotRow(i)
                for b in 0..<batch {
                    let value = x[b * inputs + i]
                    let basisValues = bases(order: order, at: value, knots: t)
                    for j in 0..<outputs {
                        let edge = i * outputs + j
                        var spline = 0.0
                        for n in 0..<coefficientCount { spline += size(coefficients[edge * coefficientCount + n] * basisValues[n]) }
                        y[b * outputs + j] += size(scaleBase[edge] * silu(value)) + size(scaleSpline[edge] * spline)
                    }
                }
            }
            return y
        }

        /// The four gradients given dy [batch, out].
        public func backward(_ dy: [Double]) -> (x: [Double], coefficients: [Double], scaleBase: [Double], scaleSpline: [Double]) {
            var dx = [Double](repeating: 0, count: batch * inputs)
            var dc = [Double](repeating: 0, count: inputs * outputs * coefficientCount)
            var dBase = [Double](repeating: 0, count: inputs * outputs)
            var dSpline = [Double](repeating: 0, count: inputs * outputs)
            for i in 0..<inputs {
                let t = knotRow(i)
                for b in 0..<batch {
                    let value = x[b * inputs + i]
                    let basisValues = bases(order: order, at: value, knots: t)
                    let derivatives = basisDerivatives(order: order, at: value, knots: t)
                    for j in 0..<outputs {
                        let edge = i * outputs + j
                        let g = dy[b * outputs + j]
                        var spline = 0.0, slope = 0.0
                        for n in 0..<coefficientCount {
                            let c = coefficients[edge * coefficientCount + n]
                            spline += c * basisValues[n]
                            slope += c * derivatives[n]
                            dc[edge * coefficientCount + n] += g * scaleSpline[edge] * basisValues[n]
                        }
                        dx[b * inputs + i] += g * (scaleBase[edge] * siluDerivative(value) + scaleSpline[edge] * slope)
                        dBase[edge] += g * silu(value)
                        dSpline[edge] += g * spline
                    }
                }
            }
            return (dx, dc, dBase, dSpline)
        }
    }

    /// Knots of `inputs` rows in float32: uniform ones, pykan's grid of G+1 points on [low, high] extended
    /// by k knots of the same spacing on each side (each row on its own range when `rangesDiffer`), or
    /// non-uniform ones, ascending with random gaps between 0.3 and 1.7 times the mean spacing.
    public static func knots(inputs: Int, intervals: Int, order: Int, uniform: Bool, random: inout RandomGenerator) -> [Float] {
        var result: [Float] = []
        for i in 0..<inputs {
            let low = -1.0 - 0.25 * Double(i % 3), high = 1.0 + 0.5 * Double(i % 2)
            let h = (high - low) / Double(intervals)
            let count = intervals + 2 * order + 1
            if uniform {
                result += (0..<count).map { Float(low + Double($0 - order) * h) }
            } else {
                var value = low - Double(order) * h
                for _ in 0..<count {
                    result.append(Float(value))
                    value += h * Double.random(in: 0.3...1.7, using: &random)
                }
            }
        }
        return result
    }

    /// `count` points over knots `t`: each knot exactly, both ends exactly, points just inside and
    /// outside the ends and well outside (as many of those as fit), then random points across and
    /// slightly beyond the extended grid; shuffled.
    public static func points(count: Int, knots t: [Float], random: inout RandomGenerator) -> [Float] {
        let first = t[0], last = t[t.count - 1], span = last - first
        var special: [Float] = t + [first.nextUp, last.nextDown, first.nextDown, last.nextUp, first - 0.3 * span, last + 0.2 * span]
        special.shuffle(using: &random)
        var result = Array(special.prefix(count / 2 + 1))
        while result.count < count { result.append(Float.random(in: (first - 0.1 * span)...(last + 0.1 * span), using: &random)) }
        result = Array(result.prefix(count))
        result.shuffle(using: &random)
        return result
    }
}

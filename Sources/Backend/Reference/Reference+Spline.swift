import Foundation

extension Reference {
    /// The spline family (``SplineKernels``) written plainly in float64, straight from the definitions
    /// (pykan's conventions): B-splines by the recursive Cox–de Boor definition, the layer sum, and its
    /// gradients from the product and chain rules. Tests compare the backends and the frontend's `BSpline`
    /// helpers with it.
    public enum Spline {
        /// B_{n,p}(x) over `knots` by the recursive definition (order 0 is 1 on the half-open [t_n, t_{n+1})):
        /// `B_{n,p} = (x − t_n)/(t_{n+p} − t_n) · B_{n,p−1} + (t_{n+p+1} − x)/(t_{n+p+1} − t_{n+1}) · B_{n+1,p−1}`.
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

        /// Every order-p basis's derivative at x.
        public static func basisDerivatives(order p: Int, at x: Double, knots t: [Double]) -> [Double] {
            (0..<(t.count - p - 1)).map { basisDerivative($0, order: p, at: x, knots: t) }
        }

        /// silu(x) = x · σ(x).
        public static func silu(_ x: Double) -> Double { x / (1 + exp(-x)) }
        /// silu′(x) = σ(x) · (1 + x · (1 − σ(x))).
        public static func siluDerivative(_ x: Double) -> Double {
            let s = 1 / (1 + exp(-x))
            return s * (1 + x * (1 - s))
        }

        /// One layer's operands in float64, flat row-major as ``SplineOperands``: x [batch, in], knots
        /// [in, G+2k+1], coefficients [in, out, G+k], scaleBase and scaleSpline [in, out].
        public struct Layer: Sendable {
            public var shape: SplineShape
            public var x: [Double], knots: [Double], coefficients: [Double], scaleBase: [Double], scaleSpline: [Double]

            public init(_ shape: SplineShape, x: [Double], knots: [Double], coefficients: [Double], scaleBase: [Double], scaleSpline: [Double]) {
                self.shape = shape
                (self.x, self.knots, self.coefficients, self.scaleBase, self.scaleSpline) = (x, knots, coefficients, scaleBase, scaleSpline)
            }

            func knotRow(_ i: Int) -> [Double] { Array(knots[(i * shape.knotCount)..<((i + 1) * shape.knotCount)]) }

            /// y[b, j] = Σ_i scaleBase[i, j] · silu(x[b, i]) + scaleSpline[i, j] · Σ_n c[i, j, n] · B_n(x[b, i]),
            /// `[batch, out]`.
            public func forward() -> [Double] { forward(absolute: false) }

            /// The size of the sums that make y [batch, out]: every term of the forward pass taken by its
            /// absolute value. A float32 sum of terms each rounded by ε is off by at most about ε times this,
            /// so it is the scale a forward error is measured against where terms may cancel (a batch of one
            /// sample into one output sums only a few edges, which can nearly cancel).
            public func forwardMagnitude() -> [Double] { forward(absolute: true) }

            private func forward(absolute: Bool) -> [Double] {
                let (batch, inputs, outputs, rows) = (shape.batch, shape.inputs, shape.outputs, shape.coefficientCount)
                var y = [Double](repeating: 0, count: batch * outputs)
                let size: (Double) -> Double = absolute ? { Swift.abs($0) } : { $0 }
                for i in 0..<inputs {
                    let t = knotRow(i)
                    for b in 0..<batch {
                        let value = x[b * inputs + i]
                        let basisValues = bases(order: shape.order, at: value, knots: t)
                        for j in 0..<outputs {
                            let edge = i * outputs + j
                            var spline = 0.0
                            for n in 0..<rows { spline += size(coefficients[edge * rows + n] * basisValues[n]) }
                            y[b * outputs + j] += size(scaleBase[edge] * silu(value)) + size(scaleSpline[edge] * spline)
                        }
                    }
                }
                return y
            }

            /// The four gradients given dy [batch, out], laid out as ``SplineGradients``:
            /// dx[b, i] = Σ_j dy[b, j] · (scaleBase[i, j] · silu′(x) + scaleSpline[i, j] · Σ_n c[i, j, n] · B_n′(x)),
            /// dCoefficients[i, j, n] = Σ_b dy[b, j] · scaleSpline[i, j] · B_n(x[b, i]),
            /// dScaleBase[i, j] = Σ_b dy[b, j] · silu(x[b, i]), dScaleSpline[i, j] = Σ_b dy[b, j] · Σ_n c[i, j, n] · B_n(x[b, i]).
            public func backward(_ dy: [Double]) -> (input: [Double], coefficients: [Double], scaleBase: [Double], scaleSpline: [Double]) {
                let (batch, inputs, outputs, rows) = (shape.batch, shape.inputs, shape.outputs, shape.coefficientCount)
                var dx = [Double](repeating: 0, count: batch * inputs)
                var dc = [Double](repeating: 0, count: inputs * outputs * rows)
                var dBase = [Double](repeating: 0, count: inputs * outputs)
                var dSpline = [Double](repeating: 0, count: inputs * outputs)
                for i in 0..<inputs {
                    let t = knotRow(i)
                    for b in 0..<batch {
                        let value = x[b * inputs + i]
                        let basisValues = bases(order: shape.order, at: value, knots: t)
                        let derivatives = basisDerivatives(order: shape.order, at: value, knots: t)
                        for j in 0..<outputs {
                            let edge = i * outputs + j
                            let g = dy[b * outputs + j]
                            var spline = 0.0, slope = 0.0
                            for n in 0..<rows {
                                let c = coefficients[edge * rows + n]
                                spline += c * basisValues[n]
                                slope += c * derivatives[n]
                                dc[edge * rows + n] += g * scaleSpline[edge] * basisValues[n]
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
    }
}

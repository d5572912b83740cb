import Foundation

// The elementwise family in float64 (see Families/Elementwise.swift).

extension Reference {
    /// ``ElementwiseKernels/unary(_:_:into:count:)``: `y[i] = f(x[i])` with `f` the op's function:
    /// `−x`, `max(x, 0)`, GELU `x·Φ(x)` with `Φ(x) = ½·erfc(−x/√2)`, SiLU `x·σ(x)`, `σ(x) = 1/(1 + e^−x)`,
    /// `log σ(x) = min(x, 0) − log(1 + e^−|x|)`, `tanh x`, `eˣ`, `log x`, `√x`, `1/√x`, `1/x`, `x²`, `|x|`,
    /// `a·x`, `a·x + b`, `x^p`, `min(max(x, low), high)` and the step `x ≥ t ? 1 : 0`.
    public static func unary(_ op: UnaryOp, _ x: [Double]) -> [Double] {
        x.map { unaryValue(op, $0) }
    }

    /// ``ElementwiseKernels/unaryBackward(_:input:output:outputGradient:into:count:)``: `dx[i] = dy[i] · f′(x[i])`
    /// with the derivatives in closed form: `−1`; `x > 0 ? 1 : 0`; GELU `Φ(x) + x·φ(x)`,
    /// `φ(x) = e^(−x²/2)/√(2π)`; SiLU `σ(x)·(1 + x·(1 − σ(x)))`; `σ(x)·(1 − σ(x))`; `1 − σ(x)`; `1 − tanh²x`;
    /// `eˣ`; `1/x`; `1/(2√x)`; `−x^(−3/2)/2`; `−1/x²`; `2x`; the sign of `x` (0 at 0); `a`; `a`; `p·x^(p−1)`;
    /// 1 on `[low, high]` and 0 outside; and 0 for the step.
    public static func unaryBackward(_ op: UnaryOp, input x: [Double], outputGradient dy: [Double]) -> [Double] {
        precondition(x.count == dy.count, "Reference.unaryBackward: \(x.count) inputs but \(dy.count) gradients")
        return zip(x, dy).map { unaryDerivative(op, $0) * $1 }
    }

    private static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    private static func unaryValue(_ op: UnaryOp, _ x: Double) -> Double {
        switch op {
        case .negate: -x
        case .relu: max(x, 0)
        case .gelu: 0.5 * x * erfc(-x / 2.0.squareRoot())
        case .silu: x * sigmoid(x)
        case .sigmoid: sigmoid(x)
        case .logSigmoid: min(x, 0) - log1p(exp(-abs(x)))
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
        case let .power(p): pow(x, Double(p))
        case let .clamp(low, high): min(max(x, Double(low)), Double(high))
        case let .step(threshold): x >= Double(threshold) ? 1 : 0
        }
    }

    private static func unaryDerivative(_ op: UnaryOp, _ x: Double) -> Double {
        switch op {
        case .negate: -1
        case .relu: x > 0 ? 1 : 0
        case .gelu: 0.5 * erfc(-x / 2.0.squareRoot()) + x * Foundation.exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
        case .silu: sigmoid(x) * (1 + x * (1 - sigmoid(x)))
        case .sigmoid: sigmoid(x) * (1 - sigmoid(x))
        case .logSigmoid: 1 - sigmoid(x)
        case .tanh: 1 - Foundation.tanh(x) * Foundation.tanh(x)
        case .exp: Foundation.exp(x)
        case .log: 1 / x
        case .sqrt: 0.5 / x.squareRoot()
        case .reciprocalSqrt: -0.5 / (x * x.squareRoot())
        case .reciprocal: -1 / (x * x)
        case .square: 2 * x
        case .abs: x > 0 ? 1 : (x < 0 ? -1 : 0)
        case let .scale(a), let .affine(a, _): Double(a)
        case let .power(p): Double(p) * pow(x, Double(p) - 1)
        case let .clamp(low, high): x >= Double(low) && x <= Double(high) ? 1 : 0
        case .step: 0
        }
    }

    /// ``ElementwiseKernels/binary(_:_:_:_:_:into:shape:)``: for every index `(i₀, …, iₙ)` of `shape`, in
    /// row-major order, `out = a[aLayout.offset + Σ iₖ·aLayout.strides[k]] ∘ b[…]` with `∘` one of `+`, `−`,
    /// `·`, `/`, `max`, `min`, `a == b ? 1 : 0`, `a > b ? 1 : 0`. Returns `out`, dense.
    public static func binary(_ op: BinaryOp, _ a: [Double], _ aLayout: StridedLayout, _ b: [Double], _ bLayout: StridedLayout, shape: [Int]) -> [Double] {
        indices(of: shape).map { index in
            let left = a[offset(index, aLayout)], right = b[offset(index, bLayout)]
            switch op {
            case .add: return left + right
            case .subtract: return left - right
            case .multiply: return left * right
            case .divide: return left / right
            case .maximum: return max(left, right)
            case .minimum: return min(left, right)
            case .equal: return left == right ? 1 : 0
            case .greater: return left > right ? 1 : 0
            }
        }
    }

    /// ``ElementwiseKernels/copy(_:_:to:_:shape:)``: for every index of `shape`,
    /// `destination[offset(index, destinationLayout)] = source[offset(index, sourceLayout)]`. Returns the
    /// whole `destination`: elements outside the layout keep their values.
    public static func copy(_ source: [Double], _ sourceLayout: StridedLayout, to destination: [Double], _ destinationLayout: StridedLayout, shape: [Int]) -> [Double] {
        var result = destination
        for index in indices(of: shape) { result[offset(index, destinationLayout)] = source[offset(index, sourceLayout)] }
        return result
    }

    /// Every index of `shape` in row-major order (one empty index for a shape of rank 0).
    static func indices(of shape: [Int]) -> [[Int]] {
        shape.reduce([[]]) { prefixes, size in prefixes.flatMap { prefix in (0..<size).map { prefix + [$0] } } }
    }

    /// `layout.offset + Σ index[k] · layout.strides[k]`.
    static func offset(_ index: [Int], _ layout: StridedLayout) -> Int {
        zip(index, layout.strides).reduce(layout.offset) { $0 + $1.0 * $1.1 }
    }
}

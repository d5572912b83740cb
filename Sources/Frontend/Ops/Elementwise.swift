// Element-wise operations with broadcasting, each with its gradient beside it.

extension Tensor {
    /// Applies a unary backend op; the gradient uses the op's derivative from input and output.
    func unaryOperation(_ op: UnaryOp, name: String) -> Tensor {
        let out = Tensor(uninitialized: shape, on: backend)
        backend.unary(op, storage, into: out.storage, count: elementCount)
        let input = self
        let outputStorage = out.storage
        out.recordGradient(name, inputs: [self]) { gradient in
            let result = Tensor(uninitialized: input.shape, on: input.backend)
            input.backend.unaryBackward(op, input: input.storage, output: outputStorage, outputGradient: gradient.storage, into: result.storage, count: input.elementCount)
            return [result]
        }
        return out
    }

    /// `max(x, 0)`.
    public func relu() -> Tensor { unaryOperation(.relu, name: "relu") }
    /// GELU with the exact Gaussian CDF (Hendrycks & Gimpel, 2016).
    public func gelu() -> Tensor { unaryOperation(.gelu, name: "gelu") }
    /// SiLU, `x·σ(x)` (Elfwing et al., 2018).
    public func silu() -> Tensor { unaryOperation(.silu, name: "silu") }
    public func sigmoid() -> Tensor { unaryOperation(.sigmoid, name: "sigmoid") }
    /// `log σ(x)`, computed without overflow.
    public func logSigmoid() -> Tensor { unaryOperation(.logSigmoid, name: "logSigmoid") }
    public func tanh() -> Tensor { unaryOperation(.tanh, name: "tanh") }
    public func exp() -> Tensor { unaryOperation(.exp, name: "exp") }
    /// Natural logarithm.
    public func log() -> Tensor { unaryOperation(.log, name: "log") }
    public func sqrt() -> Tensor { unaryOperation(.sqrt, name: "sqrt") }
    public func rsqrt() -> Tensor { unaryOperation(.reciprocalSqrt, name: "rsqrt") }
    public func reciprocal() -> Tensor { unaryOperation(.reciprocal, name: "reciprocal") }
    public func square() -> Tensor { unaryOperation(.square, name: "square") }
    public func abs() -> Tensor { unaryOperation(.abs, name: "abs") }
    /// `x^exponent`.
    public func pow(_ exponent: Float) -> Tensor { unaryOperation(.power(exponent), name: "pow") }
    /// `min(max(x, low), high)`.
    public func clamped(low: Float, high: Float) -> Tensor { unaryOperation(.clamp(low: low, high: high), name: "clamp") }
    /// `a·x`.
    public func scaled(by factor: Float) -> Tensor { unaryOperation(.scale(factor), name: "scale") }
    /// `a·x + b`.
    public func affine(scale: Float, shift: Float) -> Tensor { unaryOperation(.affine(scale: scale, shift: shift), name: "affine") }

    /// Element-wise binary op with broadcasting, without gradient (used by the differentiable ops below).
    func binaryValues(_ op: BinaryOp, _ other: Tensor, name: String) -> Tensor {
        Tensor.checkSameDevice(name, self, other)
        let outShape = Broadcasting.shape(shape, other.shape, op: name)
        let out = Tensor(uninitialized: outShape, on: backend)
        backend.binary(op, storage, Broadcasting.layout(shape, to: outShape), other.storage, Broadcasting.layout(other.shape, to: outShape), into: out.storage, shape: outShape)
        return out
    }
}

/// `a + b` with broadcasting.
public func + (a: Tensor, b: Tensor) -> Tensor {
    let out = a.binaryValues(.add, b, name: "add")
    out.recordGradient("add", inputs: [a, b]) { gradient in
        [a.requiresGradient ? gradient.summed(toShape: a.shape) : nil, b.requiresGradient ? gradient.summed(toShape: b.shape) : nil]
    }
    return out
}

/// `a − b` with broadcasting.
public func - (a: Tensor, b: Tensor) -> Tensor {
    let out = a.binaryValues(.subtract, b, name: "subtract")
    out.recordGradient("subtract", inputs: [a, b]) { gradient in
        [a.requiresGradient ? gradient.summed(toShape: a.shape) : nil, b.requiresGradient ? (-gradient).summed(toShape: b.shape) : nil]
    }
    return out
}

/// `a ⊙ b` (element-wise) with broadcasting.
public func * (a: Tensor, b: Tensor) -> Tensor {
    let out = a.binaryValues(.multiply, b, name: "multiply")
    out.recordGradient("multiply", inputs: [a, b]) { gradient in
        [
            a.requiresGradient ? gradient.binaryValues(.multiply, b, name: "multiply").summed(toShape: a.shape) : nil,
            b.requiresGradient ? gradient.binaryValues(.multiply, a, name: "multiply").summed(toShape: b.shape) : nil,
        ]
    }
    return out
}

/// `a / b` (element-wise) with broadcasting.
public func / (a: Tensor, b: Tensor) -> Tensor {
    let out = a.binaryValues(.divide, b, name: "divide")
    let quotientStorage = out.storage
    let quotientShape = out.shape
    out.recordGradient("divide", inputs: [a, b]) { gradient in
        let gradientOverB = gradient.binaryValues(.divide, b, name: "divide")
        var gradientB: Tensor?
        if b.requiresGradient {
            // ∂(a/b)/∂b = −(a/b)/b
            let quotient = Tensor(storage: quotientStorage, shape: quotientShape, backend: a.backend)
            gradientB = (-gradientOverB.binaryValues(.multiply, quotient, name: "multiply")).summed(toShape: b.shape)
        }
        return [a.requiresGradient ? gradientOverB.summed(toShape: a.shape) : nil, gradientB]
    }
    return out
}

public prefix func - (x: Tensor) -> Tensor { x.unaryOperation(.negate, name: "negate") }

public func + (a: Tensor, b: Float) -> Tensor { a.affine(scale: 1, shift: b) }
public func + (a: Float, b: Tensor) -> Tensor { b.affine(scale: 1, shift: a) }
public func - (a: Tensor, b: Float) -> Tensor { a.affine(scale: 1, shift: -b) }
public func - (a: Float, b: Tensor) -> Tensor { b.affine(scale: -1, shift: a) }
public func * (a: Tensor, b: Float) -> Tensor { a.scaled(by: b) }
public func * (a: Float, b: Tensor) -> Tensor { b.scaled(by: a) }
public func / (a: Tensor, b: Float) -> Tensor { a.scaled(by: 1 / b) }

/// Element-wise maximum with broadcasting; the gradient goes to the larger operand (to `a` on ties).
public func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
    let out = a.binaryValues(.maximum, b, name: "maximum")
    out.recordGradient("maximum", inputs: [a, b]) { gradient in
        let aWins = a.binaryValues(.greater, b, name: "maximum").binaryValues(.maximum, a.binaryValues(.equal, b, name: "maximum"), name: "maximum")
        let aGradient = gradient.binaryValues(.multiply, aWins, name: "maximum")
        let bGradient = gradient.binaryValues(.multiply, aWins.affine(scale: -1, shift: 1), name: "maximum")
        return [a.requiresGradient ? aGradient.summed(toShape: a.shape) : nil, b.requiresGradient ? bGradient.summed(toShape: b.shape) : nil]
    }
    return out
}

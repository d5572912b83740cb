// The gemm family's ops: batched `matmul` with broadcasting over batch dimensions, and `linear` (x·Wᵀ + b),
// which reads the weight in PyTorch's [out, in] layout without transposing it. Backend: GemmKernels
// (Sources/Backend/Families/Gemm.swift).

/// The matrix product of the last two dimensions, broadcasting the leading (batch) dimensions.
///
/// `a` is `[..., m, k]` and `b` is `[..., k, n]`; the result is `[..., m, n]`. Both must have at least two
/// dimensions.
///
/// - Complexity: one (batched) gemm forward, two backward.
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    Tensor.checkSameDevice("matmul", a, b)
    precondition(a.rank >= 2 && b.rank >= 2, "matmul: operands need at least two dimensions, got \(a.shape) and \(b.shape)")
    let (m, k) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
    let (k2, n) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    precondition(k == k2, "matmul: inner dimensions differ in \(a.shape) and \(b.shape)")
    let batchShape = Broadcasting.shape(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)), op: "matmul")
    let out = Tensor(uninitialized: batchShape + [m, n], on: a.backend)
    MatrixProduct.run(a, transposeA: false, b, transposeB: false, into: out, batchShape: batchShape)
    out.recordGradient("matmul", inputs: [a, b]) { gradient in
        // dA = dC·Bᵀ and dB = Aᵀ·dC, summed over any batch dimension the operand was broadcast along.
        var gradientA: Tensor?, gradientB: Tensor?
        if a.requiresGradient {
            let full = Tensor(uninitialized: batchShape + [m, k], on: a.backend)
            MatrixProduct.run(gradient, transposeA: false, b, transposeB: true, into: full, batchShape: batchShape)
            gradientA = full.summed(toShape: a.shape)
        }
        if b.requiresGradient {
            if b.rank == 2 && a.rank > 2 {
                // B shared by every batch: one gemm over the flattened rows.
                let rows = a.elementCount / k
                let result = Tensor(uninitialized: [k, n], on: a.backend)
                a.backend.gemm(GemmProblem(m: k, n: n, k: rows, transposeA: true), a: a.storage, b: gradient.storage, c: result.storage)
                gradientB = result
            } else {
                let full = Tensor(uninitialized: batchShape + [k, n], on: a.backend)
                MatrixProduct.run(a, transposeA: true, gradient, transposeB: false, into: full, batchShape: batchShape)
                gradientB = full.summed(toShape: b.shape)
            }
        }
        return [gradientA, gradientB]
    }
    return out
}

extension Tensor {
    /// `matmul(self, other)`.
    public func matmul(_ other: Tensor) -> Tensor { Kiln.matmul(self, other) }
}

/// `y = x·Wᵀ + b` over the last dimension of `x` (PyTorch's `F.linear`).
///
/// - Parameters:
///   - x: `[..., in]`.
///   - weight: `[out, in]`.
///   - bias: `[out]`, or nil.
/// - Returns: `[..., out]`.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    Tensor.checkSameDevice("linear", x, weight)
    precondition(weight.rank == 2 && x.rank >= 1 && x.shape.last == weight.shape[1], "linear: input \(x.shape) does not match weight \(weight.shape) ([out, in])")
    let (outputs, inputs) = (weight.shape[0], weight.shape[1])
    let rows = x.elementCount / max(inputs, 1)
    let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [outputs], on: x.backend)
    var problem = GemmProblem(m: rows, n: outputs, k: inputs, transposeB: true)
    if let bias {
        Tensor.checkSameDevice("linear", x, bias)
        precondition(bias.shape == [outputs], "linear: bias \(bias.shape) does not match \(outputs) outputs")
        // Start C from the broadcast bias and accumulate the product into it (beta = 1).
        x.backend.copy(bias.storage, StridedLayout(strides: [0, 1]), to: out.storage, .contiguous([rows, outputs]), shape: [rows, outputs])
        problem.beta = 1
    }
    x.backend.gemm(problem, a: x.storage, b: weight.storage, c: out.storage)
    let inputs3 = [x, weight] + (bias.map { [$0] } ?? [])
    out.recordGradient("linear", inputs: inputs3) { gradient in
        var result: [Tensor?] = [nil, nil]
        if x.requiresGradient {
            // dX = dY·W: [rows, out] × [out, in].
            let dx = Tensor(uninitialized: x.shape, on: x.backend)
            x.backend.gemm(GemmProblem(m: rows, n: inputs, k: outputs), a: gradient.storage, b: weight.storage, c: dx.storage)
            result[0] = dx
        }
        if weight.requiresGradient {
            // dW = dYᵀ·X: [out, rows] × [rows, in].
            let dw = Tensor(uninitialized: weight.shape, on: x.backend)
            x.backend.gemm(GemmProblem(m: outputs, n: inputs, k: rows, transposeA: true), a: gradient.storage, b: x.storage, c: dw.storage)
            result[1] = dw
        }
        if let bias {
            result.append(bias.requiresGradient ? gradient.reshapedValues([rows, outputs]).sum(axes: [0]) : nil)
        }
        return result
    }
    return out
}

/// Runs `C[batch] = op(A[batch])·op(B[batch])` for broadcast batch dimensions, choosing strides so that
/// an operand shared across the batch is read in place (stride 0) and materializing only the rare
/// partial broadcasts.
enum MatrixProduct {
    static func run(_ a: Tensor, transposeA: Bool, _ b: Tensor, transposeB: Bool, into c: Tensor, batchShape: [Int]) {
        let batchCount = batchShape.reduce(1, *)
        let (aRows, aColumns) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (bRows, bColumns) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let m = transposeA ? aColumns : aRows
        let k = transposeA ? aRows : aColumns
        let n = transposeB ? bRows : bColumns
        // An operand without batch dimensions, but the other has them, with A not transposed: fold the
        // batch into the rows of one big gemm.
        if b.rank == 2 && batchCount > 1 && !transposeA && a.shape.dropLast(2).reduce(1, *) == batchCount {
            var problem = GemmProblem(m: batchCount * m, n: n, k: k, transposeB: transposeB)
            problem.lda = aColumns
            a.backend.gemm(problem, a: a.storage, b: b.storage, c: c.storage)
            return
        }
        let aOperand = batchOperand(a, batchShape: batchShape)
        let bOperand = batchOperand(b, batchShape: batchShape)
        var problem = GemmProblem(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, batchCount: batchCount)
        problem.strideA = aOperand.shared ? 0 : aRows * aColumns
        problem.strideB = bOperand.shared ? 0 : bRows * bColumns
        a.backend.gemm(problem, a: aOperand.tensor.storage, b: bOperand.tensor.storage, c: c.storage)
    }

    /// The operand's batches laid out densely for `batchShape`: as is when it already has that batch
    /// shape, shared when it has no batch (all batch dimensions 1), else broadcast into a copy.
    private static func batchOperand(_ x: Tensor, batchShape: [Int]) -> (tensor: Tensor, shared: Bool) {
        let ownBatch = Array(x.shape.dropLast(2))
        let matrix = Array(x.shape.suffix(2))
        if ownBatch.reduce(1, *) == 1 && batchShape.reduce(1, *) > 1 { return (x, true) }
        if ownBatch.reduce(1, *) == batchShape.reduce(1, *) { return (x, false) }
        return (x.expandedValues(to: batchShape + matrix), false)
    }
}

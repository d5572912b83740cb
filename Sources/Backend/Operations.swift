/// One (optionally batched) matrix product `C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b]`, row-major.
///
/// `op(A)` is `m × k`: `A` is stored `m × k` (leading dimension `lda ≥ k`), or `k × m` when
/// `transposeA` (`lda ≥ m`). `op(B)` is `k × n`: `B` is stored `k × n` (`ldb ≥ n`), or `n × k` when
/// `transposeB` (`ldb ≥ k`). `C` is `m × n` (`ldc ≥ n`). Batch `b` starts at `offset + b · stride`
/// in each buffer; a stride of 0 reuses one matrix for every batch (a shared weight).
public struct GemmProblem: Sendable, Equatable {
    public var transposeA: Bool
    public var transposeB: Bool
    public var m: Int
    public var n: Int
    public var k: Int
    public var alpha: Float
    public var beta: Float
    public var lda: Int
    public var ldb: Int
    public var ldc: Int
    public var offsetA = 0
    public var offsetB = 0
    public var offsetC = 0
    public var batchCount = 1
    public var strideA = 0
    public var strideB = 0
    public var strideC = 0

    /// A problem over densely packed matrices, with leading dimensions implied by the shapes.
    public init(
        m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = false,
        alpha: Float = 1, beta: Float = 0, batchCount: Int = 1
    ) {
        self.transposeA = transposeA
        self.transposeB = transposeB
        self.m = m
        self.n = n
        self.k = k
        self.alpha = alpha
        self.beta = beta
        self.lda = max(1, transposeA ? m : k)
        self.ldb = max(1, transposeB ? k : n)
        self.ldc = max(1, n)
        self.batchCount = batchCount
        self.strideA = m * k
        self.strideB = k * n
        self.strideC = m * n
    }

    /// Multiply-add count `2·m·n·k` per batch, for GFLOP/s figures.
    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) * Double(batchCount) }

    /// The highest element index (plus one) the problem touches in A, B and C; backends check these against
    /// the buffers' sizes.
    public var extents: (a: Int, b: Int, c: Int) {
        let rowsA = transposeA ? k : m, columnsA = transposeA ? m : k
        let rowsB = transposeB ? n : k, columnsB = transposeB ? k : n
        func extent(offset: Int, stride: Int, rows: Int, columns: Int, leading: Int) -> Int {
            guard rows > 0, columns > 0, batchCount > 0 else { return 0 }
            return offset + (batchCount - 1) * stride + (rows - 1) * leading + columns
        }
        return (
            extent(offset: offsetA, stride: strideA, rows: rowsA, columns: columnsA, leading: lda),
            extent(offset: offsetB, stride: strideB, rows: rowsB, columns: columnsB, leading: ldb),
            extent(offset: offsetC, stride: strideC, rows: m, columns: n, leading: ldc)
        )
    }

    /// Traps with a readable message when the problem is malformed or does not fit its buffers.
    public func validate(aCount: Int, bCount: Int, cCount: Int) {
        precondition(m >= 0 && n >= 0 && k >= 0 && batchCount >= 0, "gemm: negative size in \(self)")
        precondition(
            lda >= max(1, transposeA ? m : k) && ldb >= max(1, transposeB ? k : n) && ldc >= max(1, n),
            "gemm: leading dimension too small (lda \(lda), ldb \(ldb), ldc \(ldc)) for m \(m), n \(n), k \(k)")
        let (a, b, c) = extents
        precondition(
            a <= aCount && b <= bCount && c <= cCount,
            "gemm: m \(m) n \(n) k \(k) batch \(batchCount) needs A \(a), B \(b), C \(c) elements; buffers hold \(aCount), \(bCount), \(cCount)"
        )
    }
}

/// Element-wise functions of one argument, with their derivatives (``Backend/unaryBackward``).
public enum UnaryOp: Sendable, Hashable {
    case negate
    /// `max(x, 0)`.
    case relu
    /// GELU with the exact Gaussian CDF, `x · Φ(x)` (Hendrycks & Gimpel, 2016; PyTorch's default).
    case gelu
    /// SiLU / swish, `x · σ(x)`.
    case silu
    case sigmoid
    /// `log σ(x) = −log(1 + exp(−x))`, computed without overflow (GLA's gates).
    case logSigmoid
    case tanh
    case exp
    /// Natural logarithm.
    case log
    case sqrt
    /// `1 / sqrt(x)`.
    case reciprocalSqrt
    case reciprocal
    case square
    case abs
    /// `a · x`.
    case scale(Float)
    /// `a · x + b`.
    case affine(scale: Float, shift: Float)
    /// `x^p` (for `x > 0`, or any `x` when `p` is an integer).
    case power(Float)
    /// `min(max(x, low), high)`; the derivative is 1 inside the range and 0 outside.
    case clamp(low: Float, high: Float)
    /// `x ≥ threshold ? 1 : 0` (dropout masks); zero derivative.
    case step(threshold: Float)

    /// A small integer that names the op in the OpenCL kernels (`Kernels/elementwise.cl`).
    public var code: Int32 {
        switch self {
        case .negate: 0
        case .relu: 1
        case .gelu: 2
        case .silu: 3
        case .sigmoid: 4
        case .logSigmoid: 5
        case .tanh: 6
        case .exp: 7
        case .log: 8
        case .sqrt: 9
        case .reciprocalSqrt: 10
        case .reciprocal: 11
        case .square: 12
        case .abs: 13
        case .scale: 14
        case .affine: 15
        case .power: 16
        case .clamp: 17
        case .step: 18
        }
    }

    /// The op's two scalar parameters (zero where unused).
    public var parameters: (Float, Float) {
        switch self {
        case let .scale(a): (a, 0)
        case let .affine(a, b): (a, b)
        case let .power(p): (p, 0)
        case let .clamp(low, high): (low, high)
        case let .step(threshold): (threshold, 0)
        default: (0, 0)
        }
    }
}

/// Element-wise functions of two arguments (with broadcasting through ``StridedLayout``).
public enum BinaryOp: Int32, Sendable, Hashable, CaseIterable {
    case add = 0
    case subtract = 1
    case multiply = 2
    case divide = 3
    case maximum = 4
    case minimum = 5
    /// `a == b ? 1 : 0` (the mask for a max-reduction's gradient).
    case equal = 6
    /// `a > b ? 1 : 0`.
    case greater = 7
}

/// Reductions along one axis (``Backend/reduce``).
public enum ReductionOp: Int32, Sendable, Hashable, CaseIterable {
    case sum = 0
    case mean = 1
    case max = 2
    case min = 3
    /// `Σ x²` (squared norms for gradient clipping).
    case sumOfSquares = 4
}

/// An optimizer's update rule with its hyperparameters, applied by ``Backend/optimizerStep``.
public enum UpdateRule: Sendable, Equatable {
    /// SGD with optional momentum (PyTorch's form: `b ← μb + g`; Nesterov uses `g + μb`) and L2 weight
    /// decay added to the gradient.
    case sgd(momentum: Float, nesterov: Bool, weightDecay: Float)
    /// Adam (Kingma & Ba, 2015) with bias correction. With `decoupledWeightDecay` it is AdamW
    /// (Loshchilov & Hutter, 2019): `θ ← θ − η·λ·θ` before the Adam step; otherwise `λθ` is added to the
    /// gradient (PyTorch's `Adam(weight_decay=)`).
    case adam(beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float, decoupledWeightDecay: Bool)
    /// Adam-atan2 (Everett et al., 2024): `θ ← θ − η·a·atan2(m̂, b·√v̂)`, scale-invariant and free of ε;
    /// weight decay is decoupled.
    case adamAtan2(beta1: Float, beta2: Float, a: Float, b: Float, weightDecay: Float)

    /// How many state buffers (each as large as the parameter) the rule keeps.
    public var stateCount: Int {
        switch self {
        case let .sgd(momentum, _, _): momentum == 0 ? 0 : 1
        case .adam, .adamAtan2: 2
        }
    }
}

/// How an operand's elements are laid out in its buffer: element `(i₀, …, iₙ)` lives at
/// `offset + Σ iₖ · strides[k]`. A stride of 0 broadcasts that dimension.
public struct StridedLayout: Sendable, Equatable {
    public var offset: Int
    public var strides: [Int]

    public init(offset: Int = 0, strides: [Int]) {
        self.offset = offset
        self.strides = strides
    }

    /// The dense row-major layout of `shape`.
    public static func contiguous(_ shape: [Int], offset: Int = 0) -> StridedLayout {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= shape[axis]
        }
        return StridedLayout(offset: offset, strides: strides)
    }

    /// One past the highest element this layout reads over `shape` (0 for an empty shape).
    public func extent(_ shape: [Int]) -> Int {
        if shape.contains(0) { return 0 }
        var highest = offset
        for (size, step) in zip(shape, strides) { highest += (size - 1) * max(step, 0) }
        return highest + 1
    }
}

/// Shapes and layouts with unit dimensions dropped and mergeable neighbours merged, so kernels index at
/// most a few dimensions.
public struct CoalescedLayouts: Sendable, Equatable {
    public var shape: [Int]
    public var layouts: [StridedLayout]

    /// Merges dimension `k` into `k + 1` wherever every layout has `strides[k] == strides[k+1] · shape[k+1]`.
    public init(shape: [Int], layouts: [StridedLayout]) {
        precondition(layouts.allSatisfy { $0.strides.count == shape.count }, "layout rank differs from shape rank \(shape)")
        var mergedShape: [Int] = []
        var mergedStrides: [[Int]] = Array(repeating: [], count: layouts.count)
        for axis in shape.indices where shape[axis] != 1 {
            if !mergedShape.isEmpty,
                layouts.indices.allSatisfy({ mergedStrides[$0].last! == layouts[$0].strides[axis] * shape[axis] })
            {
                mergedShape[mergedShape.count - 1] *= shape[axis]
                for operand in layouts.indices {
                    mergedStrides[operand][mergedStrides[operand].count - 1] = layouts[operand].strides[axis]
                }
            } else {
                mergedShape.append(shape[axis])
                for operand in layouts.indices { mergedStrides[operand].append(layouts[operand].strides[axis]) }
            }
        }
        self.shape = mergedShape
        self.layouts = layouts.indices.map { StridedLayout(offset: layouts[$0].offset, strides: mergedStrides[$0]) }
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// Splits into problems of rank ≤ `maximumRank` by iterating the leading dimensions on the host; each
    /// piece has exactly `maximumRank` dimensions (padded in front with size-1 axes).
    public func pieces(maximumRank: Int) -> [CoalescedLayouts] {
        var leadingCount = max(0, shape.count - maximumRank)
        let innerShape = Array(shape[leadingCount...])
        let padding = maximumRank - innerShape.count
        let paddedShape = [Int](repeating: 1, count: padding) + innerShape
        if shape.isEmpty { leadingCount = 0 }
        let outerShape = Array(shape[..<leadingCount])
        let outerCount = outerShape.reduce(1, *)
        var result: [CoalescedLayouts] = []
        result.reserveCapacity(outerCount)
        for flat in 0..<outerCount {
            var remainder = flat
            var offsets = layouts.map(\.offset)
            for axis in stride(from: leadingCount - 1, through: 0, by: -1) {
                let index = remainder % outerShape[axis]
                remainder /= outerShape[axis]
                for operand in layouts.indices { offsets[operand] += index * layouts[operand].strides[axis] }
            }
            let pieceLayouts = layouts.indices.map { operand in
                StridedLayout(
                    offset: offsets[operand],
                    strides: [Int](repeating: 0, count: padding) + Array(layouts[operand].strides[leadingCount...]))
            }
            result.append(CoalescedLayouts(unchecked: paddedShape, pieceLayouts))
        }
        return result
    }

    private init(unchecked shape: [Int], _ layouts: [StridedLayout]) {
        self.shape = shape
        self.layouts = layouts
    }
}

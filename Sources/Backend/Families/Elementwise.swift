// The elementwise family: unary functions and their derivatives, binary functions with broadcasting, and
// strided copies (transposes, slices, concatenation, broadcast expansion).
// Frontend: Ops/Elementwise.swift, Ops/ShapeOperations.swift · CPU: CPU/CPUBackend+Elementwise.swift,
// CKilnCPU/elementwise.c · OpenCL: OpenCL/OpenCLBackend+Elementwise.swift, Kernels/elementwise.cl ·
// float64: Reference/Reference+Elementwise.swift.

/// Element-wise primitives on a device. Counts are in elements; an output may alias an input only where
/// a method says so.
public protocol ElementwiseKernels {
    /// `y[i] = op(x[i])` for `i < count`. `y` may be `x`.
    func unary(_ op: UnaryOp, _ x: DeviceBuffer, into y: DeviceBuffer, count: Int)

    /// The input gradient of a unary op: `dx[i] = dy[i] · op′(x[i])`, computed from the input `x` or the
    /// output `y` (whichever the op's derivative is cheaper in; both are always passed). `dx` may be `dy`.
    func unaryBackward(_ op: UnaryOp, input x: DeviceBuffer, output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, count: Int)

    /// `out[index] = a[index] ∘ b[index]` over `shape`, reading `a` and `b` through strided layouts (a
    /// stride of 0 broadcasts a dimension) and writing `out` contiguously. `out` may alias an operand whose
    /// layout is contiguous with offset 0.
    func binary(_ op: BinaryOp, _ a: DeviceBuffer, _ aLayout: StridedLayout, _ b: DeviceBuffer, _ bLayout: StridedLayout, into out: DeviceBuffer, shape: [Int])

    /// Copies the elements of `shape` from `source` read through `sourceLayout` to `destination` written
    /// through `destinationLayout`: transposes, slices, concatenation and broadcast expansion. The two
    /// regions must not overlap.
    func copy(_ source: DeviceBuffer, _ sourceLayout: StridedLayout, to destination: DeviceBuffer, _ destinationLayout: StridedLayout, shape: [Int])
}

/// Element-wise functions of one argument, with their derivatives (``ElementwiseKernels/unaryBackward(_:input:output:outputGradient:into:count:)``).
/// ``Reference/unary(_:_:)`` and ``Reference/unaryDerivative(_:_:)`` define each in float64.
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

    /// A small integer that names the op in `Kernels/elementwise.cl` and `CKilnCPU/elementwise.c`.
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

/// Element-wise functions of two arguments (with broadcasting through ``StridedLayout``); the raw value
/// names the op in `Kernels/elementwise.cl` and `CKilnCPU/elementwise.c`.
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

/// The size checks of the element-wise primitives, written once for every backend (programming errors:
/// they trap with the op's name and the sizes).
enum ElementwiseValidation {
    /// `unary` and `unaryBackward`: every buffer holds `count` elements.
    static func unary(_ name: StaticString, _ op: UnaryOp, count: Int, _ buffers: DeviceBuffer...) {
        precondition(count >= 0 && buffers.allSatisfy { $0.count >= count },
                     "\(name) \(op): count \(count) exceeds a buffer (sizes \(buffers.map(\.count)))")
    }

    static func binary(_ op: BinaryOp, a: DeviceBuffer, _ aLayout: StridedLayout, b: DeviceBuffer, _ bLayout: StridedLayout, out: DeviceBuffer, shape: [Int]) {
        precondition(aLayout.strides.count == shape.count && bLayout.strides.count == shape.count, "binary \(op): layouts do not match shape \(shape)")
        precondition(aLayout.extent(shape) <= a.count && bLayout.extent(shape) <= b.count && shape.reduce(1, *) <= out.count,
                     "binary \(op): shape \(shape) overflows a (\(a.count)), b (\(b.count)) or out (\(out.count))")
    }

    static func copy(source: DeviceBuffer, _ sourceLayout: StridedLayout, destination: DeviceBuffer, _ destinationLayout: StridedLayout, shape: [Int]) {
        precondition(sourceLayout.strides.count == shape.count && destinationLayout.strides.count == shape.count, "strided copy: layouts do not match shape \(shape)")
        precondition(sourceLayout.extent(shape) <= source.count && destinationLayout.extent(shape) <= destination.count,
                     "strided copy: shape \(shape) overflows source (\(source.count)) or destination (\(destination.count))")
    }
}

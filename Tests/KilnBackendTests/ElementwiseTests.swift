import KilnBackend
import KilnTestSupport
import Testing

@Suite("element-wise ops against the float64 reference")
struct ElementwiseTests {
    // Element-wise bound (DESIGN.md): relative error below 1e-5.
    static let bound = CheckBound.elementwise

    /// Every unary op, and the input range each is tested on (positive where the op needs it): the
    /// device check's (CheckCases).
    static let unaryOps = CheckCases.unaryOps
    static func range(_ op: UnaryOp) -> ClosedRange<Float> { CheckCases.range(op) }

    // The check's unary case (CheckCases.elementwise): every op forward and backward on fresh inputs in its
    // range, outputs poisoned first; here at every odd count (the family's strided-copy case runs too).
    @Test("unary forward and backward, every op", arguments: BackendCase.withGPUParameters, [1, 7, 33, 127, 513, 100_003])
    func unary(_ backendCase: BackendCase, count: Int) throws {
        expectCheckCasesPass(.elementwise, on: try backendCase.makeBackend(), "\(backendCase)") { lists in
            lists.unaryCounts = [count]
            lists.broadcasts = []
        }
    }

    @Test("the reference's closed-form derivatives match central differences of its functions")
    func referenceDerivatives() {
        var random = RandomGenerator.withFreshSeed()
        for op in Self.unaryOps {
            // Away from the kinks of relu, abs, clamp and step, where differences are not derivatives.
            let x = random.floats(200, in: Self.range(op)).doubles.filter { value in
                [0, -0.5, 0.75, 0.25].allSatisfy { Swift.abs(value - $0) > 1e-3 }
            }
            let numeric = x.map { value in
                let h = 1e-6 * max(1, Swift.abs(value))
                return (Reference.unary(op, [value + h])[0] - Reference.unary(op, [value - h])[0]) / (2 * h)
            }
            let closedForm = Reference.unaryBackward(op, input: x, outputGradient: [Double](repeating: 1, count: x.count))
            #expect(relativeError(closedForm.map(Float.init), numeric) < 1e-6, "\(op), seed \(random.seed)")
        }
    }

    @Test("unary ops may run in place", arguments: BackendCase.all)
    func inPlace(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for op in [UnaryOp.scale(3), .silu, .exp] {
            let x = random.floats(1003)
            let buffer = backend.makeBuffer(x)
            backend.unary(op, buffer, into: buffer, count: 1003)
            #expect(relativeError(try backend.download(buffer), Reference.unary(op, x.doubles)) < Self.bound, "\(op), seed \(random.seed)")
        }
    }

    /// Broadcasting cases: the output shape, and the shapes a and b are stored in (dense, right-aligned).
    static let broadcastCases: [CheckLists.Broadcast] = [
        .init([513], [513], [513]),
        .init([7, 33], [7, 33], [33]),
        .init([7, 33], [7, 1], [7, 33]),
        .init([127, 5], [1], [127, 5]),
        .init([3, 7, 33], [3, 1, 33], [1, 7, 1]),
        .init([2, 3, 4, 5, 6], [2, 1, 4, 1, 6], [3, 1, 5, 1]),
        .init([2, 3, 1, 5, 2, 3], [2, 3, 1, 5, 2, 3], [1, 3, 1, 1, 2, 1]),
        .init([1], [1], [1]),
        .init([], [], []),
    ]

    // The check's binary case (CheckCases.elementwise): every op on small integers (so that `equal` and
    // `greater` mean something) with divisors away from zero, the output poisoned first; here over the long
    // list of broadcasts (the family's strided-copy case runs too).
    @Test("binary ops with broadcasting, every op", arguments: BackendCase.withGPUParameters)
    func binary(_ backendCase: BackendCase) throws {
        expectCheckCasesPass(.elementwise, on: try backendCase.makeBackend(), "\(backendCase)") { lists in
            lists.unaryCounts = []
            lists.broadcasts = Self.broadcastCases
        }
    }

    @Test("binary op writing into one of its operands (gradient accumulation)", arguments: BackendCase.all)
    func accumulateInPlace(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let a = random.floats(777), b = random.floats(777)
        let aBuffer = backend.makeBuffer(a)
        let dense = StridedLayout.contiguous([777])
        backend.binary(.add, aBuffer, dense, backend.makeBuffer(b), dense, into: aBuffer, shape: [777])
        let expected = Reference.binary(.add, a.doubles, dense, b.doubles, dense, shape: [777])
        #expect(relativeError(try backend.download(aBuffer), expected) < Self.bound, "seed \(random.seed)")
    }

    @Test("strided copies: transpose, slice, concatenate, permute beyond four dimensions", arguments: BackendCase.withGPUParameters)
    func stridedCopy(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        /// Copies `source` into a poisoned buffer of `count` elements and compares with the reference.
        func check(_ label: String, _ source: [Float], _ sourceLayout: StridedLayout, into count: Int, _ destinationLayout: StridedLayout, shape: [Int]) throws {
            let destination = backend.poisoned(count)
            backend.copy(backend.makeBuffer(source), sourceLayout, to: destination, destinationLayout, shape: shape)
            let expected = Reference.copy(source.doubles, sourceLayout, to: [Double](repeating: .nan, count: count), destinationLayout, shape: shape)
            #expect(relativeError(try backend.download(destination), expected) < Self.bound, "\(label), seed \(random.seed)")
        }
        let x = random.floats(33 * 127)
        try check("transpose [33, 127] → [127, 33]", x, StridedLayout(strides: [1, 127]), into: 33 * 127, .contiguous([127, 33]), shape: [127, 33])
        try check("rows 2..<9, columns 5..<40 of [33, 127]", x, StridedLayout(offset: 2 * 127 + 5, strides: [127, 1]), into: 7 * 35, .contiguous([7, 35]), shape: [7, 35])
        // Concatenate [4, 3] and [4, 5] along the last axis into [4, 8].
        let left = random.floats(12), right = random.floats(20)
        let joined = backend.poisoned(32)
        backend.copy(backend.makeBuffer(left), .contiguous([4, 3]), to: joined, StridedLayout(strides: [8, 1]), shape: [4, 3])
        backend.copy(backend.makeBuffer(right), .contiguous([4, 5]), to: joined, StridedLayout(offset: 3, strides: [8, 1]), shape: [4, 5])
        var expectedJoin = Reference.copy(left.doubles, .contiguous([4, 3]), to: [Double](repeating: .nan, count: 32), StridedLayout(strides: [8, 1]), shape: [4, 3])
        expectedJoin = Reference.copy(right.doubles, .contiguous([4, 5]), to: expectedJoin, StridedLayout(offset: 3, strides: [8, 1]), shape: [4, 5])
        #expect(relativeError(try backend.download(joined), expectedJoin) < Self.bound, "concatenate, seed \(random.seed)")
        // Reverse the axes of a [2, 3, 4, 5, 6] tensor (five dimensions: pieces on OpenCL).
        let shape = [2, 3, 4, 5, 6]
        let dense = StridedLayout.contiguous(shape).strides
        try check("permute five axes", random.floats(720), StridedLayout(strides: Array(dense.reversed())), into: 720, .contiguous(Array(shape.reversed())), shape: Array(shape.reversed()))
        // A broadcast expansion: a row repeated down 9 rows.
        try check("broadcast [1, 33] → [9, 33]", random.floats(33), StridedLayout(strides: [0, 1]), into: 9 * 33, .contiguous([9, 33]), shape: [9, 33])
    }
}

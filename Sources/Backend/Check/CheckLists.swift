/// The sizes, layouts and variants that each family's cases of ``DeviceCheck`` run over: one definition of
/// every case (its inputs, its reference call, its comparison, in ``CheckCases``), run over ``check``'s
/// short lists by `kiln check` and the tuner (seconds on PoCL), and over longer lists by the test suite
/// (Tests/KilnBackendTests), which then asserts every row.
public struct CheckLists: Sendable {
    /// Matrix products. When every one of them runs in an OpenCL backend's direct kernel, the check adds a
    /// shape just past the backend's crossover (every transpose), so that the tiled kernel runs too.
    public var gemm: [GemmProblem]
    /// Element counts of the case that runs every unary op forward and backward.
    public var unaryCounts: [Int]
    /// Output shapes with the dense shapes `a` and `b` are stored in (right-aligned), for every binary op.
    public var broadcasts: [Broadcast]
    public var reduce: [ReduceShape]
    /// Softmax, log-softmax, cross-entropy and RMSNorm (RMSNorm at two columns or more: with one, its
    /// output is ±weight and dx is O(epsilon), pure cancellation).
    public var rows: [RowShape]
    /// Gather and scatter-add with repeated and out-of-range indices (at least 200 indices).
    public var embedding: [EmbeddingShape]
    /// Counts of uniform random numbers, each with a fresh seed and offset.
    public var randomCounts: [Int]
    /// Two steps of a rule on `count` parameters, with or without a device-side gradient scale.
    public var optimizer: [OptimizerCase]
    public var spline: [SplineShape]
    /// Scans; each runs in the backend's own form and again on a copy of the backend whose every scan is chunked.
    public var scan: [CheckCases.ScanCase]

    public init(gemm: [GemmProblem], unaryCounts: [Int], broadcasts: [Broadcast], reduce: [ReduceShape], rows: [RowShape], embedding: [EmbeddingShape],
                randomCounts: [Int], optimizer: [OptimizerCase], spline: [SplineShape], scan: [CheckCases.ScanCase]) {
        self.gemm = gemm
        self.unaryCounts = unaryCounts
        self.broadcasts = broadcasts
        self.reduce = reduce
        self.rows = rows
        self.embedding = embedding
        self.randomCounts = randomCounts
        self.optimizer = optimizer
        self.spline = spline
        self.scan = scan
    }

    /// A binary op's output shape and the dense shapes its operands are stored in.
    public struct Broadcast: Sendable, CustomStringConvertible {
        public var shape: [Int], a: [Int], b: [Int]
        public init(_ shape: [Int], _ a: [Int], _ b: [Int]) {
            self.shape = shape
            self.a = a
            self.b = b
        }
        public var description: String { "\(shape) ← \(a), \(b)" }
    }

    /// An optimizer case: a rule, a parameter count and the gradient scale (nil: none).
    public struct OptimizerCase: Sendable {
        public var rule: UpdateRule, count: Int, gradientScale: Float?
        public init(_ rule: UpdateRule, count: Int, gradientScale: Float? = nil) {
            self.rule = rule
            self.count = count
            self.gradientScale = gradientScale
        }
    }

    /// Every transpose of each shape; alpha and beta alternate between (1, 0), C poisoned, and (−0.75, 0.5).
    public static func gemmProblems(_ shapes: [(m: Int, n: Int, k: Int)], firstIndex: Int = 0) -> [GemmProblem] {
        var problems: [GemmProblem] = []
        for (index, (m, n, k)) in shapes.enumerated() {
            for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
                let (alpha, beta): (Float, Float) = (firstIndex + index + (transposeA ? 1 : 0)) % 2 == 0 ? (1, 0) : (-0.75, 0.5)
                problems.append(GemmProblem(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, alpha: alpha, beta: beta))
            }
        }
        return problems
    }

    /// `batchCount` strided batches of `problem` with offsets, padded leading dimensions and gaps between
    /// batches; `sharedB` gives every batch the same B (a weight), else B has its own gaps too.
    public static func batched(_ problem: GemmProblem, batchCount: Int, sharedB: Bool) -> GemmProblem {
        var batched = problem
        batched.batchCount = batchCount
        batched.lda += 3
        batched.ldb += 1
        batched.ldc += 2
        batched.offsetA = 5
        batched.offsetB = 1
        batched.offsetC = 7
        batched.strideA = (problem.transposeA ? problem.k : problem.m) * batched.lda + 4
        batched.strideB = sharedB ? 0 : (problem.transposeB ? problem.n : problem.k) * batched.ldb + 9
        batched.strideC = problem.m * batched.ldc + 3
        return batched
    }

    /// `kiln check`'s lists: odd sizes that still reach every code path.
    public static let check = CheckLists(
        gemm: gemmProblems([(1, 1, 1), (7, 33, 5), (1, 513, 7), (33, 127, 65), (131, 257, 97), (257, 131, 300)])
            + [batched(GemmProblem(m: 129, n: 67, k: 100, transposeA: false, transposeB: true, alpha: 1.5, beta: 0.25), batchCount: 3, sharedB: true)],
        unaryCounts: [1, 127, 4099],
        broadcasts: [Broadcast([513], [513], [513]), Broadcast([7, 33], [7, 1], [33]), Broadcast([3, 7, 33], [3, 1, 33], [1, 7, 1]),
                     Broadcast([2, 3, 4, 5, 6], [2, 1, 4, 1, 6], [3, 1, 5, 1])],
        reduce: [(1, 1, 1), (7, 33, 1), (33, 127, 7), (3, 1, 513), (2, 5000, 3), (1, 100_003, 1)].map { ReduceShape(outer: $0.0, length: $0.1, inner: $0.2) },
        rows: [(1, 7), (7, 33), (33, 127), (3, 2000)].map { RowShape(rows: $0.0, columns: $0.1) },
        embedding: [1, 33, 513].map { EmbeddingShape(tableRows: 11, indexCount: 300, columns: $0) },
        randomCounts: [1, 127, 100_003],
        optimizer: [
            UpdateRule.sgd(momentum: 0.9, nesterov: true, weightDecay: 0.01),
            .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1, decoupledWeightDecay: false),
            .adam(beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1, decoupledWeightDecay: true),
            .adamAtan2(beta1: 0.9, beta2: 0.99, a: 1.27, b: 1, weightDecay: 0.05),
        ].flatMap { [OptimizerCase($0, count: 7), OptimizerCase($0, count: 1031, gradientScale: 0.37)] },
        spline: [
            SplineShape(batch: 1, inputs: 1, outputs: 1, intervals: 1, order: 1, uniform: true),
            SplineShape(batch: 33, inputs: 7, outputs: 45, intervals: 5, order: 3, uniform: true),
            SplineShape(batch: 7, inputs: 3, outputs: 45, intervals: 20, order: 2, uniform: false),
            SplineShape(batch: 65, inputs: 4, outputs: 77, intervals: 7, order: 5, uniform: false),
        ],
        scan: [
            CheckCases.ScanCase(rule: .linearAttention, gate: .none, shape: ScanShape(batch: 2, length: 33, heads: 2, keyDimension: 16, valueDimension: 16), normalizer: 1, withStates: true),
            CheckCases.ScanCase(rule: .linearAttention, gate: .perKey, shape: ScanShape(batch: 1, length: 65, heads: 2, keyDimension: 60, valueDimension: 60), normalizer: 0.1, withStates: true),
            CheckCases.ScanCase(rule: .linearAttention, gate: .perHead, shape: ScanShape(batch: 1, length: 130, heads: 1, keyDimension: 64, valueDimension: 100), normalizer: 1, withStates: false),
            CheckCases.ScanCase(rule: .deltaRule, gate: .none, shape: ScanShape(batch: 1, length: 15, heads: 3, keyDimension: 60, valueDimension: 16), normalizer: 1, withStates: true),
            CheckCases.ScanCase(rule: .deltaRule, gate: .perHead, shape: ScanShape(batch: 2, length: 65, heads: 2, keyDimension: 64, valueDimension: 64), normalizer: 0.1, withStates: true),
        ])
}

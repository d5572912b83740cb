import Foundation

/// The cases of ``DeviceCheck``, one function per op family, each run over that family's list in
/// ``CheckLists``: `kiln check` runs ``CheckLists/check``'s short lists, the test suite in
/// Tests/KilnBackendTests the same cases over longer lists (and uses the helpers here that are public:
/// the unary ops and their input ranges, broadcast layouts, gemm's error).
public enum CheckCases {
    typealias Comparisons = [(output: String, error: Double, bound: Double)]

    // MARK: gemm

    static func gemm(_ backend: any Backend, _ problems: [GemmProblem], _ random: inout RandomGenerator, _ recorder: inout CheckRecorder) {
        let tuning = (backend as? OpenCLBackend)?.tuning.gemm
        var problems = problems
        // A shape just past the backend's crossover, so the tiled kernel runs with odd edges whatever the
        // tuning says (the listed shapes may all fall below a high crossover).
        if let tuning, problems.allSatisfy({ tuning.usesDirectKernel(m: $0.m, n: $0.n, k: $0.k) }) {
            var side = max(tuning.directMaximumRows, tuning.directMaximumColumns, tuning.directMaximumDepth) + 3
            while tuning.usesDirectKernel(m: side, n: side + 2, k: side + 1) { side += side / 4 + 1 }
            problems += CheckLists.gemmProblems([(side, side + 2, side + 1)])
        }
        for problem in problems {
            let kernel = tuning.map { $0.usesDirectKernel(m: problem.m, n: problem.n, k: problem.k) ? ", direct kernel" : ", tiled kernel" } ?? ""
            recorder.add("\(gemmName(problem))\(kernel)") { [("C", try gemmError(backend, problem, &random), CheckBound.gemm)] }
        }
    }

    /// A gemm case's name: sizes, transposes, alpha and beta, and the batch layout.
    static func gemmName(_ problem: GemmProblem) -> String {
        let sizes = "\(problem.m)×\(problem.n)×\(problem.k)\(problem.transposeA ? " Aᵀ" : "")\(problem.transposeB ? " Bᵀ" : "") α \(problem.alpha) β \(problem.beta)"
        guard problem.batchCount > 1 || problem.offsetA + problem.offsetB + problem.offsetC > 0 else { return sizes }
        return "\(problem.batchCount) batches of \(sizes), strided with offsets\(problem.strideB == 0 && problem.batchCount > 1 ? ", shared B" : "")"
    }

    /// The relative error of one gemm with fresh inputs and C poisoned where beta is 0; elements outside
    /// the problem must come back untouched (else the error is infinite).
    public static func gemmError(_ backend: any Backend, _ problem: GemmProblem, _ random: inout RandomGenerator) throws -> Double {
        let (aCount, bCount, cCount) = problem.extents
        let a = random.floats(max(aCount, 1)), b = random.floats(max(bCount, 1))
        let c = problem.beta == 0 ? [Float](repeating: .nan, count: max(cCount, 1)) : random.floats(max(cCount, 1))
        let cBuffer = backend.makeBuffer(c)
        backend.gemm(problem, a: backend.makeBuffer(a), b: backend.makeBuffer(b), c: cBuffer)
        var observed = try backend.download(cBuffer)
        var expected = Reference.gemm(problem, a: a.doubles, b: b.doubles, c: c.doubles)
        for index in expected.indices where expected[index].isNaN {
            guard observed[index].isNaN else { return .infinity }  // written outside the problem
            expected[index] = 0
            observed[index] = 0
        }
        return relativeError(observed, expected)
    }

    // MARK: elementwise

    /// Every unary op, with the parameters of the parameterized ones.
    public static let unaryOps: [UnaryOp] = [
        .negate, .relu, .gelu, .silu, .sigmoid, .logSigmoid, .tanh, .exp, .log, .sqrt, .reciprocalSqrt, .reciprocal,
        .square, .abs, .scale(-1.5), .affine(scale: 0.5, shift: 2), .power(1.7), .clamp(low: -0.5, high: 0.75),
        .step(threshold: 0.25),
    ]

    /// The input range a unary op is checked on (positive where the op needs it).
    public static func range(_ op: UnaryOp) -> ClosedRange<Float> {
        switch op {
        case .log, .sqrt, .reciprocalSqrt, .reciprocal, .power: 0.1...3
        case .exp: -5...5
        default: -4...4
        }
    }

    static func elementwise(_ backend: any Backend, _ lists: CheckLists, _ random: inout RandomGenerator, _ recorder: inout CheckRecorder) {
        for count in lists.unaryCounts {
            recorder.add("every unary op and its gradient, n \(count)") {
                var comparisons: Comparisons = []
                for op in unaryOps {
                    let x = random.floats(count, in: range(op)), dy = random.floats(count)
                    let xBuffer = backend.makeBuffer(x)
                    let y = backend.poisoned(count), dx = backend.poisoned(count)
                    backend.unary(op, xBuffer, into: y, count: count)
                    backend.unaryBackward(op, input: xBuffer, output: y, outputGradient: backend.makeBuffer(dy), into: dx, count: count)
                    comparisons.append(("\(op)", relativeError(try backend.download(y), Reference.unary(op, x.doubles)), CheckBound.elementwise))
                    comparisons.append(("\(op) backward", relativeError(try backend.download(dx), Reference.unaryBackward(op, input: x.doubles, outputGradient: dy.doubles)), CheckBound.elementwise))
                }
                return comparisons
            }
        }
        for broadcast in lists.broadcasts {
            let (shape, aShape, bShape) = (broadcast.shape, broadcast.a, broadcast.b)
            recorder.add("every binary op, \(broadcast)") {
                let aLayout = broadcastLayout(aShape, to: shape), bLayout = broadcastLayout(bShape, to: shape)
                // Small integers make `equal` and `greater` meaningful; divisors stay away from zero.
                let a = (0..<aShape.reduce(1, *)).map { _ in Float(Int.random(in: -3...3, using: &random)) }
                let b = (0..<bShape.reduce(1, *)).map { _ in Float(Int.random(in: 1...3, using: &random)) * (Bool.random(using: &random) ? 1 : -1) }
                let aBuffer = backend.makeBuffer(a), bBuffer = backend.makeBuffer(b)
                return try BinaryOp.allCases.map { op in
                    let out = backend.poisoned(shape.reduce(1, *))
                    backend.binary(op, aBuffer, aLayout, bBuffer, bLayout, into: out, shape: shape)
                    return ("\(op)", relativeError(try backend.download(out), Reference.binary(op, a.doubles, aLayout, b.doubles, bLayout, shape: shape)), CheckBound.elementwise)
                }
            }
        }
        recorder.add("strided copy: a 5-dimensional permutation into an offset destination") {
            let shape = [3, 2, 5, 4, 7]
            let source = random.floats(shape.reduce(1, *))
            // Read the source with its axes reversed (a permutation), write densely after an offset of 11.
            let dense = StridedLayout.contiguous(shape.reversed()).strides
            let sourceLayout = StridedLayout(strides: dense.reversed())
            let destinationLayout = StridedLayout.contiguous(shape, offset: 11)
            let count = 11 + shape.reduce(1, *)
            let destination = backend.poisoned(count)
            backend.copy(backend.makeBuffer(source), sourceLayout, to: destination, destinationLayout, shape: shape)
            var expected = Reference.copy(source.doubles, sourceLayout, to: [Double](repeating: .nan, count: count), destinationLayout, shape: shape)
            var observed = try backend.download(destination)
            for index in 0..<11 {
                guard observed[index].isNaN else { return [("copy", .infinity, CheckBound.elementwise)] }
                expected[index] = 0
                observed[index] = 0
            }
            return [("copy", relativeError(observed, expected), CheckBound.elementwise)]
        }
    }

    /// Strides that broadcast a dense `stored` shape (right-aligned) to `shape`.
    public static func broadcastLayout(_ stored: [Int], to shape: [Int]) -> StridedLayout {
        let dense = StridedLayout.contiguous(stored).strides
        let padding = shape.count - stored.count
        return StridedLayout(strides: shape.indices.map { axis in
            guard axis >= padding else { return 0 }
            return stored[axis - padding] == 1 && shape[axis] != 1 ? 0 : dense[axis - padding]
        })
    }

    // MARK: reduce

    static func reduce(_ backend: any Backend, _ shapes: [ReduceShape], _ random: inout RandomGenerator, _ recorder: inout CheckRecorder) {
        for shape in shapes {
            recorder.add("sum, mean, max, min, sum of squares, \(shape)") {
                let x = random.floats(shape.inputCount, in: -2...3)
                let input = backend.makeBuffer(x)
                return try ReductionOp.allCases.map { op in
                    let out = backend.poisoned(shape.outputCount)
                    backend.reduce(op, input, into: out, shape: shape)
                    return ("\(op)", relativeError(try backend.download(out), Reference.reduce(op, x.doubles, shape: shape)), CheckBound.longReduction)
                }
            }
        }
    }

    // MARK: rows

    static func rows(_ backend: any Backend, _ shapes: [RowShape], _ random: inout RandomGenerator, _ recorder: inout CheckRecorder) {
        for shape in shapes {
            recorder.add("softmax, log-softmax, cross-entropy, RMSNorm and gradients, \(shape)") {
                var comparisons: Comparisons = []
                let x = random.floats(shape.count, in: -6...6), dy = random.floats(shape.count)
                let xBuffer = backend.makeBuffer(x), dyBuffer = backend.makeBuffer(dy)
                let y = backend.poisoned(shape.count), logY = backend.poisoned(shape.count)
                let dx = backend.poisoned(shape.count), logDx = backend.poisoned(shape.count)
                backend.softmax(xBuffer, into: y, shape: shape)
                backend.logSoftmax(xBuffer, into: logY, shape: shape)
                backend.softmaxBackward(output: y, outputGradient: dyBuffer, into: dx, shape: shape)
                backend.logSoftmaxBackward(output: logY, outputGradient: dyBuffer, into: logDx, shape: shape)
                // The backward references take the float64 outputs, so the device's rounding of y counts.
                let probabilities = Reference.softmax(x.doubles, shape: shape), logProbabilities = Reference.logSoftmax(x.doubles, shape: shape)
                comparisons.append(("softmax", relativeError(try backend.download(y), probabilities), CheckBound.elementwise))
                comparisons.append(("log-softmax", relativeError(try backend.download(logY), logProbabilities), CheckBound.elementwise))
                comparisons.append(("softmax backward", relativeError(try backend.download(dx), Reference.softmaxBackward(output: probabilities, outputGradient: dy.doubles, shape: shape)), CheckBound.longReduction))
                comparisons.append(("log-softmax backward", relativeError(try backend.download(logDx), Reference.logSoftmaxBackward(output: logProbabilities, outputGradient: dy.doubles, shape: shape)), CheckBound.longReduction))

                let logits = random.floats(shape.count, in: -5...5)
                var labels = random.integers(shape.rows, in: 0..<Int32(shape.columns))
                if shape.rows > 2 { labels[1] = -1 }  // an ignored row
                if shape.rows > 3 { labels[2] = Int32(shape.columns) }  // out of range: ignored too
                let upstream = random.floats(shape.rows, in: 0.1...2)
                let logitsBuffer = backend.makeBuffer(logits), labelBuffer = backend.makeBuffer(labels)
                let losses = backend.poisoned(shape.rows), gradient = backend.poisoned(shape.count)
                backend.softmaxCrossEntropy(logits: logitsBuffer, labels: labelBuffer, into: losses, shape: shape)
                backend.softmaxCrossEntropyBackward(logits: logitsBuffer, labels: labelBuffer, lossGradient: backend.makeBuffer(upstream), into: gradient, shape: shape)
                // A row's loss is log Σ exp(z) − z[label], a difference that can cancel to near 0 (one row of 7
                // once gave 2e-5 relative error for 1e-7 absolute): its rounding scales with the two terms.
                let magnitudes = (0..<shape.rows).map { row -> Double in
                    let z = logits[(row * shape.columns)..<((row + 1) * shape.columns)].map(Double.init)
                    guard labels[row] >= 0, Int(labels[row]) < shape.columns, let top = z.max() else { return 0 }
                    return abs(top + Foundation.log(z.map { Foundation.exp($0 - top) }.reduce(0, +))) + abs(z[Int(labels[row])])
                }
                comparisons.append(("cross-entropy", relativeError(try backend.download(losses), Reference.softmaxCrossEntropy(logits: logits.doubles, labels: labels, shape: shape), magnitude: magnitudes), CheckBound.elementwise))
                comparisons.append(("cross-entropy backward", relativeError(try backend.download(gradient), Reference.softmaxCrossEntropyBackward(logits: logits.doubles, labels: labels, lossGradient: upstream.doubles, shape: shape)), CheckBound.elementwise))

                // RMSNorm from two columns on: with one, y is ±weight and dx is O(epsilon), pure cancellation.
                let epsilon: Float = 1e-5, norm = RowShape(rows: shape.rows, columns: max(shape.columns, 2))
                let weight = random.floats(norm.columns, in: 0.5...1.5), nx = random.floats(norm.count, in: -2...2), ndy = random.floats(norm.count)
                let nxBuffer = backend.makeBuffer(nx), wBuffer = backend.makeBuffer(weight)
                let ny = backend.poisoned(norm.count), rstd = backend.poisoned(norm.rows)
                let ndx = backend.poisoned(norm.count), dw = backend.poisoned(norm.columns)
                backend.rmsNorm(nxBuffer, weight: wBuffer, into: ny, inverseRMS: rstd, shape: norm, epsilon: epsilon)
                backend.rmsNormBackward(nxBuffer, weight: wBuffer, inverseRMS: rstd, outputGradient: backend.makeBuffer(ndy), into: ndx, weightGradient: dw, shape: norm)
                let forward = Reference.rmsNorm(nx.doubles, weight: weight.doubles, shape: norm, epsilon: Double(epsilon))
                let backward = Reference.rmsNormBackward(nx.doubles, weight: weight.doubles, outputGradient: ndy.doubles, shape: norm, epsilon: Double(epsilon))
                comparisons.append(("RMSNorm", relativeError(try backend.download(ny), forward.output), CheckBound.elementwise))
                comparisons.append(("RMSNorm 1/rms", relativeError(try backend.download(rstd), forward.inverseRMS), CheckBound.elementwise))
                comparisons.append(("RMSNorm dx", relativeError(try backend.download(ndx), backward.input), CheckBound.longReduction))
                comparisons.append(("RMSNorm dweight", relativeError(try backend.download(dw), backward.weight), CheckBound.longReduction))
                return comparisons
            }
        }
    }

    // MARK: embedding

    static func embedding(_ backend: any Backend, _ shapes: [EmbeddingShape], _ random: inout RandomGenerator, _ recorder: inout CheckRecorder) {
        for shape in shapes {
            let columns = shape.columns
            recorder.add("gather and scatter-add, repeated and out-of-range indices, \(shape)") {
                let table = random.floats(shape.tableRows * columns)
                var indices = random.integers(shape.indexCount, in: 0..<Int32(shape.tableRows))
                indices[5] = -1
                indices[17] = Int32(shape.tableRows)
                indices[100..<200] = ArraySlice(repeating: 3, count: 100)  // many rows into one entry
                let indexBuffer = backend.makeBuffer(indices)
                let gathered = backend.poisoned(shape.indexCount * columns)
                backend.gatherRows(backend.makeBuffer(table), indices: indexBuffer, into: gathered, shape: shape)
                let source = random.floats(shape.indexCount * columns), start = random.floats(shape.tableRows * columns)
                let accumulated = backend.makeBuffer(start)
                backend.scatterAddRows(backend.makeBuffer(source), indices: indexBuffer, into: accumulated, shape: shape)
                return [
                    ("gather", relativeError(try backend.download(gathered), Reference.gatherRows(table.doubles, indices: indices, shape: shape)), CheckBound.elementwise),
                    ("scatter-add", relativeError(try backend.download(accumulated), Reference.scatterAddRows(source.doubles, indices: indices, into: start.doubles, shape: shape)), CheckBound.elementwise),
                ]
            }
        }
    }

    // MARK: random

    static func random(_ backend: any Backend, _ counts: [Int], _ random: inout RandomGenerator, _ recorder: inout CheckRecorder) {
        for count in counts {
            recorder.add("uniform numbers, n \(count), a random seed and offset (bit for bit)") {
                let seed = random.next(), offset = random.next() >> 1
                let buffer = backend.poisoned(count)
                backend.randomUniform(into: buffer, count: count, seed: seed, offset: offset)
                return [("values", relativeError(try backend.download(buffer), Reference.randomUniform(count: count, seed: seed, offset: offset)), CheckBound.exact)]
            }
        }
    }

    // MARK: optimizer

    static func optimizer(_ backend: any Backend, _ cases: [CheckLists.OptimizerCase], _ random: inout RandomGenerator, _ recorder: inout CheckRecorder) {
        for optimizerCase in cases {
            let (rule, count, scaleValue) = (optimizerCase.rule, optimizerCase.count, optimizerCase.gradientScale)
            recorder.add("two steps of \(rule), n \(count)\(scaleValue.map { ", gradient scale \($0)" } ?? "")") {
                let initial = random.floats(count)
                var expected = (parameter: initial.doubles, state: [[Double]](repeating: [Double](repeating: 0, count: count), count: rule.stateCount))
                // The same steps on |gradient|: the magnitude each state's rounding scales with.
                var magnitudes = expected
                let parameter = backend.makeBuffer(initial)
                let state = (0..<rule.stateCount).map { _ in backend.makeBuffer([Float](repeating: 0, count: count)) }
                let scale = scaleValue.map { backend.makeBuffer([$0]) }
                for step in 1...2 {
                    let gradient = random.floats(count)
                    let update = OptimizerUpdate(rule, count: count, learningRate: 0.01 * Float(step), step: step)
                    backend.optimizerStep(update, parameter: parameter, gradient: backend.makeBuffer(gradient), state: state, gradientScale: scale)
                    expected = Reference.optimizerStep(update, parameter: expected.parameter, gradient: gradient.doubles, state: expected.state, gradientScale: scaleValue.map(Double.init))
                    magnitudes = Reference.optimizerStep(update, parameter: magnitudes.parameter, gradient: gradient.doubles.map(abs), state: magnitudes.state, gradientScale: scaleValue.map(Double.init))
                }
                let parameterMagnitude = zip(initial, expected.parameter).map { abs(Double($0)) + abs($1) }
                var comparisons: Comparisons = [("parameters", relativeError(try backend.download(parameter), expected.parameter, magnitude: parameterMagnitude), CheckBound.elementwise)]
                for (index, buffer) in state.enumerated() {
                    let magnitude = zip(expected.state[index], magnitudes.state[index]).map { abs($0) + abs($1) }
                    comparisons.append(("state \(index)", relativeError(try backend.download(buffer), expected.state[index], magnitude: magnitude), CheckBound.elementwise))
                }
                return comparisons
            }
        }
    }

    // MARK: spline

    static func spline(_ backend: any Backend, _ shapes: [SplineShape], _ random: inout RandomGenerator, _ recorder: inout CheckRecorder) {
        for shape in shapes {
            let name = "forward and backward, batch \(shape.batch), \(shape.inputs) → \(shape.outputs), G \(shape.intervals), k \(shape.order), \(shape.uniform ? "uniform" : "non-uniform") knots"
            recorder.add(name) { try splineComparisons(backend, shape, &random) }
        }
    }

    static func splineComparisons(_ backend: any Backend, _ shape: SplineShape, _ random: inout RandomGenerator) throws -> Comparisons {
        let knots = random.splineKnots(inputs: shape.inputs, intervals: shape.intervals, order: shape.order, uniform: shape.uniform)
        var columns: [[Float]] = []
        for i in 0..<shape.inputs {
            columns.append(random.splinePoints(count: shape.batch, knots: Array(knots[(i * shape.knotCount)..<((i + 1) * shape.knotCount)])))
        }
        let x = (0..<(shape.batch * shape.inputs)).map { columns[$0 % shape.inputs][$0 / shape.inputs] }
        let edges = shape.inputs * shape.outputs
        let coefficients = random.floats(edges * shape.coefficientCount), scaleBase = random.floats(edges), scaleSpline = random.floats(edges, in: 0.5...1.5)
        let dy = random.floats(shape.batch * shape.outputs)
        let layer = Reference.Spline.Layer(shape, x: x.doubles, knots: knots.doubles, coefficients: coefficients.doubles, scaleBase: scaleBase.doubles, scaleSpline: scaleSpline.doubles)
        let operands = SplineOperands(x: backend.makeBuffer(x), knots: backend.makeBuffer(knots), coefficients: backend.makeBuffer(coefficients),
                                      scaleBase: backend.makeBuffer(scaleBase), scaleSpline: backend.makeBuffer(scaleSpline))
        let y = backend.poisoned(shape.batch * shape.outputs)
        backend.splineForward(operands, shape: shape, into: y)
        let gradients = SplineGradients(input: backend.poisoned(shape.batch * shape.inputs), coefficients: backend.poisoned(edges * shape.coefficientCount),
                                        scaleBase: backend.poisoned(edges), scaleSpline: backend.poisoned(edges))
        backend.splineBackward(operands, shape: shape, outputGradient: backend.makeBuffer(dy), into: gradients)
        let expected = layer.backward(dy.doubles)
        // The forward is measured against the size of the terms it sums (a few edges can cancel).
        return [
            ("forward", relativeError(try backend.download(y), layer.forward(), magnitude: layer.forwardMagnitude()), CheckBound.elementwise),
            ("input gradient", relativeError(try backend.download(gradients.input!), expected.input), CheckBound.splineGradient),
            ("coefficient gradient", relativeError(try backend.download(gradients.coefficients!), expected.coefficients), CheckBound.splineGradient),
            ("scaleBase gradient", relativeError(try backend.download(gradients.scaleBase!), expected.scaleBase), CheckBound.splineGradient),
            ("scaleSpline gradient", relativeError(try backend.download(gradients.scaleSpline!), expected.scaleSpline), CheckBound.splineGradient),
        ]
    }

    // MARK: scan

    /// One scan case: rule, gate layout, sizes, gate strength (logsigmoid(x) / normalizer; 0.1 is strong,
    /// decays down to e^−30) and whether an initial state and a final-state gradient are given.
    public struct ScanCase: Sendable {
        public var rule: Reference.Scan.Rule
        public var gate: Reference.Scan.GateLayout
        public var shape: ScanShape
        public var normalizer: Double
        public var withStates: Bool

        public init(rule: Reference.Scan.Rule, gate: Reference.Scan.GateLayout, shape: ScanShape, normalizer: Double, withStates: Bool) {
            self.rule = rule
            self.gate = gate
            self.shape = shape
            self.normalizer = normalizer
            self.withStates = withStates
        }

        public var name: String {
            let rule = self.rule == .deltaRule ? (gate == .none ? "delta rule" : "gated delta rule") : (gate == .none ? "linear attention" : "GLA, \(gate == .perKey ? "per-key" : "per-head") gate")
            let strength = gate == .none ? "" : (normalizer < 1 ? ", strong gates" : ", gates")
            return "\(rule)\(strength), \(shape)\(withStates ? ", h0 and dS_T" : "")"
        }
    }

    static func scan(_ backend: any Backend, _ scanCases: [ScanCase], _ random: inout RandomGenerator, _ recorder: inout CheckRecorder) {
        for scanCase in scanCases {
            recorder.add("\(scanCase.name), \(scanForm(of: backend, scanCase.shape))") { try scanComparisons(backend, scanCase, bound: scanBound(of: backend, scanCase.shape), &random) }
        }
        // The chunked form on every case, on a copy of the backend whose rule runs every scan chunked.
        let chunked: any Backend
        do {
            guard let sibling = try chunkedSibling(of: backend) else { return }
            chunked = sibling
        } catch {
            recorder.add("chunked form") { throw error }
            return
        }
        for scanCase in scanCases {
            recorder.add("\(scanCase.name), \(scanForm(of: chunked, scanCase.shape))") { try scanComparisons(chunked, scanCase, bound: scanBound(of: chunked, scanCase.shape), &random) }
        }
    }

    /// Which form a backend runs a scan of this shape in (both backends have both forms of every scan;
    /// the backend's form rule picks one from T and K · V).
    static func scanForm(of backend: any Backend, _ shape: ScanShape) -> String {
        if let cpu = backend as? CPUBackend { return "\(cpu.scanFormRule.form(for: shape)) form" }
        if let openCL = backend as? OpenCLBackend { return "\(openCL.tuning.scan.form.form(for: shape)) form" }
        return "backend's form"
    }

    /// The bound of a backend's scan: 1e-5 for the recurrent form, 1e-4 where the rule picks chunked.
    static func scanBound(of backend: any Backend, _ shape: ScanShape) -> Double {
        let form: ScanForm? = (backend as? CPUBackend)?.scanFormRule.form(for: shape) ?? (backend as? OpenCLBackend)?.tuning.scan.form.form(for: shape)
        return form == .recurrent ? CheckBound.scanRecurrent : CheckBound.scanChunked
    }

    /// A backend like `backend` that runs every scan in the chunked form, or nil when there is none.
    static func chunkedSibling(of backend: any Backend) throws(BackendError) -> (any Backend)? {
        if backend is CPUBackend {
            let chunked = CPUBackend()
            chunked.scanFormRule = .chunked
            return chunked
        }
        if let openCL = backend as? OpenCLBackend {
            var tuning = openCL.tuning
            tuning.scan.form = .chunked
            return try OpenCLBackend(device: openCL.openCLDevice, tuning: tuning, kernelLocator: openCL.kernelLocator)
        }
        return nil
    }

    static func scanComparisons(_ backend: any Backend, _ c: ScanCase, bound: Double, _ random: inout RandomGenerator) throws -> Comparisons {
        let reference = Reference.Scan(c.shape, rule: c.rule, gate: c.gate, scale: 1 / Double(c.shape.keyDimension).squareRoot())
        let problem = ScanProblem(reference, normalizer: c.normalizer, initialState: c.withStates, finalStateGradient: c.withStates, random: &random)
        return compareScan(try runScan(problem, on: backend), problem, bound: bound)
    }
}

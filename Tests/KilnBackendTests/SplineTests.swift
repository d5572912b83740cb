import Foundation
import KilnBackend
import KilnTestSupport
import Testing

/// The spline family's primitives (`SplineKernels`: `splineForward`, `splineBackward`) on every backend
/// against `Reference.Spline`, a float64 layer written from the Cox–de Boor definition.
@Suite("KAN spline kernels against float64 references")
struct SplineTests {
    /// One layer to check: sizes, order, grid and whether the knots are uniform.
    struct Case: CustomStringConvertible {
        var batch: Int, inputs: Int, outputs: Int, intervals: Int, order: Int, uniform: Bool
        var shape: SplineShape { SplineShape(batch: batch, inputs: inputs, outputs: outputs, intervals: intervals, order: order, uniform: uniform) }
        var description: String { "batch \(batch), \(inputs) → \(outputs), G \(intervals), k \(order), \(uniform ? "uniform" : "non-uniform")" }
    }

    /// k = 1…5 × G ∈ {1, 3, 5, 20} × uniform and non-uniform knots, with sizes cycling through odd values.
    static let cases: [Case] = {
        let batches = [1, 7, 33, 127], widths = [1, 3, 7]
        var cases: [Case] = []
        for order in 1...5 {
            for intervals in [1, 3, 5, 20] {
                for uniform in [true, false] {
                    let n = cases.count
                    cases.append(Case(batch: batches[n % 4], inputs: widths[n % 3], outputs: widths[(n / 3) % 3], intervals: intervals, order: order, uniform: uniform))
                }
            }
        }
        // Outputs that fill whole SIMD vectors and leave a tail, on the closed-form path and the general one.
        cases.append(Case(batch: 33, inputs: 7, outputs: 45, intervals: 5, order: 3, uniform: true))
        cases.append(Case(batch: 7, inputs: 3, outputs: 45, intervals: 20, order: 2, uniform: false))
        // Two full column tiles of 32, one of 8 and five single columns; an odd batch (samples in pairs
        // and one left over).
        cases.append(Case(batch: 65, inputs: 5, outputs: 77, intervals: 5, order: 3, uniform: true))
        cases.append(Case(batch: 65, inputs: 4, outputs: 77, intervals: 7, order: 5, uniform: false))
        return cases
    }()

    /// A layer with random float32 parameters and points inside, on the knots of, and outside the grid.
    struct Problem {
        var layer: Reference.Spline.Layer
        var x: [Float], knots: [Float], coefficients: [Float], scaleBase: [Float], scaleSpline: [Float]

        init(_ c: Case, random: inout RandomGenerator, points: ((Int, [Float], inout RandomGenerator) -> [Float])? = nil) {
            knots = random.splineKnots(inputs: c.inputs, intervals: c.intervals, order: c.order, uniform: c.uniform)
            let knotCount = c.intervals + 2 * c.order + 1
            var columns: [[Float]] = []
            for i in 0..<c.inputs {
                let row = Array(knots[(i * knotCount)..<((i + 1) * knotCount)])
                columns.append(points?(i, row, &random) ?? random.splinePoints(count: c.batch, knots: row))
            }
            x = (0..<(c.batch * c.inputs)).map { columns[$0 % c.inputs][$0 / c.inputs] }
            coefficients = random.floats(c.inputs * c.outputs * (c.intervals + c.order))
            scaleBase = random.floats(c.inputs * c.outputs)
            scaleSpline = random.floats(c.inputs * c.outputs, in: 0.5...1.5)
            layer = Reference.Spline.Layer(c.shape, x: x.map(Double.init), knots: knots.map(Double.init), coefficients: coefficients.map(Double.init),
                                           scaleBase: scaleBase.map(Double.init), scaleSpline: scaleSpline.map(Double.init))
        }

        func upload(to backend: any Backend) -> SplineOperands {
            SplineOperands(x: backend.makeBuffer(x), knots: backend.makeBuffer(knots), coefficients: backend.makeBuffer(coefficients),
                           scaleBase: backend.makeBuffer(scaleBase), scaleSpline: backend.makeBuffer(scaleSpline))
        }
    }

    /// Runs forward and backward on poisoned outputs; returns y, dx, dc, dScaleBase, dScaleSpline.
    static func run(_ c: Case, _ problem: Problem, dy: [Float], on backend: any Backend) throws -> [[Float]] {
        let operands = problem.upload(to: backend)
        let shape = c.shape
        let y = backend.poisoned(c.batch * c.outputs)
        backend.splineForward(operands, shape: shape, into: y)
        let gradients = SplineGradients(
            input: backend.poisoned(c.batch * c.inputs), coefficients: backend.poisoned(c.inputs * c.outputs * shape.coefficientCount),
            scaleBase: backend.poisoned(c.inputs * c.outputs), scaleSpline: backend.poisoned(c.inputs * c.outputs))
        backend.splineBackward(operands, shape: shape, outputGradient: backend.makeBuffer(dy), into: gradients)
        return try [y, gradients.input!, gradients.coefficients!, gradients.scaleBase!, gradients.scaleSpline!].map { try backend.download($0) }
    }

    // The check's spline case (CheckCases.splineComparisons): knots and points from CheckData (on every
    // knot, at both ends, just inside and outside, well outside), forward within 1e-5 of the float64 layer
    // measured against the size of the terms it sums (a few edges into one output can cancel: 2e-5 relative
    // to the result itself was seen for 3 → 1 with batch 1), the four gradients within 1e-4 (sums over the
    // batch and over outputs), every output poisoned first. Here over the long list of cases.
    @Test("forward and all four gradients against the float64 layer, k = 1…5, G ∈ {1, 3, 5, 20}", arguments: BackendCase.all)
    func layerAgainstReference(_ backendCase: BackendCase) throws {
        expectCheckCasesPass(.spline, on: try backendCase.makeBackend(), "\(backendCase)") { $0.spline = Self.cases.map(\.shape) }
    }

    // The CPU backend's spline loops come in two versions (AVX2 + FMA where the processor has them, and
    // portable C); the test above runs the default one, this one the portable one. The switch is
    // process-wide, so other tests running meanwhile may use either version; both must be right.
    @Test("CPU spline loops: the portable C versions against the float64 layer")
    func portableCPULoops() throws {
        try withPortableCPULoops {
            #expect(!CPUBackend.usesWideVectors)
            // Includes the wide cases (77 outputs, odd batches) at the end of `cases`.
            expectCheckCasesPass(.spline, on: CPUBackend(), "cpu (portable loops)") { lists in
                lists.spline = Self.cases.filter { $0.order == 3 || $0.intervals == 5 }.map(\.shape)
            }
        }
    }

    // The other launch shapes of spline.cl on every OpenCL device (PoCL included): the GPU one (VW 1,
    // TILE 32) and float4 with three samples per work-item and three partial sums.
    @Test("spline.cl's GPU and float4 launch shapes against the float64 layer", arguments: BackendCase.openCL)
    func otherLaunchShapes(_ backendCase: BackendCase) throws {
        let description = try #require(Devices.all().first { $0.id == backendCase.deviceID })
        let shapes = [SplineTuning.gpuDevice, SplineTuning(vectorWidth: 4, rowsPerItem: 3, tile: 12, parts: 3, forwardGroup: [2, 3], inputGradientGroup: [4, 2], batchSumGroup: [2, 2])]
        for spline in shapes {
            var tuning = OpenCLTuning.defaults(for: description)
            tuning.spline = spline
            let backend = try OpenCLBackend(deviceID: backendCase.deviceID, tuning: tuning)
            expectCheckCasesPass(.spline, on: backend, "\(backendCase) with \(spline)") { lists in
                lists.spline = Self.cases.filter { $0.order == 3 || $0.order == 2 || $0.intervals == 1 }.map(\.shape)
            }
        }
    }

    // spline.cl is built on first use: a build that fails (here TILE 12 is not a multiple of VW 8, which
    // the kernel file rejects with #error) is recorded and reported by the next synchronize, naming the
    // file, and the backend keeps working afterwards.
    @Test("a failed build of spline.cl is a reported error, not a crash", arguments: BackendCase.openCL)
    func buildFailureIsReported(_ backendCase: BackendCase) throws {
        let description = try #require(Devices.all().first { $0.id == backendCase.deviceID })
        var tuning = OpenCLTuning.defaults(for: description)
        tuning.spline = SplineTuning(vectorWidth: 8, rowsPerItem: 1, tile: 12, parts: 1, forwardGroup: [1, 1], inputGradientGroup: [1, 1], batchSumGroup: [1, 1])
        let backend = try OpenCLBackend(deviceID: backendCase.deviceID, tuning: tuning)
        var random = RandomGenerator.withFreshSeed()
        let c = Case(batch: 3, inputs: 2, outputs: 5, intervals: 3, order: 3, uniform: true)
        let operands = Problem(c, random: &random).upload(to: backend)
        let y = backend.poisoned(c.batch * c.outputs)
        backend.splineForward(operands, shape: c.shape, into: y)
        do {
            try backend.synchronize()
            Issue.record("a spline.cl that does not build should be reported")
        } catch {
            #expect(error.description.contains("spline.cl"), "\(error)")
        }
        backend.fill(y, offset: 0, count: c.batch * c.outputs, value: 2)
        #expect(try backend.download(y).allSatisfy { $0 == 2 })
    }

    // Gradients of L = Σ y ⊙ R against central finite differences of the float64 layer (step 1e-6):
    // relative error below 1e-4. Points avoid the knots, where the derivative of a linear spline jumps.
    @Test("gradients against central finite differences in float64", arguments: BackendCase.all)
    func gradientsAgainstFiniteDifferences(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for order in 1...5 {
            for (intervals, uniform) in [(3, true), (5, false)] {
                let c = Case(batch: 7, inputs: 3, outputs: 2, intervals: intervals, order: order, uniform: uniform)
                let problem = Problem(c, random: &random) { _, t, random in
                    (0..<7).map { _ in Float.random(in: (t[0] - 0.2)...(t[t.count - 1] + 0.2), using: &random) }
                }
                let projection = random.floats(c.batch * c.outputs).map(Double.init)
                let results = try Self.run(c, problem, dy: projection.map(Float.init), on: backend)
                let layer = problem.layer
                func loss(_ changed: Reference.Spline.Layer) -> Double { zip(changed.forward(), projection).map(*).reduce(0, +) }
                let numeric: [[Double]] = [
                    finiteDifferenceGradient(layer.x) { var l = layer; l.x = $0; return loss(l) },
                    finiteDifferenceGradient(layer.coefficients) { var l = layer; l.coefficients = $0; return loss(l) },
                    finiteDifferenceGradient(layer.scaleBase) { var l = layer; l.scaleBase = $0; return loss(l) },
                    finiteDifferenceGradient(layer.scaleSpline) { var l = layer; l.scaleSpline = $0; return loss(l) },
                ]
                for (name, (analytic, expected)) in zip(["x", "coefficients", "scaleBase", "scaleSpline"], zip(results[1...], numeric)) {
                    let error = relativeError(analytic, expected)
                    #expect(error < 1e-4, "\(name) gradient of \(c) on \(backendCase): error \(error), seed \(random.seed)")
                }
            }
        }
    }

    // One-hot coefficients make each output a single basis: y[b, n] = B_n(x[b]) and, with dy = e_n,
    // dx[b] = B_n′(x[b]). Relative error below 1e-5 for the bases, below 1e-4 for their derivatives.
    @Test("each basis and its derivative against Cox–de Boor, on knots, at both ends and outside", arguments: BackendCase.all)
    func basesAgainstCoxDeBoor(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for order in 1...5 {
            for intervals in [1, 3, 20] {
                for uniform in [true, false] {
                    let knots = random.splineKnots(inputs: 1, intervals: intervals, order: order, uniform: uniform)
                    let t = knots.map(Double.init)
                    let count = intervals + order
                    let points = random.splinePoints(count: 2 * knots.count + 14, knots: knots)
                    // Each point once per basis n: sample (p, n) has dy = e_n.
                    let x = points.flatMap { [Float](repeating: $0, count: count) }
                    let batch = x.count
                    let shape = SplineShape(batch: batch, inputs: 1, outputs: count, intervals: intervals, order: order, uniform: uniform)
                    var identity = [Float](repeating: 0, count: count * count)
                    for n in 0..<count { identity[n * count + n] = 1 }
                    var dy = [Float](repeating: 0, count: batch * count)
                    for sample in 0..<batch { dy[sample * count + sample % count] = 1 }
                    let operands = SplineOperands(
                        x: backend.makeBuffer(x), knots: backend.makeBuffer(knots), coefficients: backend.makeBuffer(identity),
                        scaleBase: backend.makeBuffer([Float](repeating: 0, count: count)), scaleSpline: backend.makeBuffer([Float](repeating: 1, count: count)))
                    let y = backend.poisoned(batch * count), dx = backend.poisoned(batch)
                    backend.splineForward(operands, shape: shape, into: y)
                    backend.splineBackward(operands, shape: shape, outputGradient: backend.makeBuffer(dy), into: SplineGradients(input: dx))
                    let expectedBases = x.flatMap { Reference.Spline.bases(order: order, at: Double($0), knots: t) }
                    let expectedSlopes = (0..<batch).map { Reference.Spline.basisDerivative($0 % count, order: order, at: Double(x[$0]), knots: t) }
                    let label = "k \(order), G \(intervals), \(uniform ? "uniform" : "non-uniform") on \(backendCase), seed \(random.seed)"
                    let values = try backend.download(y)
                    #expect(relativeError(values, expectedBases) < 1e-5, "bases: \(label)")
                    #expect(maximumAbsoluteError(values, expectedBases) < 1e-5, "bases: \(label)")
                    #expect(relativeError(try backend.download(dx), expectedSlopes) < 1e-4, "derivatives: \(label)")
                }
            }
        }
    }

    // Coefficients all 1: the bases sum to 1 on [t_k, t_{G+k}), so every output equals the input count
    // (relative error below 1e-5).
    @Test("partition of unity inside the original grid", arguments: BackendCase.all)
    func partitionOfUnity(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for order in 1...5 {
            for uniform in [true, false] {
                let (batch, inputs, outputs, intervals) = (33, 3, 2, 5)
                let knots = random.splineKnots(inputs: inputs, intervals: intervals, order: order, uniform: uniform)
                let count = knots.count / inputs
                let x = (0..<(batch * inputs)).map { index -> Float in
                    let row = index % inputs
                    let low = knots[row * count + order], high = knots[row * count + intervals + order]
                    return index / inputs == 0 ? low : Float.random(in: low..<high, using: &random)
                }
                let shape = SplineShape(batch: batch, inputs: inputs, outputs: outputs, intervals: intervals, order: order, uniform: uniform)
                let y = backend.poisoned(batch * outputs)
                let operands = SplineOperands(
                    x: backend.makeBuffer(x), knots: backend.makeBuffer(knots), coefficients: backend.makeBuffer([Float](repeating: 1, count: inputs * outputs * shape.coefficientCount)),
                    scaleBase: backend.makeBuffer([Float](repeating: 0, count: inputs * outputs)), scaleSpline: backend.makeBuffer([Float](repeating: 1, count: inputs * outputs)))
                backend.splineForward(operands, shape: shape, into: y)
                #expect(relativeError(try backend.download(y), [Double](repeating: Double(inputs), count: batch * outputs)) < 1e-5,
                        "k \(order), \(uniform ? "uniform" : "non-uniform") on \(backendCase), seed \(random.seed)")
            }
        }
    }

    // 513 samples in one grid interval: every update of the coefficient gradient lands on the same k + 1
    // coefficients. Relative error below 1e-4; two runs agree bit for bit (the sum order is fixed).
    @Test("coefficient gradient when every sample falls into one interval", arguments: BackendCase.all)
    func allSamplesInOneInterval(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for (order, uniform) in [(3, true), (3, false), (1, false), (5, true)] {
            let c = Case(batch: 513, inputs: 3, outputs: 7, intervals: 5, order: order, uniform: uniform)
            let problem = Problem(c, random: &random) { i, t, random in
                let m = order + (i % 5)  // an interval inside the grid, different per input
                return (0..<513).map { _ in Float.random(in: t[m]..<t[m + 1], using: &random) }
            }
            let dy = random.floats(c.batch * c.outputs)
            // Both runs with the same CPU loop versions: another test may switch them (process-wide).
            let (first, second) = try withSteadyCPULoops { (try Self.run(c, problem, dy: dy, on: backend), try Self.run(c, problem, dy: dy, on: backend)) }
            let expected = problem.layer.backward(dy.map(Double.init))
            let label = "\(c) on \(backendCase), seed \(random.seed)"
            #expect(relativeError(first[2], expected.coefficients) < CheckBound.splineGradient, "coefficient gradient: \(label)")
            #expect(relativeError(first[4], expected.scaleSpline) < CheckBound.splineGradient, "scaleSpline gradient: \(label)")
            #expect(relativeError(first[1], expected.input) < CheckBound.splineGradient, "input gradient: \(label)")
            #expect(first[2] == second[2] && first[4] == second[4], "repeated runs differ: \(label)")
        }
    }

    // Empty batches and layers without inputs or outputs write zeros (empty sums), never stale values.
    @Test("empty sizes write zeros", arguments: BackendCase.all)
    func emptySizes(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for (batch, inputs, outputs) in [(0, 3, 2), (4, 0, 2), (4, 3, 0)] {
            let shape = SplineShape(batch: batch, inputs: inputs, outputs: outputs, intervals: 3, order: 3, uniform: true)
            let knots = random.splineKnots(inputs: inputs, intervals: 3, order: 3, uniform: true)
            func buffer(_ count: Int) -> DeviceBuffer { backend.makeBuffer([Float](repeating: 0.5, count: max(count, 1))) }
            let operands = SplineOperands(
                x: buffer(batch * inputs), knots: backend.makeBuffer(knots.isEmpty ? [0] : knots), coefficients: buffer(inputs * outputs * 6),
                scaleBase: buffer(inputs * outputs), scaleSpline: buffer(inputs * outputs))
            let y = backend.poisoned(max(batch * outputs, 1)), dx = backend.poisoned(max(batch * inputs, 1))
            let dc = backend.poisoned(max(inputs * outputs * 6, 1)), dsb = backend.poisoned(max(inputs * outputs, 1)), dss = backend.poisoned(max(inputs * outputs, 1))
            backend.splineForward(operands, shape: shape, into: y)
            backend.splineBackward(operands, shape: shape, outputGradient: buffer(batch * outputs), into: SplineGradients(input: dx, coefficients: dc, scaleBase: dsb, scaleSpline: dss))
            let label = "batch \(batch), \(inputs) → \(outputs) on \(backendCase)"
            #expect(try backend.download(y, count: batch * outputs).allSatisfy { $0 == 0 }, "y: \(label)")
            #expect(try backend.download(dx, count: batch * inputs).allSatisfy { $0 == 0 }, "dx: \(label)")
            #expect(try backend.download(dc, count: inputs * outputs * 6).allSatisfy { $0 == 0 }, "dc: \(label)")
            #expect(try backend.download(dsb, count: inputs * outputs).allSatisfy { $0 == 0 }, "dScaleBase: \(label)")
            #expect(try backend.download(dss, count: inputs * outputs).allSatisfy { $0 == 0 }, "dScaleSpline: \(label)")
        }
    }
}

import Foundation
import Kiln
import KilnTestSupport
import Testing

@Suite("KAN layers: initialization, grid updates, refinement, training")
struct KANTests {
    /// The layer's outputs in float64 from its own tensors (base and spline parts of every edge).
    static func hostOutputs(_ layer: KANLayer, _ points: [[Double]]) throws -> [[Double]] {
        let rows = try layer.knotRows()
        let c = try layer.coefficients.toArray().map(Double.init)
        let sb = try layer.scaleBase.toArray().map(Double.init), ss = try layer.scaleSpline.toArray().map(Double.init)
        return points.map { point in
            (0..<layer.outputCount).map { j in
                (0..<layer.inputCount).map { i in layer.edgeFunction(input: i, output: j, knots: rows, coefficients: c, scaleBase: sb, scaleSpline: ss)(point[i]) }.reduce(0, +)
            }
        }
    }

    @Test("pykan's initialization: knots, scales, small noisy coefficients", arguments: BackendCase.all)
    func initialization(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var generator = RandomGenerator(seed: 3)
        let layer = KANLayer(inputCount: 4, outputCount: 3, intervals: 5, order: 3, generator: &generator, on: backend)
        #expect(layer.knots.shape == [4, 12] && layer.coefficients.shape == [4, 3, 8])
        let rows = try layer.knotRows()
        for row in rows {
            #expect(abs(row[3] + 1) < 1e-6 && abs(row[8] - 1) < 1e-6, "grid points span [-1, 1]")
            #expect(abs(row[0] - (-1 - 3 * 0.4)) < 1e-6, "extended by k knots of the grid spacing")
        }
        #expect(try layer.scaleSpline.toArray().allSatisfy { abs($0 - 0.5) < 1e-6 }, "scale_sp = 1/√in")
        #expect(try layer.scaleBase.toArray().allSatisfy { abs($0) <= 0.5 + 1e-6 }, "scale_base = U(−1, 1)/√in")
        // The spline part starts as a fit to noise of scale 0.3/G at the grid points: small.
        let values = try Self.hostOutputs(layer, [[0.1, -0.3, 0.5, 0.9]])
        let base = try layer.scaleBase.toArray()
        for j in 0..<3 {
            let silu = [0.1, -0.3, 0.5, 0.9].enumerated().map { i, x in Double(base[i * 3 + j]) * x / (1 + exp(-x)) }.reduce(0, +)
            #expect(abs(values[0][j] - silu) < 0.2)
        }
        // The device forward agrees with the float64 edge functions.
        let device = try layer(Tensor([0.1, -0.3, 0.5, 0.9], shape: [1, 4], on: backend)).toArray()
        #expect(relativeError(device, values[0]) < 1e-5)
    }

    @Test("a grid update from samples keeps the layer's function on those samples", arguments: BackendCase.all)
    func gridUpdate(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var generator = RandomGenerator(seed: 5)
        let layer = KANLayer(inputCount: 2, outputCount: 2, intervals: 8, order: 3, generator: &generator, on: backend)
        // Give the edges some shape first.
        layer.coefficients.assign((0..<(2 * 2 * 11)).map { Float(sin(Double($0))) })
        var random = RandomGenerator(seed: 11)
        let samples = (0..<400).map { _ in [Double(random.floats(1, in: -0.8...0.6)[0]), Double(random.floats(1, in: -0.9...0.9)[0])] }
        let before = try Self.hostOutputs(layer, samples)
        try layer.updateGrid(samples: samples)
        let after = try Self.hostOutputs(layer, samples)
        #expect(!layer.uniform, "percentile grids (grid_eps 0.02) are not uniform")
        let rows = try layer.knotRows()
        #expect(abs(rows[0][3] - samples.map { $0[0] }.min()!) < 1e-2 && abs(rows[0][11] - samples.map { $0[0] }.max()!) < 1e-2)
        let error = relativeError(after.flatMap { $0 }.map(Float.init), before.flatMap { $0 })
        #expect(error < 1e-2, "least-squares residual \(error)")
        // The device path (non-uniform knots) agrees with the float64 functions.
        let device = try layer(Tensor(samples.flatMap { $0.map(Float.init) }, shape: [400, 2], on: backend)).toArray()
        #expect(relativeError(device, after.flatMap { $0 }) < 1e-5)
    }

    @Test("refining G → 2G on the same range reproduces the coarse function to 1e-5", arguments: BackendCase.all)
    func refinement(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var generator = RandomGenerator(seed: 7)
        let coarse = KANLayer(inputCount: 3, outputCount: 2, intervals: 5, order: 3, generator: &generator, on: backend)
        coarse.coefficients.assign((0..<(3 * 2 * 8)).map { Float(cos(0.7 * Double($0))) })
        let fine = try coarse.refined(intervals: 10)
        #expect(fine.intervals == 10 && fine.uniform)
        var random = RandomGenerator(seed: 13)
        let points = (0..<500).map { _ in random.floats(3, in: -0.999...0.999).map(Double.init) }
        let expected = try Self.hostOutputs(coarse, points).flatMap { $0 }
        let actual = try Self.hostOutputs(fine, points).flatMap { $0 }
        #expect(maximumAbsoluteError(actual.map(Float.init), expected) < 1e-5)
        let device = try fine(Tensor(points.flatMap { $0.map(Float.init) }, shape: [500, 3], on: backend)).toArray()
        #expect(maximumAbsoluteError(device, expected) < 1e-5)
    }

    @Test("a KAN fits a formula with L-BFGS and a grid schedule; its checkpoint reloads with non-uniform knots")
    func fitting() throws {
        var configuration = TrainingConfiguration()
        configuration.task = "fit:x1^2 + sin(pi*x2)"
        configuration.model = .kan
        configuration.architecture = [2, 1]
        configuration.optimizer = .lbfgs
        configuration.learningRate = 1
        configuration.batchSize = TrainingConfiguration.wholeTrainingSet
        configuration.gridSchedule = [3, 6]
        configuration.steps = 20
        configuration.evalEvery = 20
        #expect(try Trainer(configuration: configuration, backend: CPUBackend()).batchSize == 1000, "batch size 0 is the whole training set")
        let directory = temporaryFolder("kan")
        let summary = try TrainingRun.run(configuration: configuration, backend: CPUBackend(), directory: directory)
        #expect(summary.steps == 40)
        #expect(summary.gridRootMeanSquaredErrors.map(\.grid) == [3, 6])
        #expect(summary.gridRootMeanSquaredErrors[1].rmse < summary.gridRootMeanSquaredErrors[0].rmse)
        #expect(summary.testRootMeanSquaredError! < 0.05)
        let (file, _, model) = try Checkpoint.read(directory.appendingPathComponent(TrainingRun.checkpointFile))
        guard case let .kan(sizes) = model else {
            Issue.record("the checkpoint holds a \(model.kind) model, not a KAN")
            return
        }
        #expect(sizes.gridIntervals == 6)
        let rebuilt = try ModelFactory.make(model, on: CPUBackend()) as! KANModel
        try rebuilt.load(Dictionary(file.tensors.map { ($0.name, (shape: $0.shape, values: $0.values)) }, uniquingKeysWith: { a, _ in a }))
        let task = try FunctionFittingTask.make(formula: "x1^2 + sin(pi*x2)", range: -1...1, seed: 0)
        let predictions = try Trainer.predict(model: rebuilt, task.testSet, on: CPUBackend())
        let rmse = sqrt(zip(predictions, task.testSet.targets!).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / 1000)
        #expect(abs(rmse - summary.testRootMeanSquaredError!) < 1e-6, "the reloaded model predicts as the trained one")
    }
}

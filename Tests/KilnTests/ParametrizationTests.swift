import Foundation
import Kiln
import KilnTestSupport
import Synchronization
import Testing

@Suite("μP: parametrization rules, SP ≡ μP at base width, coordinate check")
struct ParametrizationTests {
    static func mlp(width: Int, parametrization: Parametrization, seed: UInt64 = 1, on backend: any Backend) -> MLP {
        var generator = RandomGenerator(seed: seed)
        return MLP(inputCount: 32, width: width, depth: 3, outputCount: 10, parametrization: parametrization, generator: &generator, on: backend)
    }

    @Test("roles, init scales, the readout multiplier and per-group learning rates of an MLP")
    func rules() throws {
        let backend = CPUBackend()
        let parametrization = Parametrization(kind: .mup, baseWidth: 64)
        let model = Self.mlp(width: 256, parametrization: parametrization, on: backend)
        let roles = Dictionary(uniqueKeysWithValues: model.parameterRoles.map { ($0.name, $0.role) })
        #expect(roles == [
            "layers.0.weight": .input, "layers.0.bias": .bias, "layers.2.weight": .hidden, "layers.2.bias": .bias,
            "layers.4.weight": .hidden, "layers.4.bias": .bias, "layers.6.weight": .output, "layers.6.bias": .outputBias,
        ])
        #expect(model.readoutMultiplier == 0.25)
        // Init variance 1/fan_in; a zero readout.
        let input = try model.linearLayers[0].weight.toArray(), hidden = try model.linearLayers[1].weight.toArray()
        func variance(_ values: [Float]) -> Double { values.map { Double($0) * Double($0) }.reduce(0, +) / Double(values.count) }
        #expect(abs(variance(input) * 32 - 1) < 0.1)
        #expect(abs(variance(hidden) * 256 - 1) < 0.05)
        #expect(try model.linearLayers[3].weight.toArray().allSatisfy { $0 == 0 })
        #expect(try model.linearLayers[3].bias!.toArray().allSatisfy { $0 == 0 })

        let m: Float = 4
        func scales(_ optimizer: OptimizerKind) -> [ParameterRole: (Float, Float, Float)] {
            Dictionary(uniqueKeysWithValues: parametrization.parameterGroups(model.parameterRoles, width: 256, optimizer: optimizer).map {
                (ParameterRole(rawValue: $0.name)!, ($0.learningRateScale, $0.weightDecayScale, $0.epsilonScale))
            })
        }
        let adam = scales(.adamw)
        #expect(adam[.input]! == (1, 1, 1 / m) && adam[.bias]! == (1, 1, 1 / m) && adam[.output]! == (1, 1, 1 / m))
        #expect(adam[.hidden]! == (1 / m, m, 1 / m), "AdamW keeps lr·wd of hidden weights as at base width")
        #expect(adam[.outputBias]!.0 == 1)
        #expect(scales(.adam)[.hidden]!.1 == 1, "coupled L2 weight decay is not rescaled")
        let sgd = scales(.sgd)
        #expect(sgd[.input]!.0 == m && sgd[.bias]!.0 == m && sgd[.output]!.0 == m && sgd[.hidden]!.0 == 1 && sgd[.outputBias]!.0 == 1)
        #expect(parametrization.attentionScale(headDimension: 64, baseHeadDimension: 16) == 4.0 / 64, "√d_base / d_head")
        #expect(parametrization.attentionScale(headDimension: 16, baseHeadDimension: 16) == 0.25, "equal to SP at the base width")
        #expect(Parametrization(kind: .sp).attentionScale(headDimension: 64, baseHeadDimension: 16) == 0.125)
        #expect(Parametrization(kind: .sp).widthMultiplier(width: 256) == 1)
    }

    @Test("at width == base width, μP and SP build and train the same model", arguments: BackendCase.all)
    func equalAtBaseWidth(_ backendCase: BackendCase) throws {
        func run(_ kind: Parametrization.Kind) throws -> ([[Float]], [Float]) {
            var configuration = TrainingConfiguration()
            configuration.task = "teacher"
            configuration.width = 64
            configuration.depth = 3
            configuration.optimizer = .adamw
            configuration.parametrization = Parametrization(kind: kind, baseWidth: 64)
            configuration.learningRate = 3e-3
            let trainer = try Trainer(configuration: configuration, backend: try backendCase.makeBackend())
            let initial = try trainer.model.parameters.map { try $0.tensor.toArray() }
            let losses = try (0..<4).map { _ in try trainer.step().item() }
            return (initial, losses)
        }
        let (spWeights, spLosses) = try run(.sp)
        let (mupWeights, mupLosses) = try run(.mup)
        #expect(spWeights == mupWeights)
        #expect(spLosses == mupLosses)
    }

    @Test("a small coordinate check (MLP, Adam, widths 64–512): μP passes, SP fails")
    func coordinateCheck() throws {
        var configuration = CoordinateCheck.Configuration()
        configuration.widths = [64, 128, 256, 512]
        configuration.steps = 4
        configuration.seeds = 2
        configuration.parametrization = Parametrization(kind: .mup)
        let mup = try CoordinateCheck.run(configuration, makeBackend: { CPUBackend() })
        #expect(mup.tensors == ["layers.0", "layers.2", "layers.4", "logits"])
        #expect(mup.maximumAbsoluteSlope <= 0.15, "μP max |slope| \(mup.maximumAbsoluteSlope) at \(String(describing: mup.worst))")
        configuration.parametrization = Parametrization(kind: .sp)
        let sp = try CoordinateCheck.run(configuration, makeBackend: { CPUBackend() })
        #expect(sp.maximumAbsoluteSlope >= 0.5, "SP should blow up with width; max |slope| \(sp.maximumAbsoluteSlope)")
        struct Written: Decodable {
            struct Record: Decodable { var tensor: String, step: Int, slope: Double? }
            var param: String, widths: [Int], records: [Record], max_abs_slope: Double?
        }
        let json = try JSONFile.decode(Written.self, from: JSONFile.encoded(mup), file: "coord-check.json")
        #expect(json.records.count == 4 * 3)
        #expect(json.param == "mup" && json.widths == configuration.widths)
        #expect(json.max_abs_slope == mup.maximumAbsoluteSlope)
    }

    @Test("the least-squares slope and the sweep's learning-rate range")
    func helpers() throws {
        #expect(try LearningRateSweep.parseRange("2^-14:2^-4") == Array(-14 ... -4))
        #expect(try LearningRateSweep.parseRange("-3:-1") == [-3, -2, -1])
        #expect(throws: TaskError.self) { try LearningRateSweep.parseRange("1e-3:1e-2") }
    }

    @Test("a sweep trains each run on a backend from its factory, given the worker's index")
    func sweepBackendFactory() throws {
        var configuration = LearningRateSweep.Configuration()
        configuration.training.task = "teacher"
        configuration.training.depth = 1
        configuration.training.steps = 2
        configuration.training.batchSize = 8
        configuration.widths = [8, 16]
        configuration.log2LearningRates = [-8]
        configuration.seeds = 2
        configuration.jobs = 2
        let workers = Mutex<[Int]>([])
        let result = try LearningRateSweep.run(configuration, makeBackend: { worker in
            workers.withLock { $0.append(worker) }
            return CPUBackend()
        })
        #expect(workers.withLock { $0.count } == 4, "one backend per run")
        #expect(workers.withLock { $0 }.allSatisfy { (0..<2).contains($0) })
        #expect(result.loss.count == 2 && result.loss.allSatisfy { $0[0].isFinite })
    }

    @Test("a sweep resumed from its recorded runs trains only the missing ones and gives the same result")
    func resumedSweep() throws {
        var configuration = LearningRateSweep.Configuration()
        configuration.training.task = "teacher"
        configuration.training.depth = 2
        configuration.training.steps = 6
        configuration.training.batchSize = 16
        configuration.training.parametrization = Parametrization(kind: .mup, baseWidth: 16)
        configuration.widths = [16, 32]
        configuration.log2LearningRates = [-9, -5]
        configuration.seeds = 2
        let recorded = Mutex<[LearningRateSweep.Run]>([])
        let full = try LearningRateSweep.run(configuration, record: { run in recorded.withLock { $0.append(run) } })
        let runs = recorded.withLock { $0 }
        #expect(runs.count == 8)

        // Each record survives its JSON line; a line with other settings is not taken.
        let settings = configuration.runSettings
        for run in runs {
            #expect(LearningRateSweep.Run(jsonLine: try run.jsonLine(settings: settings), settings: settings) == run)
        }
        var otherSettings = configuration
        otherSettings.training.steps = 7
        #expect(LearningRateSweep.Run(jsonLine: try runs[0].jsonLine(settings: settings), settings: otherSettings.runSettings) == nil)
        // A diverged run is written with a null loss and reads back as infinite.
        let diverged = LearningRateSweep.Run(width: 16, log2LearningRate: -5, seed: 0, loss: .infinity)
        let line = try diverged.jsonLine(settings: settings)
        #expect(String(decoding: line, as: UTF8.self).contains("\"loss\":null") && line.last == 0x0A)
        #expect(LearningRateSweep.Run(jsonLine: line, settings: settings) == diverged)

        // Resume with three runs already done: five are trained, and the result is the same.
        let retrained = Mutex(0)
        let resumed = try LearningRateSweep.run(configuration, finished: Array(runs.prefix(3)), record: { _ in retrained.withLock { $0 += 1 } })
        #expect(retrained.withLock { $0 } == 5)
        #expect(resumed.loss == full.loss)
        #expect(resumed.bestLog2LearningRate == full.bestLog2LearningRate)

        // Every run recorded: nothing is trained; a recorded loss is what the result uses.
        var edited = runs
        edited[0].loss = 0.125
        let none = Mutex(0)
        let reread = try LearningRateSweep.run(configuration, finished: edited, record: { _ in none.withLock { $0 += 1 } })
        #expect(none.withLock { $0 } == 0)
        let row = configuration.widths.firstIndex(of: edited[0].width)!, column = configuration.log2LearningRates.firstIndex(of: edited[0].log2LearningRate)!
        let partner = runs.first { $0.width == edited[0].width && $0.log2LearningRate == edited[0].log2LearningRate && $0.seed != edited[0].seed }!
        #expect(abs(reread.loss[row][column] - (0.125 + partner.loss) / 2) < 1e-12)
    }
}

@Suite("L-BFGS and function fitting")
struct LBFGSAndFittingTests {
    @Test("L-BFGS minimizes the Rosenbrock function to its minimum", arguments: BackendCase.all)
    func rosenbrock(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        let x = Tensor.parameter([-1.2, 1], shape: [2], on: backend)
        let optimizer = LBFGS(parameters: [x], settings: .pykan)
        for _ in 0..<5 {
            _ = try optimizer.step {
                // (1 − a)² + 100 (b − a²)²
                let a = x.sliced(axis: 0, 0..<1), b = x.sliced(axis: 0, 1..<2)
                let loss = ((1 - a).square() + 100 * (b - a.square()).square()).sum()
                loss.backward()
                return Double(try loss.item())
            }
        }
        let solution = try x.toArray()
        #expect(abs(solution[0] - 1) < 1e-3 && abs(solution[1] - 1) < 1e-3, "ended at \(solution)")
    }

    @Test("L-BFGS solves a least-squares problem to float32 precision")
    func leastSquares() throws {
        let backend = CPUBackend()
        var random = RandomGenerator.withFreshSeed()
        let a = Tensor(random.floats(40 * 6), shape: [40, 6], on: backend)
        let truth = random.floats(6)
        let b = matmul(a, Tensor(truth, shape: [6, 1], on: backend))
        let x = Tensor.parameter([Float](repeating: 0, count: 6), shape: [6, 1], on: backend)
        let optimizer = LBFGS(parameters: [x])
        _ = try optimizer.step {
            let loss = meanSquaredError(matmul(a, x), b)
            loss.backward()
            return Double(try loss.item())
        }
        #expect(relativeError(try x.toArray(), truth.map(Double.init)) < 1e-4)
    }

    @Test("the cubic interpolation step of the line search")
    func cubicInterpolation() {
        // f(t) = (t − 2)²: from (0, 4, −4) and (3, 1, 2) the minimizer is 2.
        #expect(abs(LBFGS.cubicInterpolate(0, 4, -4, 3, 1, 2) - 2) < 1e-12)
        // Bounds clamp it.
        #expect(LBFGS.cubicInterpolate(0, 4, -4, 3, 1, 2, bounds: (2.5, 3)) == 2.5)
    }

    @Test("formulas: precedence, functions, pi, errors")
    func expressions() throws {
        let f = try Expression.parse("exp(sin(pi*x1)+x2^2)")
        #expect(f.variableCount == 2)
        #expect(abs(f.evaluate([0.3, -0.5]) - Foundation.exp(Foundation.sin(Double.pi * 0.3) + 0.25)) < 1e-12)
        #expect(try Expression.parse("-x1^2").evaluate([3]) == -9)
        #expect(try Expression.parse("2^3^2").evaluate([]) == 512)
        #expect(try Expression.parse("x1 - x2 - x3").evaluate([1, 2, 3]) == -4)
        #expect(try Expression.parse("sqrt(abs(x1))/2 + tanh(0) + log(exp(1.5e0))").evaluate([-4]) == 2.5)
        for bad in ["x1 +", "foo(x1)", "sin x1", "(x1", "x0", "1..2"] {
            #expect(throws: TaskError.self, "\(bad) should not parse") { try Expression.parse(bad) }
        }
        let task = try FunctionFittingTask.make(formula: "x1*x2", range: -2...2, seed: 4)
        #expect(task.trainCount == 1000 && task.testSet.rows == 1000 && task.inputCount == 2 && task.targetKind == .values(1))
        #expect(task.train.inputs.allSatisfy { $0 >= -2 && $0 <= 2 })
        #expect(task.train.targets![0] == task.train.inputs[0] * task.train.inputs[1])
    }
}

import Foundation
import KilnPlot

/// The coordinate check of Tensor Programs V (§D; microsoft/mup's `get_coord_data`): train models of
/// growing width for a few steps on one fixed batch and watch the mean absolute value of every layer's
/// output. Under a correct μP those sizes stay flat as width grows; under SP some grow with width.
public struct CoordinateCheck {
    public struct Configuration: Sendable {
        public var model = ModelKind.mlp
        public var parametrization = Parametrization(kind: .mup)
        public var widths = [64, 128, 256, 512, 1024]
        public var steps = 5
        public var seeds = 3
        public var optimizer = OptimizerKind.adam
        public var learningRate: Float = 1e-2
        public var batchSize = 64
        /// Hidden layers of the MLP.
        public var depth = 3
        /// The lm model's token mixer, blocks and heads.
        public var mixer = MixerKind.delta
        public var layers = 2
        public var heads = 4
        /// Features per head when heads are added as width grows (nil: `heads` heads at every width).
        public var headDimension: Int?
        public init() {}
    }

    /// One tensor's slope at one step.
    public struct Slope: Sendable, Equatable {
        public var tensor: String
        public var step: Int
        /// Least-squares slope of log2(mean |x|) against log2(width).
        public var slope: Double
    }

    public struct Result: Sendable {
        public var configuration: Configuration
        /// Tensor names in forward order.
        public var tensors: [String]
        /// `meanAbsolute[tensor][step - 1][width index]`, averaged over seeds.
        public var meanAbsolute: [[[Double]]]
        /// Slopes for steps ≥ 2 (at step 1 a zero-initialized readout gives exact zeros).
        public var slopes: [Slope]

        /// The largest |slope|; NaN when any slope is NaN (a size that was zero or infinite at some width),
        /// so that such a check never passes.
        public var maximumAbsoluteSlope: Double {
            if slopes.contains(where: { $0.slope.isNaN }) { return .nan }
            return slopes.map { Swift.abs($0.slope) }.max() ?? .nan
        }
        /// The slope of largest magnitude.
        public var worst: Slope? { slopes.max { Swift.abs($0.slope) < Swift.abs($1.slope) } }
    }

    /// The statistic recorded per tensor: mean |x| over all its elements.
    static func meanAbsolute(_ tensor: Tensor) throws(BackendError) -> Double {
        Double(try noGrad { tensor.abs().mean() }.item())
    }

    /// Runs the check: every width, every seed, `steps` training steps on one batch.
    ///
    /// - Parameters:
    ///   - makeBackend: a backend for each run.
    ///   - progress: called after each (width, seed) run with a short description.
    public static func run(_ configuration: Configuration, makeBackend: () throws -> any Backend, progress: (String) -> Void = { _ in }) throws -> Result {
        guard configuration.model == .mlp || configuration.model == .lm else {
            throw TaskError("coord-check supports --model mlp or lm, got '\(configuration.model.rawValue)'")
        }
        guard Set(configuration.widths).count >= 2 else { throw TaskError("--widths needs at least two different widths to fit a slope") }
        guard Set(configuration.widths).count == configuration.widths.count else { throw TaskError("--widths lists a width twice; give each width once") }
        guard configuration.steps >= 2 && configuration.steps <= maximumSteps else {
            throw TaskError("--steps must be 2 to \(maximumSteps) (slopes are taken from step 2 on, and the plot has a panel per step), got \(configuration.steps)")
        }
        guard configuration.seeds >= 1 else { throw TaskError("--seeds must be at least 1, got \(configuration.seeds)") }
        let runCount = configuration.widths.count.multipliedReportingOverflow(by: configuration.seeds)
        guard !runCount.overflow, runCount.partialValue <= LearningRateSweep.maximumRuns else {
            throw TaskError("the check has \(runCount.overflow ? "more than \(Int.max)" : "\(runCount.partialValue)") runs (widths × seeds), more than "
                            + "\(LearningRateSweep.maximumRuns); give fewer --seeds (3 already average out most of the noise)")
        }
        guard configuration.batchSize >= 1 else { throw TaskError("--batch-size must be at least 1, got \(configuration.batchSize)") }
        // Every width's run is checked before the first one trains.
        for width in configuration.widths { try trainingConfiguration(configuration, width: width, seed: 0).validate() }
        // The backend made for the memory check trains the first run: still one backend per run.
        let first = try makeBackend()
        try MemoryEstimate.check(trainingConfiguration(configuration, width: configuration.widths.max()!, seed: 0), on: first.device, checkpoints: false)
        var spare: (any Backend)? = first
        var tensors: [String] = []
        // sums[tensor][step][width]
        var sums: [String: [[Double]]] = [:]
        for (widthIndex, width) in configuration.widths.enumerated() {
            for seed in 0..<configuration.seeds {
                let backend = try spare ?? makeBackend()
                spare = nil
                let records = try recordRun(configuration, width: width, seed: UInt64(seed), backend: backend)
                for (step, stepRecords) in records.enumerated() {
                    for (name, value) in stepRecords {
                        if sums[name] == nil {
                            tensors.append(name)
                            sums[name] = Array(repeating: Array(repeating: 0, count: configuration.widths.count), count: configuration.steps)
                        }
                        sums[name]![step][widthIndex] += value / Double(configuration.seeds)
                    }
                }
                progress("width \(width) seed \(seed)")
            }
        }
        let logWidths = configuration.widths.map { log2(Double($0)) }
        var slopes: [Slope] = []
        for name in tensors {
            for step in 2...configuration.steps {
                let values = sums[name]![step - 1]
                let logValues = values.map { $0 > 0 ? log2($0) : -Double.infinity }
                slopes.append(Slope(tensor: name, step: step, slope: leastSquaresSlope(x: logWidths, y: logValues)))
            }
        }
        return Result(configuration: configuration, tensors: tensors, meanAbsolute: tensors.map { sums[$0]! }, slopes: slopes)
    }

    /// The slope of the least-squares line through (x, y); infinite values give a NaN slope.
    static func leastSquaresSlope(x: [Double], y: [Double]) -> Double {
        guard y.allSatisfy(\.isFinite) else { return .nan }
        let meanX = x.reduce(0, +) / Double(x.count), meanY = y.reduce(0, +) / Double(y.count)
        var covariance = 0.0, variance = 0.0
        for index in x.indices {
            covariance += (x[index] - meanX) * (y[index] - meanY)
            variance += (x[index] - meanX) * (x[index] - meanX)
        }
        return covariance / variance
    }

    /// The training run behind one width and seed: the teacher task for an MLP, mqar for an lm.
    static func trainingConfiguration(_ configuration: Configuration, width: Int, seed: UInt64) -> TrainingConfiguration {
        var training = TrainingConfiguration()
        training.task = configuration.model == .lm ? "mqar" : "teacher"
        training.model = configuration.model
        training.width = width
        training.depth = configuration.depth
        training.mixer = configuration.mixer
        training.layers = configuration.layers
        training.heads = configuration.heads
        training.headDimension = configuration.headDimension
        training.optimizer = configuration.optimizer
        training.learningRate = configuration.learningRate
        training.batchSize = configuration.batchSize
        training.parametrization = configuration.parametrization
        training.seed = seed
        training.steps = configuration.steps
        return training
    }

    /// The most steps a check records.
    public static let maximumSteps = 100

    /// One run: per step, the mean |x| of each recorded tensor, before that step's update.
    static func recordRun(_ configuration: Configuration, width: Int, seed: UInt64, backend: any Backend) throws -> [[(String, Double)]] {
        let training = trainingConfiguration(configuration, width: width, seed: seed)
        let trainer = try Trainer(configuration: training, backend: backend, checkpoints: false)
        // One fixed batch for every step (the check isolates the parametrization from data noise).
        let batch = trainer.task.trainBatch(step: 0, batchSize: configuration.batchSize)
        var result: [[(String, Double)]] = []
        for step in 1...configuration.steps {
            let recorder = ActivationRecorder()
            let outputs = trainer.recordedOutputs(for: batch, recorder: recorder)
            var stepRecords: [(String, Double)] = []
            for (name, tensor) in recorder.records { stepRecords.append((name, try meanAbsolute(tensor))) }
            result.append(stepRecords)
            let loss = trainer.loss(outputs, batch)
            loss.backward()
            trainer.optimizer?.step(learningRate: configuration.learningRate)
            trainer.model.zeroGradients()
            _ = step
        }
        return result
    }
}

extension CoordinateCheck.Result {
    /// One panel per step: mean |x| against width on log–log axes, one line per tensor.
    public var plot: PlotGrid {
        let panels = (1...configuration.steps).map { step in
            LinePlot(
                title: "step \(step)", xLabel: "width", yLabel: "mean |x|", logX: true, logY: true,
                series: tensors.indices.map { index in
                    LinePlot.Series(name: tensors[index], points: configuration.widths.indices.map { (Double(configuration.widths[$0]), meanAbsolute[index][step - 1][$0]) })
                })
        }
        return PlotGrid(title: "Coordinate check: \(configuration.model), \(configuration.parametrization.kind.rawValue), \(configuration.optimizer.rawValue), lr \(configuration.learningRate)", panels: panels, columns: min(configuration.steps, 3))
    }
}

extension CoordinateCheck.Result: Encodable {
    enum CodingKeys: String, CodingKey {
        case param, widths, records, maximumAbsoluteSlope = "max_abs_slope"
    }

    /// `{"param", "widths", "records": [{"tensor", "step", "slope"}], "max_abs_slope"}`; a non-finite slope is `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(configuration.parametrization.kind.rawValue, forKey: .param)
        try container.encode(configuration.widths, forKey: .widths)
        try container.encode(slopes, forKey: .records)
        try container.encodeNumber(maximumAbsoluteSlope, forKey: .maximumAbsoluteSlope)
    }
}

extension CoordinateCheck.Slope: Encodable {
    enum CodingKeys: String, CodingKey {
        case tensor, step, slope
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tensor, forKey: .tensor)
        try container.encode(step, forKey: .step)
        try container.encodeNumber(slope, forKey: .slope)
    }
}

import Foundation

/// The models `kiln train --model` builds.
public enum ModelKind: String, Codable, CaseIterable, Sendable {
    /// A multilayer perceptron (``MLP``).
    case mlp
    /// A Kolmogorov–Arnold network (``KANModel``).
    case kan
    /// A linear-attention language model (``LanguageModel``).
    case lm
}

/// How `--task files` reads its targets (`--target`).
public enum TargetSetting: String, Codable, CaseIterable, Sendable {
    /// Integer labels in one column are classes; anything else is values.
    case auto
    case classes
    case values
}

/// Everything that defines a training run; stored in the checkpoint so that `--resume` and `kiln predict`
/// rebuild the same run and model.
public struct TrainingConfiguration: Codable, Equatable, Sendable {
    // Task
    public var task = "digits"
    public var trainX: String?
    public var trainY: String?
    public var testX: String?
    public var testY: String?
    /// For file data: `auto` (integer labels are classes), `classes` or `values`.
    public var targetKind = TargetSetting.auto
    /// For `fit:` tasks: the input range, `low,high` (default `-1,1`).
    public var range = "-1,1"
    /// For `mqar`: key–value pairs per sequence, and the vocabulary size.
    public var pairs = 16
    public var vocabulary = 256
    /// Sequence length of `mqar` and `text:` tasks.
    public var sequenceLength = 128

    // Model
    public var model = ModelKind.mlp
    public var width = 128
    public var depth = 2
    public var activation = ActivationKind.relu
    public var dropout: Float = 0
    /// SP or μP, the width where they coincide, and whether the readout starts at zero.
    public var parametrization = Parametrization()
    /// `lm` models: the token mixer, the number of blocks and attention heads.
    public var mixer = MixerKind.delta
    public var layers = 2
    public var heads = 4
    /// `lm`: features per head (`--head-dim`). When set, the number of heads is `width / headDimension`, so
    /// heads are added as width grows and each head keeps its size; nil: `heads` heads of `width / heads`.
    public var headDimension: Int?
    /// The lm's heads at this width.
    public var resolvedHeads: Int { headDimension.map { width / max($0, 1) } ?? heads }
    /// KAN layer widths (`--arch 2,5,1`); nil: input, width, output.
    public var architecture: [Int]?
    /// KAN grid sizes trained in turn, `steps` each, each initialized from the previous (`--grid 3,10,20`).
    public var gridSchedule = [5]
    /// KAN spline order k.
    public var splineOrder = 3
    /// KAN grid updates mix uniform (1) and percentile (0) grids by this (pykan's grid_eps).
    public var gridEpsilon = 0.02
    /// Update KAN grids from the training inputs during the first this many steps of each grid size
    /// (0: never), `gridUpdates` times (pykan: 50 and 10).
    public var gridUpdateUntil = 50
    public var gridUpdates = 10

    // Optimization
    public var optimizer = OptimizerKind.adam
    public var learningRate: Float = 1e-3
    public var schedule = LearningRateSchedule.constant
    public var warmupSteps = 0
    /// nil: the optimizer's default (0, or 0.01 for AdamW).
    public var weightDecay: Float?
    public var momentum: Float = 0.9
    public var nesterov = false
    public var gradientClip: Float?
    /// Examples per step; ``wholeTrainingSet`` (0) trains on the whole training set each step.
    public var batchSize = 64
    public var steps = 1000

    // Logging and evaluation
    public var evalEvery = 100
    public var logEvery = 10
    public var seed: UInt64 = 0

    public init() {}

    /// The `batchSize` that means every training example in every step (full-batch training, as pykan
    /// runs L-BFGS).
    public static let wholeTrainingSet = 0

    /// The most hidden layers of an MLP: the autograd graph of a step is freed recursively, and a net of
    /// 10,000 layers overflowed the stack doing so.
    public static let maximumDepth = 1000
    /// The most blocks of an lm (each block is about 30 operations deep in the graph, see ``maximumDepth``).
    public static let maximumLayers = 100
    /// The largest KAN grid: each grid fit solves dense (G + k)² normal equations per input, so the time
    /// grows as G³ (pykan's own examples stop at G = 1000).
    public static let maximumGrid = 1000
    /// The largest batch: training accuracy is counted on the device in float32, exact up to 2²⁴.
    public static let maximumBatchSize = 1 << 24
    /// The most steps a run may have (a billion; also keeps step arithmetic far from overflow).
    public static let maximumSteps = 1_000_000_000
    /// The largest `mqar` vocabulary (every sequence draws a permutation of half of it).
    public static let maximumVocabulary = 1_000_000
    /// The longest sequence (2²⁰ tokens; sizes stay far from overflowing when multiplied by batch and width).
    public static let maximumSequenceLength = 1 << 20

    /// Whether the task feeds token sequences (`mqar`, `text:FILE`), which only the lm reads.
    public var isTokenTask: Bool { task == "mqar" || task.hasPrefix("text:") }

    /// Checks ranges, returning the first problem as a one-line message.
    public func validate() throws(TaskError) {
        if width < 1 { throw TaskError("--width must be at least 1, got \(width)") }
        if depth < 0 || depth > Self.maximumDepth { throw TaskError("--depth must be 0 to \(Self.maximumDepth), got \(depth)") }
        if batchSize < 0 || batchSize > Self.maximumBatchSize {
            throw TaskError("--batch-size must be 1 to \(Self.maximumBatchSize) (or 0 for the whole training set), got \(batchSize)")
        }
        if steps < 1 || steps > Self.maximumSteps { throw TaskError("--steps must be 1 to \(Self.maximumSteps), got \(steps)") }
        if evalEvery < 1 { throw TaskError("--eval-every must be at least 1, got \(evalEvery)") }
        if logEvery < 1 { throw TaskError("--log-every must be at least 1, got \(logEvery)") }
        if !(learningRate > 0) || !learningRate.isFinite { throw TaskError("--lr must be a positive number, got \(learningRate)") }
        if let weightDecay, !(weightDecay >= 0) || !weightDecay.isFinite { throw TaskError("--weight-decay must be a finite number, 0 or more, got \(weightDecay)") }
        if !(dropout >= 0 && dropout < 1) { throw TaskError("--dropout must be in [0, 1), got \(dropout)") }
        if let gradientClip, !(gradientClip > 0) || !gradientClip.isFinite { throw TaskError("--clip must be a positive finite number, got \(gradientClip)") }
        if warmupSteps < 0 { throw TaskError("--warmup must be 0 or more, got \(warmupSteps)") }
        if !(momentum >= 0 && momentum < 1) { throw TaskError("--momentum must be in [0, 1), got \(momentum)") }
        if gridSchedule.isEmpty || gridSchedule.contains(where: { $0 < 1 || $0 > Self.maximumGrid }) {
            throw TaskError("--grid must be grid sizes from 1 to \(Self.maximumGrid), e.g. 3,10,20, got \(gridSchedule.map(String.init).joined(separator: ","))")
        }
        if !(1...5).contains(splineOrder) { throw TaskError("--spline-order must be 1 to 5, got \(splineOrder)") }
        if !(gridEpsilon >= 0 && gridEpsilon <= 1) { throw TaskError("--grid-eps must be in [0, 1], got \(gridEpsilon)") }
        if gridUpdateUntil < 0 { throw TaskError("--grid-update-until must be 0 or more, got \(gridUpdateUntil)") }
        if gridUpdates < 1 { throw TaskError("--grid-updates must be at least 1, got \(gridUpdates)") }
        if let architecture, architecture.count < 2 || architecture.count > Self.maximumDepth + 1 || architecture.contains(where: { $0 < 1 }) {
            throw TaskError("--arch must list 2 to \(Self.maximumDepth + 1) positive widths, e.g. 2,5,1")
        }
        if model == .lm {
            if layers < 1 || layers > Self.maximumLayers { throw TaskError("--layers must be 1 to \(Self.maximumLayers), got \(layers)") }
            if let headDimension {
                if headDimension < 1 || width % headDimension != 0 { throw TaskError("--width \(width) must be a positive multiple of --head-dim \(headDimension)") }
            } else if heads < 1 || width % heads != 0 {
                throw TaskError("--width \(width) must be a positive multiple of --heads \(heads)")
            }
        }
        if pairs < 1 || pairs > Self.maximumSequenceLength { throw TaskError("--pairs must be 1 to \(Self.maximumSequenceLength), got \(pairs)") }
        if sequenceLength < 2 || sequenceLength > Self.maximumSequenceLength {
            throw TaskError("--seq-len must be 2 to \(Self.maximumSequenceLength), got \(sequenceLength)")
        }
        if vocabulary < 2 || vocabulary > Self.maximumVocabulary { throw TaskError("--vocab must be 2 to \(Self.maximumVocabulary), got \(vocabulary)") }
        if parametrization.baseWidth < 1 { throw TaskError("--base-width must be at least 1, got \(parametrization.baseWidth)") }
        try TaskCatalog.checkName(task)
        if model == .lm && !isTokenTask {
            throw TaskError("model lm reads token sequences; task \(task.prefix(80)) has real-valued inputs: use --task mqar or text:FILE, or --model mlp or kan")
        }
        if model != .lm && isTokenTask {
            throw TaskError("task \(task.prefix(80)) gives token sequences, which model \(model.rawValue) cannot read: use --model lm")
        }
        if task.hasPrefix("fit:") { _ = try inputRange() }
    }

    /// Grid sizes of the schedule (1 for models without grids).
    public var stageCount: Int { model == .kan ? gridSchedule.count : 1 }

    /// The parsed `range`.
    public func inputRange() throws(TaskError) -> ClosedRange<Double> {
        let parts = range.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        // The inputs are float32 on the device: the range and its width must be finite there.
        guard parts.count == 2, let low = parts[0], let high = parts[1], low < high, Float(low).isFinite, Float(high).isFinite, Float(high - low).isFinite else {
            throw TaskError("--range must be two numbers low,high with low < high, each within float32's ±3.4e38, got '\(range.prefix(80))'")
        }
        return low...high
    }

    /// The optimizer settings this configuration asks for.
    public var optimizerSettings: OptimizerSettings {
        var settings = OptimizerSettings(kind: optimizer)
        if let weightDecay { settings.weightDecay = weightDecay }
        if optimizer == .sgd {
            settings.momentum = momentum
            settings.nesterov = nesterov
        }
        settings.maximumGradientNorm = gradientClip
        return settings
    }
}


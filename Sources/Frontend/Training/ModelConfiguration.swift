/// What `kiln predict` needs to rebuild a model: its kind and that kind's sizes. Stored in every
/// checkpoint (``Checkpoint/modelKey``) as one flat JSON object with a `kind` key (see ``CodingKeys``).
public enum ModelConfiguration: Equatable, Sendable {
    case mlp(MLPConfiguration)
    case kan(KANConfiguration)
    case lm(LanguageModelConfiguration)

    public var kind: ModelKind {
        switch self {
        case .mlp: .mlp
        case .kan: .kan
        case .lm: .lm
        }
    }

    /// Features per input row (for `lm`, the training sequence length).
    public var inputCount: Int {
        switch self {
        case let .mlp(mlp): mlp.inputCount
        case let .kan(kan): kan.architecture[0]
        case let .lm(lm): lm.sequenceLength
        }
    }

    /// Classification (`classes`) or regression (`values`), for reading outputs.
    public var targetKind: TargetKind {
        switch self {
        case let .mlp(mlp): mlp.targetKind
        case let .kan(kan): kan.targetKind
        case let .lm(lm): .classes(lm.vocabulary)
        }
    }

    /// Outputs per row (per token for `lm`).
    public var outputCount: Int { targetKind.outputCount }

    /// The seed the initial weights are drawn from.
    public var seed: UInt64 {
        switch self {
        case let .mlp(mlp): mlp.seed
        case let .kan(kan): kan.seed
        case let .lm(lm): lm.seed
        }
    }
}

/// An ``MLP``'s sizes.
public struct MLPConfiguration: Equatable, Sendable {
    public var inputCount: Int
    public var width: Int
    public var depth: Int
    public var activation: ActivationKind
    public var dropout: Float
    public var parametrization: Parametrization
    /// Classes or values, and how many outputs.
    public var targetKind: TargetKind
    public var seed: UInt64
}

/// A ``KANModel``'s sizes.
public struct KANConfiguration: Equatable, Sendable {
    /// Layer widths from inputs to outputs (at least two).
    public var architecture: [Int]
    /// The current grid size G (it grows along a grid schedule).
    public var gridIntervals: Int
    /// Spline order k.
    public var splineOrder: Int
    /// pykan's grid_eps for grid updates.
    public var gridEpsilon: Double
    /// Classes or values, as many as the last layer's width.
    public var targetKind: TargetKind
    public var seed: UInt64
}

/// A ``LanguageModel``'s sizes.
public struct LanguageModelConfiguration: Equatable, Sendable {
    /// Tokens per training sequence.
    public var sequenceLength: Int
    public var vocabulary: Int
    public var width: Int
    public var mixer: MixerKind
    /// Blocks.
    public var layers: Int
    public var heads: Int
    /// The head dimension at the base width, which μP's 1/d_head attention scale is relative to; set when
    /// heads grow with width (`--head-dim`), nil when their number is fixed (then it is base width / heads).
    public var baseHeadDimension: Int?
    public var parametrization: Parametrization
    /// For text tasks, the characters of the vocabulary in token order.
    public var characters: [String]?
    public var seed: UInt64
}

extension ModelConfiguration {
    /// The model a training configuration asks for on a task, at a grid-schedule stage.
    ///
    /// - Throws: ``TaskError`` when a KAN architecture does not fit the task, or an lm is asked for on a
    ///   task without tokens.
    public init(_ configuration: TrainingConfiguration, task: any TrainingTask, stage: Int) throws {
        let tokens = task.testSet.tokens != nil
        if configuration.model != .lm && tokens {
            throw TaskError("task \(task.name.prefix(80)) gives token sequences, which model \(configuration.model.rawValue) cannot read: use --model lm")
        }
        guard task.inputCount >= 1 else { throw TaskError("task \(task.name.prefix(80)) has no input features; give data with at least one feature column") }
        guard task.targetKind.outputCount >= 1 else { throw TaskError("task \(task.name.prefix(80)) has no targets; give data with at least one target column") }
        switch configuration.model {
        case .mlp:
            self = .mlp(MLPConfiguration(
                inputCount: task.inputCount, width: configuration.width, depth: configuration.depth, activation: configuration.activation,
                dropout: configuration.dropout, parametrization: configuration.parametrization, targetKind: task.targetKind, seed: configuration.seed))
        case .kan:
            let outputs = task.targetKind.outputCount
            let architecture = configuration.architecture ?? [task.inputCount, configuration.width, outputs]
            guard architecture.first == task.inputCount else {
                throw TaskError("--arch starts with \(architecture.first ?? 0) inputs but task \(task.name) has \(task.inputCount)")
            }
            guard architecture.last == outputs else {
                throw TaskError("--arch ends with \(architecture.last ?? 0) outputs but task \(task.name) needs \(outputs)")
            }
            self = .kan(KANConfiguration(
                architecture: architecture, gridIntervals: configuration.gridSchedule[stage], splineOrder: configuration.splineOrder,
                gridEpsilon: configuration.gridEpsilon, targetKind: task.targetKind, seed: configuration.seed))
        case .lm:
            guard case let .classes(vocabulary) = task.targetKind, tokens else {
                throw TaskError("model lm reads token sequences; task \(task.name.prefix(80)) has real-valued inputs: use --task mqar or text:FILE, or --model mlp or kan")
            }
            self = .lm(LanguageModelConfiguration(
                sequenceLength: task.inputCount, vocabulary: vocabulary, width: configuration.width, mixer: configuration.mixer,
                layers: configuration.layers, heads: configuration.resolvedHeads, baseHeadDimension: configuration.headDimension,
                parametrization: configuration.parametrization, characters: (task as? TextTask)?.characters.map(String.init), seed: configuration.seed))
        }
    }
}

extension ModelConfiguration {
    /// Checks every size as strictly as the flags that set it (a checkpoint's metadata is user input too),
    /// so that building the model cannot trap.
    ///
    /// - Throws: ``TaskError`` naming the first value out of range.
    public func validate() throws(TaskError) {
        func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(TaskError) {
            if !condition { throw TaskError(message()) }
        }
        try require(targetKind.outputCount >= 1, "the model has \(targetKind.outputCount) outputs; it needs at least 1")
        switch self {
        case let .mlp(mlp):
            try require(mlp.inputCount >= 1, "the model has \(mlp.inputCount) inputs; it needs at least 1")
            try require(mlp.width >= 1, "--width must be at least 1, got \(mlp.width)")
            try require(mlp.depth >= 0 && mlp.depth <= TrainingConfiguration.maximumDepth, "--depth must be 0 to \(TrainingConfiguration.maximumDepth), got \(mlp.depth)")
            try require(mlp.dropout >= 0 && mlp.dropout < 1, "--dropout must be in [0, 1), got \(mlp.dropout)")
            try require(mlp.parametrization.baseWidth >= 1, "--base-width must be at least 1, got \(mlp.parametrization.baseWidth)")
        case let .kan(kan):
            try require(kan.architecture.count >= 2 && kan.architecture.count <= TrainingConfiguration.maximumDepth + 1 && kan.architecture.allSatisfy { $0 >= 1 },
                        "--arch must list 2 to \(TrainingConfiguration.maximumDepth + 1) positive widths, got \(kan.architecture.prefix(20).map(String.init).joined(separator: ","))")
            try require(kan.architecture.last == targetKind.outputCount, "--arch ends with \(kan.architecture.last ?? 0) outputs but the model has \(targetKind.outputCount)")
            try require(kan.gridIntervals >= 1 && kan.gridIntervals <= TrainingConfiguration.maximumGrid,
                        "--grid must be 1 to \(TrainingConfiguration.maximumGrid), got \(kan.gridIntervals)")
            try require((1...5).contains(kan.splineOrder), "--spline-order must be 1 to 5, got \(kan.splineOrder)")
            try require(kan.gridEpsilon >= 0 && kan.gridEpsilon <= 1, "--grid-eps must be in [0, 1], got \(kan.gridEpsilon)")
        case let .lm(lm):
            try require(lm.sequenceLength >= 1 && lm.sequenceLength <= TrainingConfiguration.maximumSequenceLength,
                        "--seq-len must be 1 to \(TrainingConfiguration.maximumSequenceLength), got \(lm.sequenceLength)")
            try require(lm.vocabulary >= 1 && lm.vocabulary <= TrainingConfiguration.maximumVocabulary,
                        "--vocab must be 1 to \(TrainingConfiguration.maximumVocabulary), got \(lm.vocabulary)")
            try require(lm.width >= 1, "--width must be at least 1, got \(lm.width)")
            try require(lm.layers >= 1 && lm.layers <= TrainingConfiguration.maximumLayers, "--layers must be 1 to \(TrainingConfiguration.maximumLayers), got \(lm.layers)")
            try require(lm.heads >= 1 && lm.width % lm.heads == 0, "--width \(lm.width) must be a positive multiple of --heads \(lm.heads)")
            if let base = lm.baseHeadDimension { try require(base >= 1, "--head-dim must be at least 1, got \(base)") }
            try require(lm.parametrization.baseWidth >= 1, "--base-width must be at least 1, got \(lm.parametrization.baseWidth)")
            if let characters = lm.characters {
                try require(characters.count == lm.vocabulary, "the model has \(lm.vocabulary) tokens but \(characters.count) characters")
                try require(characters.allSatisfy { $0.count == 1 }, "its characters must each be one character")
                try require(Set(characters).count == characters.count, "its characters repeat")
            }
        }
    }
}

// MARK: The checkpoint's JSON

extension ModelConfiguration: Codable {
    /// The keys of the stored object: `kind`, `inputCount`, `outputCount`, `seed` and `targetKind` for
    /// every kind; `width`, `depth`, `activation`, `dropout` and `parametrization` for an MLP; `width`,
    /// `mixer`, `layers`, `heads`, `parametrization` and, where set, `baseHeadDimension` and `characters`
    /// for an lm; `architecture`, `gridIntervals`, `splineOrder` and `gridEpsilon` for a KAN.
    ///
    /// Earlier versions stored one struct for every kind, so they need the MLP's keys in every object: an
    /// lm's object also has `depth`, `activation` and `dropout`, a KAN's those and `width` and
    /// `parametrization`. This kind ignores them; they are written with the training defaults (what a run
    /// that did not set them stored) and not read back.
    enum CodingKeys: String, CodingKey {
        case kind, inputCount, outputCount, seed, targetKind
        case width, depth, activation, dropout, parametrization
        case mixer, layers, heads, baseHeadDimension, characters
        case architecture, gridIntervals, splineOrder, gridEpsilon
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let seed = try container.decode(UInt64.self, forKey: .seed)
        let targetKind = try container.decode(TargetKind.self, forKey: .targetKind)
        switch try container.decode(ModelKind.self, forKey: .kind) {
        case .mlp:
            self = .mlp(MLPConfiguration(
                inputCount: try container.decode(Int.self, forKey: .inputCount), width: try container.decode(Int.self, forKey: .width),
                depth: try container.decode(Int.self, forKey: .depth), activation: try container.decode(ActivationKind.self, forKey: .activation),
                dropout: try container.decode(Float.self, forKey: .dropout), parametrization: try container.decode(Parametrization.self, forKey: .parametrization),
                targetKind: targetKind, seed: seed))
        case .kan:
            var architecture = try container.decodeIfPresent([Int].self, forKey: .architecture)
            if architecture == nil {
                architecture = [try container.decode(Int.self, forKey: .inputCount), try container.decode(Int.self, forKey: .width), targetKind.outputCount]
            }
            guard let architecture, architecture.count >= 2, architecture.last == targetKind.outputCount else {
                throw DecodingError.dataCorruptedError(forKey: .architecture, in: container,
                                                       debugDescription: "a KAN needs at least two widths, the last one its \(targetKind.outputCount) outputs")
            }
            self = .kan(KANConfiguration(
                architecture: architecture, gridIntervals: try container.decodeIfPresent(Int.self, forKey: .gridIntervals) ?? 5,
                splineOrder: try container.decodeIfPresent(Int.self, forKey: .splineOrder) ?? 3,
                gridEpsilon: try container.decodeIfPresent(Double.self, forKey: .gridEpsilon) ?? 0.02, targetKind: targetKind, seed: seed))
        case .lm:
            guard case let .classes(vocabulary) = targetKind else {
                throw DecodingError.dataCorruptedError(forKey: .targetKind, in: container, debugDescription: "an lm predicts classes (tokens)")
            }
            self = .lm(LanguageModelConfiguration(
                sequenceLength: try container.decode(Int.self, forKey: .inputCount), vocabulary: vocabulary, width: try container.decode(Int.self, forKey: .width),
                mixer: try container.decodeIfPresent(MixerKind.self, forKey: .mixer) ?? .delta, layers: try container.decodeIfPresent(Int.self, forKey: .layers) ?? 2,
                heads: try container.decodeIfPresent(Int.self, forKey: .heads) ?? 4,
                baseHeadDimension: try container.decodeIfPresent(Int.self, forKey: .baseHeadDimension),
                parametrization: try container.decode(Parametrization.self, forKey: .parametrization),
                characters: try container.decodeIfPresent([String].self, forKey: .characters), seed: seed))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(inputCount, forKey: .inputCount)
        try container.encode(outputCount, forKey: .outputCount)
        try container.encode(seed, forKey: .seed)
        try container.encode(targetKind, forKey: .targetKind)
        let defaults = TrainingConfiguration()
        switch self {
        case let .mlp(mlp):
            try container.encode(mlp.width, forKey: .width)
            try container.encode(mlp.depth, forKey: .depth)
            try container.encode(mlp.activation, forKey: .activation)
            try container.encode(mlp.dropout, forKey: .dropout)
            try container.encode(mlp.parametrization, forKey: .parametrization)
        case let .kan(kan):
            try container.encode(kan.architecture, forKey: .architecture)
            try container.encode(kan.gridIntervals, forKey: .gridIntervals)
            try container.encode(kan.splineOrder, forKey: .splineOrder)
            try container.encode(kan.gridEpsilon, forKey: .gridEpsilon)
            try container.encode(defaults.width, forKey: .width)
            try container.encode(defaults.parametrization, forKey: .parametrization)
        case let .lm(lm):
            try container.encode(lm.width, forKey: .width)
            try container.encode(lm.mixer, forKey: .mixer)
            try container.encode(lm.layers, forKey: .layers)
            try container.encode(lm.heads, forKey: .heads)
            try container.encodeIfPresent(lm.baseHeadDimension, forKey: .baseHeadDimension)
            try container.encodeIfPresent(lm.characters, forKey: .characters)
            try container.encode(lm.parametrization, forKey: .parametrization)
        }
        if kind != .mlp {
            try container.encode(defaults.depth, forKey: .depth)
            try container.encode(defaults.activation, forKey: .activation)
            try container.encode(defaults.dropout, forKey: .dropout)
        }
    }
}

import Foundation

/// What a task's model predicts.
public enum TargetKind: Codable, Equatable, Sendable {
    /// Class indices `0..<count`; trained with softmax cross-entropy, scored by accuracy.
    case classes(Int)
    /// Real values, `count` per example; trained with mean squared error.
    case values(Int)

    /// The model's number of outputs.
    public var outputCount: Int {
        switch self {
        case let .classes(count), let .values(count): count
        }
    }
}

/// Examples on the host: inputs `[rows, features]` (or token sequences `[rows, length]`) and either class
/// labels or target values.
public struct HostBatch: Sendable {
    /// Real-valued inputs `[rows, features]` (empty for token tasks).
    public var inputs: [Float]
    public var rows: Int
    /// Features per row, or the sequence length for token tasks.
    public var features: Int
    /// Token ids `[rows, length]`, for sequence tasks.
    public var tokens: [Int32]?
    /// Class labels: `[rows]`, or `[rows, length]` (one per token, negative where no prediction is scored).
    public var labels: [Int32]?
    /// Target values (`[rows, outputs]`), for regression.
    public var targets: [Float]?

    public init(inputs: [Float], rows: Int, features: Int, labels: [Int32]? = nil, targets: [Float]? = nil) {
        precondition(inputs.count == rows * features, "HostBatch: \(inputs.count) inputs for \(rows) × \(features)")
        self.inputs = inputs
        self.rows = rows
        self.features = features
        self.labels = labels
        self.targets = targets
    }

    /// Token sequences `[rows, length]` with one label per token.
    public init(tokens: [Int32], rows: Int, length: Int, labels: [Int32]) {
        precondition(tokens.count == rows * length && labels.count == rows * length, "HostBatch: \(tokens.count) tokens, \(labels.count) labels for \(rows) × \(length)")
        self.inputs = []
        self.rows = rows
        self.features = length
        self.tokens = tokens
        self.labels = labels
    }

    /// Rows `range` of this batch.
    public func rows(_ range: Range<Int>) -> HostBatch {
        if let tokens, let labels {
            let span = (range.lowerBound * features)..<(range.upperBound * features)
            return HostBatch(tokens: Array(tokens[span]), rows: range.count, length: features, labels: Array(labels[span]))
        }
        let outputs = (targets?.count ?? 0) / max(rows, 1)
        return HostBatch(
            inputs: Array(inputs[(range.lowerBound * features)..<(range.upperBound * features)]), rows: range.count, features: features,
            labels: labels.map { Array($0[range]) },
            targets: targets.map { Array($0[(range.lowerBound * outputs)..<(range.upperBound * outputs)]) })
    }

    /// The rows at `indices`, in that order.
    public func gathering(_ indices: [Int]) -> HostBatch {
        if let tokens, let labels {
            let gatheredTokens = indices.flatMap { tokens[($0 * features)..<(($0 + 1) * features)] }
            let gatheredLabels = indices.flatMap { labels[($0 * features)..<(($0 + 1) * features)] }
            return HostBatch(tokens: gatheredTokens, rows: indices.count, length: features, labels: gatheredLabels)
        }
        let outputs = (targets?.count ?? 0) / max(rows, 1)
        var gatheredInputs = [Float]()
        gatheredInputs.reserveCapacity(indices.count * features)
        var gatheredTargets = [Float]()
        for index in indices {
            gatheredInputs += inputs[(index * features)..<((index + 1) * features)]
            if let targets { gatheredTargets += targets[(index * outputs)..<((index + 1) * outputs)] }
        }
        return HostBatch(inputs: gatheredInputs, rows: indices.count, features: features,
                         labels: labels.map { labels in indices.map { labels[$0] } }, targets: targets == nil ? nil : gatheredTargets)
    }
}

/// A source of training batches and a fixed test set.
///
/// Batches are a pure function of the step number and the seed, so a run resumed at step N sees exactly
/// the batches an uninterrupted run would.
public protocol TrainingTask: AnyObject {
    /// The name given to `--task`.
    var name: String { get }
    var inputCount: Int { get }
    var targetKind: TargetKind { get }
    /// Training examples, or nil when every batch is freshly generated.
    var trainCount: Int? { get }
    /// The batch for a 0-based step.
    func trainBatch(step: Int, batchSize: Int) -> HostBatch
    /// The held-out examples evaluation runs on.
    var testSet: HostBatch { get }
    /// Remarks on the data for the user (classes that no label names, for example), shown before training.
    var notes: [String] { get }
}

extension TrainingTask {
    /// Generated tasks have nothing to remark on.
    public var notes: [String] { [] }
}

/// A task over fixed arrays: shuffled mini-batches, a new permutation each epoch drawn from the seed.
public final class ArrayTask: TrainingTask {
    public let name: String
    public let train: HostBatch
    public let testSet: HostBatch
    public let targetKind: TargetKind
    public let notes: [String]
    private let seed: UInt64
    private var permutations: [Int: [Int]] = [:]

    public init(name: String, train: HostBatch, test: HostBatch, targetKind: TargetKind, seed: UInt64, notes: [String] = []) {
        precondition(train.features == test.features, "ArrayTask: train has \(train.features) features, test \(test.features)")
        self.name = name
        self.notes = notes
        self.train = train
        self.testSet = test
        self.targetKind = targetKind
        self.seed = seed
    }

    public var inputCount: Int { train.features }
    public var trainCount: Int? { train.rows }

    public func trainBatch(step: Int, batchSize: Int) -> HostBatch {
        let count = train.rows
        // A batch as large as the training set is the whole set (full-batch training, as L-BFGS uses).
        if batchSize >= count { return train }
        let indices = (0..<batchSize).map { offset -> Int in
            let position = step * batchSize + offset
            return permutation(epoch: position / count)[position % count]
        }
        return train.gathering(indices)
    }

    private func permutation(epoch: Int) -> [Int] {
        if let cached = permutations[epoch] { return cached }
        var generator = RandomGenerator(seed: seed, stream: "\(name)/epoch/\(epoch)")
        let order = generator.permutation(train.rows)
        if permutations.count > 4 { permutations.removeAll() }
        permutations[epoch] = order
        return order
    }

    /// Splits examples into train and test parts with a seeded shuffle: `testFraction` of the rows go to
    /// the test set.
    public static func split(_ all: HostBatch, testFraction: Double, seed: UInt64, stream: String) -> (train: HostBatch, test: HostBatch) {
        var generator = RandomGenerator(seed: seed, stream: stream)
        let order = generator.permutation(all.rows)
        let testCount = Int((Double(all.rows) * testFraction).rounded())
        return (all.gathering(Array(order[testCount...]).sorted()), all.gathering(Array(order[..<testCount]).sorted()))
    }
}

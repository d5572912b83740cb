import Foundation
import KilnKernels

/// A task name, data file or value that cannot be used, with what to do instead.
public struct TaskError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Builds the task a `--task` name refers to.
public enum TaskCatalog {
    /// The names `--task` accepts (in help texts).
    public static let names = ["digits", "teacher", "modadd:P", "fit:EXPR", "mqar", "text:FILE", "files (with --train-x/--train-y)"]

    /// Refuses a name that is none of ``names`` (checked before the model is matched to the task, so that
    /// `mqar:3` is an unknown task rather than one with real-valued inputs).
    public static func checkName(_ name: String) throws(TaskError) {
        let exact: Set = ["digits", "teacher", "mqar", "files"]
        guard exact.contains(name) || ["modadd:", "fit:", "text:"].contains(where: name.hasPrefix) || name == "modadd" else {
            throw TaskError("unknown task '\(name.prefix(80))'; known tasks: \(names.joined(separator: ", "))")
        }
    }

    /// - Throws: ``TaskError`` for an unknown name or bad parameters, ``FormatError`` for unreadable files.
    public static func make(_ configuration: TrainingConfiguration) throws -> any TrainingTask {
        let name = configuration.task
        if name == "digits" { return try DigitsTask.make(seed: configuration.seed) }
        if name == "teacher" { return TeacherTask(seed: configuration.seed) }
        if name.hasPrefix("modadd:") || name == "modadd" {
            guard let modulus = Int(name.dropFirst("modadd:".count)), modulus >= 2, modulus <= 1000 else {
                throw TaskError("task '\(name)' needs a modulus between 2 and 1000, for example modadd:97")
            }
            return ModularAdditionTask.make(modulus: modulus, seed: configuration.seed)
        }
        if name.hasPrefix("fit:") {
            return try FunctionFittingTask.make(formula: String(name.dropFirst("fit:".count)), range: try configuration.inputRange(), seed: configuration.seed)
        }
        if name == "mqar" {
            return try AssociativeRecallTask(pairs: configuration.pairs, length: configuration.sequenceLength, vocabulary: configuration.vocabulary, seed: configuration.seed)
        }
        if name.hasPrefix("text:") {
            return try TextTask(path: String(name.dropFirst("text:".count)), length: configuration.sequenceLength, seed: configuration.seed)
        }
        if name == "files" {
            return try FileTask.make(configuration)
        }
        try checkName(name)
        throw TaskError("unknown task '\(name.prefix(80))'")
    }
}

/// The UCI optical digits (8×8 images, 10 classes; the copy scikit-learn ships): 1,797 examples with
/// pixel values scaled to [0, 1], split 80/20 by the seed.
public enum DigitsTask {
    public static func make(seed: UInt64) throws -> ArrayTask {
        let url = try ResourceLocator(.data).file(named: "digits.csv.gz")
        let table = try CSVTable.read(from: url)
        guard table.columns == 65, table.rows > 0 else {
            throw TaskError("\(url.path) should have 65 columns (64 pixels and a label), found \(table.columns)")
        }
        var inputs = [Float](), labels = [Int32]()
        inputs.reserveCapacity(table.rows * 64)
        for row in 0..<table.rows {
            for column in 0..<64 { inputs.append(Float(table.values[row * 65 + column] / 16)) }
            labels.append(Int32(table.values[row * 65 + 64]))
        }
        let all = HostBatch(inputs: inputs, rows: table.rows, features: 64, labels: labels)
        let (train, test) = ArrayTask.split(all, testFraction: 0.2, seed: seed, stream: "digits/split")
        return ArrayTask(name: "digits", train: train, test: test, targetKind: .classes(10), seed: seed)
    }
}

/// A student–teacher task: inputs from N(0, I) in 32 dimensions, labels the argmax of a fixed random
/// teacher network (32 → 64 → 10 with tanh, weights N(0, 1/fan-in)). Every step draws a fresh batch;
/// the test set is 4,096 examples from a separate stream.
public final class TeacherTask: TrainingTask {
    public let name = "teacher"
    public let inputCount = 32
    public let targetKind = TargetKind.classes(10)
    public let trainCount: Int? = nil
    public private(set) var testSet: HostBatch
    private let seed: UInt64
    private let hiddenWeights: [Double]
    private let outputWeights: [Double]
    static let hidden = 64

    public init(seed: UInt64) {
        var generator = RandomGenerator(seed: seed, stream: "teacher/weights")
        hiddenWeights = (0..<(32 * TeacherTask.hidden)).map { _ in generator.nextNormal() / 32.0.squareRoot() }
        outputWeights = (0..<(TeacherTask.hidden * 10)).map { _ in generator.nextNormal() / Double(TeacherTask.hidden).squareRoot() }
        self.seed = seed
        testSet = HostBatch(inputs: [], rows: 0, features: 32)
        testSet = sample(rows: 4096, stream: "teacher/test")
    }

    public func trainBatch(step: Int, batchSize: Int) -> HostBatch {
        sample(rows: batchSize, stream: "teacher/train/\(step)")
    }

    private func sample(rows: Int, stream: String) -> HostBatch {
        var generator = RandomGenerator(seed: seed, stream: stream)
        var inputs = [Float](), labels = [Int32]()
        inputs.reserveCapacity(rows * 32)
        for _ in 0..<rows {
            let x = (0..<32).map { _ in generator.nextNormal() }
            let hidden = (0..<TeacherTask.hidden).map { unit in
                Foundation.tanh((0..<32).reduce(0.0) { $0 + x[$1] * hiddenWeights[$1 * TeacherTask.hidden + unit] })
            }
            let logits = (0..<10).map { output in
                (0..<TeacherTask.hidden).reduce(0.0) { $0 + hidden[$1] * outputWeights[$1 * 10 + output] }
            }
            labels.append(Int32(logits.indices.max { logits[$0] < logits[$1] }!))
            inputs += x.map(Float.init)
        }
        return HostBatch(inputs: inputs, rows: rows, features: 32, labels: labels)
    }
}

/// Modular addition `(a + b) mod P` over all P² pairs, inputs the concatenated one-hot codes of a and b,
/// half the pairs for training (the grokking setting of Power et al., 2022).
public enum ModularAdditionTask {
    public static func make(modulus: Int, seed: UInt64) -> ArrayTask {
        var inputs = [Float](repeating: 0, count: modulus * modulus * 2 * modulus)
        var labels = [Int32]()
        for a in 0..<modulus {
            for b in 0..<modulus {
                let row = a * modulus + b
                inputs[row * 2 * modulus + a] = 1
                inputs[row * 2 * modulus + modulus + b] = 1
                labels.append(Int32((a + b) % modulus))
            }
        }
        let all = HostBatch(inputs: inputs, rows: modulus * modulus, features: 2 * modulus, labels: labels)
        let (train, test) = ArrayTask.split(all, testFraction: 0.5, seed: seed, stream: "modadd/split")
        return ArrayTask(name: "modadd:\(modulus)", train: train, test: test, targetKind: .classes(modulus), seed: seed)
    }
}

/// User data from `.npy` or CSV files: `--train-x` (`[rows, features]`) and `--train-y` (`[rows]` class
/// labels or `[rows]`/`[rows, outputs]` values), optionally `--test-x`/`--test-y` (otherwise 20% of the
/// training rows are held out by the seed).
public enum FileTask {
    public static func make(_ configuration: TrainingConfiguration) throws -> ArrayTask {
        guard let trainX = configuration.trainX, let trainY = configuration.trainY else {
            throw TaskError("task 'files' needs --train-x and --train-y")
        }
        if (configuration.testX == nil) != (configuration.testY == nil) {
            throw TaskError("give both --test-x and --test-y, or neither (then 20% of the training rows are held out)")
        }
        let (x, xShape) = try loadMatrix(trainX, role: "train-x")
        let (y, yShape, yIsInteger) = try loadTargets(trainY, role: "train-y")
        try checkValues(x, shape: xShape, role: "train-x", path: trainX)
        try checkValues(y, shape: yShape, role: "train-y", path: trainY)
        guard yShape[0] == xShape[0] else {
            throw TaskError("--train-x has \(xShape[0]) rows but --train-y has \(yShape[0]); they must match")
        }
        let (kind, notes) = try targetKind(y, shape: yShape, isInteger: yIsInteger, setting: configuration.targetKind, file: trainY)
        let train = batch(x, xShape, y, yShape, kind)
        let test: HostBatch
        var trainPart = train
        if let testX = configuration.testX, let testY = configuration.testY {
            let (tx, txShape) = try loadMatrix(testX, role: "test-x")
            let (ty, tyShape, _) = try loadTargets(testY, role: "test-y")
            try checkValues(tx, shape: txShape, role: "test-x", path: testX)
            try checkValues(ty, shape: tyShape, role: "test-y", path: testY)
            guard txShape[1] == xShape[1] else { throw TaskError("--test-x has \(txShape[1]) features but --train-x has \(xShape[1])") }
            guard tyShape[0] == txShape[0] else { throw TaskError("--test-x has \(txShape[0]) rows but --test-y has \(tyShape[0]); they must match") }
            guard tyShape.dropFirst() == yShape.dropFirst() else { throw TaskError("--test-y has shape \(tyShape) but --train-y has \(yShape)") }
            if case let .classes(count) = kind, let bad = ty.first(where: { $0 < 0 || $0 >= Double(count) || $0 != $0.rounded() }) {
                throw TaskError("--test-y has label \(bad), outside the \(count) classes of --train-y")
            }
            test = batch(tx, txShape, ty, tyShape, kind)
        } else {
            guard train.rows >= 5 else { throw TaskError("--train-x has \(train.rows) rows; hold-out needs at least 5 (or give --test-x/--test-y)") }
            (trainPart, test) = ArrayTask.split(train, testFraction: 0.2, seed: configuration.seed, stream: "files/split")
        }
        return ArrayTask(name: "files", train: trainPart, test: test, targetKind: kind, seed: configuration.seed, notes: notes)
    }

    /// Refuses an array with no rows or no columns, and any value that is not finite as a float32 (NaN,
    /// infinity, or beyond ±3.4e38), naming the file, row and column: the models compute in float32, and a
    /// NaN input becomes a NaN weight that a ReLU hides from the loss.
    public static func checkValues(_ values: [Double], shape: [Int], role: String, path: String) throws(TaskError) {
        let rows = shape[0], columns = shape.count == 2 ? shape[1] : 1
        let what = role.hasSuffix("-x") ? "feature" : "target"
        guard rows > 0 else { throw TaskError("--\(role) \(path) has no rows; give at least one example") }
        guard columns > 0 else { throw TaskError("--\(role) \(path) has \(rows) rows of 0 \(what) columns; give at least one \(what) column") }
        guard let index = values.firstIndex(where: { !Float($0).isFinite }) else { return }
        let value = values[index]
        let problem = value.isFinite ? "\(value), beyond float32's range (±3.4e38)" : "\(value)"
        throw TaskError("--\(role) \(path): row \(index / columns + 1), column \(index % columns + 1) (counting data rows from 1) is \(problem); "
                        + "models compute in float32 and need finite numbers: fill in or remove that value")
    }

    private static func batch(_ x: [Double], _ xShape: [Int], _ y: [Double], _ yShape: [Int], _ kind: TargetKind) -> HostBatch {
        switch kind {
        case .classes:
            HostBatch(inputs: x.map(Float.init), rows: xShape[0], features: xShape[1], labels: y.map { Int32($0) })
        case .values:
            HostBatch(inputs: x.map(Float.init), rows: xShape[0], features: xShape[1], targets: y.map(Float.init))
        }
    }

    /// What `--target` makes of the targets, and notes for the user. `auto`: one column of integers
    /// (an integer `.npy` type, or a CSV column of whole numbers) is class labels, as PyTorch's and
    /// scikit-learn's classifiers take them; anything else is values.
    static func targetKind(_ y: [Double], shape: [Int], isInteger: Bool, setting: TargetSetting, file: String) throws(TaskError) -> (TargetKind, notes: [String]) {
        let outputs = shape.count == 2 ? shape[1] : 1
        switch setting {
        case .values: return (.values(outputs), [])
        case .classes:
            guard shape.count == 1 || outputs == 1, y.allSatisfy({ $0 == $0.rounded() }) else {
                throw TaskError("\(file): --target classes needs one column of non-negative integer labels")
            }
            return try classes(y, file: file)
        case .auto:
            guard isInteger && (shape.count == 1 || outputs == 1) else { return (.values(outputs), []) }
            return try classes(y, file: file)
        }
    }

    /// The largest label `--target auto`/`classes` takes: a million classes is far past any classifier
    /// trained here, and a column of larger whole numbers is almost surely values.
    static let largestLabel = 999_999

    /// Integer labels as classes 0…max: a negative or too large label is an error naming it; classes in
    /// 0…max that no label names are kept (the model has max + 1 outputs) and listed in a note.
    private static func classes(_ labels: [Double], file: String) throws(TaskError) -> (TargetKind, notes: [String]) {
        func listed(_ values: [Int]) -> String {
            let shown = values.prefix(8).map(String.init).joined(separator: ", ")
            return values.count > 8 ? "\(shown), … (\(values.count) in all)" : shown
        }
        let integers = Set(labels.map { Int(max(min($0, 1e12), -1e12)) })
        let negative = integers.filter { $0 < 0 }.sorted(by: >)
        let tooLarge = integers.filter { $0 > largestLabel }.sorted()
        guard negative.isEmpty && tooLarge.isEmpty else {
            let bad = negative.isEmpty ? "labels above \(largestLabel) (\(listed(tooLarge)))" : "negative labels (\(listed(negative)))"
            throw TaskError("\(file): integer labels are classes 0, 1, 2, …, and it has \(bad); relabel them 0…n−1, or give --target values to train a regression on these numbers")
        }
        let count = (integers.max() ?? 0) + 1
        let absent = (0..<count).filter { !integers.contains($0) }
        guard !absent.isEmpty else { return (.classes(count), []) }
        let note = "\(file): the labels are classes 0…\(count - 1) (\(count) outputs), and \(absent.count == 1 ? "class" : "classes") \(listed(absent)) "
            + "\(absent.count == 1 ? "does" : "do") not occur; relabel them 0…n−1 for fewer outputs, or give --target values to train a regression on these numbers"
        return (.classes(count), [note])
    }

    /// A 2-D array from `.npy` or CSV (a 1-D `.npy` array is one column).
    public static func loadMatrix(_ path: String, role: String) throws -> ([Double], [Int]) {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.isReadableFile(atPath: path) else { throw TaskError("--\(role) \(path): no such readable file") }
        if path.hasSuffix(".npy") {
            let array = try NpyArray.read(from: url)
            guard array.dtype != .bool else { throw TaskError("--\(role) \(path): boolean arrays are not features; convert to float32") }
            switch array.shape.count {
            case 2: return (array.values, array.shape)
            case 1: return (array.values, [array.shape[0], 1])
            default: throw TaskError("--\(role) \(path): expected a 2-D array [rows, features], got shape \(array.shape)")
            }
        }
        let table = try CSVTable.read(from: url)
        return (table.values, [table.rows, table.columns])
    }

    /// Labels or values from `.npy` or CSV, and whether the file's type is integral.
    static func loadTargets(_ path: String, role: String) throws -> ([Double], [Int], Bool) {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.isReadableFile(atPath: path) else { throw TaskError("--\(role) \(path): no such readable file") }
        if path.hasSuffix(".npy") {
            let array = try NpyArray.read(from: url)
            let integral = [.int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64].contains(array.dtype)
            switch array.shape.count {
            case 1: return (array.values, array.shape, integral)
            case 2: return (array.values, array.shape, integral)
            default: throw TaskError("--\(role) \(path): expected [rows] labels or [rows, outputs] values, got shape \(array.shape)")
            }
        }
        let table = try CSVTable.read(from: url)
        let integral = table.values.allSatisfy { $0 == $0.rounded() }
        return (table.values, table.columns == 1 ? [table.rows] : [table.rows, table.columns], integral)
    }
}

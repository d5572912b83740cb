import Foundation

/// Loss and accuracy on a task's test set.
public struct Evaluation: Sendable, Equatable {
    public var loss: Double
    /// Fraction of correct argmax predictions (classification only).
    public var accuracy: Double?
    /// Root mean squared error (regression only).
    public var rootMeanSquaredError: Double?
}

/// The training loop for one model on one task and device: forward, loss, backward, update.
///
/// Nothing in ``step()`` waits for the device: the loss stays on the device until it is logged.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public let backend: any Backend
    public let task: any TrainingTask
    /// Examples per step (the whole training set where the configuration asks for it).
    public let batchSize: Int
    /// The model's kind and sizes (for a KAN, its current grid size, which grows with the grid schedule).
    public private(set) var modelConfiguration: ModelConfiguration
    public private(set) var model: any TaskModel
    /// The first-order optimizer (nil when training with L-BFGS).
    public private(set) var optimizer: Optimizer?
    /// The L-BFGS optimizer (nil for first-order optimizers).
    public private(set) var lbfgs: LBFGS?
    /// Steps completed so far (including those before a resume).
    public private(set) var completedSteps = 0
    /// The processes training this run together (``SingleProcess`` alone): each takes a shard of every
    /// global batch of ``batchSize`` rows, and their gradients are summed in buckets before each update.
    public let communicator: any Communicator
    /// This rank's share of each global batch's rows, by which its loss is weighted (1 alone).
    public var shardWeight: Double { Double(DataParallel.shard(rows: batchSize, rank: communicator.rank, size: communicator.size).count) / Double(batchSize) }
    /// Gradient buckets, made by ``joinJob()`` when there are several ranks (and again when a KAN's grid grows).
    private var buckets: GradientBuckets?
    /// Whether ``joinJob()`` ran (steps on several ranks need it).
    private var joined = false

    /// - Parameters:
    ///   - task: the task to train on (default: the one the configuration names).
    ///   - checkpoints: whether the run will write checkpoints, whose host copies the memory check then
    ///     counts (sweeps and coordinate checks write none).
    ///   - communicator: the ranks of a data-parallel job; with more than one, call ``joinJob()`` (after
    ///     any ``restore(from:path:)``) before the first step.
    /// - Throws: ``TaskError`` for bad settings, an unknown task or model, or a run larger than the
    ///   device's or the host's memory; file errors for bad data.
    public init(configuration: TrainingConfiguration, backend: any Backend, task: (any TrainingTask)? = nil, checkpoints: Bool = true,
                communicator: any Communicator = SingleProcess()) throws {
        try configuration.validate()
        self.configuration = configuration
        self.backend = backend
        self.communicator = communicator
        // A generated task's data is refused before it is built when the host cannot hold it.
        if task == nil, let data = MemoryEstimate.taskData(configuration) { try data.check(on: backend.device) }
        let task = try task ?? TaskCatalog.make(configuration)
        self.task = task
        if configuration.batchSize == TrainingConfiguration.wholeTrainingSet {
            guard let count = task.trainCount else {
                throw TaskError("task \(task.name) draws fresh batches and has no whole training set: give --batch-size N (L-BFGS defaults to the whole set)")
            }
            self.batchSize = count
        } else {
            self.batchSize = configuration.batchSize
        }
        if communicator.size > batchSize {
            throw TaskError("the global batch of \(batchSize) rows is smaller than the \(communicator.size) ranks; give --batch-size \(communicator.size) or more, or start fewer ranks")
        }
        modelConfiguration = try ModelConfiguration(configuration, task: task, stage: 0)
        try modelConfiguration.validate()
        // Everything the run will hold, checked before the first weight is drawn.
        try MemoryEstimate.training(configuration, model: modelConfiguration, task: task, batchSize: batchSize, checkpoints: checkpoints).check(on: backend.device)
        model = try ModelFactory.make(modelConfiguration, on: backend)
        (optimizer, lbfgs) = Trainer.makeOptimizer(configuration, model: model)
    }

    /// A fresh optimizer for a model's parameters: L-BFGS, or a fused first-order optimizer with one group
    /// per μP role (the roles the model's parameters were created with) when the model is parametrized.
    static func makeOptimizer(_ configuration: TrainingConfiguration, model: any TaskModel) -> (Optimizer?, LBFGS?) {
        if configuration.optimizer == .lbfgs {
            var settings = LBFGS.Settings.pykan
            settings.learningRate = Double(configuration.learningRate)
            return (nil, LBFGS(parameters: model.parameters.map(\.tensor), settings: settings))
        }
        let groups: [ParameterGroup]
        if let parametrized = model as? any ParametrizedModel {
            groups = configuration.parametrization.parameterGroups(parametrized.parameterRoles, width: parametrized.width, optimizer: configuration.optimizer)
        } else {
            groups = [ParameterGroup(name: "all", parameters: model.parameters)]
        }
        return (Optimizer(settings: configuration.optimizerSettings, groups: groups), nil)
    }

    /// Training steps over the whole run: `steps` for each grid size of a KAN's grid schedule.
    public var totalSteps: Int { configuration.steps * configuration.stageCount }

    /// The grid-schedule stage a 0-based step belongs to.
    public func stage(ofStep step: Int) -> Int { min(step / configuration.steps, configuration.stageCount - 1) }

    /// The learning rate of a 1-based step under the schedule.
    public func learningRate(atStep step: Int) -> Float {
        // Each grid size of a schedule runs the learning-rate schedule afresh.
        let local = (step - 1) % configuration.steps + 1
        return configuration.learningRate * configuration.schedule.multiplier(step: local, totalSteps: configuration.steps, warmupSteps: configuration.warmupSteps)
    }

    /// The training loss of a batch's outputs.
    public func loss(_ outputs: Tensor, _ batch: HostBatch) -> Tensor {
        switch task.targetKind {
        case .classes:
            let labels = batch.labels ?? []
            return crossEntropy(outputs, labels: IndexTensor(labels, shape: [labels.count], on: backend))
        case let .values(count):
            return meanSquaredError(outputs, Tensor(batch.targets ?? [], shape: [batch.rows, count], on: backend))
        }
    }

    /// Runs one training step and returns its loss, still on the device (for L-BFGS, the loss at the
    /// start of the step, which L-BFGS has read already).
    ///
    /// - Parameter accuracy: Where to count the batch's correct predictions (classification only), on the
    ///   device; nil to skip counting.
    /// - Throws: ``BackendError`` only for L-BFGS, whose line search reads values back;
    ///   ``DistributedError`` when another rank died or hung.
    @discardableResult
    public func step(countingCorrectIn accuracy: AccuracyCounter? = nil) throws -> Tensor {
        let stepIndex = completedSteps
        try prepareStep(stepIndex)
        model.setTraining(true)
        model.setStep(stepIndex)
        var batch = task.trainBatch(step: stepIndex, batchSize: batchSize)
        if communicator.size > 1 {
            precondition(joined, "Trainer.step: call joinJob() before training on \(communicator.size) ranks")
            let shard = DataParallel.shard(rows: batch.rows, rank: communicator.rank, size: communicator.size)
            batch = batch.rows(shard)
            // Dropout masks: this shard's rows of the masks of the whole global batch.
            model.visit { ($0 as? Dropout)?.firstRow = shard.lowerBound }
        }
        defer { completedSteps += 1 }
        let labels = accuracy != nil ? batch.labels : nil
        if let lbfgs {
            var counted = false
            let value = try lbfgs.step {
                let outputs = model.outputs(for: batch, on: backend)
                // The accuracy of the parameters at the start of the step, as the returned loss.
                if let accuracy, let labels, !counted { accuracy.add(logits: outputs, labels: labels) }
                counted = true
                let loss = self.loss(outputs, batch)
                guard let buckets else {
                    loss.backward()
                    return Double(try loss.item())
                }
                // The loss and gradient of the global batch: every rank's, weighted by its share.
                loss.backward(Tensor(scalar: Float(shardWeight), on: backend), gradientReady: buckets.gradientReady)
                try buckets.finish()
                var value = [Double(try loss.item()) * shardWeight]
                try communicator.sum(&value, for: "the L-BFGS loss")
                return value[0]
            }
            model.zeroGradients()
            return Tensor(scalar: Float(value), on: backend)
        }
        let outputs = model.outputs(for: batch, on: backend)
        if let accuracy, let labels { accuracy.add(logits: outputs, labels: labels) }
        let loss = self.loss(outputs, batch)
        if let buckets {
            // Each rank's gradient weighted by its share of the global batch; the buckets' sums are the
            // global batch's mean gradient.
            loss.backward(Tensor(scalar: Float(shardWeight), on: backend), gradientReady: buckets.gradientReady)
            try buckets.finish()
        } else {
            loss.backward()
        }
        optimizer?.step(learningRate: learningRate(atStep: stepIndex + 1))
        model.zeroGradients()
        return loss.detached()
    }

    /// The model's outputs for a batch, recording intermediate tensors where the model supports it
    /// (coordinate checks).
    public func recordedOutputs(for batch: HostBatch, recorder: ActivationRecorder) -> Tensor {
        if let mlp = model as? MLP {
            return mlp.forward(Tensor(batch.inputs, shape: [batch.rows, batch.features], on: backend), recorder: recorder)
        }
        if let language = model as? LanguageModel {
            return language.forward(IndexTensor(batch.tokens ?? [], shape: [batch.rows, batch.features], on: backend), recorder: recorder)
        }
        return model.outputs(for: batch, on: backend)
    }

    /// Moves a KAN to the next grid size at a stage boundary, and updates its grids from the training
    /// inputs during the first `gridUpdateUntil` steps of each stage (pykan: every
    /// `gridUpdateUntil / gridUpdates` steps).
    func prepareStep(_ stepIndex: Int) throws {
        guard let kan = model as? KANModel else { return }
        let stage = stage(ofStep: stepIndex)
        if stage > 0 && stepIndex == stage * configuration.steps {
            try kan.refine(intervals: configuration.gridSchedule[stage])
            if case var .kan(sizes) = modelConfiguration {
                sizes.gridIntervals = configuration.gridSchedule[stage]
                modelConfiguration = .kan(sizes)
            }
            (optimizer, lbfgs) = Trainer.makeOptimizer(configuration, model: model)
            if buckets != nil { buckets = GradientBuckets(parameters: model.parameters.map(\.tensor), communicator: communicator) }
        }
        let local = stepIndex - stage * configuration.steps
        let every = max(1, configuration.gridUpdateUntil / max(configuration.gridUpdates, 1))
        if configuration.gridUpdateUntil > 0 && local < configuration.gridUpdateUntil && local % every == 0, let all = task.trainCount {
            // From the whole training set on every rank; rank 0's grids and coefficients are then copied to
            // the others, so that no rank drifts by its device's rounding.
            try kan.updateGrids(inputs: task.trainBatch(step: 0, batchSize: all))
            if communicator.size > 1 { try DataParallel.broadcast(model.state.map(\.tensor), communicator: communicator, purpose: "the KAN grid update") }
        }
    }

    /// Joins the data-parallel job (nothing to do alone): checks that every rank runs the same settings on
    /// the same data from the same step (a one-line error naming the first difference), copies rank 0's
    /// parameters and optimizer state to every rank, and sets up the gradient buckets. Call it after any
    /// ``restore(from:path:)`` and before the first step, on every rank.
    ///
    /// - Throws: ``DistributedError`` when the ranks disagree or one of them died; ``BackendError``.
    public func joinJob() throws {
        guard communicator.size > 1 else { return }
        try DataParallel.checkAgreement(DataParallel.agreementFields(self), communicator: communicator)
        try DataParallel.broadcast((model.state + (optimizer?.namedState ?? [])).map(\.tensor), communicator: communicator, purpose: "the broadcast of the initial parameters")
        buckets = GradientBuckets(parameters: model.parameters.map(\.tensor), communicator: communicator)
        joined = true
    }

    /// Seconds the last step waited for the gradient allreduce after backward (0 alone).
    public var lastAllreduceWaitSeconds: Double { buckets?.lastWaitSeconds ?? 0 }

    /// Sums values over the ranks (the identity alone).
    public func sumOverRanks(_ values: [Double], for purpose: String) throws(DistributedError) -> [Double] {
        var result = values
        if communicator.size > 1 { try communicator.sum(&result, for: purpose) }
        return result
    }

    /// Loss (and accuracy or RMSE) on the test set, split between the ranks and summed (as
    /// ``evaluate(chunkRows:)`` alone).
    public func evaluateSharded(chunkRows: Int = 1024) throws -> Evaluation {
        guard communicator.size > 1 else { return try evaluate(chunkRows: chunkRows) }
        let examples = task.testSet
        let rows = DataParallel.shard(rows: examples.rows, rank: communicator.rank, size: communicator.size)
        let local = try evaluationSums(examples.rows(rows), chunkRows: chunkRows)
        let total = try sumOverRanks([local.weightedLoss, Double(local.correct), Double(local.counted)], for: "the evaluation")
        return evaluation(weightedLoss: total[0], correct: Int(total[1]), counted: Int(total[2]))
    }

    /// Loss (and accuracy or RMSE) on the test set, in evaluation mode and without recording gradients.
    public func evaluate(chunkRows: Int = 1024) throws(BackendError) -> Evaluation {
        try evaluate(task.testSet, chunkRows: chunkRows)
    }

    /// Loss (and accuracy or RMSE) on any examples of this task's kind.
    public func evaluate(_ examples: HostBatch, chunkRows: Int = 1024) throws(BackendError) -> Evaluation {
        let sums = try evaluationSums(examples, chunkRows: chunkRows)
        return evaluation(weightedLoss: sums.weightedLoss, correct: sums.correct, counted: sums.counted)
    }

    /// The loss summed over the examples (or their scored tokens), the correct predictions and the count.
    private func evaluationSums(_ examples: HostBatch, chunkRows: Int) throws(BackendError) -> (weightedLoss: Double, correct: Int, counted: Int) {
        model.setTraining(false)
        defer { model.setTraining(true) }
        var weightedLoss = 0.0
        var correct = 0
        var counted = 0
        for start in stride(from: 0, to: examples.rows, by: chunkRows) {
            let chunk = examples.rows(start..<min(start + chunkRows, examples.rows))
            let (lossValue, outputs) = noGrad { () -> (Tensor, Tensor) in
                let outputs = model.outputs(for: chunk, on: backend)
                return (self.loss(outputs, chunk), outputs)
            }
            let value = Double(try lossValue.item())
            if case let .classes(count) = task.targetKind, let labels = chunk.labels {
                let logits = try outputs.toArray()
                let valid = labels.filter { $0 >= 0 }.count
                weightedLoss += value * Double(valid)
                counted += valid
                // One label per row, or per token for sequence models (logits [rows, length, classes]).
                for row in 0..<labels.count where labels[row] >= 0 {
                    let scores = logits[(row * count)..<((row + 1) * count)]
                    let predicted = scores.indices.max { scores[$0] < scores[$1] }! - row * count
                    if predicted == Int(labels[row]) { correct += 1 }
                }
            } else {
                weightedLoss += value * Double(chunk.rows)
                counted += chunk.rows
            }
        }
        return (weightedLoss, correct, counted)
    }

    private func evaluation(weightedLoss: Double, correct: Int, counted: Int) -> Evaluation {
        let loss = weightedLoss / Double(max(counted, 1))
        switch task.targetKind {
        case .classes: return Evaluation(loss: loss, accuracy: Double(correct) / Double(max(counted, 1)))
        case .values: return Evaluation(loss: loss, rootMeanSquaredError: loss.squareRoot())
        }
    }

    /// The model's outputs for host inputs, in evaluation mode.
    public func predict(_ examples: HostBatch) throws(BackendError) -> [Float] {
        try Trainer.predict(model: model, examples, on: backend)
    }

    public static func predict(model: any TaskModel, _ examples: HostBatch, on backend: any Backend, chunkRows: Int = 1024) throws(BackendError) -> [Float] {
        model.setTraining(false)
        var result: [Float] = []
        for start in stride(from: 0, to: examples.rows, by: chunkRows) {
            let chunk = examples.rows(start..<min(start + chunkRows, examples.rows))
            result += try noGrad { model.outputs(for: chunk, on: backend) }.toArray()
        }
        return result
    }

    // MARK: Checkpoints

    /// Parameters, optimizer state and the run's configuration, as a safetensors file.
    public func checkpoint(elapsedSeconds: Double) throws(BackendError) -> SafeTensorsFile {
        var tensors: [SafeTensorsFile.Tensor] = []
        for (name, tensor) in model.state + (optimizer?.namedState ?? []) {
            tensors.append(SafeTensorsFile.Tensor(name: name, shape: tensor.shape, values: try tensor.toArray()))
        }
        var metadata = Checkpoint.configurationMetadata(training: configuration, model: modelConfiguration)
        metadata[Checkpoint.stepKey] = String(completedSteps)
        metadata[Checkpoint.optimizerStepKey] = String(optimizer?.stepCount ?? 0)
        metadata[Checkpoint.elapsedKey] = String(elapsedSeconds)
        metadata[Checkpoint.deviceKey] = backend.device.id
        return SafeTensorsFile(tensors: tensors, metadata: metadata)
    }

    /// Restores parameters, optimizer state and the step count from a checkpoint of this configuration.
    ///
    /// - Throws: ``CheckpointError`` when the checkpoint does not fit this model.
    public func restore(from file: SafeTensorsFile, path: String) throws {
        // A KAN saved after a grid refinement has a finer grid than a fresh model: rebuild it to match.
        if let text = file.metadata[Checkpoint.modelKey], let saved = try? JSONDecoder().decode(ModelConfiguration.self, from: Data(text.utf8)),
            saved != modelConfiguration
        {
            guard saved.kind == modelConfiguration.kind, saved.inputCount == modelConfiguration.inputCount, saved.targetKind == modelConfiguration.targetKind else {
                throw CheckpointError(path: path, message: "its model (\(saved.kind.rawValue), \(saved.inputCount) inputs, \(saved.outputCount) outputs) does not fit task "
                                      + "\(task.name.prefix(80)) (\(modelConfiguration.kind.rawValue), \(modelConfiguration.inputCount) inputs, \(modelConfiguration.outputCount) outputs); the metadata is damaged")
            }
            do {
                try saved.validate()
                try MemoryEstimate.training(configuration, model: saved, task: task, batchSize: batchSize).check(on: backend.device)
            } catch {
                throw CheckpointError(path: path, message: error.description)
            }
            modelConfiguration = saved
            model = try ModelFactory.make(saved, on: backend)
            (optimizer, lbfgs) = Trainer.makeOptimizer(configuration, model: model)
            precondition(!joined, "Trainer.restore: restore before joinJob()")
        }
        let values = Dictionary(file.tensors.map { ($0.name, (shape: $0.shape, values: $0.values)) }, uniquingKeysWith: { first, _ in first })
        guard let steps = Int(file.metadata[Checkpoint.stepKey] ?? ""), steps >= 0 else {
            throw CheckpointError(path: path, message: "its metadata lacks a step count \(Checkpoint.stepKey) of 0 or more; not a Kiln training checkpoint, or a damaged one")
        }
        let optimizerSteps = Int(file.metadata[Checkpoint.optimizerStepKey] ?? "0") ?? -1
        guard optimizerSteps >= 0 && optimizerSteps <= steps else {
            throw CheckpointError(path: path, message: "its \(Checkpoint.optimizerStepKey) '\((file.metadata[Checkpoint.optimizerStepKey] ?? "").prefix(40))' is not a count from 0 to its \(steps) steps; the metadata is damaged")
        }
        do {
            try model.load(values)
            try optimizer?.load(state: values, stepCount: optimizerSteps)
        } catch {
            throw CheckpointError(path: path, message: error.description)
        }
        completedSteps = steps
    }
}

/// Counts correct predictions on training batches on the device, so that a log can report the training
/// accuracy without the host waiting for the device at every step.
///
/// The count is a float32 on the device: exact while fewer than 2²⁴ labels are counted between two takes.
public final class AccuracyCounter {
    /// Correct predictions since the last `take()`: a scalar on the device.
    private let correct: Tensor
    /// Labels (rows, or tokens of sequence models) counted since the last `take()`.
    private var counted = 0
    /// `[classes, classes − 1, …, 1]`, made for the first batch's number of classes.
    private var descending: Tensor?

    /// A counter at zero on a device.
    public init(on backend: any Backend) {
        correct = Tensor.zeros([], on: backend)
    }

    /// Adds one batch's correct predictions: labels at the argmax of their row of logits (the first largest
    /// logit, as `torch.argmax` and the test evaluation take it); negative labels are ignored. Nothing is
    /// read back.
    ///
    /// - Parameters:
    ///   - logits: `[labels.count, classes]`, or any shape holding `labels.count` rows of scores.
    ///   - labels: One class per row.
    public func add(logits: Tensor, labels: [Int32]) {
        let rows = labels.count
        guard rows > 0 else { return }
        let classes = logits.elementCount / rows
        precondition(classes * rows == logits.elementCount, "AccuracyCounter: \(rows) labels do not divide logits \(logits.shape)")
        let backend = correct.backend
        if descending?.elementCount != classes {
            descending = Tensor((0..<classes).map { Float(classes - $0) }, shape: [classes], on: backend)
        }
        noGrad {
            let scores = logits.detached().reshaped([rows, classes])
            let largest = scores.max(axis: 1, keepingDimensions: true)
            let isLargest = Tensor(uninitialized: [rows, classes], on: backend)
            backend.binary(.equal, scores.storage, .contiguous([rows, classes]), largest.storage, Broadcasting.layout([rows, 1], to: [rows, classes]),
                           into: isLargest.storage, shape: [rows, classes])
            // classes − j at each largest logit j, so a row's maximum is classes − argmax.
            let firstLargest = (isLargest * descending!).max(axis: 1)
            let target = Tensor(labels.map { $0 >= 0 ? Float(classes - Int($0)) : -1 }, shape: [rows], on: backend)
            let hits = Tensor(uninitialized: [rows], on: backend)
            backend.binary(.equal, firstLargest.storage, .contiguous([rows]), target.storage, .contiguous([rows]), into: hits.storage, shape: [rows])
            backend.binary(.add, correct.storage, .contiguous([]), hits.sum().storage, .contiguous([]), into: correct.storage, shape: [])
        }
        counted += labels.lazy.filter { $0 >= 0 }.count
    }

    /// The fraction correct since the last call (this reads from the device, so it waits for it), and a fresh count.
    ///
    /// - Returns: The fraction in [0, 1], or nil when no label was counted.
    public func take() throws(BackendError) -> Double? {
        let counts = try takeCounts()
        guard counts.counted > 0 else { return nil }
        return counts.correct / Double(counts.counted)
    }

    /// The correct predictions and the labels counted since the last take (to sum over ranks), and a fresh count.
    public func takeCounts() throws(BackendError) -> (correct: Double, counted: Int) {
        guard counted > 0 else { return (0, 0) }
        let result = (Double(try correct.item()), counted)
        correct.backend.fill(correct.storage, offset: 0, count: 1, value: 0)
        counted = 0
        return result
    }
}

/// Checkpoint metadata keys and reading.
public enum Checkpoint {
    public static let formatKey = "kiln.format"
    public static let formatVersion = "1"
    public static let trainingKey = "kiln.training"
    public static let modelKey = "kiln.model"
    public static let stepKey = "kiln.step"
    public static let optimizerStepKey = "kiln.optimizer_step"
    public static let elapsedKey = "kiln.elapsed_seconds"
    public static let deviceKey = "kiln.device"

    /// Reads a checkpoint and decodes its training and model configurations, checking them as strictly as
    /// the flags that set them: a checkpoint is user input like any other.
    ///
    /// - Throws: ``FormatError`` for a damaged file, ``CheckpointError`` (naming the file) for a safetensors
    ///   file that is not a Kiln checkpoint, metadata that cannot be read or values out of range, and
    ///   tensors that do not fit the model the metadata describes or hold NaN or infinity.
    public static func read(_ url: URL) throws -> (file: SafeTensorsFile, training: TrainingConfiguration, model: ModelConfiguration) {
        let path = url.path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw CheckpointError(path: path, message: "no such file; give the checkpoint.safetensors that kiln train wrote")
        }
        if isFolder.boolValue {
            throw CheckpointError(path: path, message: "this is a folder; give the checkpoint.safetensors file inside it")
        }
        let file = try SafeTensorsFile.read(from: url)
        let (training, model) = try configurations(from: file.metadata, path: path)
        // The model's tensors (everything but the optimizer's) must hold at least its parameters: metadata
        // describing a far larger model than the file holds is refused before anything is built.
        let modelValues = file.tensors.filter { !$0.name.hasPrefix("optimizer.") }.reduce(0) { Saturating.add($0, $1.values.count) }
        guard model.parameterCount <= modelValues else {
            throw CheckpointError(path: path, message: "its metadata describes a model of \(model.parameterCount) parameters but the file holds \(modelValues) model values; the metadata is damaged")
        }
        for tensor in file.tensors {
            if let index = tensor.values.firstIndex(where: { !$0.isFinite }) {
                throw CheckpointError(path: path, message: "tensor \(tensor.name.prefix(80)) holds \(tensor.values[index]) at index \(index); a checkpoint holds finite values only, the file is damaged")
            }
        }
        return (file, training, model)
    }

    /// Decodes and checks the training and model configurations in a checkpoint's metadata (what ``read(_:)``
    /// does before it checks the tensors).
    ///
    /// - Parameters:
    ///   - metadata: The safetensors header's `__metadata__`.
    ///   - path: The checkpoint's path, for errors.
    /// - Throws: ``CheckpointError`` when the metadata is not a Kiln checkpoint's, a configuration cannot be
    ///   read, or a value is out of range.
    public static func configurations(from metadata: [String: String], path: String) throws(CheckpointError) -> (training: TrainingConfiguration, model: ModelConfiguration) {
        guard metadata[formatKey] == formatVersion,
            let trainingText = metadata[trainingKey], let modelText = metadata[modelKey]
        else {
            throw CheckpointError(path: path, message: "not a Kiln checkpoint (its metadata lacks \(formatKey) \(formatVersion), \(trainingKey) or \(modelKey))")
        }
        let training: TrainingConfiguration
        let model: ModelConfiguration
        do {
            // Settings added after a checkpoint was written take their defaults.
            training = try decodeOverDefaults(trainingText, defaults: TrainingConfiguration())
        } catch {
            throw CheckpointError(path: path, message: "its \(trainingKey) metadata cannot be read (\(describe(error))); the file is damaged, train again")
        }
        do {
            model = try JSONDecoder().decode(ModelConfiguration.self, from: Data(modelText.utf8))
        } catch {
            throw CheckpointError(path: path, message: "its \(modelKey) metadata cannot be read (\(describe(error))); the file is damaged, train again")
        }
        do throws(TaskError) {
            try training.validate()
        } catch {
            throw CheckpointError(path: path, message: "its training configuration is invalid (\(error.message)); the metadata is damaged")
        }
        do throws(TaskError) {
            try model.validate()
            guard model.kind == training.model else { throw TaskError("its model is \(model.kind.rawValue) but it was trained as \(training.model.rawValue)") }
        } catch {
            throw CheckpointError(path: path, message: "its model configuration is invalid (\(error.message)); the metadata is damaged")
        }
        for key in [stepKey, optimizerStepKey] {
            if let text = metadata[key], (Int(text) ?? -1) < 0 {
                throw CheckpointError(path: path, message: "its \(key) '\(text.prefix(40))' is not a count of 0 or more; the metadata is damaged")
            }
        }
        if let text = metadata[elapsedKey], !(Double(text).map { $0 >= 0 && $0.isFinite } ?? false) {
            throw CheckpointError(path: path, message: "its \(elapsedKey) '\(text.prefix(40))' is not a number of seconds; the metadata is damaged")
        }
        return (training, model)
    }

    /// The metadata entries that store a run's configurations (the format version, `trainingKey` and
    /// `modelKey`), as ``configurations(from:path:)`` reads them back.
    public static func configurationMetadata(training: TrainingConfiguration, model: ModelConfiguration) -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return [
            formatKey: formatVersion,
            trainingKey: String(decoding: (try? encoder.encode(training)) ?? Data(), as: UTF8.self),
            modelKey: String(decoding: (try? encoder.encode(model)) ?? Data(), as: UTF8.self),
        ]
    }

    /// Decodes JSON over the encoded defaults, so keys missing from `text` keep their default values.
    ///
    /// The defaults of the missing keys are written in front of the object's own members and the whole is
    /// read by `JSONDecoder`, so every value present is read exactly as `JSONDecoder` reads `text` alone
    /// (a key written twice included, where `JSONSerialization` would keep the other occurrence).
    static func decodeOverDefaults<Value: Codable>(_ text: String, defaults: Value) throws -> Value {
        let base = try JSONSerialization.jsonObject(with: JSONEncoder().encode(defaults)) as? [String: Any] ?? [:]
        guard let stored = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "not a JSON object"))
        }
        let missing = base.filter { stored[$0.key] == nil }
        let members = text.drop { $0.isWhitespace }
        guard !missing.isEmpty, members.first == "{" else { return try JSONDecoder().decode(Value.self, from: Data(text.utf8)) }
        let defaultsText = String(decoding: try JSONSerialization.data(withJSONObject: missing), as: UTF8.self)
        let combined = stored.isEmpty ? defaultsText : "{" + defaultsText.dropFirst().dropLast() + "," + members.dropFirst()
        return try JSONDecoder().decode(Value.self, from: Data(combined.utf8))
    }

    /// Which key or value of a configuration could not be read.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else {
            // JSONSerialization's errors (text that is not JSON) are NSErrors with a debug description.
            let detail = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String) ?? "not JSON"
            return detail.split(whereSeparator: \.isNewline).joined(separator: " ")
        }
        return switch error {
        case let .keyNotFound(key, _): "missing \(key.stringValue)"
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
            "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        @unknown default: "\(error)"
        }
    }
}

/// A checkpoint that is readable but does not fit what it is used for.
public struct CheckpointError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "checkpoint \(path): \(message)" }
}

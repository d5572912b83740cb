import Foundation
import KilnPlot

/// One logged point of a run, as written to `metrics.jsonl`.
public struct MetricsRecord: Codable, Sendable, Equatable {
    public var step: Int
    /// Mean training loss over the steps since the previous record.
    public var trainLoss: Double
    /// Fraction of correct predictions on the training batches since the previous record (classification only).
    public var trainAccuracy: Double?
    public var testLoss: Double?
    public var testAccuracy: Double?
    public var testRootMeanSquaredError: Double?
    public var learningRate: Double
    public var seconds: Double
    /// With several ranks: the mean seconds a step of the interval waited for the gradient allreduce
    /// after its backward (rank 0's wait); absent for one process.
    public var allreduceWaitSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case step, trainLoss = "train_loss", trainAccuracy = "train_accuracy", testLoss = "test_loss", testAccuracy = "test_accuracy"
        case testRootMeanSquaredError = "test_rmse", learningRate = "lr", seconds, allreduceWaitSeconds = "allreduce_wait_seconds"
    }

    /// Writes the fields that are set; a NaN or infinity becomes `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(step, forKey: .step)
        try container.encodeNumber(trainLoss, forKey: .trainLoss)
        try container.encodeNumberIfPresent(trainAccuracy, forKey: .trainAccuracy)
        try container.encodeNumberIfPresent(testLoss, forKey: .testLoss)
        try container.encodeNumberIfPresent(testAccuracy, forKey: .testAccuracy)
        try container.encodeNumberIfPresent(testRootMeanSquaredError, forKey: .testRootMeanSquaredError)
        try container.encodeNumber(learningRate, forKey: .learningRate)
        try container.encodeNumber(seconds, forKey: .seconds)
        try container.encodeNumberIfPresent(allreduceWaitSeconds, forKey: .allreduceWaitSeconds)
    }
}

/// What a finished run reports (`summary.json`).
public struct TrainingSummary: Encodable, Sendable {
    public var task: String
    public var model: String
    public var device: String
    public var steps: Int
    public var finalTrainLoss: Double
    public var testLoss: Double?
    public var testAccuracy: Double?
    public var testRootMeanSquaredError: Double?
    public var seconds: Double
    public var parameters: Int
    /// True when the run stopped early at `--stop-after`.
    public var stoppedEarly: Bool
    /// With a KAN grid schedule: the test RMSE after each grid size.
    public var gridRootMeanSquaredErrors: [(grid: Int, rmse: Double)] = []

    enum CodingKeys: String, CodingKey {
        case task, model, device, steps, finalTrainLoss = "final_train_loss", testLoss = "test_loss", testAccuracy = "test_accuracy"
        case testRootMeanSquaredError = "test_rmse", testBitsPerCharacter = "test_bpc", seconds, parameters, stoppedEarly = "stopped_early"
        case gridRootMeanSquaredErrors = "grid_rmse", grid
    }

    /// `test_loss` and `test_accuracy` are always written (`null` when absent); `test_rmse`, `test_bpc` (text
    /// tasks), `stopped_early` and `grid_rmse` only when they apply.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(task, forKey: .task)
        try container.encode(model, forKey: .model)
        try container.encode(device, forKey: .device)
        try container.encode(steps, forKey: .steps)
        try container.encodeNumber(finalTrainLoss, forKey: .finalTrainLoss)
        try container.encodeNumber(testLoss, forKey: .testLoss)
        try container.encodeNumber(testAccuracy, forKey: .testAccuracy)
        try container.encodeNumberIfPresent(testRootMeanSquaredError, forKey: .testRootMeanSquaredError)
        if task.hasPrefix("text:"), let testLoss {
            // Bits per character: the cross-entropy in nats over ln 2.
            try container.encodeNumber(testLoss / Foundation.log(2), forKey: .testBitsPerCharacter)
        }
        try container.encodeNumber(seconds, forKey: .seconds)
        try container.encode(parameters, forKey: .parameters)
        if stoppedEarly { try container.encode(true, forKey: .stoppedEarly) }
        if !gridRootMeanSquaredErrors.isEmpty {
            var grids = container.nestedUnkeyedContainer(forKey: .gridRootMeanSquaredErrors)
            for (grid, rmse) in gridRootMeanSquaredErrors {
                var entry = grids.nestedContainer(keyedBy: CodingKeys.self)
                try entry.encode(grid, forKey: .grid)
                try entry.encodeNumber(rmse, forKey: .testRootMeanSquaredError)
            }
        }
    }
}

/// Receives a run's progress (the CLI draws a progress bar from it).
public protocol TrainingProgress: AnyObject {
    /// A remark on the run's data (``TrainingTask/notes``), given before ``started(totalSteps:fromStep:device:parameters:)``.
    func note(_ message: String)
    func started(totalSteps: Int, fromStep: Int, device: String, parameters: Int)
    func logged(_ record: MetricsRecord, totalSteps: Int, stepsPerSecond: Double)
    func finished(_ summary: TrainingSummary)
}

/// A complete `kiln train` run: trains, evaluates, logs metrics, writes checkpoints, the summary and the
/// loss plot into an output folder, and resumes from one.
///
/// Files in the folder: `metrics.jsonl` (one JSON object per logged step), `checkpoint.safetensors`
/// (parameters, optimizer state and configuration; written at every evaluation and at the end, through
/// a temporary file and a rename), `summary.json` and `loss.svg`.
public enum TrainingRun {
    public static let metricsFile = "metrics.jsonl"
    public static let checkpointFile = "checkpoint.safetensors"
    public static let summaryFile = "summary.json"
    public static let plotFile = "loss.svg"

    /// Trains from scratch (`resume == false`) or continues the run whose checkpoint is in `directory`.
    ///
    /// - Parameters:
    ///   - configuration: the run; ignored when resuming except for `steps` (which may extend the run)
    ///     when `overrideSteps` is set.
    ///   - backend: the device to train on (a resumed run may use another device).
    ///   - directory: the output folder (created if needed, once the run is set up; a run that fails before
    ///     writing anything into a folder it created removes the folder again). When resuming, the folder
    ///     with the checkpoint.
    ///   - resume: continue from `directory/checkpoint.safetensors`.
    ///   - overrideSteps: when resuming, a new total step count (beyond the steps done; not for a KAN with a
    ///     grid schedule, whose stages are `steps` long).
    ///   - stopAfter: stop (with a checkpoint) once this many steps are done, as if interrupted; at least
    ///     one step beyond those already done.
    ///   - progress: receives progress events.
    ///   - communicator: the ranks of a data-parallel job: each trains on its shard of every global batch
    ///     and evaluates its share of the test set; rank 0 alone writes files (every rank reads the
    ///     checkpoint when resuming, so the folder must be visible to all of them).
    /// - Throws: configuration, data, checkpoint and device errors, each with a one-line description;
    ///   ``DistributedError`` when the ranks disagree or one died.
    public static func run(
        configuration: TrainingConfiguration, backend: any Backend, directory: URL, resume: Bool = false, overrideSteps: Int? = nil,
        stopAfter: Int? = nil, progress: (any TrainingProgress)? = nil, communicator: any Communicator = SingleProcess()
    ) throws -> TrainingSummary {
        let writes = communicator.isRoot
        if let stopAfter, stopAfter < 1 { throw TaskError("--stop-after must be at least 1, got \(stopAfter)") }
        let checkpointURL = directory.appendingPathComponent(checkpointFile)
        // Temporary files of a run that was killed while writing one of these.
        for file in [checkpointFile, metricsFile, summaryFile, plotFile] where writes {
            removeStaleTemporaryFiles(of: directory.appendingPathComponent(file))
        }
        var settings = configuration
        var restored: SafeTensorsFile?
        var previousSeconds = 0.0
        if resume {
            // Read before anything is created: resuming from a folder that does not exist creates nothing.
            let checkpoint = try Checkpoint.read(checkpointURL)
            settings = checkpoint.training
            restored = checkpoint.file
            previousSeconds = Double(checkpoint.file.metadata[Checkpoint.elapsedKey] ?? "") ?? 0
            if let overrideSteps, overrideSteps != settings.steps, settings.stageCount > 1 {
                throw TaskError("--steps cannot change when resuming a KAN with a grid schedule (--grid \(settings.gridSchedule.map(String.init).joined(separator: ",")) "
                                + "trains --steps \(settings.steps) steps per grid size); resume without --steps")
            }
        }
        if let overrideSteps { settings.steps = overrideSteps }
        let trainer = try Trainer(configuration: settings, backend: backend, communicator: communicator)
        if let restored { try trainer.restore(from: restored, path: checkpointURL.path) }
        try trainer.joinJob()
        let totalSteps = trainer.totalSteps
        // A run killed after its last checkpoint but before its summary only writes the summary and the plot.
        let summaryMissing = !FileManager.default.fileExists(atPath: directory.appendingPathComponent(summaryFile).path)
        if trainer.completedSteps >= totalSteps && !(resume && summaryMissing) {
            throw TaskError("nothing to train: the checkpoint in \(directory.path) has done \(trainer.completedSteps) of \(totalSteps) steps; give a larger --steps to continue")
        }
        if let stopAfter, stopAfter <= trainer.completedSteps {
            throw TaskError("--stop-after \(stopAfter) is not beyond the \(trainer.completedSteps) steps the checkpoint has done; give a larger --stop-after")
        }
        guard writes else {
            return try train(trainer, settings: settings, directory: directory, resume: resume, previousSeconds: previousSeconds, stopAfter: stopAfter, progress: nil)
        }
        let created = try OutputPath.prepareFolder(directory, flag: "--out")
        do {
            return try train(trainer, settings: settings, directory: directory, resume: resume, previousSeconds: previousSeconds, stopAfter: stopAfter, progress: progress)
        } catch {
            if created { removeIfNothingWritten(directory) }
            throw error
        }
    }

    /// Removes a folder this run created when the run failed before writing anything but an empty metrics file.
    private static func removeIfNothingWritten(_ directory: URL) {
        let manager = FileManager.default
        let metrics = directory.appendingPathComponent(metricsFile)
        if let size = (try? manager.attributesOfItem(atPath: metrics.path))?[.size] as? Int, size == 0 { try? manager.removeItem(at: metrics) }
        if (try? manager.contentsOfDirectory(atPath: directory.path))?.isEmpty == true { try? manager.removeItem(at: directory) }
    }

    /// The training loop of ``run(configuration:backend:directory:resume:overrideSteps:stopAfter:progress:)``,
    /// once the trainer is set up and the folder exists.
    private static func train(
        _ trainer: Trainer, settings: TrainingConfiguration, directory: URL, resume: Bool, previousSeconds: Double, stopAfter: Int?,
        progress: (any TrainingProgress)?
    ) throws -> TrainingSummary {
        let backend = trainer.backend
        let checkpointURL = directory.appendingPathComponent(checkpointFile)
        let totalSteps = trainer.totalSteps
        let communicator = trainer.communicator
        let writes = communicator.isRoot

        let metricsURL = directory.appendingPathComponent(metricsFile)
        var history = resume ? readMetrics(metricsURL, upToStep: trainer.completedSteps) : []
        if writes { try rewriteMetrics(history, to: metricsURL) }
        let writer = writes ? try JSONLinesWriter(url: metricsURL, append: true) : nil
        defer { writer?.close() }

        let start = Date()
        func elapsed() -> Double { previousSeconds + Date().timeIntervalSince(start) }
        for note in trainer.task.notes { progress?.note(note) }
        progress?.started(totalSteps: totalSteps, fromStep: trainer.completedSteps, device: backend.device.id, parameters: trainer.model.parameterCount)

        let lastStep = min(totalSteps, stopAfter ?? Int.max)
        let runningLoss = Tensor.zeros([], on: backend)
        let trainAccuracy: AccuracyCounter? = if case .classes = trainer.task.targetKind { AccuracyCounter(on: backend) } else { nil }
        var stepsInInterval = 0
        var intervalStart = Date()
        var lastEvaluation: Evaluation?
        var lastTrainLoss = history.last?.trainLoss ?? .nan
        var allreduceWait = 0.0
        while trainer.completedSteps < lastStep {
            let loss = try trainer.step(countingCorrectIn: trainAccuracy)
            backend.binary(.add, runningLoss.storage, .contiguous([]), loss.storage, .contiguous([]), into: runningLoss.storage, shape: [])
            stepsInInterval += 1
            allreduceWait += trainer.lastAllreduceWaitSeconds
            let step = trainer.completedSteps
            let stageEnd = settings.stageCount > 1 && step % settings.steps == 0
            let evaluateNow = step % settings.evalEvery == 0 || step == totalSteps || step == lastStep || stageEnd
            guard evaluateNow || step % settings.logEvery == 0 else { continue }

            // The only point where the host waits for the device (and, with several ranks, for the others:
            // the loss and accuracy of the global batches).
            var meanLoss = Double(try runningLoss.item()) / Double(stepsInInterval)
            backend.fill(runningLoss.storage, offset: 0, count: 1, value: 0)
            var accuracy: Double?
            var waited: Double?
            if communicator.size > 1 {
                let counts = try trainAccuracy?.takeCounts() ?? (correct: 0, counted: 0)
                let total = try trainer.sumOverRanks([meanLoss * trainer.shardWeight, counts.correct, Double(counts.counted)], for: "the training loss")
                meanLoss = total[0]
                accuracy = total[2] > 0 ? total[1] / total[2] : nil
                waited = allreduceWait / Double(stepsInInterval)
            } else {
                accuracy = try trainAccuracy?.take()
            }
            allreduceWait = 0
            let stepsPerSecond = Double(stepsInInterval) / max(Date().timeIntervalSince(intervalStart), 1e-9)
            stepsInInterval = 0
            intervalStart = Date()
            lastTrainLoss = meanLoss
            if !meanLoss.isFinite {
                throw TaskError("training diverged at step \(step) (loss \(meanLoss)); lower --lr or add --clip")
            }
            // The float's shortest decimal form, so 1e-3 is logged as 0.001 rather than 0.0010000000474974513.
            let rate = Double("\(trainer.learningRate(atStep: step))") ?? 0
            var record = MetricsRecord(step: step, trainLoss: meanLoss, trainAccuracy: accuracy, learningRate: rate, seconds: elapsed())
            record.allreduceWaitSeconds = waited
            if evaluateNow {
                let evaluation = try trainer.evaluateSharded()
                lastEvaluation = evaluation
                record.testLoss = evaluation.loss
                record.testAccuracy = evaluation.accuracy
                record.testRootMeanSquaredError = evaluation.rootMeanSquaredError
                record.seconds = elapsed()
            }
            // The record reaches the file before the checkpoint that includes its step: killed between the
            // two, the run keeps a record past its checkpoint, which a resume drops and logs again, and never
            // a checkpoint whose step has no record.
            try writer?.write(record)
            if evaluateNow && writes {
                try trainer.checkpoint(elapsedSeconds: record.seconds).write(to: checkpointURL)
            }
            history.append(record)
            progress?.logged(record, totalSteps: totalSteps, stepsPerSecond: stepsPerSecond)
        }

        if lastEvaluation == nil {
            lastEvaluation = try trainer.evaluateSharded()
        }
        var summary = TrainingSummary(
            task: settings.task, model: settings.model.rawValue, device: backend.device.id, steps: trainer.completedSteps, finalTrainLoss: lastTrainLoss,
            testLoss: lastEvaluation?.loss, testAccuracy: lastEvaluation?.accuracy, testRootMeanSquaredError: lastEvaluation?.rootMeanSquaredError,
            seconds: elapsed(), parameters: trainer.model.parameterCount, stoppedEarly: trainer.completedSteps < totalSteps)
        if settings.stageCount > 1 {
            // The test RMSE logged at the end of each grid size.
            for (stage, grid) in settings.gridSchedule.enumerated() {
                if let record = history.first(where: { $0.step == (stage + 1) * settings.steps }), let rmse = record.testRootMeanSquaredError {
                    summary.gridRootMeanSquaredErrors.append((grid, rmse))
                }
            }
        }
        guard writes else { return summary }
        try JSONFile.write(summary, to: directory.appendingPathComponent(summaryFile))
        let plot = lossPlot(history, title: "\(settings.model) on \(settings.task) (\(backend.device.id))")
        try writeAtomically(Data(plot.utf8), to: directory.appendingPathComponent(plotFile))
        progress?.finished(summary)
        return summary
    }

    /// Train and test loss against step, on a log scale; for classification, over a second panel of train and
    /// test accuracy against step.
    ///
    /// - Returns: The SVG document.
    static func lossPlot(_ history: [MetricsRecord], title: String) -> String {
        func series(_ name: String, _ value: (MetricsRecord) -> Double?, dashed: Bool = false) -> LinePlot.Series {
            LinePlot.Series(name: name, points: history.compactMap { record in value(record).map { (Double(record.step), $0) } }, dashed: dashed)
        }
        var loss = LinePlot(title: title, xLabel: "step", yLabel: "loss", logY: true,
                            series: [series("train loss", \.trainLoss), series("test loss", \.testLoss, dashed: true)])
        guard history.contains(where: { $0.trainAccuracy != nil || $0.testAccuracy != nil }) else { return loss.svg() }
        loss.title = "loss"
        let accuracy = LinePlot(title: "accuracy", xLabel: "step", yLabel: "accuracy",
                                series: [series("train accuracy", \.trainAccuracy), series("test accuracy", \.testAccuracy, dashed: true)])
        return PlotGrid(title: title, panels: [loss, accuracy], columns: 1).svg(panelWidth: 640, panelHeight: 360)
    }

    /// The records of an earlier run up to `step` (later ones were logged after the checkpoint and are redone).
    static func readMetrics(_ url: URL, upToStep step: Int) -> [MetricsRecord] {
        guard let data = FileManager.default.contents(atPath: url.path) else { return [] }
        return metricsRecords(in: data, upToStep: step)
    }

    /// The records of a `metrics.jsonl` file's contents up to `step`, as `--resume` reads them: lines that do
    /// not parse (cut short by a crash) are dropped, and reading stops at the first record after `step`.
    public static func metricsRecords(in data: Data, upToStep step: Int) -> [MetricsRecord] {
        var records: [MetricsRecord] = []
        for line in data.split(separator: 0x0A) {
            // A line cut short by a crash does not parse; it is dropped (and its step redone).
            guard let record = try? JSONDecoder().decode(MetricsRecord.self, from: Data(line)) else { continue }
            guard record.step <= step else { break }
            records.append(record)
        }
        return records
    }

    private static func rewriteMetrics(_ records: [MetricsRecord], to url: URL) throws {
        var lines = Data()
        for record in records { lines += try JSONFile.encoded(record) + [0x0A] }
        try writeAtomically(lines, to: url)
    }
}

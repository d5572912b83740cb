import ArgumentParser
import Foundation
import Kiln

/// `kiln train`: trains a model on a task and writes metrics, a checkpoint, a summary and a loss plot.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on a task and write metrics.jsonl, checkpoint.safetensors, summary.json and loss.svg.",
        discussion: """
            Tasks: digits (8×8 handwritten digits), teacher (labels from a random tanh network), modadd:P \
            (a + b mod P), files (your .npy or CSV data via --train-x/--train-y, optionally --test-x/--test-y). \
            The same seed gives the same initial weights, data order and results on every device.
            """
    )

    @Option(parsing: .unconditional, help: "Task: digits, teacher, modadd:P or files.") var task = "digits"
    @Option(parsing: .unconditional, help: "Model.") var model = ModelKind.mlp
    @Option(parsing: .unconditional, help: "lm token mixer.") var mixer = MixerKind.delta
    @Option(parsing: .unconditional, help: "lm blocks.") var layers = 2
    @Option(parsing: .unconditional, help: "lm attention heads (the width must be a multiple; default 4).") var heads: Int?
    @Option(parsing: .unconditional, help: "lm features per head: heads = width / N, so wider models get more heads of the same size (instead of --heads).") var headDim: Int?
    @Option(parsing: .unconditional, help: "Hidden width.") var width = 128
    @Option(parsing: .unconditional, help: "Number of hidden layers.") var depth = 2
    @Option(parsing: .unconditional, help: "Activation.") var activation = ActivationKind.relu
    @Option(parsing: .unconditional, help: "Dropout probability after each hidden activation.") var dropout: Float = 0
    @Option(parsing: .unconditional, help: "KAN layer widths, e.g. 2,5,1 (default: inputs,width,outputs).") var arch: String?
    @Option(parsing: .unconditional, help: "KAN grid sizes trained in turn, --steps each, e.g. 3,10,20.") var grid = "5"
    @Option(parsing: .unconditional, help: "KAN spline order k (1-5).") var splineOrder = 3
    @Option(parsing: .unconditional, help: "KAN grid updates: 1 uniform, 0 sample percentiles (pykan's grid_eps).") var gridEps = 0.02
    @Option(parsing: .unconditional, help: "Update KAN grids from the data during the first N steps of each grid size (0: never).") var gridUpdateUntil = 50
    @Option(parsing: .unconditional, help: "How many KAN grid updates in that window.") var gridUpdates = 10
    @Option(parsing: .unconditional, help: "mqar: key-value pairs per sequence.") var pairs = 16
    @Option(parsing: .unconditional, help: "mqar and text: sequence length.") var seqLen = 128
    @Option(parsing: .unconditional, help: "mqar: vocabulary size.") var vocab = 256
    @Option(parsing: .unconditional, help: "Parametrization: SP or μP (Maximal Update Parametrization).") var param = Parametrization.Kind.sp
    @Option(parsing: .unconditional, help: "The width at which μP and SP coincide.") var baseWidth = 64
    @Option(parsing: .unconditional, help: "Readout initialization: zeros or N(0, 1/fan_in).") var readoutInit = ReadoutInitialization.zero
    @Option(parsing: .unconditional, help: "Optimizer.") var optimizer = OptimizerKind.adam
    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Base learning rate (default 1e-3 for adam/adamw/adam-atan2, 0.1 for sgd, 1 for lbfgs).") var learningRate: Float?
    @Option(parsing: .unconditional, help: "Learning-rate schedule.") var schedule = LearningRateSchedule.constant
    @Option(parsing: .unconditional, help: "Warm-up steps for the cosine schedule.") var warmup = 0
    @Option(parsing: .unconditional, help: "Weight decay (L2 for sgd/adam, decoupled for adamw/adam-atan2; default 0, 0.01 for adamw).") var weightDecay: Float?
    @Option(parsing: .unconditional, help: "SGD momentum.") var momentum: Float = 0.9
    @Flag(help: "Use Nesterov momentum with SGD.") var nesterov = false
    @Option(parsing: .unconditional, help: "Clip gradients to this global L2 norm.") var clip: Float?
    @Option(parsing: .unconditional, help: "Examples per step; 0 = the whole training set (default: 64; with --optimizer lbfgs, the whole training set, as pykan).") var batchSize: Int?
    @Option(parsing: .unconditional, help: "Training steps.") var steps = 1000
    @Option(parsing: .unconditional, help: "Evaluate on the test set (and write a checkpoint) every N steps.") var evalEvery = 100
    @Option(parsing: .unconditional, help: "Log the training loss every N steps.") var logEvery = 10
    @Option(parsing: .unconditional, help: "Seed for weights, data order and dropout.") var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Device: auto, cpu, opencl or opencl:N (default: $KILN_DEVICE, else auto).") var device: String?
    @Option(parsing: .unconditional, help: "Output folder.") var out: String?
    @Option(parsing: .unconditional, help: "Continue the run in this folder from its checkpoint (its configuration is reused; --steps may extend it).") var resume: String?
    @Option(parsing: .unconditional, help: "Stop after this many steps, keeping the checkpoint, as if interrupted.") var stopAfter: Int?
    @Option(parsing: .unconditional, help: "Training inputs (.npy or .csv) for --task files.") var trainX: String?
    @Option(parsing: .unconditional, help: "Training labels or targets (.npy or .csv).") var trainY: String?
    @Option(parsing: .unconditional, help: "Test inputs (optional; otherwise 20% of the training rows are held out).") var testX: String?
    @Option(parsing: .unconditional, help: "Test labels or targets.") var testY: String?
    @Option(parsing: .unconditional, help: "For file data: auto (one column of integers is class labels 0…max, as PyTorch and scikit-learn take them: a note names classes no label has, a negative label is an error; anything else is values), classes, or values (regression with MSE, integers included).") var target = TargetSetting.auto
    @Option(parsing: .unconditional, help: "For fit: tasks, the input range low,high.") var range = "-1,1"
    @Flag(help: "Print plain lines instead of a progress bar.") var plain = false

    func run() throws {
        if let stopAfter, stopAfter < 1 { throw CommandError("--stop-after must be at least 1, got \(stopAfter)") }
        // Under mpirun: one rank of a data-parallel job; alone, a single process as always.
        let communicator = try DistributedJob.start()
        let deviceDescription = DistributedJob.device(try resolveDevice(device), request: device, communicator: communicator)
        // Rank 0 alone shows progress and writes files.
        let progress = communicator.isRoot ? ProgressReporter(interactive: !plain && isatty(STDOUT_FILENO) != 0) : nil
        let directory: URL
        if let resume {
            directory = try prepareResume(from: resume, copies: communicator.isRoot)
            _ = try TrainingRun.run(
                configuration: TrainingConfiguration(), backend: try Devices.makeBackend(for: deviceDescription), directory: directory, resume: true,
                overrideSteps: isSet("--steps") ? steps : nil, stopAfter: stopAfter, progress: progress, communicator: communicator)
        } else {
            // Everything the flags say is checked before a device is set up or a folder created.
            let configuration = try configuration()
            directory = URL(fileURLWithPath: out ?? "runs/\(Self.folderName(task))-\(model.rawValue)")
            _ = try TrainingRun.run(
                configuration: configuration, backend: try Devices.makeBackend(for: deviceDescription), directory: directory, stopAfter: stopAfter,
                progress: progress, communicator: communicator)
        }
        DistributedJob.finish()
        guard communicator.isRoot else { return }
        print("wrote \(directory.path)/{\(TrainingRun.metricsFile),\(TrainingRun.checkpointFile),\(TrainingRun.summaryFile),\(TrainingRun.plotFile)}")
    }

    /// The default output folder's name for a task: `modadd:97` → `modadd-97`; anything but letters, digits,
    /// `-` and `_` becomes `-`, so that `text:../book.txt` stays inside `runs/` (as `text----book-txt`).
    static func folderName(_ task: String) -> String {
        String(task.prefix(64).map { $0.isLetter || $0.isNumber || "-_".contains($0) ? $0 : "-" })
    }

    /// The flags `--resume` takes besides the folder: they change how the run continues, not what it is.
    static let resumeFlags: Set<String> = ["--resume", "--steps", "--stop-after", "--device", "--out", "--plain"]

    /// Checks a resumed run before anything is written: the checkpoint is read (a missing folder creates
    /// nothing), every other flag given must agree with it, and with `--out` elsewhere the run's files are
    /// copied there.
    ///
    /// - Parameter copies: whether this process copies the run for `--out` (rank 0 alone does; the other
    ///   ranks read the checkpoint from the source folder).
    /// - Returns: The folder the run continues in.
    private func prepareResume(from resume: String, copies: Bool = true) throws -> URL {
        let source = URL(fileURLWithPath: resume)
        let checkpoint = source.appendingPathComponent(TrainingRun.checkpointFile)
        let saved = try Checkpoint.read(checkpoint).training
        if let difference = try resumeDifference(from: saved) {
            throw CommandError("\(difference) in \(checkpoint.path); --resume continues a run with its own settings and takes only "
                               + "\(Self.resumeFlags.subtracting(["--resume"]).sorted().joined(separator: ", ")): drop the flag, or start a new run with --out")
        }
        guard copies, let out, URL(fileURLWithPath: out).standardizedFileURL != source.standardizedFileURL else { return source }
        // Continue into a new folder: start from a copy of the old run's files.
        let destination = URL(fileURLWithPath: out)
        try copyRun(from: source, to: destination)
        return destination
    }

    /// The first flag given on the command line whose value differs from the checkpoint's, described.
    private func resumeDifference(from saved: TrainingConfiguration) throws -> String? {
        func show(_ value: Any?) -> String {
            guard let value else { return "(not set)" }
            if let list = value as? [Int] { return list.map(String.init).joined(separator: ",") }
            if let kind = value as? any RawRepresentable { return "\(kind.rawValue)" }
            return "\(value)"
        }
        func compare<Value: Equatable>(_ flag: String, _ given: Value, _ stored: Value) -> String? {
            guard isSet(flag), given != stored else { return nil }
            return "\(flag) \(show(given)) differs from the checkpoint's \(show(stored))"
        }
        let checks: [String?] = [
            compare("--task", task, saved.task), compare("--model", model, saved.model), compare("--mixer", mixer, saved.mixer),
            compare("--layers", layers, saved.layers), compare("--heads", heads ?? 4, saved.heads), compare("--head-dim", headDim, saved.headDimension),
            compare("--width", width, saved.width), compare("--depth", depth, saved.depth), compare("--activation", activation, saved.activation),
            compare("--dropout", dropout, saved.dropout), compare("--arch", try arch.map { try parseIntegers($0, flag: "--arch") }, saved.architecture),
            compare("--grid", try parseIntegers(grid, flag: "--grid"), saved.gridSchedule), compare("--spline-order", splineOrder, saved.splineOrder),
            compare("--grid-eps", gridEps, saved.gridEpsilon), compare("--grid-update-until", gridUpdateUntil, saved.gridUpdateUntil),
            compare("--grid-updates", gridUpdates, saved.gridUpdates), compare("--pairs", pairs, saved.pairs), compare("--seq-len", seqLen, saved.sequenceLength),
            compare("--vocab", vocab, saved.vocabulary), compare("--param", param, saved.parametrization.kind),
            compare("--base-width", baseWidth, saved.parametrization.baseWidth),
            compare("--readout-init", readoutInit == .zero, saved.parametrization.readoutZeroInit),
            compare("--optimizer", optimizer, saved.optimizer), compare("--lr", learningRate ?? saved.learningRate, saved.learningRate),
            compare("--schedule", schedule, saved.schedule), compare("--warmup", warmup, saved.warmupSteps),
            compare("--weight-decay", weightDecay, saved.weightDecay), compare("--momentum", momentum, saved.momentum),
            compare("--nesterov", nesterov, saved.nesterov), compare("--clip", clip, saved.gradientClip),
            compare("--batch-size", batchSize ?? saved.batchSize, saved.batchSize), compare("--eval-every", evalEvery, saved.evalEvery),
            compare("--log-every", logEvery, saved.logEvery), compare("--seed", seed, saved.seed), compare("--train-x", trainX, saved.trainX),
            compare("--train-y", trainY, saved.trainY), compare("--test-x", testX, saved.testX), compare("--test-y", testY, saved.testY),
            compare("--target", target, saved.targetKind), compare("--range", range, saved.range),
        ]
        return checks.lazy.compactMap { $0 }.first
    }

    /// Whether a flag was given on the command line (to tell an explicit `--steps` from the default).
    private func isSet(_ flag: String) -> Bool {
        CommandLine.arguments.dropFirst().prefix { $0 != "--" }.contains { $0 == flag || $0.hasPrefix(flag + "=") }
    }

    private func configuration() throws -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.task = task
        configuration.model = model
        configuration.width = width
        configuration.depth = depth
        configuration.activation = activation
        configuration.dropout = dropout
        configuration.optimizer = optimizer
        configuration.learningRate = learningRate ?? Self.defaultLearningRate(optimizer)
        configuration.schedule = schedule
        configuration.warmupSteps = warmup
        configuration.weightDecay = weightDecay
        configuration.momentum = momentum
        configuration.nesterov = nesterov
        configuration.gradientClip = clip
        configuration.batchSize = batchSize ?? (optimizer == .lbfgs ? TrainingConfiguration.wholeTrainingSet : 64)
        configuration.steps = steps
        configuration.evalEvery = evalEvery
        configuration.logEvery = logEvery
        configuration.seed = seed
        configuration.trainX = trainX
        configuration.trainY = trainY
        configuration.testX = testX
        configuration.testY = testY
        configuration.targetKind = target
        configuration.range = range
        if let arch { configuration.architecture = try parseIntegers(arch, flag: "--arch") }
        configuration.gridSchedule = try parseIntegers(grid, flag: "--grid")
        configuration.splineOrder = splineOrder
        configuration.gridEpsilon = gridEps
        configuration.gridUpdateUntil = gridUpdateUntil
        configuration.gridUpdates = gridUpdates
        configuration.mixer = mixer
        configuration.layers = layers
        if heads != nil && headDim != nil { throw CommandError("give --heads (a fixed number of heads) or --head-dim (a fixed head size), not both") }
        configuration.heads = heads ?? 4
        configuration.headDimension = headDim
        configuration.pairs = pairs
        configuration.sequenceLength = seqLen
        configuration.vocabulary = vocab
        configuration.parametrization = Parametrization(kind: param, baseWidth: baseWidth, readoutZeroInit: readoutInit == .zero)
        if trainX != nil && task == "digits" && !isSet("--task") { configuration.task = "files" }
        try configuration.validate()
        return configuration
    }

    /// The usual starting learning rate of each optimizer.
    static func defaultLearningRate(_ kind: OptimizerKind) -> Float {
        switch kind {
        case .sgd: 0.1
        case .lbfgs: 1
        case .adam, .adamw, .adamAtan2: 1e-3
        }
    }

    private func copyRun(from source: URL, to destination: URL) throws {
        try OutputPath.prepareFolder(destination, flag: "--out")
        for name in [TrainingRun.checkpointFile, TrainingRun.metricsFile] {
            let from = source.appendingPathComponent(name), to = destination.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: from.path) else { continue }
            try? FileManager.default.removeItem(at: to)
            do {
                try FileManager.default.copyItem(at: from, to: to)
            } catch {
                throw CommandError("cannot copy \(from.path) to \(to.path) (\((error as NSError).localizedFailureReason ?? "\(error)")); check that --out is a folder you can write to")
            }
        }
    }
}

/// Draws a one-line progress bar on a terminal, or prints plain lines when output goes to a file or pipe.
final class ProgressReporter: TrainingProgress {
    let interactive: Bool
    private var startStep = 0
    private var lastTestAccuracy: Double?
    private var lastTestLoss: Double?

    init(interactive: Bool) { self.interactive = interactive }

    func note(_ message: String) {
        FileHandle.standardError.write(Data("note: \(message)\n".utf8))
    }

    func started(totalSteps: Int, fromStep: Int, device: String, parameters: Int) {
        startStep = fromStep
        let resumed = fromStep > 0 ? ", resuming at step \(fromStep)" : ""
        print("training on \(device): \(parameters) parameters, \(totalSteps) steps\(resumed)")
    }

    func logged(_ record: MetricsRecord, totalSteps: Int, stepsPerSecond: Double) {
        if let accuracy = record.testAccuracy { lastTestAccuracy = accuracy }
        if let loss = record.testLoss { lastTestLoss = loss }
        var parts = ["step \(record.step)/\(totalSteps)", "loss \(format(record.trainLoss, 4))"]
        if let loss = lastTestLoss { parts.append("test \(format(loss, 4))") }
        if let accuracy = lastTestAccuracy { parts.append("acc \(format(accuracy * 100, 1))%") }
        if let rmse = record.testRootMeanSquaredError { parts.append("rmse \(format(rmse, 5))") }
        parts.append("\(format(stepsPerSecond, 1)) steps/s")
        let remaining = Double(totalSteps - record.step) / max(stepsPerSecond, 1e-9)
        parts.append("ETA \(duration(remaining))")
        ProgressBar.draw(fraction: Double(record.step) / Double(max(totalSteps, 1)), text: parts.joined(separator: "  "), interactive: interactive)
    }

    func finished(_ summary: TrainingSummary) {
        if interactive { print("") }
        var line = "done: \(summary.steps) steps in \(duration(summary.seconds)), final train loss \(format(summary.finalTrainLoss, 4))"
        if let loss = summary.testLoss { line += ", test loss \(format(loss, 4))" }
        if let accuracy = summary.testAccuracy { line += ", test accuracy \(format(accuracy * 100, 2))%" }
        if let rmse = summary.testRootMeanSquaredError { line += ", test RMSE \(format(rmse, 6))" }
        if summary.stoppedEarly { line += " (stopped early; continue with --resume)" }
        print(line)
    }

    private func format(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }

    private func duration(_ seconds: Double) -> String { ProgressBar.duration(seconds) }
}

/// The one-line progress bar of `kiln train` and `kiln tune`: redrawn in place on a terminal, plain lines
/// when output goes to a file or pipe.
enum ProgressBar {
    static func draw(fraction: Double, text: String, interactive: Bool) {
        if interactive {
            let width = 24
            let done = max(0, min(width, Int(Double(width) * fraction)))
            let bar = String(repeating: "█", count: done) + String(repeating: "░", count: width - done)
            FileHandle.standardOutput.write(Data("\r\u{1B}[2K\(bar) \(text)".utf8))
        } else {
            print(text)
            // Lines go out as they are made even when standard output is a file or a pipe.
            fflush(nil)
        }
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        if seconds < 60 { return "\(Int(seconds.rounded()))s" }
        if seconds < 3600 { return "\(Int(seconds) / 60)m\(String(format: "%02d", Int(seconds) % 60))s" }
        return "\(Int(seconds) / 3600)h\(String(format: "%02d", (Int(seconds) % 3600) / 60))m"
    }
}

import ArgumentParser
import Foundation
import Kiln
import Synchronization

/// Comma-separated positive integers.
func parseIntegers(_ text: String, flag: String) throws -> [Int] {
    let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw CommandError("\(flag) must be comma-separated positive integers, got '\(text)'")
    }
    return values.map { $0! }
}

/// `kiln coord-check`: mean |x| of every layer's output across widths, and its slope against width.
struct CoordinateCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coord-check",
        abstract: "Check a parametrization: do layer outputs keep their size as width grows? Exit 0 when every |slope| ≤ 0.15.",
        discussion: """
            Trains each width for --steps steps on one fixed batch (MLP 32 → w → … → 10 on the teacher task, or the \
            lm model on mqar), --seeds times, recording the mean |x| of every layer's output before each update. \
            For each tensor and step ≥ 2 it fits log2(mean |x|) against log2(width) and reports the slope. Writes \
            coord-check.svg (one panel per step) and, with --json, the slopes. For lm, heads keep 16 features and \
            grow in number with width unless --heads fixes their number: with a fixed number, each head widens, \
            and a DeltaNet mixer's tokens grow more alike as its heads widen, which shows up in the logits \
            whatever the parametrization.
            """
    )

    @Option(parsing: .unconditional, help: "Model.") var model = CoordinateCheckModel.mlp
    @Option(parsing: .unconditional, help: "Parametrization: SP or μP.") var param = Parametrization.Kind.mup
    @Option(parsing: .unconditional, help: "The width at which μP and SP coincide.") var baseWidth = 64
    @Option(parsing: .unconditional, help: "Comma-separated widths.") var widths = "64,128,256,512,1024"
    @Option(parsing: .unconditional, help: "Training steps recorded per width.") var steps = 5
    @Option(parsing: .unconditional, help: "Seeds averaged per width.") var seeds = 3
    @Option(parsing: .unconditional, help: "Optimizer.") var optimizer = CoordinateCheckOptimizer.adam
    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Learning rate.") var learningRate: Float = 1e-2
    @Option(parsing: .unconditional, help: "Hidden layers of the MLP.") var depth = 3
    @Option(parsing: .unconditional, help: "lm token mixer.") var mixer = MixerKind.delta
    @Option(parsing: .unconditional, help: "lm blocks.") var layers = 2
    @Option(parsing: .unconditional, help: "lm: this many heads at every width, each of width / N features.") var heads: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp("lm: N features per head, so heads = width / N and wider models get more heads (default 16 unless --heads is given).",
                               discussion: "At the base width 64 both give 4 heads of 16."))
    var headDim: Int?
    @Option(parsing: .unconditional, help: "Examples in the fixed batch.") var batchSize = 64
    @Option(parsing: .unconditional, help: "Device: auto, cpu, opencl or opencl:N.") var device: String?
    @Option(parsing: .unconditional, help: "Write the slopes as JSON to this file.") var json: String?
    @Option(parsing: .unconditional, help: "Where to write the plot.") var plot = "coord-check.svg"

    func run() throws {
        var settings = CoordinateCheck.Configuration()
        settings.model = model.kind
        settings.parametrization = Parametrization(kind: param, baseWidth: baseWidth)
        settings.widths = try parseIntegers(widths, flag: "--widths")
        settings.steps = steps
        settings.seeds = seeds
        settings.optimizer = optimizer.kind
        settings.learningRate = learningRate
        settings.depth = depth
        settings.mixer = mixer
        settings.layers = layers
        if heads != nil && headDim != nil { throw CommandError("give --heads (a fixed number of heads) or --head-dim (a fixed head size), not both") }
        settings.heads = heads ?? 4
        settings.headDimension = heads == nil ? (headDim ?? 16) : nil
        settings.batchSize = batchSize
        try OutputPath.checkFile(plot, flag: "--plot")
        if let json { try OutputPath.checkFile(json, flag: "--json") }
        let description = try resolveDevice(device)
        let result = try CoordinateCheck.run(settings, makeBackend: { try Devices.makeBackend(for: description) }) { message in
            FileHandle.standardError.write(Data("\(message)\n".utf8))
        }
        printTable(result)
        try result.plot.write(to: URL(fileURLWithPath: plot))
        if let json { try JSONFile.write(result, to: URL(fileURLWithPath: json)) }
        let worst = result.worst
        let verdict = result.maximumAbsoluteSlope <= 0.15 ? "passed" : "failed"
        print("coordinate check \(verdict): max |slope| \(String(format: "%.3f", result.maximumAbsoluteSlope))"
              + (worst.map { " (\($0.tensor), step \($0.step))" } ?? "") + "; plot in \(plot)")
        if result.maximumAbsoluteSlope > 0.15 || result.maximumAbsoluteSlope.isNaN { throw ExitCode(1) }
    }

    private func printTable(_ result: CoordinateCheck.Result) {
        let steps = Array(2...result.configuration.steps)
        var rows: [[String]] = []
        for tensor in result.tensors {
            rows.append([tensor] + steps.map { step in
                let slope = result.slopes.first { $0.tensor == tensor && $0.step == step }!.slope
                return String(format: "%+.3f", slope)
            })
        }
        print("slope of log2(mean |x|) against log2(width), \(result.configuration.parametrization.kind.rawValue), widths \(result.configuration.widths.map(String.init).joined(separator: ","))")
        print(TextTable.render(header: ["tensor"] + steps.map { "step \($0)" }, rows: rows))
    }
}

/// `kiln sweep`: every width × learning rate, and the best learning rate per width.
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Train every width × learning rate and report the best learning rate per width (μP's transfer test).",
        discussion: """
            Each run's loss is the mean training loss over its last 10% of steps; a diverged run counts as infinite. \
            Runs share nothing: --jobs runs train at once (on the CPU each gets cores/jobs threads), spread over \
            --devices: worker w takes the device at (w mod the list's length); under mpirun, worker w of the rank \
            with local rank r (its rank on its host) takes the device at ((r · jobs + w) mod the length), so the \
            ranks of a host spread over the list instead of all taking its first device. Each progress line names \
            the device its run trained on. Writes sweep.svg and, with --json, {"param", "widths", "log2_lrs", "loss", "best_log2_lr"}.
            """
    )

    @Option(parsing: .unconditional, help: "Task.") var task = "teacher"
    @Option(parsing: .unconditional, help: "Model.") var model = ModelKind.mlp
    @Option(parsing: .unconditional, help: "Parametrization: SP or μP.") var param = Parametrization.Kind.mup
    @Option(parsing: .unconditional, help: "The width at which μP and SP coincide.") var baseWidth = 64
    @Option(parsing: .unconditional, help: "Comma-separated widths.") var widths = "64,256,1024"
    @Option(parsing: .unconditional, help: "Learning rates as powers of two, low:high, e.g. 2^-14:2^-4.") var lrs = "2^-14:2^-4"
    @Option(parsing: .unconditional, help: "Training steps per run.") var steps = 300
    @Option(parsing: .unconditional, help: "Seeds per width and learning rate.") var seeds = 2
    @Option(parsing: .unconditional, help: "Optimizer.") var optimizer = SweepOptimizer.adam
    @Option(parsing: .unconditional, help: "Hidden layers.") var depth = 3
    @Option(parsing: .unconditional, help: "Examples per step.") var batchSize = 128
    @Option(parsing: .unconditional, help: "Runs at once.") var jobs = ProcessInfo.processInfo.activeProcessorCount
    @Option(parsing: .unconditional, help: "Device for every run: auto, cpu, opencl or opencl:N (default: $KILN_DEVICE, else auto).") var device: String?
    @Option(parsing: .unconditional, help: "Comma-separated devices to spread runs over, instead of --device (under mpirun, over every rank's workers on a host).") var devices: String?
    @Option(parsing: .unconditional, help: "Write the results as JSON to this file.") var json: String?
    @Option(parsing: .unconditional, help: "Where to write the plot.") var plot = "sweep.svg"
    @Option(parsing: .unconditional, help: ArgumentHelp("Append each finished run to this JSON-lines file, and skip the runs it already holds with the same settings.",
                               discussion: "A stopped sweep started again with the same --runs file trains only what is missing."))
    var runs: String?

    func run() throws {
        var settings = LearningRateSweep.Configuration()
        settings.training.task = task
        settings.training.model = model
        settings.training.depth = depth
        settings.training.steps = steps
        settings.training.batchSize = batchSize
        settings.training.evalEvery = steps
        settings.training.logEvery = steps
        settings.training.parametrization = Parametrization(kind: param, baseWidth: baseWidth)
        settings.training.optimizer = optimizer.kind
        try settings.training.validate()
        settings.widths = try parseIntegers(widths, flag: "--widths")
        settings.log2LearningRates = try LearningRateSweep.parseRange(lrs)
        settings.seeds = seeds
        guard jobs >= 1 else { throw CommandError("--jobs must be at least 1, got \(jobs)") }
        settings.jobs = jobs
        if device != nil && devices != nil { throw CommandError("give --device (one device for every run) or --devices (a list to spread runs over), not both") }
        // Under mpirun, the ranks share the runs out; rank 0 reads and writes every file.
        let communicator = try DistributedJob.start()
        let deviceIDs: [String]
        if let devices {
            let names = devices.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard !names.contains(where: \.isEmpty) else { throw CommandError("--devices must be comma-separated device names, got '\(devices.prefix(80))'") }
            deviceIDs = try names.map { try Devices.resolve($0).id }
        } else {
            deviceIDs = [DistributedJob.device(try resolveDevice(device), request: device, communicator: communicator).id]
        }
        try OutputPath.checkFile(plot, flag: "--plot")
        if let json { try OutputPath.checkFile(json, flag: "--json") }
        let total = settings.widths.count * settings.log2LearningRates.count * settings.seeds
        let runLog = communicator.isRoot ? try runs.map { try RunLog(path: $0, settings: settings.runSettings) } : nil
        let reused = LearningRateSweep.reusable(runLog?.finished ?? [], for: settings)
        if let runs, !reused.isEmpty { FileHandle.standardError.write(Data("reusing \(reused.count) finished runs from \(runs)\n".utf8)) }
        let isRoot = communicator.isRoot
        let finished = Counter(start: reused.count)
        // Workers take the devices in turn: `worker` counts the workers of every rank on this host (LearningRateSweep.run).
        let makeBackend: @Sendable (Int) throws -> any Backend = { worker in try Devices.makeBackend(deviceIDs[worker % deviceIDs.count]) }
        let result = try LearningRateSweep.run(settings, makeBackend: makeBackend, finished: reused, record: { run in runLog?.append(run) }, progress: { message in
            guard isRoot else { return }
            let done = finished.increment()
            FileHandle.standardError.write(Data("[\(done)/\(total)] \(message)\n".utf8))
        }, communicator: communicator)
        DistributedJob.finish()
        guard isRoot else { return }
        if let error = runLog?.writeError { throw CommandError("could not append to --runs file \(runs ?? ""): \(error); the sweep's results are still printed above") }
        var rows: [[String]] = []
        for (index, width) in settings.widths.enumerated() {
            rows.append(["\(width)", "2^\(result.bestLog2LearningRate[index])", String(format: "%.4f", result.bestLoss[index])]
                        + result.loss[index].map { $0.isFinite ? String(format: "%.3f", $0) : "inf" })
        }
        print(TextTable.render(header: ["width", "best lr", "best loss"] + settings.log2LearningRates.map { "2^\($0)" }, rows: rows))
        let spread = (result.bestLog2LearningRate.max() ?? 0) - (result.bestLog2LearningRate.min() ?? 0)
        print("best log2 learning rate moves by \(spread) across widths (\(param.rawValue)); plot in \(plot)")
        try result.plot.write(to: URL(fileURLWithPath: plot))
        if let json { try JSONFile.write(result, to: URL(fileURLWithPath: json)) }
    }
}

/// The `--runs` file of `kiln sweep`: the finished runs it already holds, and an append per new run.
final class RunLog: Sendable {
    let finished: [LearningRateSweep.Run]
    private let settings: LearningRateSweep.RunSettings
    private let path: String
    private let error = Mutex<String?>(nil)

    /// The largest `--runs` file read: 256 MiB, about a million runs.
    static let maximumBytes = 256 << 20

    init(path: String, settings: LearningRateSweep.RunSettings) throws {
        self.path = path
        self.settings = settings
        guard FileManager.default.fileExists(atPath: path) else {
            finished = []
            try OutputPath.checkFile(path, flag: "--runs")
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw CommandError("cannot create --runs file \(path); check that its folder exists and is writable")
            }
            return
        }
        let data: Data
        do {
            data = try readRegularFile(path, maximumBytes: Self.maximumBytes, reason: "a run takes one line of a few hundred bytes")
        } catch {
            throw CommandError("--runs file \(error.description)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw CommandError("cannot read --runs file \(path) as UTF-8 text; give a JSON-lines file written by kiln sweep, or a new path")
        }
        guard access(path, W_OK) == 0 else { throw CommandError("--runs file \(path) is not writable; the sweep appends every finished run to it") }
        var runs: [LearningRateSweep.Run] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let data = Data(line.utf8)
            guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
                throw CommandError("--runs file \(path), line \(number + 1) is not a JSON object; give a file written by kiln sweep, or a new path")
            }
            if let run = LearningRateSweep.Run(jsonLine: data, settings: settings) { runs.append(run) }
        }
        finished = runs
    }

    /// Appends one run as a JSON line (the first failure is kept in `writeError`).
    func append(_ run: LearningRateSweep.Run) {
        error.withLock { error in
            guard error == nil else { return }
            guard let handle = FileHandle(forWritingAtPath: path) else {
                error = "cannot open it for writing"
                return
            }
            defer { try? handle.close() }
            do {
                try handle.seekToEnd()
                try handle.write(contentsOf: run.jsonLine(settings: settings))
            } catch let failure {
                error = String(describing: failure)
            }
        }
    }

    var writeError: String? { error.withLock { $0 } }
}

/// A thread-safe counter for progress lines.
final class Counter: Sendable {
    private let value: Mutex<Int>
    init(start: Int = 0) { value = Mutex(start) }
    func increment() -> Int {
        value.withLock { count in
            count += 1
            return count
        }
    }
}

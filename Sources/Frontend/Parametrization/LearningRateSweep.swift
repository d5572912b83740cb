import Dispatch
import Foundation
import KilnPlot
import Synchronization

/// Trains every width × learning rate (× seed) and finds the best learning rate per width: the test of
/// μP's promise that the best hyperparameters of a narrow model hold for a wide one.
public struct LearningRateSweep {
    public struct Configuration: Sendable {
        public var training = TrainingConfiguration()
        public var widths = [64, 256, 1024]
        /// Base-2 logarithms of the learning rates tried.
        public var log2LearningRates = Array(-14 ... -4)
        public var seeds = 2
        /// Runs at once (each on its own backend); on the CPU each gets cores / jobs threads.
        public var jobs = 1
        public init() {}
    }

    public struct Result: Sendable {
        public var configuration: Configuration
        /// `loss[width][lr]`: mean over seeds of the mean training loss over the last 10% of steps;
        /// infinity where a run diverged.
        public var loss: [[Double]]
        public var bestLog2LearningRate: [Int]
        public var bestLoss: [Double]
    }

    /// One finished run: what `kiln sweep --runs FILE` appends as a JSON line, and reads back to skip the
    /// runs a stopped sweep had already finished.
    public struct Run: Sendable, Equatable {
        public var width: Int
        public var log2LearningRate: Int
        public var seed: Int
        /// Mean training loss over the last 10% of steps; infinity when the run diverged.
        public var loss: Double

        public init(width: Int, log2LearningRate: Int, seed: Int, loss: Double) {
            self.width = width
            self.log2LearningRate = log2LearningRate
            self.seed = seed
            self.loss = loss
        }

        /// The run as one line of a `--runs` file, with its line break:
        /// `{"width", "log2_lr", "seed", "loss" (null when diverged), "settings"}`.
        public func jsonLine(settings: RunSettings) throws -> Data {
            try JSONFile.encoded(RecordedRun(width: width, log2LearningRate: log2LearningRate, seed: seed, loss: loss.isFinite ? loss : nil, settings: settings)) + [0x0A]
        }

        /// Reads a line written by `jsonLine(settings:)`; nil when it is not one or its settings differ.
        public init?(jsonLine: some DataProtocol, settings: RunSettings) {
            guard let recorded = try? JSONDecoder().decode(RecordedRun.self, from: Data(jsonLine)), recorded.settings == settings else { return nil }
            self.init(width: recorded.width, log2LearningRate: recorded.log2LearningRate, seed: recorded.seed, loss: recorded.loss ?? .infinity)
        }
    }

    /// The settings a recorded run must share to be reused: everything but width, learning rate and seed.
    public struct RunSettings: Codable, Equatable, Sendable {
        public var param: String
        public var baseWidth: Int
        public var task: String
        public var model: String
        public var depth: Int
        public var optimizer: String
        public var steps: Int
        public var batchSize: Int

        enum CodingKeys: String, CodingKey {
            case param, baseWidth = "base_width", task, model, depth, optimizer, steps, batchSize = "batch_size"
        }
    }

    /// A line of a `--runs` file.
    private struct RecordedRun: Codable {
        var width: Int
        var log2LearningRate: Int
        var seed: Int
        /// nil (`null`) when the run diverged.
        var loss: Double?
        var settings: RunSettings

        enum CodingKeys: String, CodingKey {
            case width, log2LearningRate = "log2_lr", seed, loss, settings
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(width, forKey: .width)
            try container.encode(log2LearningRate, forKey: .log2LearningRate)
            try container.encode(seed, forKey: .seed)
            try container.encode(loss, forKey: .loss)
            try container.encode(settings, forKey: .settings)
        }
    }

    /// The recorded runs that belong to this sweep (one of its widths, learning rates and seeds), one per
    /// run, the last recorded where a run appears more than once.
    public static func reusable(_ finished: [Run], for configuration: Configuration) -> [Run] {
        var byRun: [[Int]: Run] = [:]
        for run in finished where configuration.widths.contains(run.width) && configuration.log2LearningRates.contains(run.log2LearningRate)
            && (0..<configuration.seeds).contains(run.seed) {
            byRun[[run.width, run.log2LearningRate, run.seed]] = run
        }
        return Array(byRun.values)
    }

    /// Parses `2^-14:2^-4` (or `-14:-4`) into exponents with step 1.
    /// The powers of two a sweep may use as learning rates: float32's normal range.
    public static let exponents = -126...127
    /// The most runs one sweep may have (widths × learning rates × seeds).
    public static let maximumRuns = 100_000

    public static func parseRange(_ text: String) throws(TaskError) -> [Int] {
        let parts = text.split(separator: ":").map { $0.replacingOccurrences(of: "2^", with: "").trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let low = Int(parts[0]), let high = Int(parts[1]), low <= high else {
            throw TaskError("--lrs must look like 2^-14:2^-4 (powers of two, low:high), got '\(text.prefix(80))'")
        }
        guard exponents.contains(low) && exponents.contains(high) else {
            throw TaskError("--lrs exponents must be \(exponents.lowerBound) to \(exponents.upperBound) (learning rates are float32), got '\(text.prefix(80))'")
        }
        return Array(low...high)
    }

    /// The loss a run is scored by: the mean training loss over its last 10% of steps.
    static func score(_ configuration: TrainingConfiguration, backend: any Backend) throws -> Double {
        let trainer = try Trainer(configuration: configuration, backend: backend, checkpoints: false)
        let tail = max(1, configuration.steps / 10)
        let total = Tensor.zeros([], on: backend)
        for step in 0..<configuration.steps {
            let loss = try trainer.step()
            if step >= configuration.steps - tail {
                backend.binary(.add, total.storage, .contiguous([]), loss.storage, .contiguous([]), into: total.storage, shape: [])
            }
        }
        let mean = Double(try total.item()) / Double(tail)
        return mean.isFinite ? mean : .infinity
    }

    /// Runs the sweep. Runs found in `finished` (same width, learning rate and seed) are not trained again;
    /// `record` receives every run trained here as it ends.
    ///
    /// With several ranks (`mpirun -np N kiln sweep`), rank `r` trains every `N`-th of the runs left, in
    /// rounds of `N × jobs` runs; after each round every rank receives the round's losses, so every rank
    /// returns the same result, which is the one a single process gives (each run is trained whole by one
    /// rank, from its own seed). Rank 0's `finished` runs count for all; on rank 0, `record` and
    /// `progress` receive every rank's runs after each round.
    ///
    /// Each progress line names the device its run trained on (and the rank, for another rank's run).
    ///
    /// - Parameter makeBackend: a fresh backend for each run, given the index on its host of the worker
    ///   that trains it, `localRank × jobs + w` for worker `w` (0 ..< jobs) of this rank (`w` alone in a
    ///   single process), so that the workers of every rank on a host can be spread over its devices; by
    ///   default the CPU.
    public static func run(_ configuration: Configuration, makeBackend: @escaping @Sendable (_ worker: Int) throws -> any Backend = { _ in CPUBackend() },
                           finished: [Run] = [], record: @escaping @Sendable (Run) -> Void = { _ in },
                           progress: @escaping @Sendable (String) -> Void = { _ in }, communicator: any Communicator = SingleProcess()) throws -> Result {
        guard !configuration.widths.isEmpty, !configuration.log2LearningRates.isEmpty, configuration.seeds >= 1 else {
            throw TaskError("sweep needs widths, learning rates and at least one seed (--seeds \(configuration.seeds))")
        }
        guard Set(configuration.widths).count == configuration.widths.count else { throw TaskError("--widths lists a width twice; give each width once") }
        guard configuration.log2LearningRates.allSatisfy(exponents.contains) else {
            throw TaskError("learning-rate exponents must be \(exponents.lowerBound) to \(exponents.upperBound) (learning rates are float32)")
        }
        guard configuration.jobs >= 1 else { throw TaskError("--jobs must be at least 1, got \(configuration.jobs)") }
        let runCount = Saturating.multiply(Saturating.multiply(configuration.widths.count, configuration.log2LearningRates.count), configuration.seeds)
        guard runCount <= maximumRuns else {
            throw TaskError("the sweep has \(runCount) runs (widths × learning rates × seeds), more than \(maximumRuns); sweep fewer at once")
        }
        // Every width is checked before the first run trains, and the widest for memory, as many at once
        // as there are workers.
        for width in configuration.widths {
            var training = configuration.training
            training.width = width
            try training.validate()
        }
        struct Job: Sendable { let width: Int, rate: Int, seed: Int }
        // Widest first: the widest runs take longest, and starting them first keeps every worker busy
        // to the end instead of leaving one wide run alone at the tail. The order changes no result.
        let jobs = configuration.widths.sorted(by: >).flatMap { width in
            configuration.log2LearningRates.flatMap { rate in (0..<configuration.seeds).map { Job(width: width, rate: rate, seed: $0) } }
        }
        var finished = finished
        if communicator.size > 1 {
            // Rank 0's record of finished runs is the job's.
            let sent = communicator.isRoot ? finished.flatMap { [Double($0.width), Double($0.log2LearningRate), Double($0.seed), $0.loss] } : []
            let gathered = try communicator.allGather(sent.withUnsafeBytes(Array.init), for: "the sweep's finished runs")[0]
            let values = gathered.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
            finished = stride(from: 0, to: values.count - 3, by: 4).map { Run(width: Int(values[$0]), log2LearningRate: Int(values[$0 + 1]), seed: Int(values[$0 + 2]), loss: values[$0 + 3]) }
        }
        let recorded = Dictionary(uniqueKeysWithValues: reusable(finished, for: configuration).map { ([$0.width, $0.log2LearningRate, $0.seed], $0.loss) })
        var known: [Int: Double] = [:]
        for (index, job) in jobs.enumerated() {
            if let loss = recorded[[job.width, job.rate, job.seed]] { known[index] = loss }
        }
        let remaining = jobs.indices.filter { known[$0] == nil }
        let scores = Mutex<[Int: Double]>(known)
        let failure = Mutex<String?>(nil)
        // The device each run trained on, by its index in `jobs`.
        let devices = Mutex<[Int: String]>([:])
        let next = Atomic<Int>(0)
        let workers = max(1, min(configuration.jobs, remaining.count))
        // This rank's workers follow those of the ranks before it on the host.
        let firstWorker = communicator.localRank * configuration.jobs
        // The backend made for the memory check trains worker 0's first run: still one backend per run.
        let spare = SpareBackend()
        if let widest = remaining.map({ jobs[$0].width }).max() {
            var training = configuration.training
            training.width = widest
            let backend = try makeBackend(firstWorker)
            try MemoryEstimate.check(training, on: backend.device, copies: workers, checkpoints: false)
            spare.put(backend)
        }
        let previousThreads = CPUBackend.threadCount
        if workers > 1 { CPUBackend.setThreadCount(max(1, previousThreads / workers)) }
        defer { CPUBackend.setThreadCount(previousThreads) }
        let settings = configuration
        // Trains the runs at `positions` of `jobs`, on `workers` threads.
        func train(_ positions: [Int]) {
            next.store(0, ordering: .relaxed)
            DispatchQueue.concurrentPerform(iterations: max(1, min(workers, positions.count))) { worker in
            while true {
                let position = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard position < positions.count, failure.withLock({ $0 == nil }) else { return }
                let index = positions[position]
                let job = jobs[index]
                var training = settings.training
                training.width = job.width
                training.learningRate = Float(Foundation.pow(2.0, Double(job.rate)))
                training.seed = UInt64(job.seed)
                do {
                    let backend = try (worker == 0 ? spare.take() : nil) ?? makeBackend(firstWorker + worker)
                    let value = try score(training, backend: backend)
                    scores.withLock { $0[index] = value }
                    devices.withLock { $0[index] = backend.device.id }
                    record(Run(width: job.width, log2LearningRate: job.rate, seed: job.seed, loss: value))
                    progress("width \(job.width) lr 2^\(job.rate) seed \(job.seed): \(value.isFinite ? String(format: "%.4f", value) : "diverged") (\(backend.device.id))")
                } catch {
                    failure.withLock { $0 = $0 ?? String(describing: error) }
                }
            }
            }
        }
        if communicator.size == 1 {
            train(remaining)
        } else {
            let size = communicator.size, rank = communicator.rank
            for roundStart in stride(from: 0, to: remaining.count, by: workers * size) {
                let round = Array(remaining[roundStart..<min(remaining.count, roundStart + workers * size)])
                let mine = round.indices.filter { $0 % size == rank }.map { round[$0] }
                let started = Date()
                train(mine)
                if let message = failure.withLock({ $0 }) { throw TaskError(message) }
                // Every rank's losses of the round; a peer's runs take about as long as this rank's.
                let sent = scores.withLock { values in mine.flatMap { [Double($0), values[$0] ?? .infinity] } }
                let limit = Launch.waitLimitSeconds + 4 * Date().timeIntervalSince(started)
                let gathered = try communicator.allGather(sent.withUnsafeBytes(Array.init), for: "the sweep's results", limitSeconds: limit)
                // The devices of those runs, in the same order (a JSON array of device names).
                let names = devices.withLock { trained in mine.map { trained[$0] ?? "" } }
                let gatheredNames = try communicator.allGather(Array(try JSONSerialization.data(withJSONObject: names)), for: "the sweep's devices", limitSeconds: limit)
                for (peer, bytes) in gathered.enumerated() where peer != rank {
                    let values = bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
                    let peerDevices = (try? JSONSerialization.jsonObject(with: Data(gatheredNames[peer]))) as? [String] ?? []
                    for pair in stride(from: 0, to: values.count - 1, by: 2) {
                        let index = Int(values[pair]), value = values[pair + 1]
                        guard jobs.indices.contains(index) else { continue }
                        scores.withLock { $0[index] = value }
                        let job = jobs[index]
                        record(Run(width: job.width, log2LearningRate: job.rate, seed: job.seed, loss: value))
                        let device = peerDevices.indices.contains(pair / 2) ? ", \(peerDevices[pair / 2])" : ""
                        progress("width \(job.width) lr 2^\(job.rate) seed \(job.seed): \(value.isFinite ? String(format: "%.4f", value) : "diverged") (rank \(peer)\(device))")
                    }
                }
            }
        }
        if let message = failure.withLock({ $0 }) { throw TaskError(message) }
        let values = scores.withLock { $0 }
        var loss: [[Double]] = []
        for width in configuration.widths {
            loss.append(configuration.log2LearningRates.map { rate in
                let runs = jobs.indices.filter { jobs[$0].width == width && jobs[$0].rate == rate }.map { values[$0] ?? .infinity }
                return runs.reduce(0, +) / Double(runs.count)
            })
        }
        let best = loss.map { row in row.indices.min { row[$0] < row[$1] }! }
        return Result(configuration: configuration, loss: loss, bestLog2LearningRate: best.map { configuration.log2LearningRates[$0] },
                      bestLoss: zip(loss, best).map { $0[$1] })
    }
}

extension LearningRateSweep.Configuration {
    /// The settings a recorded run must share to be reused: everything but width, learning rate and seed.
    public var runSettings: LearningRateSweep.RunSettings {
        LearningRateSweep.RunSettings(
            param: training.parametrization.kind.rawValue, baseWidth: training.parametrization.baseWidth, task: training.task,
            model: training.model.rawValue, depth: training.depth, optimizer: training.optimizer.rawValue, steps: training.steps,
            batchSize: training.batchSize)
    }
}

extension LearningRateSweep.Result {
    /// Loss against log2 learning rate, one curve per width.
    public var plot: LinePlot {
        LinePlot(
            title: "\(configuration.training.task), \(configuration.training.parametrization.kind.rawValue), \(configuration.training.optimizer.rawValue), \(configuration.training.steps) steps",
            xLabel: "log2 learning rate", yLabel: "training loss (last 10%)", logY: true,
            series: configuration.widths.indices.map { index in
                LinePlot.Series(name: "width \(configuration.widths[index])", points: configuration.log2LearningRates.indices.map { (Double(configuration.log2LearningRates[$0]), loss[index][$0]) })
            })
    }
}

extension LearningRateSweep.Result: Encodable {
    enum CodingKeys: String, CodingKey {
        case param, widths, log2LearningRates = "log2_lrs", loss, bestLog2LearningRate = "best_log2_lr"
    }

    /// `{"param", "widths", "log2_lrs", "loss": [[…] per width], "best_log2_lr": [… per width]}`; a diverged
    /// run's loss is `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(configuration.training.parametrization.kind.rawValue, forKey: .param)
        try container.encode(configuration.widths, forKey: .widths)
        try container.encode(configuration.log2LearningRates, forKey: .log2LearningRates)
        try container.encode(loss.map { row in row.map { $0.isFinite ? $0 : nil } }, forKey: .loss)
        try container.encode(bestLog2LearningRate, forKey: .bestLog2LearningRate)
    }
}

/// A backend waiting for the run that will use it, taken once under a lock.
final class SpareBackend: @unchecked Sendable {
    private let lock = NSLock()
    private var backend: (any Backend)?

    func put(_ backend: any Backend) {
        lock.withLock { self.backend = backend }
    }

    /// The backend, once; nil afterwards.
    func take() -> (any Backend)? {
        lock.withLock {
            defer { backend = nil }
            return backend
        }
    }
}

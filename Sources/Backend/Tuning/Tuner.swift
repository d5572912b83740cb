import Foundation
import KilnKernels

/// `kiln tune`: searches each family's ``TuningSpace`` on one OpenCL device, in the manner of CLBlast's
/// tuner. Per family, within its share of the budget:
///
/// 1. the built-in defaults are timed first (the baseline every other time is compared with);
/// 2. stage one: every valid candidate that changes one parameter of the defaults (a small exhaustive
///    set around them), and the device's current tuning when that differs;
/// 3. stage two: a seeded random sample of the valid space, until 70% of the family's share is spent;
/// 4. the final round: the defaults and the ``finalists`` best candidates of the search timed again in
///    alternation (up to three rounds, medians); the fastest finalist is kept only when it beats the
///    defaults there by more than ``keepMargin``, else the defaults stay. A search compares every candidate
///    with the defaults' one early timing, so a machine whose speed drifts during the search can make a
///    slower candidate look faster; the alternated timing cannot, and it is what the final table shows.
///
/// Every candidate is built, checked against the float64 reference (``DeviceCheck`` on the space's
/// families) before it is timed, and discarded, with a line in the log, if it fails to build, fails the
/// check, or is too slow. A kernel cannot be stopped once it runs, so a variant that would hang is capped
/// by problem size instead: the shapes are timed smallest first, a candidate more than
/// ``slowFactor`` × the best time on a shape (twice) is dropped before its larger shapes, and the shapes are
/// chosen so that the defaults' time on all of them fits in a fifteenth of the family's share.
/// For gemm, the crossover between the direct and the tiled kernel is tuned afterwards, on its own shapes.
public final class Tuner {
    public struct Options: Sendable {
        public var families: [OpFamily]
        /// The wall time of the whole run, in seconds.
        public var budgetSeconds: Double
        public var seed: UInt64
        /// Kernels from this folder instead of the usual search (tests use a copy with a broken variant).
        public var kernelFolder: URL?
        /// Only these candidates (besides the defaults) instead of the two stages, each evaluated whatever
        /// the budget (tests).
        public var candidates: [OpenCLTuning]?

        public init(families: [OpFamily], budgetSeconds: Double, seed: UInt64 = 0, kernelFolder: URL? = nil, candidates: [OpenCLTuning]? = nil) {
            self.families = families
            self.budgetSeconds = budgetSeconds
            self.seed = seed
            self.kernelFolder = kernelFolder
            self.candidates = candidates
        }
    }

    /// What happened to one candidate.
    public enum Outcome: Sendable, Equatable {
        /// Timed: its score is the geometric mean of its times over the defaults' (below 1 is faster).
        case timed(score: Double)
        case failedBuild(String)
        case failedCheck(String)
        case tooSlow(String)
    }

    /// Progress: the family, candidates done and planned, the last outcome and the best score so far.
    public struct Progress: Sendable {
        public var family: OpFamily
        public var done: Int
        public var planned: Int
        public var outcome: Outcome
        public var bestScore: Double
        public var elapsedSeconds: Double
        public var budgetSeconds: Double
    }

    /// The result of a run.
    public struct Report: Sendable {
        public var identity: TuningIdentity
        /// The built-in defaults with the tuned families' best parameters.
        public var tuning: OpenCLTuning
        /// The parameters of the tuned families (what the tuning file holds).
        public var parameters: [String: Int]
        /// Default against tuned per family and shape.
        public var results: [TuningResult]
        /// One line per discarded candidate and per decision.
        public var log: [String]
        public var seconds: Double
    }

    /// A candidate more than this many times slower than the best on a shape is dropped there.
    public static let slowFactor = 3.0
    /// How many of the search's fastest candidates are timed again against the defaults at the end.
    public static let finalists = 3
    /// A finalist replaces the defaults only when it is faster than them by more than this fraction in the
    /// alternated timing (a smaller gain is within the noise of a shared machine).
    public static let keepMargin = 0.02

    let device: OpenCLDevice
    let options: Options
    let locator: ResourceLocator
    let limits: DeviceLimits
    let defaults: OpenCLTuning
    private var log: [String] = []

    /// - Throws: ``CheckError`` with one line for a device that is not OpenCL (the CPU backend has no
    ///   kernel parameters), an unknown id, a family without a search space or a budget that is not positive.
    public init(deviceID: String, options: Options) throws(CheckError) {
        if deviceID == "cpu" {
            throw CheckError("the cpu device (OpenBLAS and C loops) has no kernel parameters to tune; pick an OpenCL device with --device opencl:N (see kiln devices)")
        }
        guard let device = OpenCLDevice.all.first(where: { $0.description.id == deviceID }) else {
            let ids = Devices.all().filter { $0.backend == .opencl }.map(\.id)
            throw CheckError(ids.isEmpty ? "no OpenCL device found, so there is nothing to tune; install an OpenCL driver (or pocl-opencl-icd for the CPU)"
                                         : "unknown OpenCL device '\(deviceID.prefix(40))'; the OpenCL devices are \(ids.joined(separator: ", "))")
        }
        guard options.budgetSeconds.isFinite, options.budgetSeconds > 0 else {
            throw CheckError("--budget must be a positive number of seconds, got \(options.budgetSeconds)")
        }
        for family in options.families where TuningSpace.space(for: family) == nil {
            throw CheckError("the \(family) family has no tuning parameters; the tunable families are \(TuningSpace.all.map(\.family.rawValue).joined(separator: ", "))")
        }
        self.device = device
        self.options = options
        self.locator = options.kernelFolder.map { ResourceLocator(.kernels, environment: [ResourceLocator.Kind.kernels.environmentVariable: $0.path]) } ?? ResourceLocator(.kernels)
        self.limits = device.limits
        self.defaults = .defaults(for: device.description)
    }

    /// Runs the search; `progress` is called after every candidate.
    public func run(progress: (Progress) -> Void = { _ in }) -> Report {
        let start = Date()
        let deadline = start.addingTimeInterval(options.budgetSeconds)
        var tuned = defaults
        var parameters: [String: Int] = [:]
        var results: [TuningResult] = []
        let spaces = options.families.compactMap(TuningSpace.space(for:))
        for (index, space) in spaces.enumerated() {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                log.append("\(space.family): not tuned, the budget was spent")
                continue
            }
            // An equal share of what is left for each family still to run; gemm keeps a fifth of its share for the crossover.
            // The search stops at 70% of it, leaving the rest for the final table (and for gemm's crossover).
            let share = remaining / Double(spaces.count - index)
            let searchShare = share * (space.family == .gemm ? 0.6 : 0.7)
            let familyDeadline = Date().addingTimeInterval(searchShare)
            // The final alternated round may use nine tenths of what the search leaves (gemm: half, the
            // crossover takes the rest); its first round always runs.
            let finalDeadline = familyDeadline.addingTimeInterval((share - searchShare) * (space.family == .gemm ? 0.5 : 0.9))
            let found = search(space, deadline: familyDeadline, finalDeadline: finalDeadline, progress: { progress(Progress(
                family: space.family, done: $0, planned: $1, outcome: $2, bestScore: $3,
                elapsedSeconds: Date().timeIntervalSince(start), budgetSeconds: options.budgetSeconds)) })
            for (name, _) in space.parameters {
                let parameter = OpenCLTuning.parameter(named: name)!
                parameter.write(&tuned, parameter.read(found.tuning))
                parameters[name] = parameter.read(found.tuning)
            }
            results += found.results
            if space.family == .gemm {
                let familyEnd = familyDeadline.addingTimeInterval(share - searchShare)
                let crossover = tuneGemmCrossover(tuned, deadline: min(familyEnd, deadline))
                tuned.gemm.directMaximumWork = crossover.work
                parameters["gemm.directMaximumWork"] = crossover.work
                results += crossover.results
            }
        }
        return Report(identity: device.tuningIdentity, tuning: tuned, parameters: parameters, results: results, log: log, seconds: Date().timeIntervalSince(start))
    }

    // MARK: One family

    private struct Found {
        var tuning: OpenCLTuning
        var results: [TuningResult]
    }

    private func search(_ space: TuningSpace, deadline: Date, finalDeadline: Date, progress: (Int, Int, Outcome, Double) -> Void) -> Found {
        let family = space.family
        if let probe = space.probe, let backend = try? makeBackend(defaults), !probe(backend) {
            log.append("\(family): the probe kernel does not run on this device; kept the defaults")
            return Found(tuning: defaults, results: [])
        }
        // The shapes: smallest first, as many as the defaults can run in a fifteenth of the family's share.
        let allWorkloads = space.workloads()
        let baselineBackend: OpenCLBackend
        do {
            baselineBackend = try makeBackend(defaults)
        } catch {
            log.append("\(family): the default kernels do not build (\(error)); kept the defaults")
            return Found(tuning: defaults, results: [])
        }
        let allowance = deadline.timeIntervalSinceNow / 15
        var workloads: [TuningWorkload] = [], baseline: [Double] = []
        var spent = 0.0
        for workload in allWorkloads {
            if let last = workloads.last, let lastTime = baseline.last {
                let estimate = lastTime * workload.work / last.work * 4
                if spent + estimate > allowance {
                    log.append("\(family): shapes from \(workload.name) on left out (about \(String(format: "%.1f", estimate)) s each with the defaults; the budget allows \(String(format: "%.1f", allowance - spent)) s)")
                    break
                }
            }
            guard let time = measure(workload, on: baselineBackend, cap: .infinity) else {
                log.append("\(family): \(workload.name) failed with the defaults; left out")
                continue
            }
            workloads.append(workload)
            baseline.append(time)
            spent += time * 4
        }
        guard !workloads.isEmpty else { return Found(tuning: defaults, results: []) }

        let candidates = options.candidates ?? plan(space)
        var best = (tuning: defaults, score: 1.0, times: baseline)
        // The fastest candidates of the search, best first, for the final alternated round.
        var leaders: [(tuning: OpenCLTuning, score: Double)] = []
        var done = 0
        for candidate in candidates {
            // Candidates given in the options are all evaluated; the planned search stops at its deadline.
            guard Date() < deadline || options.candidates != nil else {
                log.append("\(family): stopped after \(done) of \(candidates.count) candidates, the family's share of the budget was spent")
                break
            }
            let (outcome, times) = evaluate(candidate, space: space, workloads: workloads, baseline: baseline, best: best.times)
            done += 1
            switch outcome {
            case let .timed(score):
                if score < best.score { best = (candidate, score, times!) }
                leaders.append((candidate, score))
                leaders.sort { $0.score < $1.score }
                if leaders.count > Self.finalists { leaders.removeLast() }
            case let .failedBuild(reason), let .failedCheck(reason), let .tooSlow(reason):
                log.append("\(family): discarded \(describe(candidate, space)): \(reason)")
            }
            progress(done, candidates.count, outcome, best.score)
        }
        log.append("\(family): best \(describe(best.tuning, space)), \(String(format: "%.3f", best.score))× the defaults' time in the search (geometric mean over \(workloads.count) shapes)")
        // The final round: the defaults and the finalists timed again in alternation, so that a machine whose
        // speed changed during the search still gives a fair ratio; the defaults stay unless beaten there.
        let finalists = leaders.filter { $0.score < 1 }.compactMap { leader in (try? makeBackend(leader.tuning)).map { (leader.tuning, $0) } }
        var defaultTimes = [[Double]](repeating: [], count: workloads.count)
        var finalistTimes = [[[Double]]](repeating: [[Double]](repeating: [], count: workloads.count), count: finalists.count)
        if !finalists.isEmpty {
            for round in 0..<3 {
                if round > 0 && Date() > finalDeadline { break }
                for (index, workload) in workloads.enumerated() {
                    if let time = measure(workload, on: baselineBackend, cap: .infinity) { defaultTimes[index].append(time) }
                    for (position, finalist) in finalists.enumerated() {
                        if let time = measure(workload, on: finalist.1, cap: .infinity) { finalistTimes[position][index].append(time) }
                    }
                }
            }
        }
        let verdict = Self.finalRound(defaultTimes: defaultTimes, fallback: baseline, finalistTimes: finalistTimes)
        let defaultMedians = verdict.defaultMedians
        for (position, finalist) in finalists.enumerated() {
            log.append("\(family): finalist \(describe(finalist.0, space)): \(String(format: "%.3f", verdict.ratios[position]))× the defaults' time, timed in alternation")
        }
        let kept = verdict.chosen.map { (tuning: finalists[$0].0, times: verdict.finalistMedians[$0]) }
        if kept == nil && !finalists.isEmpty {
            log.append("\(family): no candidate beat the defaults by more than \(Int(Self.keepMargin * 100))% when timed in alternation; kept the defaults")
        }
        let chosen = kept?.tuning ?? defaults
        let results = workloads.indices.map { index in
            let workload = workloads[index]
            let old = defaultMedians[index], new = kept?.times[index] ?? old
            return TuningResult(family: family.rawValue, shape: workload.name, defaultSeconds: old, tunedSeconds: new,
                                defaultRate: workload.work / old / 1e9, tunedRate: workload.work / new / 1e9, unit: workload.unit)
        }
        return Found(tuning: chosen, results: results)
    }

    /// The final round's decision. `defaultTimes[shape]` and `finalistTimes[finalist][shape]` are the
    /// alternated timings (seconds); a shape the defaults have no timing for uses `fallback[shape]`, and a
    /// finalist without one counts as infinitely slow there. Each finalist's ratio is the geometric mean over
    /// the shapes of its median time over the defaults' median; the chosen finalist is the one with the
    /// smallest ratio if that is below `1 − keepMargin`, else none (the defaults stay).
    public static func finalRound(defaultTimes: [[Double]], fallback: [Double], finalistTimes: [[[Double]]])
        -> (defaultMedians: [Double], finalistMedians: [[Double]], ratios: [Double], chosen: Int?)
    {
        func median(_ values: [Double], _ empty: Double) -> Double { values.isEmpty ? empty : values.sorted()[values.count / 2] }
        let defaults = defaultTimes.indices.map { median(defaultTimes[$0], fallback[$0]) }
        let medians = finalistTimes.map { times in times.indices.map { median(times[$0], .infinity) } }
        let ratios = medians.map { times in
            Foundation.exp(zip(times, defaults).map { Foundation.log($0 / $1) }.reduce(0, +) / Double(max(defaults.count, 1)))
        }
        let best = ratios.indices.min { ratios[$0] < ratios[$1] }
        let chosen = best.flatMap { ratios[$0] < 1 - keepMargin ? $0 : nil }
        return (defaults, medians, ratios, chosen)
    }

    /// Stage one (each parameter alone through its values, then the device's current tuning), then stage
    /// two (a seeded random sample of the valid space), without repeats; every candidate valid on the device.
    func plan(_ space: TuningSpace) -> [OpenCLTuning] {
        var seen: Set<[Int]> = [key(defaults, space)]
        var result: [OpenCLTuning] = []
        func add(_ candidate: OpenCLTuning) {
            guard space.isValid(candidate, limits), seen.insert(key(candidate, space)).inserted else { return }
            result.append(candidate)
        }
        for (name, values) in space.parameters {
            let parameter = OpenCLTuning.parameter(named: name)!
            for value in values {
                var candidate = defaults
                parameter.write(&candidate, value)
                add(candidate)
            }
        }
        add(device.lookUpTuning(kernels: locator).tuning)
        var random = RandomGenerator(seed: options.seed, stream: space.family.rawValue)
        var attempts = 0
        while result.count < 2000, attempts < 20_000 {
            attempts += 1
            var candidate = defaults
            for (name, values) in space.parameters {
                OpenCLTuning.parameter(named: name)!.write(&candidate, values[Int(random.next() % UInt64(values.count))])
            }
            add(candidate)
        }
        return result
    }

    private func key(_ tuning: OpenCLTuning, _ space: TuningSpace) -> [Int] {
        space.parameters.map { OpenCLTuning.parameter(named: $0.name)!.read(tuning) }
    }

    /// The space's parameters of a candidate, as `name=value` pairs that differ from the defaults.
    func describe(_ tuning: OpenCLTuning, _ space: TuningSpace) -> String {
        let changed = space.parameters.compactMap { name, _ -> String? in
            let parameter = OpenCLTuning.parameter(named: name)!
            let value = parameter.read(tuning)
            return value == parameter.read(defaults) ? nil : "\(name)=\(value)"
        }
        return changed.isEmpty ? "the defaults" : changed.joined(separator: " ")
    }

    private func makeBackend(_ tuning: OpenCLTuning) throws(BackendError) -> OpenCLBackend {
        try OpenCLBackend(device: device, tuning: tuning, kernelLocator: locator)
    }

    /// Builds, checks and times one candidate; the times are per workload.
    func evaluate(_ candidate: OpenCLTuning, space: TuningSpace, workloads: [TuningWorkload], baseline: [Double], best: [Double]) -> (Outcome, [Double]?) {
        let backend: OpenCLBackend
        do {
            backend = try makeBackend(candidate)
        } catch {
            return (.failedBuild(firstLine("\(error)")), nil)
        }
        let rows = DeviceCheck(families: space.checks, seed: options.seed).run(on: backend)
        if let failed = rows.first(where: { !$0.passed }) {
            let reason = failed.worst.hasPrefix("error:") ? failed.worst : "\(failed.worst) error \(String(format: "%.2e", failed.error)) > \(String(format: "%.0e", failed.bound))"
            return (failed.worst.contains("build") ? .failedBuild(reason) : .failedCheck("\(failed.family) \(failed.name): \(reason)"), nil)
        }
        var times: [Double] = []
        for (index, workload) in workloads.enumerated() {
            // Times of a few milliseconds jitter on a loaded machine: at least 20 ms of slack.
            let cap = max(Self.slowFactor * best[index], best[index] + 0.02)
            // A loaded machine stalls a run now and then: a candidate is dropped only when a second try is slow too.
            guard let time = measure(workload, on: backend, cap: cap) ?? measure(workload, on: backend, cap: cap) else {
                return (.tooSlow("\(workload.name) took over \(String(format: "%.3f", cap)) s (\(Self.slowFactor)× the best) or failed; larger shapes skipped"), nil)
            }
            times.append(time)
        }
        let logSum = zip(times, baseline).map { Foundation.log($0 / $1) }.reduce(0, +)
        return (.timed(score: Foundation.exp(logSum / Double(times.count))), times)
    }

    /// The median wall time of one run (after a warm-up run): three runs, or one when the warm-up took
    /// more than half a second; nil when the device reports an error or a timed run exceeds `cap`.
    func measure(_ workload: TuningWorkload, on backend: any Backend, cap: Double) -> Double? {
        let run = workload.prepare(backend)
        do {
            try backend.synchronize()
            let warmStart = Date()
            run()
            try backend.synchronize()
            // The warm-up holds the first launch's one-time costs (PoCL compiles a work-group function per
            // local size, about 0.6 s), so it gets ten seconds more than a timed run.
            if Date().timeIntervalSince(warmStart) > cap + 10 { return nil }
            let warm = Date().timeIntervalSince(warmStart)
            var times: [Double] = []
            let repeats = warm > 0.5 ? 1 : 3
            for _ in 0..<repeats {
                let runStart = Date()
                run()
                try backend.synchronize()
                times.append(Date().timeIntervalSince(runStart))
                if times.last! > cap { return nil }
            }
            return times.sorted()[times.count / 2]
        } catch {
            return nil
        }
    }

    // MARK: gemm's crossover

    /// Times every crossover shape with the direct and with the tiled kernel and picks the
    /// `directMaximumWork` (m·n·k below which gemm_direct runs) that minimizes the sum of each shape's
    /// time over its faster kernel's time.
    private func tuneGemmCrossover(_ tuning: OpenCLTuning, deadline: Date) -> (work: Int, results: [TuningResult]) {
        var direct = tuning, tiled = tuning
        direct.gemm.directMaximumWork = .max
        tiled.gemm.directMaximumRows = 0
        tiled.gemm.directMaximumColumns = 0
        tiled.gemm.directMaximumDepth = 0
        tiled.gemm.directMaximumWork = 0
        guard let directBackend = try? makeBackend(direct), let tiledBackend = try? makeBackend(tiled) else {
            log.append("gemm crossover: the kernels do not build; kept \(tuning.gemm.directMaximumWork)")
            return (tuning.gemm.directMaximumWork, [])
        }
        let sides = [32, 48, 64, 96, 128, 160, 192, 256, 320]
        var shapes = sides.map { ("crossover \($0)³", GemmProblem(m: $0, n: $0, k: $0)) }
        shapes += [("crossover 256×10×128 (readout)", GemmProblem(m: 256, n: 10, k: 128)), ("crossover 64×512×512", GemmProblem(m: 64, n: 512, k: 512)),
                   ("crossover 512×64×512 Bᵀ", GemmProblem(m: 512, n: 64, k: 512, transposeB: true)), ("crossover 128×128×1024 Aᵀ", GemmProblem(m: 128, n: 128, k: 1024, transposeA: true))]
        var measured: [(name: String, problem: GemmProblem, direct: Double, tiled: Double)] = []
        for (name, problem) in shapes.sorted(by: { $0.1.flops < $1.1.flops }) {
            // Candidates given in the options are all evaluated; the planned search stops at its deadline.
            guard Date() < deadline || options.candidates != nil else { break }
            let workload = TuningWorkload.gemm(name, problem)
            guard let d = measure(workload, on: directBackend, cap: 10), let t = measure(workload, on: tiledBackend, cap: 10) else { continue }
            measured.append((name, problem, d, t))
        }
        guard !measured.isEmpty else { return (tuning.gemm.directMaximumWork, []) }
        let choices = [0] + (12...26).map { 1 << $0 }
        func cost(_ work: Int) -> Double {
            var rule = tuning.gemm
            rule.directMaximumWork = work
            return measured.map { entry in
                let time = rule.usesDirectKernel(m: entry.problem.m, n: entry.problem.n, k: entry.problem.k) ? entry.direct : entry.tiled
                return time / min(entry.direct, entry.tiled)
            }.reduce(0, +)
        }
        let chosen = choices.min { cost($0) < cost($1) || (cost($0) == cost($1) && $0 == tuning.gemm.directMaximumWork) }!
        log.append("gemm crossover: gemm_direct below m·n·k = \(chosen) (was \(tuning.gemm.directMaximumWork)), over \(measured.count) shapes")
        let before = tuning.gemm
        var after = tuning.gemm
        after.directMaximumWork = chosen
        let results = measured.map { entry -> TuningResult in
            let old = before.usesDirectKernel(m: entry.problem.m, n: entry.problem.n, k: entry.problem.k) ? entry.direct : entry.tiled
            let new = after.usesDirectKernel(m: entry.problem.m, n: entry.problem.n, k: entry.problem.k) ? entry.direct : entry.tiled
            return TuningResult(family: "gemm", shape: entry.name, defaultSeconds: old, tunedSeconds: new,
                                defaultRate: entry.problem.flops / old / 1e9, tunedRate: entry.problem.flops / new / 1e9, unit: "GFLOP/s")
        }
        return (chosen, results)
    }

    private func firstLine(_ text: String) -> String {
        String(text.split(whereSeparator: \.isNewline).first ?? "").prefix(300).description
    }
}

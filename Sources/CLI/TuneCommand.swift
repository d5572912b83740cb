import ArgumentParser
import Foundation
import Kiln

/// `kiln tune`: searches the kernel parameters of an OpenCL device and stores the best in the user's
/// tuning file, which every later backend on that device reads (`kiln devices` shows which tuning applies).
struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Search the OpenCL kernel parameters of a device; store the best in $KILN_CACHE_DIR/tuning/.",
        discussion: """
            Each family's search space (beside its OpenCL code) is searched in two stages: every parameter of the \
            defaults changed alone, then a seeded random sample. Every candidate is checked against the float64 \
            reference before it is timed; candidates that fail to build, fail the check or are too slow are \
            discarded and logged. For gemm the direct/tiled crossover is tuned afterwards. --budget bounds the \
            whole run's wall time.
            """
    )

    @Option(parsing: .unconditional, help: "The OpenCL device (opencl:N, opencl, auto).")
    var device: String?

    @Option(parsing: .unconditional, help: "Comma-separated families (default: gemm,elementwise,rows,spline,scan; matmul is gemm).")
    var families: String?

    @Option(parsing: .unconditional, help: "Seconds the whole run may take.")
    var budget: Double = 300

    @Option(parsing: .unconditional, help: "Seed of the random stage and of the check inputs.")
    var seed: UInt64 = 0

    @Flag(help: "Also print the result as an entry of the shipped database (save it as Kernels/tuning/<vendor>-<architecture>.json).")
    var export = false

    @Flag(help: "Plain lines instead of a progress bar.")
    var plain = false

    func run() throws {
        let chosen: [OpFamily]
        do {
            chosen = try families.map(OpFamily.list) ?? TuningSpace.all.map(\.family)
        } catch {
            throw CommandError("--families: \(error.description)")
        }
        guard budget.isFinite, budget > 0 else { throw CommandError("--budget must be a positive number of seconds, got \(budget)") }
        let description = try resolveDevice(device)
        let tuner: Tuner
        do {
            tuner = try Tuner(deviceID: description.id, options: Tuner.Options(families: chosen, budgetSeconds: budget, seed: seed))
        } catch {
            throw CommandError(error.description)
        }
        let identity = Devices.tuningIdentity(for: description)!
        let destination = TuningLookup.userFolder.appendingPathComponent(identity.fileName)
        // Fail before the search, not after it, when the result cannot be stored.
        do {
            try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw CommandError("cannot create \(destination.deletingLastPathComponent().path) for the tuning file; set KILN_CACHE_DIR to a folder you can write to")
        }
        try OutputPath.checkFile(destination.path, flag: "KILN_CACHE_DIR")
        print("kiln tune: \(chosen.map(\.rawValue).joined(separator: ", ")) on \(description.id) (\(description.name), driver \(description.driverVersion)), budget \(ProgressBar.duration(budget)), seed \(seed)")
        let interactive = !plain && isatty(STDOUT_FILENO) != 0
        let report = tuner.run { progress in
            let outcome: String = switch progress.outcome {
            case let .timed(score): String(format: "%.3f×", score)
            case .failedBuild: "build failed"
            case .failedCheck: "check failed"
            case .tooSlow: "too slow"
            }
            let text = "\(progress.family) \(progress.done)/\(progress.planned)  last \(outcome)  best \(String(format: "%.3f", progress.bestScore))× the defaults' time  \(ProgressBar.duration(progress.elapsedSeconds))/\(ProgressBar.duration(progress.budgetSeconds))"
            ProgressBar.draw(fraction: progress.elapsedSeconds / progress.budgetSeconds, text: text, interactive: interactive)
        }
        if interactive { print("") }
        print("")
        for line in report.log { print(line) }
        print("")
        print(TextTable.render(header: ["family", "shape", "default", "tuned", "speed-up"], rows: report.results.map { result in
            let rate = { (value: Double?) in value.map { String(format: "%.3g %@", $0, result.unit ?? "") } }
            return [result.family, result.shape, rate(result.defaultRate) ?? String(format: "%.4f s", result.defaultSeconds),
                    rate(result.tunedRate) ?? String(format: "%.4f s", result.tunedSeconds), String(format: "%.2f×", result.defaultSeconds / result.tunedSeconds)]
        }))

        // Keep another run's families from the same driver; this run's families replace theirs.
        var parameters = report.parameters
        var results = report.results
        var measured = "\(ISO8601DateFormatter().string(from: Date())): kiln tune --device \(description.id) --families \(chosen.map(\.rawValue).joined(separator: ",")) --budget \(budget) --seed \(seed), \(String(format: "%.0f", report.seconds)) s"
        if case let .success(previous) = TuningLookup.readUserFileForMerge(destination), previous.identity == identity {
            parameters = previous.parameters.merging(report.parameters) { $1 }
            let tunedFamilies = Set(chosen.map(\.rawValue))
            results = previous.results.filter { !tunedFamilies.contains($0.family) } + report.results
            measured = previous.measured + "; " + measured
        }
        let file = TuningFile(identity: identity, parameters: parameters, measured: measured, results: results)
        do {
            try file.write(to: destination)
        } catch {
            throw CommandError("cannot write \(destination.path) (\(error.localizedDescription)); set KILN_CACHE_DIR to a folder you can write to")
        }
        print("\nsearch took \(ProgressBar.duration(report.seconds)); wrote \(destination.path)")
        if export {
            let entry = TuningDatabase.entry(identity, parameters: parameters, note: "\(identity.vendor)/\(identity.architecture): \(identity.device), driver \(identity.driverVersion); \(measured)")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print("\nshipped-database entry (Kernels/tuning/\(identity.vendor)-\(identity.architecture).json):")
            print(String(decoding: try encoder.encode(entry), as: UTF8.self))
        }
    }
}

import ArgumentParser
import Foundation

/// `kiln-bench`: Kiln's kernels and training step against their peers, measured in one run.
@main
struct KilnBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln-bench",
        abstract: "Benchmark Kiln's kernels against OpenBLAS, CLBlast and other peers.",
        subcommands: [MatmulBench.self, TrainStepBench.self, ScanBench.self, SplineBench.self]
    )
}

/// Options every benchmark takes.
struct CommonBenchOptions: ParsableArguments {
    @Option(help: "Write the results as a JSON array of {bench, impl, device, shape, median_seconds, gflops} to this file.")
    var json: String?

    @Option(help: "Seconds to spend measuring each case (at least 5 runs each).")
    var seconds: Double = 1.0
}

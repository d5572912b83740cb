import ArgumentParser

/// `kiln`: the root command; each subcommand lives in its own file.
struct KilnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "Train neural networks on any OpenCL device, or on the CPU through OpenBLAS.",
        discussion: """
            Devices are chosen with --device auto|cpu|opencl|opencl:N or the KILN_DEVICE environment variable; \
            `auto` takes the first OpenCL GPU, else the CPU backend. Kernels are read from Kernels/*.cl at run \
            time (KILN_KERNELS overrides where), and built programs are cached in KILN_CACHE_DIR \
            (default ~/.cache/kiln).
            """,
        subcommands: [DevicesCommand.self, CheckCommand.self, TuneCommand.self, TrainCommand.self, PredictCommand.self, GenerateCommand.self, PlotCommand.self, CoordinateCheckCommand.self, SweepCommand.self]
    )
}

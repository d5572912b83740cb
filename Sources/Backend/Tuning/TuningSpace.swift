import Foundation

/// One family's search space for `kiln tune`, defined beside that family's OpenCL code
/// (`SearchSpace+<Family>.swift` in Sources/Backend/OpenCL): the parameters with the values to try, the
/// constraints a candidate must meet on a device, the checks it must pass and the workloads it is timed on.
public struct TuningSpace: Sendable {
    /// The family whose parameters this space holds (`kiln tune --families`).
    public let family: OpFamily
    /// Parameter names (``OpenCLTuning/parameters``) and the values to try, each list holding the default.
    public let parameters: [(name: String, values: [Int])]
    /// Whether a candidate is valid on a device (divisibility, work-group size, local memory).
    let isValid: @Sendable (OpenCLTuning, DeviceLimits) -> Bool
    /// Families ``DeviceCheck`` runs on every candidate before it is timed.
    public let checks: [OpFamily]
    /// The representative shapes, smallest first (a far slower candidate is dropped after the first).
    let workloads: @Sendable () -> [TuningWorkload]
    /// An optional probe: the space is searched only where this returns true for the device (for
    /// example, where a small vendor-specific kernel builds).
    let probe: (@Sendable (OpenCLBackend) -> Bool)?

    init(
        family: OpFamily, parameters: [(name: String, values: [Int])], checks: [OpFamily],
        isValid: @escaping @Sendable (OpenCLTuning, DeviceLimits) -> Bool,
        workloads: @escaping @Sendable () -> [TuningWorkload], probe: (@Sendable (OpenCLBackend) -> Bool)? = nil
    ) {
        self.family = family
        self.parameters = parameters
        self.checks = checks
        self.isValid = isValid
        self.workloads = workloads
        self.probe = probe
    }

    /// The spaces of every tunable family, in the order `kiln tune` runs them.
    public static var all: [TuningSpace] { [.gemm, .elementwise, .rows, .spline, .scan] }

    /// The space of a family, if it has one.
    public static func space(for family: OpFamily) -> TuningSpace? { all.first { $0.family == family } }
}

/// One representative problem a candidate is timed on: a name for the table, the work it does (for a
/// rate), and how to run it on a backend (`prepare` allocates and fills the operands once and returns the
/// closure that enqueues one run).
public struct TuningWorkload: Sendable {
    public let name: String
    /// Floating-point operations (gemm) or elements per run, for a rate in the table.
    public let work: Double
    /// `GFLOP/s`, `Gelem/s`, … the unit of `work / seconds / 1e9`.
    public let unit: String
    let prepare: @Sendable (any Backend) -> () -> Void

    init(name: String, work: Double, unit: String, prepare: @escaping @Sendable (any Backend) -> () -> Void) {
        self.name = name
        self.work = work
        self.unit = unit
        self.prepare = prepare
    }
}

/// Launch and compile-time parameters of the OpenCL kernels for one device, chosen from its type with
/// safe defaults; benchmarks may pass their own. Each family's own parameters sit beside its OpenCL code
/// (``GemmTuning`` in `OpenCLBackend+Gemm.swift`); this aggregate holds them and the launch sizes that
/// several families share.
public struct OpenCLTuning: Sendable, Equatable {
    /// Work-group size of one-dimensional element-wise kernels.
    public var elementwiseGroupSize: Int
    /// Work-items sharing one row (`GROUP_SIZE` in `Kernels/reduce.cl` and `Kernels/rows.cl`); 1 on CPU
    /// devices.
    public var rowGroupSize: Int
    /// Rows per work-group of `rows.cl` when `rowGroupSize` is 1 (the serial-row variant).
    public var rowsPerGroup: Int
    /// SGEMM parameters (`Kernels/gemm.cl`).
    public var gemm: GemmTuning
    /// Linear-attention scan parameters (`Kernels/linear_attention.cl`).
    public var scan: ScanTuning
    /// KAN spline kernel parameters (`Kernels/spline.cl`).
    public var spline: SplineTuning

    public init(
        elementwiseGroupSize: Int, rowGroupSize: Int, rowsPerGroup: Int, gemm: GemmTuning,
        scan: ScanTuning = .gpuDevice, spline: SplineTuning = .gpuDevice
    ) {
        self.elementwiseGroupSize = elementwiseGroupSize
        self.rowGroupSize = rowGroupSize
        self.rowsPerGroup = rowsPerGroup
        self.gemm = gemm
        self.scan = scan
        self.spline = spline
    }

    /// The defaults for a device: ``cpuDevice`` for CPU devices, ``gpuDevice`` for every other type.
    public static func defaults(for device: DeviceDescription) -> OpenCLTuning {
        device.type == .cpu ? .cpuDevice : .gpuDevice
    }

    /// CPU devices (PoCL): barrier-free, register-blocked variants, one row per work-item.
    public static let cpuDevice = OpenCLTuning(
        elementwiseGroupSize: 64, rowGroupSize: 1, rowsPerGroup: 16, gemm: .cpuDevice, scan: .cpuDevice, spline: .cpuDevice)

    /// GPUs: work-group reductions over rows and a local-memory tiled SGEMM. The tests also run these on
    /// CPU devices, so the GPU code paths are checked where there is no GPU.
    public static let gpuDevice = OpenCLTuning(
        elementwiseGroupSize: 256, rowGroupSize: 128, rowsPerGroup: 1, gemm: .gpuDevice, scan: .gpuDevice, spline: .gpuDevice)
}

/// Parameters of `Kernels/linear_attention.cl` (see the comment at the top of that file).
public struct ScanTuning: Sendable, Equatable {
    /// Value columns per work-item, the vector width of its state tile (`VW`: 1, 2, 4, 8 or 16).
    public var columnsPerItem: Int
    /// Work-items (value tiles) per work-group.
    public var groupSize: Int
    /// Steps between state checkpoints in backward passes (at least; √T for long sequences): memory
    /// holds `⌈T / chunk⌉ + chunk` states per (batch, head).
    public var chunkLength: Int

    public init(columnsPerItem: Int, groupSize: Int, chunkLength: Int) {
        precondition([1, 2, 4, 8, 16].contains(columnsPerItem), "ScanTuning: columnsPerItem must be 1, 2, 4, 8 or 16, got \(columnsPerItem)")
        precondition(groupSize >= 1 && chunkLength >= 1, "ScanTuning: groupSize and chunkLength must be at least 1")
        self.columnsPerItem = columnsPerItem
        self.groupSize = groupSize
        self.chunkLength = chunkLength
    }

    /// CPU devices (PoCL): one work-item per 16 columns (a float16 state tile), one per work-group.
    public static let cpuDevice = ScanTuning(columnsPerItem: 16, groupSize: 1, chunkLength: 32)

    /// GPUs: four columns per work-item in groups of 16 (not measured on a GPU yet).
    public static let gpuDevice = ScanTuning(columnsPerItem: 4, groupSize: 16, chunkLength: 32)

    /// The `-D` options for `linear_attention.cl` at key dimension `keyDimension`.
    public func buildOptions(keyDimension: Int) -> String {
        "-D KEY_DIM=\(keyDimension) -D VW=\(columnsPerItem)"
    }
}

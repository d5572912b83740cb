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
    /// Linear-attention scan parameters (`Kernels/scan.cl`, ``ScanTuning`` beside the scan family's OpenCL code).
    public var scan: ScanTuning
    /// KAN spline kernel parameters (`Kernels/spline.cl`, ``SplineTuning`` beside the spline family's OpenCL code).
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

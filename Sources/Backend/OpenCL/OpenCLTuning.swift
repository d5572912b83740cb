/// Launch and compile-time parameters of the OpenCL kernels for one device, chosen from its type with
/// safe defaults; benchmarks may pass their own.
public struct OpenCLTuning: Sendable, Equatable {
    /// Work-group size of one-dimensional element-wise kernels.
    public var elementwiseGroupSize: Int
    /// Work-items sharing one row in row reductions (`GROUP_SIZE` in `reduce.cl`); 1 on CPU devices.
    public var rowGroupSize: Int
    /// Rows per work-group when `rowGroupSize` is 1 (the serial-row variant).
    public var rowsPerGroup: Int
    /// SGEMM parameters (`Kernels/matmul.cl`).
    public var matmul: MatmulTuning
    /// Linear-attention scan parameters (`Kernels/scan.cl`, ``ScanTuning`` beside the scan family's OpenCL code).
    public var scan: ScanTuning
    /// KAN spline kernel parameters (`Kernels/spline.cl`, ``SplineTuning`` beside the spline family's OpenCL code).
    public var spline: SplineTuning

    public init(
        elementwiseGroupSize: Int, rowGroupSize: Int, rowsPerGroup: Int, matmul: MatmulTuning,
        scan: ScanTuning = .gpuDevice, spline: SplineTuning = .gpuDevice
    ) {
        self.elementwiseGroupSize = elementwiseGroupSize
        self.rowGroupSize = rowGroupSize
        self.rowsPerGroup = rowsPerGroup
        self.matmul = matmul
        self.scan = scan
        self.spline = spline
    }

    /// The defaults for a device: CPU devices (PoCL) get barrier-free, register-blocked variants; GPUs get
    /// work-group reductions and a local-memory tiled SGEMM.
    public static func defaults(for device: DeviceDescription) -> OpenCLTuning {
        if device.type == "cpu" {
            return OpenCLTuning(
                elementwiseGroupSize: 64, rowGroupSize: 1, rowsPerGroup: 16, matmul: .cpuDevice,
                scan: .cpuDevice, spline: .cpuDevice)
        }
        return OpenCLTuning(
            elementwiseGroupSize: 256, rowGroupSize: 128, rowsPerGroup: 1, matmul: .gpuDevice,
            scan: .gpuDevice, spline: .gpuDevice)
    }
}

/// Tuning parameters of `Kernels/matmul.cl`, passed as `-D` defines (see the comment at the top of that
/// file for what each means and how the defaults were measured).
public struct MatmulTuning: Sendable, Equatable {
    /// Rows of C per work-item in `gemm_fast` (`WPT_M`).
    public var rowsPerItem: Int
    /// Columns of C per work-item, the vector width (`VW`: 4, 8 or 16).
    public var vectorWidth: Int
    /// Work-group shape of `gemm_fast` (`WG_M` × `WG_N`).
    public var groupRows: Int
    public var groupColumns: Int
    /// Whether `gemm_fast` stages tiles in local memory (`USE_LOCAL`), `TILE_K` deep.
    public var useLocalMemory: Bool
    public var tileK: Int
    /// Vector width of the A-tile copy (`A_VW`), whether the A tile is stored k-major (`A_LOCAL_KMAJOR`),
    /// and its row padding in floats (`A_PAD`).
    public var aVectorWidth: Int
    public var aTileKMajor: Bool
    public var aTilePadding: Int
    /// Hide the inner loop bound from PoCL's implicit-barrier pass (`NONUNIFORM_K_LOOP`; CPU devices only).
    public var nonuniformKLoop: Bool
    /// Work-group side and elements per work-item of `gemm_direct` (`DIRECT_WG`, `DIRECT_WM`, `DIRECT_WN`).
    public var directGroupSize: Int
    public var directRowsPerItem: Int
    public var directColumnsPerItem: Int
    /// `gemm_direct` handles problems with `m`, `n` or `k` below these, or fewer than
    /// `directMaximumWork` multiply-adds (`m·n·k`).
    public var directMaximumRows: Int
    public var directMaximumColumns: Int
    public var directMaximumDepth: Int
    public var directMaximumWork: Int

    /// Measured best on PoCL 3.1 on a 2-core AVX2 machine (bench/RESULTS.md): 96 × 128 blocks of C
    /// staged through local memory in 128-deep k slices, 6 × 16 accumulators per work-item.
    public static let cpuDevice = MatmulTuning(
        rowsPerItem: 6, vectorWidth: 16, groupRows: 16, groupColumns: 8, useLocalMemory: true, tileK: 128,
        aVectorWidth: 8, aTileKMajor: false, aTilePadding: 0, nonuniformKLoop: true,
        directGroupSize: 8, directRowsPerItem: 2, directColumnsPerItem: 8,
        directMaximumRows: 32, directMaximumColumns: 64, directMaximumDepth: 32, directMaximumWork: 1 << 21)

    /// The usual GPU SGEMM layout: 128 × 128 blocks of C, 16-deep k tiles in local memory, 8 × 8 outputs
    /// per work-item (not measured on a GPU yet).
    public static let gpuDevice = MatmulTuning(
        rowsPerItem: 8, vectorWidth: 8, groupRows: 16, groupColumns: 16, useLocalMemory: true, tileK: 16,
        aVectorWidth: 4, aTileKMajor: true, aTilePadding: 4, nonuniformKLoop: false,
        directGroupSize: 16, directRowsPerItem: 1, directColumnsPerItem: 1,
        directMaximumRows: 64, directMaximumColumns: 64, directMaximumDepth: 16, directMaximumWork: 1 << 21)

    public init(
        rowsPerItem: Int, vectorWidth: Int, groupRows: Int, groupColumns: Int, useLocalMemory: Bool, tileK: Int,
        aVectorWidth: Int, aTileKMajor: Bool, aTilePadding: Int, nonuniformKLoop: Bool,
        directGroupSize: Int, directRowsPerItem: Int, directColumnsPerItem: Int,
        directMaximumRows: Int, directMaximumColumns: Int, directMaximumDepth: Int, directMaximumWork: Int
    ) {
        self.rowsPerItem = rowsPerItem
        self.vectorWidth = vectorWidth
        self.groupRows = groupRows
        self.groupColumns = groupColumns
        self.useLocalMemory = useLocalMemory
        self.tileK = tileK
        self.aVectorWidth = aVectorWidth
        self.aTileKMajor = aTileKMajor
        self.aTilePadding = aTilePadding
        self.nonuniformKLoop = nonuniformKLoop
        self.directGroupSize = directGroupSize
        self.directRowsPerItem = directRowsPerItem
        self.directColumnsPerItem = directColumnsPerItem
        self.directMaximumRows = directMaximumRows
        self.directMaximumColumns = directMaximumColumns
        self.directMaximumDepth = directMaximumDepth
        self.directMaximumWork = directMaximumWork
    }

    /// Whether a problem goes to `gemm_direct` rather than `gemm_fast`.
    public func usesDirectKernel(m: Int, n: Int, k: Int) -> Bool {
        m < directMaximumRows || n < directMaximumColumns || k < directMaximumDepth || m * n * k < directMaximumWork
    }

    /// The `-D` options for `matmul.cl` with `TRANS_A` set as given.
    public func buildOptions(transposeA: Bool) -> String {
        [
            "-D WPT_M=\(rowsPerItem)", "-D VW=\(vectorWidth)", "-D WG_M=\(groupRows)", "-D WG_N=\(groupColumns)",
            "-D USE_LOCAL=\(useLocalMemory ? 1 : 0)", "-D TILE_K=\(tileK)", "-D A_VW=\(aVectorWidth)",
            "-D A_LOCAL_KMAJOR=\(aTileKMajor ? 1 : 0)", "-D A_PAD=\(aTilePadding)", "-D NONUNIFORM_K_LOOP=\(nonuniformKLoop ? 1 : 0)",
            "-D TRANS_A=\(transposeA ? 1 : 0)",
            "-D DIRECT_WG=\(directGroupSize)", "-D DIRECT_WM=\(directRowsPerItem)", "-D DIRECT_WN=\(directColumnsPerItem)",
        ].joined(separator: " ")
    }
}

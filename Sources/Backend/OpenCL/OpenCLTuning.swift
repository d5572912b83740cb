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

    public init(elementwiseGroupSize: Int, rowGroupSize: Int, rowsPerGroup: Int, matmul: MatmulTuning) {
        self.elementwiseGroupSize = elementwiseGroupSize
        self.rowGroupSize = rowGroupSize
        self.rowsPerGroup = rowsPerGroup
        self.matmul = matmul
    }

    /// The defaults for a device: CPU devices (PoCL) get barrier-free, register-blocked variants; GPUs get
    /// work-group reductions and a local-memory tiled SGEMM.
    public static func defaults(for device: DeviceDescription) -> OpenCLTuning {
        if device.type == "cpu" {
            return OpenCLTuning(elementwiseGroupSize: 64, rowGroupSize: 1, rowsPerGroup: 16, matmul: .cpuDevice)
        }
        return OpenCLTuning(elementwiseGroupSize: 256, rowGroupSize: 128, rowsPerGroup: 1, matmul: .gpuDevice)
    }
}

/// Tuning parameters of `Kernels/matmul.cl`, passed as `-D` defines (see the comment at the top of that
/// file for what each means).
public struct MatmulTuning: Sendable, Equatable {
    /// Rows of C per work-item in `gemm_fast` (`WPT_M`).
    public var rowsPerItem: Int
    /// Columns of C per work-item, the vector width (`VW`).
    public var vectorWidth: Int
    /// Work-group shape of `gemm_fast` (`WG_M` × `WG_N`).
    public var groupRows: Int
    public var groupColumns: Int
    /// Whether `gemm_fast` stages tiles in local memory (`USE_LOCAL`), with `TILE_K` columns of A per tile.
    public var useLocalMemory: Bool
    public var tileK: Int
    /// Work-group side and elements per work-item of `gemm_direct` (`DIRECT_WG`, `DIRECT_WM`, `DIRECT_WN`).
    public var directGroupSize: Int
    public var directRowsPerItem: Int
    public var directColumnsPerItem: Int
    /// Problems with fewer multiply-adds than this (`m·n·k`), or with `m` or `n` below one work-group
    /// tile, use `gemm_direct`.
    public var directThreshold: Int

    public init(
        rowsPerItem: Int, vectorWidth: Int, groupRows: Int, groupColumns: Int, useLocalMemory: Bool, tileK: Int,
        directGroupSize: Int, directRowsPerItem: Int, directColumnsPerItem: Int, directThreshold: Int
    ) {
        self.rowsPerItem = rowsPerItem
        self.vectorWidth = vectorWidth
        self.groupRows = groupRows
        self.groupColumns = groupColumns
        self.useLocalMemory = useLocalMemory
        self.tileK = tileK
        self.directGroupSize = directGroupSize
        self.directRowsPerItem = directRowsPerItem
        self.directColumnsPerItem = directColumnsPerItem
        self.directThreshold = directThreshold
    }

    /// Register-blocked, no local memory: measured best on PoCL (see bench/RESULTS.md).
    public static let cpuDevice = MatmulTuning(
        rowsPerItem: 8, vectorWidth: 8, groupRows: 4, groupColumns: 16, useLocalMemory: false, tileK: 16,
        directGroupSize: 8, directRowsPerItem: 1, directColumnsPerItem: 1, directThreshold: 64 * 64 * 64)

    /// Local-memory tiles of 64 × 128 with 8 × 8 outputs per work-item, a common shape for discrete GPUs.
    public static let gpuDevice = MatmulTuning(
        rowsPerItem: 8, vectorWidth: 8, groupRows: 8, groupColumns: 16, useLocalMemory: true, tileK: 16,
        directGroupSize: 16, directRowsPerItem: 1, directColumnsPerItem: 1, directThreshold: 128 * 128 * 128)

    /// Rows and columns of C one `gemm_fast` work-group computes.
    public var tileRows: Int { rowsPerItem * groupRows }
    public var tileColumns: Int { vectorWidth * groupColumns }

    /// The `-D` options for `matmul.cl` with `TRANS_A` set as given.
    public func buildOptions(transposeA: Bool) -> String {
        [
            "-D WPT_M=\(rowsPerItem)", "-D VW=\(vectorWidth)", "-D WG_M=\(groupRows)", "-D WG_N=\(groupColumns)",
            "-D USE_LOCAL=\(useLocalMemory ? 1 : 0)", "-D TILE_K=\(tileK)", "-D TRANS_A=\(transposeA ? 1 : 0)",
            "-D DIRECT_WG=\(directGroupSize)", "-D DIRECT_WM=\(directRowsPerItem)", "-D DIRECT_WN=\(directColumnsPerItem)",
        ].joined(separator: " ")
    }
}

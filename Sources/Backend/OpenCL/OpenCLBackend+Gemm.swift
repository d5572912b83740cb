// The gemm family on OpenCL devices: `Kernels/gemm.cl` (its header has the math, the layouts, the launch
// geometry and every -D option with its measured defaults), built twice at start-up (A as stored and A
// transposed), and its tuning.

/// Tuning parameters of `Kernels/gemm.cl`, passed as `-D` defines (see the comment at the top of that
/// file for what each means and how the defaults were measured).
public struct GemmTuning: Sendable, Equatable {
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
    public static let cpuDevice = GemmTuning(
        rowsPerItem: 6, vectorWidth: 16, groupRows: 16, groupColumns: 8, useLocalMemory: true, tileK: 128,
        aVectorWidth: 8, aTileKMajor: false, aTilePadding: 0, nonuniformKLoop: true,
        directGroupSize: 8, directRowsPerItem: 2, directColumnsPerItem: 8,
        directMaximumRows: 32, directMaximumColumns: 64, directMaximumDepth: 32, directMaximumWork: 1 << 21)

    /// The usual GPU SGEMM layout: 128 × 128 blocks of C, 16-deep k tiles in local memory, 8 × 8 outputs
    /// per work-item (not measured on a GPU yet).
    public static let gpuDevice = GemmTuning(
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

    /// The `-D` options for `gemm.cl` with `TRANS_A` set as given.
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

extension OpenCLBackend {
    func loadGemmKernels() throws(BackendError) {
        try loadKernels(from: "gemm.cl", options: tuning.gemm.buildOptions(transposeA: false), names: ["gemm_direct", "gemm_fast"])
        try loadKernels(from: "gemm.cl", options: tuning.gemm.buildOptions(transposeA: true), names: ["gemm_fast"], suffix: "_transposed_a")
    }

    public func gemm(_ problem: GemmProblem, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer) {
        problem.validate(a: a, b: b, c: c)
        guard problem.m > 0, problem.n > 0, problem.batchCount > 0, isHealthy else { return }
        let gemmTuning = tuning.gemm
        if problem.k == 0 || gemmTuning.usesDirectKernel(m: problem.m, n: problem.n, k: problem.k) {
            launchDirectGemm(problem, a: a, b: b, c: c)
            return
        }
        var fast = problem
        var bOperand = b
        if problem.transposeB {
            // gemm_fast reads B row-major; transpose each batch's B (n × k) into a scratch k × n first.
            let batches = problem.strideB == 0 ? 1 : problem.batchCount
            let scratch = allocate(batches * problem.k * problem.n)
            copy(b, StridedLayout(offset: problem.offsetB, strides: [problem.strideB, 1, problem.ldb]),
                 to: scratch, .contiguous([batches, problem.k, problem.n]), shape: [batches, problem.k, problem.n])
            bOperand = scratch
            fast.transposeB = false
            fast.offsetB = 0
            fast.ldb = problem.n
            fast.strideB = problem.strideB == 0 ? 0 : problem.k * problem.n
        }
        let groupColumns = (fast.n + gemmTuning.vectorWidth - 1) / gemmTuning.vectorWidth
        let groupRows = (fast.m + gemmTuning.rowsPerItem - 1) / gemmTuning.rowsPerItem
        launch(fast.transposeA ? "gemm_fast_transposed_a" : "gemm_fast",
               global: [groupColumns, groupRows, fast.batchCount], local: [gemmTuning.groupColumns, gemmTuning.groupRows, 1], [
                .int(fast.m), .int(fast.n), .int(fast.k), .float(fast.alpha),
                .buffer(a), .int(fast.offsetA), .int(fast.lda), .int(fast.strideA),
                .buffer(bOperand), .int(fast.offsetB), .int(fast.ldb), .int(fast.strideB),
                .float(fast.beta), .buffer(c), .int(fast.offsetC), .int(fast.ldc), .int(fast.strideC),
               ])
    }

    private func launchDirectGemm(_ problem: GemmProblem, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer) {
        let gemmTuning = tuning.gemm
        let columns = (problem.n + gemmTuning.directColumnsPerItem - 1) / gemmTuning.directColumnsPerItem
        let rows = (problem.m + gemmTuning.directRowsPerItem - 1) / gemmTuning.directRowsPerItem
        launch("gemm_direct", global: [columns, rows, problem.batchCount], local: [gemmTuning.directGroupSize, gemmTuning.directGroupSize, 1], [
            .int(problem.m), .int(problem.n), .int(problem.k), .float(problem.alpha),
            .buffer(a), .int(problem.offsetA), .int(problem.lda), .int(problem.strideA), .int(problem.transposeA ? 1 : 0),
            .buffer(b), .int(problem.offsetB), .int(problem.ldb), .int(problem.strideB), .int(problem.transposeB ? 1 : 0),
            .float(problem.beta), .buffer(c), .int(problem.offsetC), .int(problem.ldc), .int(problem.strideC),
        ])
    }
}

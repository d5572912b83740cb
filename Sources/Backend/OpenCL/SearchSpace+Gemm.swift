// The gemm family's search space for `kiln tune` (Kernels/gemm.cl, GemmTuning in OpenCLBackend+Gemm.swift):
// the parameters of gemm_fast with the values to try, the constraints gemm.cl states in its header, and
// the shapes it is timed on. The direct/tiled crossover is tuned separately (Tuner.tuneGemmCrossover).

extension TuningSpace {
    /// gemm_fast's tile shape, vector widths and local-memory layout.
    public static let gemm = TuningSpace(
        family: .gemm,
        parameters: [
            ("gemm.rowsPerItem", [1, 2, 4, 6, 8]),
            ("gemm.vectorWidth", [4, 8, 16]),
            ("gemm.groupRows", [1, 2, 4, 8, 16, 32]),
            ("gemm.groupColumns", [1, 2, 4, 8, 16, 32]),
            ("gemm.useLocalMemory", [0, 1]),
            ("gemm.tileK", [8, 16, 32, 64, 128, 256]),
            ("gemm.aVectorWidth", [2, 4, 8, 16]),
            ("gemm.aTileKMajor", [0, 1]),
            ("gemm.aTilePadding", [0, 1, 4]),
            ("gemm.nonuniformKLoop", [0, 1]),
        ],
        checks: [.gemm],
        isValid: { tuning, limits in
            let g = tuning.gemm
            let tileM = g.groupRows * g.rowsPerItem, tileN = g.groupColumns * g.vectorWidth
            guard g.groupRows * g.groupColumns <= limits.maximumGroupSize, [4, 8, 16].contains(g.vectorWidth) else { return false }
            guard g.useLocalMemory else { return true }
            // gemm.cl's #error lines: A_VW divides TILE_K (A as stored) and TILE_M (A transposed); both are built.
            guard g.tileK % g.aVectorWidth == 0, tileM % g.aVectorWidth == 0 else { return false }
            let localBytes = 4 * (g.tileK * (tileM + g.aTilePadding) + g.tileK * tileN)
            return localBytes <= limits.localMemoryBytes
        },
        workloads: {
            // Square SGEMM 256–4096, both transposes at 1024, and the training shapes: the MLP benchmark's
            // step (batch 256, width 1024: forward, weight gradient Xᵀ·dY, input gradient dY·Wᵀ) and an lm's
            // (2048 tokens of width 512 into 128 features, and its weight gradient).
            var shapes: [(String, GemmProblem)] = [256, 512, 1024, 2048, 4096].map { ("\($0)³", GemmProblem(m: $0, n: $0, k: $0)) }
            shapes.insert(("1024³ Aᵀ", GemmProblem(m: 1024, n: 1024, k: 1024, transposeA: true)), at: 3)
            shapes.insert(("1024³ Bᵀ", GemmProblem(m: 1024, n: 1024, k: 1024, transposeB: true)), at: 4)
            shapes += [
                ("MLP 256×1024×512", GemmProblem(m: 256, n: 1024, k: 512)),
                ("MLP dW 512×1024×256 Aᵀ", GemmProblem(m: 512, n: 1024, k: 256, transposeA: true)),
                ("MLP dX 256×512×1024 Bᵀ", GemmProblem(m: 256, n: 512, k: 1024, transposeB: true)),
                ("lm 2048×512×128 Bᵀ", GemmProblem(m: 2048, n: 512, k: 128, transposeB: true)),
                ("lm dW 128×512×2048 Aᵀ", GemmProblem(m: 128, n: 512, k: 2048, transposeA: true)),
            ]
            return shapes.sorted { $0.1.flops < $1.1.flops }.map { name, problem in TuningWorkload.gemm(name, problem) }
        })
}

extension TuningWorkload {
    /// One matrix product on random operands.
    static func gemm(_ name: String, _ problem: GemmProblem) -> TuningWorkload {
        TuningWorkload(name: name, work: problem.flops, unit: "GFLOP/s") { backend in
            var random = RandomGenerator(seed: 13)
            let (aCount, bCount, cCount) = problem.extents
            let a = backend.makeBuffer(random.floats(aCount)), b = backend.makeBuffer(random.floats(bCount)), c = backend.allocate(cCount)
            return { backend.gemm(problem, a: a, b: b, c: c) }
        }
    }
}

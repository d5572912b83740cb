import KilnBackend
import KilnTestSupport
import Testing

@Suite("gemm against the float64 reference")
struct GemmTests {
    // The check's gemm case (CheckCases.gemm, CheckCases.gemmError): fresh A and B, C poisoned where beta is
    // 0, relative error below 1e-4 (matmul, DESIGN.md), and any element written outside the problem (gaps
    // between rows or batches) a failure; on OpenCL a shape past the direct/tiled crossover is added when
    // every listed one runs in the direct kernel. Here over the long lists.

    @Test("square sizes, every transpose", arguments: BackendCase.withGPUParameters, [1, 7, 33, 127, 513])
    func squares(_ backendCase: BackendCase, size: Int) throws {
        expectCheckCasesPass(.gemm, on: try backendCase.makeBackend(), "\(backendCase)") { lists in
            lists.gemm = [(false, false), (true, false), (false, true), (true, true)]
                .filter { size != 513 || $0.0 == $0.1 }  // keep the largest case quick
                .map { GemmProblem(m: size, n: size, k: size, transposeA: $0.0, transposeB: $0.1) }
        }
    }

    @Test("odd and non-square shapes, both transposes, alpha and beta", arguments: BackendCase.withGPUParameters)
    func shapes(_ backendCase: BackendCase) throws {
        let shapes = [
            (1, 1, 1), (1, 513, 7), (513, 1, 33), (7, 33, 1), (131, 257, 97), (257, 131, 1), (33, 127, 513),
            (300, 200, 64), (64, 1024, 129), (2, 3, 700),
        ]
        // Both scalings of every shape and transpose: the alternation of (1, 0) and (−0.75, 0.5) started
        // at either end.
        expectCheckCasesPass(.gemm, on: try backendCase.makeBackend(), "\(backendCase)") { lists in
            lists.gemm = CheckLists.gemmProblems(shapes) + CheckLists.gemmProblems(shapes, firstIndex: 1)
        }
    }

    @Test("strided batches, offsets, padded leading dimensions and a shared operand", arguments: BackendCase.withGPUParameters)
    func batched(_ backendCase: BackendCase) throws {
        expectCheckCasesPass(.gemm, on: try backendCase.makeBackend(), "\(backendCase)") { lists in
            lists.gemm = [(7, 33, 5), (129, 67, 100), (64, 128, 32)].flatMap { m, n, k in
                [(false, false), (true, true), (false, true)].flatMap { transposeA, transposeB in
                    let problem = GemmProblem(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, alpha: 1.5, beta: 0)
                    var shared = CheckLists.batched(problem, batchCount: 3, sharedB: true)
                    shared.beta = 0.25
                    return [CheckLists.batched(problem, batchCount: 3, sharedB: false), shared]
                }
            }
        }
    }

    @Test("k = 0 scales C by beta", arguments: BackendCase.withGPUParameters)
    func emptyInnerDimension(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for beta in [Float(0), 2] {
            let problem = GemmProblem(m: 5, n: 9, k: 0, alpha: 1, beta: beta)
            let error = try CheckCases.gemmError(backend, problem, &random)
            #expect(error < 1e-6, "k = 0, β \(beta), seed \(random.seed)")
        }
    }
}

@Suite("OpenBLAS's kernel set")
struct OpenBLASKernelTests {
    /// The processor's instruction-set flags, from /proc/cpuinfo.
    static let cpuFlags: Set<Substring> = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: ":", maxSplits: 1).last?.split(separator: " ") ?? [])
    }()

    @Test("OpenBLAS runs AVX2 or AVX-512 kernels where the processor has them, unless OPENBLAS_CORETYPE chose")
    func kernelsUseTheProcessor() throws {
        _ = CPUBackend()
        let kernels = CPUBackend.openBLASKernels
        try #require(kernels.decision != .unknown, "this OpenBLAS build does not name its kernels")
        guard kernels.decision != .userChoice, Self.cpuFlags.isSuperset(of: ["avx2", "fma"]) else { return }
        let preAVX2: Set<String> = ["katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington",
                                    "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "nano", "sandybridge", "bobcat",
                                    "bulldozer", "piledriver"]
        #expect(!preAVX2.contains(kernels.name.lowercased()), "OpenBLAS runs \(kernels.name) on a processor with AVX2 + FMA (\(kernels.summary))")
        if kernels.decision == .corrected {
            #expect(preAVX2.contains(kernels.detected.lowercased()), "corrected a choice with AVX2: \(kernels.summary)")
            let avx512 = Self.cpuFlags.isSuperset(of: ["avx512f", "avx512vl", "avx512dq", "avx512bw"])
            #expect(kernels.name == (avx512 ? "SkylakeX" : "Haswell"), "\(kernels.summary)")
        }
    }
}

import KilnBackend
import KilnTestSupport
import Testing

/// Runs a gemm problem on a backend with fresh random inputs and NaN-poisoned C (when beta is 0), and
/// returns the relative error against `Reference.gemm` over the problem's elements; an element written
/// outside the problem (gaps between rows or batches) makes it infinite (the device check's, CheckCases).
func gemmError(_ backend: any Backend, _ problem: GemmProblem, random: inout RandomGenerator) throws -> Double {
    try CheckCases.gemmError(backend, problem, &random)
}

@Suite("gemm against the float64 reference")
struct GemmTests {
    // Matmul bound (DESIGN.md): relative error below 1e-4.
    static let bound = CheckBound.gemm

    @Test("square sizes, every transpose", arguments: BackendCase.withGPUParameters, [1, 7, 33, 127, 513])
    func squares(_ backendCase: BackendCase, size: Int) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
            if size == 513 && transposeA != transposeB { continue }  // keep the largest case quick
            let problem = GemmProblem(m: size, n: size, k: size, transposeA: transposeA, transposeB: transposeB)
            let error = try gemmError(backend, problem, random: &random)
            #expect(error < Self.bound, "size \(size) transA \(transposeA) transB \(transposeB) seed \(random.seed)")
        }
    }

    @Test("odd and non-square shapes, both transposes, alpha and beta", arguments: BackendCase.withGPUParameters)
    func shapes(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let shapes = [
            (1, 1, 1), (1, 513, 7), (513, 1, 33), (7, 33, 1), (131, 257, 97), (257, 131, 1), (33, 127, 513),
            (300, 200, 64), (64, 1024, 129), (2, 3, 700),
        ]
        for (m, n, k) in shapes {
            for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
                for (alpha, beta) in [(Float(1), Float(0)), (Float(-0.75), Float(0.5))] {
                    let problem = GemmProblem(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, alpha: alpha, beta: beta)
                    let error = try gemmError(backend, problem, random: &random)
                    #expect(error < Self.bound, "\(m)×\(n)×\(k) transA \(transposeA) transB \(transposeB) α \(alpha) β \(beta) seed \(random.seed)")
                }
            }
        }
    }

    @Test("strided batches, offsets, padded leading dimensions and a shared operand", arguments: BackendCase.withGPUParameters)
    func batched(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for (m, n, k) in [(7, 33, 5), (129, 67, 100), (64, 128, 32)] {
            for (transposeA, transposeB) in [(false, false), (true, true), (false, true)] {
                var problem = GemmProblem(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, alpha: 1.5, beta: 0, batchCount: 3)
                problem.lda += 3
                problem.ldb += 1
                problem.ldc += 2
                problem.offsetA = 5
                problem.offsetB = 1
                problem.offsetC = 7
                problem.strideA = (transposeA ? k : m) * problem.lda + 4
                problem.strideB = (transposeB ? n : k) * problem.ldb + 9
                problem.strideC = m * problem.ldc + 3
                let error = try gemmError(backend, problem, random: &random)
                #expect(error < Self.bound, "batched \(m)×\(n)×\(k) transA \(transposeA) transB \(transposeB) seed \(random.seed)")

                var shared = problem
                shared.strideB = 0
                shared.beta = 0.25
                let sharedError = try gemmError(backend, shared, random: &random)
                #expect(sharedError < Self.bound, "shared-B batched \(m)×\(n)×\(k) seed \(random.seed)")
            }
        }
    }

    @Test("k = 0 scales C by beta", arguments: BackendCase.withGPUParameters)
    func emptyInnerDimension(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for beta in [Float(0), 2] {
            let problem = GemmProblem(m: 5, n: 9, k: 0, alpha: 1, beta: beta)
            let error = try gemmError(backend, problem, random: &random)
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

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

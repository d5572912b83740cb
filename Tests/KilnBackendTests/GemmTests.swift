import KilnBackend
import KilnTestSupport
import Testing

/// C = alpha·op(A)·op(B) + beta·C in float64, written as the definition reads.
func referenceGemm(_ p: GemmProblem, a: [Float], b: [Float], c: [Float]) -> [Double] {
    var result = c.map(Double.init)
    for batch in 0..<p.batchCount {
        for i in 0..<p.m {
            for j in 0..<p.n {
                var sum = 0.0
                for l in 0..<p.k {
                    let aIndex = p.offsetA + batch * p.strideA + (p.transposeA ? l * p.lda + i : i * p.lda + l)
                    let bIndex = p.offsetB + batch * p.strideB + (p.transposeB ? j * p.ldb + l : l * p.ldb + j)
                    sum += Double(a[aIndex]) * Double(b[bIndex])
                }
                let cIndex = p.offsetC + batch * p.strideC + i * p.ldc + j
                let previous = p.beta == 0 ? 0 : Double(p.beta) * Double(c[cIndex])
                result[cIndex] = Double(p.alpha) * sum + previous
            }
        }
    }
    return result
}

/// Runs a gemm problem on a backend with fresh random inputs and NaN-poisoned C (when beta is 0), and
/// returns the relative error against the float64 reference over the whole C buffer.
func gemmError(_ backend: any Backend, _ problem: GemmProblem, random: inout RandomGenerator) throws -> Double {
    let (aCount, bCount, cCount) = problem.extents
    let a = random.floats(max(aCount, 1)), b = random.floats(max(bCount, 1))
    var c = random.floats(max(cCount, 1))
    if problem.beta == 0 {
        // Elements of C inside the problem must be overwritten; the reference ignores their old value.
        c = c.map { _ in .nan }
    }
    let aBuffer = backend.makeBuffer(a), bBuffer = backend.makeBuffer(b), cBuffer = backend.makeBuffer(c)
    backend.gemm(problem, a: aBuffer, b: bBuffer, c: cBuffer)
    let out = try backend.download(cBuffer)
    var expected = referenceGemm(problem, a: a, b: b, c: c)
    // Elements outside the problem (gaps between rows or batches) must be untouched.
    var observed = out
    for index in expected.indices where expected[index].isNaN {
        #expect(out[index].isNaN, "gemm wrote outside C's problem region at \(index)")
        expected[index] = 0
        observed[index] = 0
    }
    return relativeError(observed, expected)
}

@Suite("gemm against a float64 reference")
struct GemmTests {
    // Matmul tolerance (DESIGN.md): relative error below 1e-4.
    static let tolerance = 1e-4

    @Test("square sizes, every transpose", arguments: BackendCase.all, [1, 7, 33, 127, 513])
    func squares(_ backendCase: BackendCase, size: Int) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
            if size == 513 && transposeA != transposeB { continue }  // keep the largest case quick
            let problem = GemmProblem(m: size, n: size, k: size, transposeA: transposeA, transposeB: transposeB)
            let error = try gemmError(backend, problem, random: &random)
            #expect(error < Self.tolerance, "size \(size) transA \(transposeA) transB \(transposeB) seed \(random.seed)")
        }
    }

    @Test("odd and non-square shapes, both transposes, alpha and beta", arguments: BackendCase.all)
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
                    #expect(error < Self.tolerance, "\(m)×\(n)×\(k) transA \(transposeA) transB \(transposeB) α \(alpha) β \(beta) seed \(random.seed)")
                }
            }
        }
    }

    @Test("strided batches, offsets, padded leading dimensions and a shared operand", arguments: BackendCase.all)
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
                #expect(error < Self.tolerance, "batched \(m)×\(n)×\(k) transA \(transposeA) transB \(transposeB) seed \(random.seed)")

                var shared = problem
                shared.strideB = 0
                shared.beta = 0.25
                let sharedError = try gemmError(backend, shared, random: &random)
                #expect(sharedError < Self.tolerance, "shared-B batched \(m)×\(n)×\(k) seed \(random.seed)")
            }
        }
    }

    @Test("k = 0 scales C by beta", arguments: BackendCase.all)
    func emptyInnerDimension(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for beta in [Float(0), 2] {
            let problem = GemmProblem(m: 5, n: 9, k: 0, alpha: 1, beta: beta)
            let error = try gemmError(backend, problem, random: &random)
            #expect(error < 1e-6, "k = 0, β \(beta)")
        }
    }
}

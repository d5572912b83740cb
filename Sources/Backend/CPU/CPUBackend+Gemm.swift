internal import CKilnCPU
internal import COpenBLAS

// The gemm family on the CPU: one `cblas_sgemm` per batch (OpenBLAS splits each across its threads).

extension CPUBackend {
    public func gemm(_ problem: GemmProblem, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer) {
        problem.validate(a: a, b: b, c: c)
        guard problem.m > 0, problem.n > 0, problem.batchCount > 0, ready(a, b, c) else { return }
        let pa = floats(a), pb = floats(b), pc = floats(c)
        for batch in 0..<problem.batchCount {
            let cBase = pc + problem.offsetC + batch * problem.strideC
            if problem.k == 0 {
                // C = beta·C; BLAS implementations differ on k = 0, so do it here.
                for row in 0..<problem.m {
                    let line = cBase + row * problem.ldc
                    for column in 0..<problem.n { line[column] = problem.beta == 0 ? 0 : problem.beta * line[column] }
                }
                continue
            }
            cblas_sgemm(
                CblasRowMajor, problem.transposeA ? CblasTrans : CblasNoTrans,
                problem.transposeB ? CblasTrans : CblasNoTrans,
                Int32(problem.m), Int32(problem.n), Int32(problem.k), problem.alpha,
                pa + problem.offsetA + batch * problem.strideA, Int32(problem.lda),
                pb + problem.offsetB + batch * problem.strideB, Int32(problem.ldb),
                problem.beta, cBase, Int32(problem.ldc))
        }
    }
}

/// The kernel set OpenBLAS runs in this process, and whether Kiln changed it (Sources/CKilnCPU/blas_core.c):
/// an OpenBLAS release older than the processor falls back to SSE3 kernels ("Prescott") that run SGEMM
/// several times slower; Kiln then asks for the AVX-512 or AVX2 set the processor has, unless the user set
/// `OPENBLAS_CORETYPE`.
public struct OpenBLASKernels: Sendable, Equatable {
    public enum Decision: Sendable, Equatable {
        /// The OpenBLAS in use does not name its kernels (not a DYNAMIC_ARCH build).
        case unknown
        /// OpenBLAS's own choice.
        case kept
        /// `OPENBLAS_CORETYPE` chose them.
        case userChoice
        /// OpenBLAS had chosen `detected`, without AVX2, on a processor with AVX2 + FMA; Kiln chose `name`.
        case corrected
    }

    /// The kernel set in use (OpenBLAS's name, e.g. "SkylakeX", "Haswell", "Zen").
    public let name: String
    /// OpenBLAS's own choice at load.
    public let detected: String
    public let decision: Decision

    /// One line for `kiln devices` and the benchmarks' headers.
    public var summary: String {
        switch decision {
        case .unknown: return "OpenBLAS kernels: not reported by this OpenBLAS build"
        case .kept: return "OpenBLAS kernels: \(name)"
        case .userChoice: return "OpenBLAS kernels: \(name) (OPENBLAS_CORETYPE)"
        case .corrected:
            return "OpenBLAS kernels: \(name) (OpenBLAS chose \(detected), its fallback for a processor it does not know; set OPENBLAS_CORETYPE to choose another)"
        }
    }
}

extension CPUBackend {
    /// OpenBLAS's kernel set, checked (and corrected, see ``OpenBLASKernels``) once per process, before the
    /// first BLAS call: every CPU backend's initializer and ``setThreadCount(_:)`` read it first.
    public static let openBLASKernels: OpenBLASKernels = {
        var chosen = [CChar](repeating: 0, count: 64), detected = [CChar](repeating: 0, count: 64)
        let code = kiln_blas_check_kernels(&chosen, &detected, 64)
        let decision: OpenBLASKernels.Decision
        switch Int(code) {
        case KILN_BLAS_KEPT: decision = .kept
        case KILN_BLAS_USER_CHOICE: decision = .userChoice
        case KILN_BLAS_CORRECTED: decision = .corrected
        default: decision = .unknown
        }
        return OpenBLASKernels(name: String(cString: chosen), detected: String(cString: detected), decision: decision)
    }()
}

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

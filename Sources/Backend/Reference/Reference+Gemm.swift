// The gemm family in float64 (see Families/Gemm.swift).

extension Reference {
    /// ``GemmKernels/gemm(_:a:b:c:)``: for every batch `b`, row `i < m` and column `j < n`,
    ///
    ///     C[b](i, j) = alpha · Σ_{l < k} op(A[b])(i, l) · op(B[b])(l, j) + beta · C[b](i, j)
    ///
    /// with `op(A[b])(i, l) = A[offsetA + b·strideA + i·lda + l]` (`… + l·lda + i` when `transposeA`),
    /// `op(B[b])(l, j) = B[offsetB + b·strideB + l·ldb + j]` (`… + j·ldb + l` when `transposeB`) and
    /// `C[b](i, j) = C[offsetC + b·strideC + i·ldc + j]`. When `beta` is 0 the old `C` is not read (NaN in
    /// it does not propagate). Returns the whole `c` buffer: elements outside the problem keep their values.
    public static func gemm(_ problem: GemmProblem, a: [Double], b: [Double], c: [Double]) -> [Double] {
        let p = problem
        var result = c
        for batch in 0..<p.batchCount {
            for i in 0..<p.m {
                for j in 0..<p.n {
                    var sum = 0.0
                    for l in 0..<p.k {
                        let aIndex = p.offsetA + batch * p.strideA + (p.transposeA ? l * p.lda + i : i * p.lda + l)
                        let bIndex = p.offsetB + batch * p.strideB + (p.transposeB ? j * p.ldb + l : l * p.ldb + j)
                        sum += a[aIndex] * b[bIndex]
                    }
                    let cIndex = p.offsetC + batch * p.strideC + i * p.ldc + j
                    let previous = p.beta == 0 ? 0 : Double(p.beta) * c[cIndex]
                    result[cIndex] = Double(p.alpha) * sum + previous
                }
            }
        }
        return result
    }
}

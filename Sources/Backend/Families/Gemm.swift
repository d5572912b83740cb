// The gemm family: one (optionally batched, strided) single-precision matrix product.
// Frontend: Ops/Gemm.swift (matmul, linear) · CPU: CPU/CPUBackend+Gemm.swift (OpenBLAS) ·
// OpenCL: OpenCL/OpenCLBackend+Gemm.swift, Kernels/gemm.cl · float64: Reference/Reference+Gemm.swift.

/// Matrix products on a device.
public protocol GemmKernels {
    /// `C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b]` for every batch index `b` (see ``GemmProblem``).
    /// When `beta` is zero, `C` is not read, so stale values (even NaN) never reach the result; elements
    /// of `C` outside the problem (gaps between rows or batches) are never written.
    func gemm(_ problem: GemmProblem, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer)
}

/// One (optionally batched) matrix product `C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b]`, row-major.
///
/// `op(A)` is `m × k`: `A` is stored `m × k` (leading dimension `lda ≥ k`), or `k × m` when
/// `transposeA` (`lda ≥ m`). `op(B)` is `k × n`: `B` is stored `k × n` (`ldb ≥ n`), or `n × k` when
/// `transposeB` (`ldb ≥ k`). `C` is `m × n` (`ldc ≥ n`). Batch `b` starts at `offset + b · stride`
/// in each buffer; a stride of 0 reuses one matrix for every batch (a shared weight). `k = 0` gives
/// `C = beta · C`.
public struct GemmProblem: Sendable, Equatable {
    public var transposeA: Bool
    public var transposeB: Bool
    public var m: Int
    public var n: Int
    public var k: Int
    public var alpha: Float
    public var beta: Float
    public var lda: Int
    public var ldb: Int
    public var ldc: Int
    public var offsetA = 0
    public var offsetB = 0
    public var offsetC = 0
    public var batchCount = 1
    public var strideA = 0
    public var strideB = 0
    public var strideC = 0

    /// A problem over densely packed matrices, with leading dimensions implied by the shapes.
    public init(
        m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = false,
        alpha: Float = 1, beta: Float = 0, batchCount: Int = 1
    ) {
        self.transposeA = transposeA
        self.transposeB = transposeB
        self.m = m
        self.n = n
        self.k = k
        self.alpha = alpha
        self.beta = beta
        self.lda = max(1, transposeA ? m : k)
        self.ldb = max(1, transposeB ? k : n)
        self.ldc = max(1, n)
        self.batchCount = batchCount
        self.strideA = m * k
        self.strideB = k * n
        self.strideC = m * n
    }

    /// Multiply-add count `2·m·n·k` per batch, for GFLOP/s figures.
    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) * Double(batchCount) }

    /// The highest element index (plus one) the problem touches in A, B and C: the sizes its buffers need.
    public var extents: (a: Int, b: Int, c: Int) {
        let rowsA = transposeA ? k : m, columnsA = transposeA ? m : k
        let rowsB = transposeB ? n : k, columnsB = transposeB ? k : n
        func extent(offset: Int, stride: Int, rows: Int, columns: Int, leading: Int) -> Int {
            guard rows > 0, columns > 0, batchCount > 0 else { return 0 }
            return offset + (batchCount - 1) * stride + (rows - 1) * leading + columns
        }
        return (
            extent(offset: offsetA, stride: strideA, rows: rowsA, columns: columnsA, leading: lda),
            extent(offset: offsetB, stride: strideB, rows: rowsB, columns: columnsB, leading: ldb),
            extent(offset: offsetC, stride: strideC, rows: m, columns: n, leading: ldc)
        )
    }

    /// Traps with a readable message when the problem is malformed or does not fit its buffers; every
    /// backend's ``GemmKernels/gemm(_:a:b:c:)`` starts with it.
    public func validate(a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer) {
        precondition(m >= 0 && n >= 0 && k >= 0 && batchCount >= 0, "gemm: negative size in \(self)")
        precondition(
            lda >= max(1, transposeA ? m : k) && ldb >= max(1, transposeB ? k : n) && ldc >= max(1, n),
            "gemm: leading dimension too small (lda \(lda), ldb \(ldb), ldc \(ldc)) for m \(m), n \(n), k \(k)")
        let needed = extents
        precondition(
            needed.a <= a.count && needed.b <= b.count && needed.c <= c.count,
            "gemm: m \(m) n \(n) k \(k) batch \(batchCount) needs A \(needed.a), B \(needed.b), C \(needed.c) elements; buffers hold \(a.count), \(b.count), \(c.count)"
        )
    }
}

internal import COpenBLAS
import Foundation

/// The CPU backend: `cblas_sgemm` from OpenBLAS for matrix products, and Swift loops over raw memory,
/// split across cores, for everything else. It computes synchronously, so it is also the reference the
/// OpenCL backend's results are compared with in training tests.
public final class CPUBackend: Backend {
    public let device: DeviceDescription
    let pool: BufferPool
    private var pendingError: BackendError?

    /// Creates a CPU backend. All CPU backends share one buffer pool.
    public init() {
        self.device = Devices.cpuDescription
        self.pool = CPUBackend.sharedPool
    }

    private static let sharedPool = BufferPool(
        capacityBytes: min(Int(clamping: ProcessInfo.processInfo.physicalMemory) / 4, 4 << 30)
    ) { pointer in free(pointer) }

    // MARK: Memory

    /// The host memory of a buffer, checked to belong to this backend.
    @inline(__always)
    func floats(_ buffer: DeviceBuffer) -> UnsafeMutablePointer<Float> {
        precondition(buffer.pool === pool, "a buffer of another device was passed to the CPU backend")
        return buffer.handle!.assumingMemoryBound(to: Float.self)
    }

    /// Whether an op may run: no error is pending and every buffer's allocation succeeded (a failed
    /// allocation was recorded and is reported by the next `synchronize` or `download`).
    @inline(__always)
    func ready(_ buffers: DeviceBuffer...) -> Bool {
        pendingError == nil && buffers.allSatisfy { $0.handle != nil }
    }

    @inline(__always)
    func integers(_ buffer: DeviceBuffer) -> UnsafeMutablePointer<Int32> {
        UnsafeMutableRawPointer(floats(buffer)).assumingMemoryBound(to: Int32.self)
    }

    public func allocate(_ count: Int) -> DeviceBuffer {
        precondition(count >= 0, "allocate: negative element count \(count)")
        let bytes = pool.roundedByteCount(count * 4)
        if let reused = pool.take(byteCount: bytes) {
            return DeviceBuffer(count: count, handle: reused, pool: pool)
        }
        var memory: UnsafeMutableRawPointer?
        if posix_memalign(&memory, 64, bytes) != 0 || memory == nil {
            pool.drain()
            if posix_memalign(&memory, 64, bytes) != 0 { memory = nil }
        }
        if memory == nil, pendingError == nil { pendingError = .outOfMemory(device: device.name, bytes: count * 4) }
        return DeviceBuffer(count: count, handle: memory, pool: pool)
    }

    public func upload(_ values: UnsafeRawBufferPointer, to buffer: DeviceBuffer, offset: Int) {
        let elements = values.count / 4
        precondition(offset >= 0 && offset + elements <= buffer.count, "upload: \(elements) elements at offset \(offset) overflow a buffer of \(buffer.count)")
        guard elements > 0, buffer.handle != nil else { return }
        UnsafeMutableRawPointer(floats(buffer) + offset).copyMemory(from: values.baseAddress!, byteCount: elements * 4)
    }

    public func download(_ buffer: DeviceBuffer, offset: Int, into destination: UnsafeMutableRawBufferPointer) throws(BackendError) {
        let elements = destination.count / 4
        precondition(offset >= 0 && offset + elements <= buffer.count, "download: \(elements) elements at offset \(offset) overflow a buffer of \(buffer.count)")
        try synchronize()
        guard elements > 0, buffer.handle != nil else { return }
        destination.baseAddress!.copyMemory(from: floats(buffer) + offset, byteCount: elements * 4)
    }

    public func copy(_ source: DeviceBuffer, offset sourceOffset: Int, to destination: DeviceBuffer, offset destinationOffset: Int, count: Int) {
        precondition(count >= 0 && sourceOffset >= 0 && destinationOffset >= 0 && sourceOffset + count <= source.count && destinationOffset + count <= destination.count,
                     "copy: \(count) elements from offset \(sourceOffset) of \(source.count) to offset \(destinationOffset) of \(destination.count)")
        guard count > 0, source.handle != nil, destination.handle != nil else { return }
        (floats(destination) + destinationOffset).update(from: floats(source) + sourceOffset, count: count)
    }

    public func fill(_ buffer: DeviceBuffer, offset: Int, count: Int, value: Float) {
        precondition(offset >= 0 && count >= 0 && offset + count <= buffer.count, "fill: \(count) elements at offset \(offset) overflow a buffer of \(buffer.count)")
        guard count > 0, buffer.handle != nil else { return }
        (floats(buffer) + offset).update(repeating: value, count: count)
    }

    public func synchronize() throws(BackendError) {
        if let error = pendingError {
            pendingError = nil
            throw error
        }
    }

    // MARK: Matrix multiplication

    public func gemm(_ problem: GemmProblem, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer) {
        problem.validate(aCount: a.count, bCount: b.count, cCount: c.count)
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

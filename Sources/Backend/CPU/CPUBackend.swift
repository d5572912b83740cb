import Foundation

/// The CPU backend: `cblas_sgemm` from OpenBLAS for matrix products, and C loops over raw memory
/// (`CKilnCPU`, one file per family), split across cores by `Parallel`, for everything else. It
/// computes synchronously, so it is also what training tests compare the OpenCL backend's results with.
public final class CPUBackend: Backend {
    public let device: DeviceDescription
    let pool: BufferPool
    private var pendingError: BackendError?
    /// Which scans run chunked and which recurrently (``ScanFormRule/cpuBackend`` unless changed, for
    /// example by a test or a benchmark that wants one form).
    public var scanFormRule = ScanFormRule.cpuBackend

    /// Creates a CPU backend. All CPU backends share one buffer pool.
    public init() {
        _ = CPUBackend.openBLASKernels
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
        buffer.checkOwner(pool, "CPU backend")
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
        DeviceBuffer.checkAllocation(count)
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
        buffer.checkRange("upload", offset: offset, count: elements)
        guard elements > 0, buffer.handle != nil else { return }
        UnsafeMutableRawPointer(floats(buffer) + offset).copyMemory(from: values.baseAddress!, byteCount: elements * 4)
    }

    public func download(_ buffer: DeviceBuffer, offset: Int, into destination: UnsafeMutableRawBufferPointer) throws(BackendError) {
        let elements = destination.count / 4
        buffer.checkRange("download", offset: offset, count: elements)
        try synchronize()
        guard elements > 0, buffer.handle != nil else { return }
        destination.baseAddress!.copyMemory(from: floats(buffer) + offset, byteCount: elements * 4)
    }

    public func copy(_ source: DeviceBuffer, offset sourceOffset: Int, to destination: DeviceBuffer, offset destinationOffset: Int, count: Int) {
        source.checkRange("copy (source)", offset: sourceOffset, count: count)
        destination.checkRange("copy (destination)", offset: destinationOffset, count: count)
        guard count > 0, source.handle != nil, destination.handle != nil else { return }
        (floats(destination) + destinationOffset).update(from: floats(source) + sourceOffset, count: count)
    }

    public func fill(_ buffer: DeviceBuffer, offset: Int, count: Int, value: Float) {
        buffer.checkRange("fill", offset: offset, count: count)
        guard count > 0, buffer.handle != nil else { return }
        (floats(buffer) + offset).update(repeating: value, count: count)
    }

    public func synchronize() throws(BackendError) {
        if let error = pendingError {
            pendingError = nil
            throw error
        }
    }
}

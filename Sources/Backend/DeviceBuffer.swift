import Synchronization

/// Memory on one backend's device: `count` 32-bit elements.
///
/// A buffer returns its memory to its backend's pool when the last reference goes away, so a training
/// loop that allocates the same shapes every step reuses memory instead of asking the driver again.
/// Buffers belong to the backend that made them; passing one to another backend traps.
public final class DeviceBuffer {
    /// Number of 32-bit elements.
    public let count: Int
    /// The CPU backend's host pointer, or the OpenCL backend's `cl_mem` handle; nil when allocation failed
    /// (the failure is reported by the owning backend's next synchronization).
    let handle: UnsafeMutableRawPointer?
    let pool: BufferPool

    init(count: Int, handle: UnsafeMutableRawPointer?, pool: BufferPool) {
        self.count = count
        self.handle = handle
        self.pool = pool
    }

    /// Size in bytes.
    public var byteCount: Int { count * 4 }

    /// The address of the underlying allocation, for tests of pooling (0 when allocation failed).
    package var address: UInt { handle.map { UInt(bitPattern: $0) } ?? 0 }

    deinit {
        if let handle { pool.recycle(handle, byteCount: pool.roundedByteCount(count * 4)) }
    }
}

/// A free list of device allocations keyed by (rounded) size, shared by every backend of one device.
///
/// It holds at most `capacityBytes` of free memory; beyond that, freed memory goes back to the driver.
final class BufferPool: Sendable {
    private struct State {
        /// Free allocations by rounded size, kept as address bit patterns (plain integers cross threads).
        var free: [Int: [UInt]] = [:]
        var freeBytes = 0
    }

    private let state = Mutex(State())
    private let capacityBytes: Int
    private let release: @Sendable (UnsafeMutableRawPointer) -> Void

    /// - Parameters:
    ///   - capacityBytes: the most free memory kept for reuse.
    ///   - release: returns memory to the system (`free` or `clReleaseMemObject`).
    init(capacityBytes: Int, release: @escaping @Sendable (UnsafeMutableRawPointer) -> Void) {
        self.capacityBytes = capacityBytes
        self.release = release
    }

    /// Sizes are rounded up (to 256 bytes, or to a 1/8 power-of-two step above 64 KiB) so that nearby
    /// sizes share free lists.
    func roundedByteCount(_ bytes: Int) -> Int {
        let minimum = max(bytes, 4)
        if minimum <= 65_536 { return (minimum + 255) / 256 * 256 }
        let power = Int.bitWidth - (minimum - 1).leadingZeroBitCount - 1
        let step = 1 << max(power - 3, 8)
        return (minimum + step - 1) / step * step
    }

    /// A free allocation of exactly `byteCount` (already rounded) bytes, if one is pooled.
    func take(byteCount: Int) -> UnsafeMutableRawPointer? {
        let address = state.withLock { state -> UInt? in
            guard let address = state.free[byteCount]?.popLast() else { return nil }
            state.freeBytes -= byteCount
            return address
        }
        return address.flatMap { UnsafeMutableRawPointer(bitPattern: $0) }
    }

    func recycle(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        let address = UInt(bitPattern: pointer)
        let keep = state.withLock { state -> Bool in
            guard state.freeBytes + byteCount <= capacityBytes else { return false }
            state.free[byteCount, default: []].append(address)
            state.freeBytes += byteCount
            return true
        }
        if !keep { release(pointer) }
    }

    /// Returns every pooled allocation to the system (before retrying a failed allocation).
    func drain() {
        let addresses = state.withLock { state -> [UInt] in
            let all = state.free.values.flatMap { $0 }
            state.free.removeAll()
            state.freeBytes = 0
            return all
        }
        for address in addresses { if let pointer = UnsafeMutableRawPointer(bitPattern: address) { release(pointer) } }
    }

    deinit { drain() }
}

/// A device's memory: buffers of 32-bit elements, copies to and from the host, and the queue's errors.
///
/// Work is queued in order; nothing blocks the host except ``download(_:offset:into:)`` and
/// ``synchronize()``, which also report the first error any earlier call ran into (errors are sticky, as
/// in CUDA: after one, later work is skipped until the error is read).
public protocol DeviceMemory: AnyObject {
    /// The device this backend computes on.
    var device: DeviceDescription { get }

    /// Returns a buffer of `count` 32-bit elements with unspecified contents.
    ///
    /// Allocation failure does not trap: it is recorded and reported by the next ``synchronize()`` or
    /// ``download(_:offset:into:)`` as ``BackendError/outOfMemory(device:bytes:)``.
    func allocate(_ count: Int) -> DeviceBuffer

    /// Copies host values into `buffer` starting at element `offset`. The host memory may be reused as
    /// soon as the call returns.
    func upload(_ values: UnsafeRawBufferPointer, to buffer: DeviceBuffer, offset: Int)

    /// Copies `destination.count` bytes (a whole number of elements), starting at element `offset`, back to
    /// the host, after every earlier call has finished.
    ///
    /// - Throws: the first error recorded since the last check (``BackendError``).
    func download(_ buffer: DeviceBuffer, offset: Int, into destination: UnsafeMutableRawBufferPointer) throws(BackendError)

    /// Copies `count` elements between buffers (which may be the same buffer, if the ranges do not overlap).
    func copy(_ source: DeviceBuffer, offset sourceOffset: Int, to destination: DeviceBuffer, offset destinationOffset: Int, count: Int)

    /// Sets `count` elements starting at `offset` to `value`.
    func fill(_ buffer: DeviceBuffer, offset: Int, count: Int, value: Float)

    /// Waits for every queued call to finish.
    ///
    /// - Throws: the first error recorded since the last check (``BackendError``).
    func synchronize() throws(BackendError)
}

// MARK: Checks shared by every family

extension DeviceBuffer {
    /// Traps unless a request for `count` elements is possible; every backend's `allocate` starts with it.
    static func checkAllocation(_ count: Int) {
        precondition(count >= 0, "allocate: negative element count \(count)")
    }

    /// Traps unless the buffer belongs to the backend whose buffers come from `pool` (named `backend`).
    func checkOwner(_ pool: BufferPool, _ backend: @autoclosure () -> String) {
        precondition(self.pool === pool, "a buffer of another device was passed to the \(backend())")
    }

    /// Traps, naming the op, unless elements `offset ..< offset + count` lie inside the buffer.
    func checkRange(_ op: StaticString, offset: Int, count: Int) {
        precondition(offset >= 0 && count >= 0 && offset + count <= self.count,
                     "\(op): \(count) elements at offset \(offset) overflow a buffer of \(self.count)")
    }

    /// Traps, naming the op, the operand and the sizes, unless the buffer holds `needed` elements.
    func require(_ needed: Int, _ operand: StaticString, of op: StaticString, _ sizes: @autoclosure () -> String) {
        precondition(count >= needed, "\(op): \(operand) holds \(count) elements but \(sizes()) needs \(needed)")
    }
}

// MARK: Host arrays

extension DeviceMemory {
    /// Uploads an array of `Float` to the start of a buffer (or at `offset`).
    public func upload(_ values: [Float], to buffer: DeviceBuffer, offset: Int = 0) {
        values.withUnsafeBytes { upload($0, to: buffer, offset: offset) }
    }

    /// Uploads an array of `Int32` (labels, indices) to a buffer.
    public func upload(_ values: [Int32], to buffer: DeviceBuffer, offset: Int = 0) {
        values.withUnsafeBytes { upload($0, to: buffer, offset: offset) }
    }

    /// Allocates a buffer holding `values`.
    public func makeBuffer(_ values: [Float]) -> DeviceBuffer {
        let buffer = allocate(values.count)
        upload(values, to: buffer)
        return buffer
    }

    /// Allocates a buffer holding `Int32` values.
    public func makeBuffer(_ values: [Int32]) -> DeviceBuffer {
        let buffer = allocate(values.count)
        upload(values, to: buffer)
        return buffer
    }

    /// Reads `count` floats (all of the buffer by default) back to the host.
    public func download(_ buffer: DeviceBuffer, offset: Int = 0, count: Int? = nil) throws(BackendError) -> [Float] {
        var values = [Float](repeating: 0, count: count ?? buffer.count - offset)
        try download(buffer, offset: offset, into: &values)
        return values
    }

    /// Reads `count` `Int32` values back to the host.
    public func downloadIntegers(_ buffer: DeviceBuffer, offset: Int = 0, count: Int? = nil) throws(BackendError) -> [Int32] {
        var values = [Int32](repeating: 0, count: count ?? buffer.count - offset)
        try download(buffer, offset: offset, into: &values)
        return values
    }

    private func download<Element>(_ buffer: DeviceBuffer, offset: Int, into values: inout [Element]) throws(BackendError) {
        var failure: BackendError?
        values.withUnsafeMutableBytes { bytes in
            do throws(BackendError) { try download(buffer, offset: offset, into: bytes) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}

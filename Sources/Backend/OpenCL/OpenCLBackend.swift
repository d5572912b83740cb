internal import COpenCL
import Foundation
import KilnKernels

/// The OpenCL backend: kernels from `Kernels/*.cl`, compiled at run time for one device.
///
/// Every backend on a device shares that device's context, in-order command queue and buffer pool
/// (``OpenCLDevice``); each backend owns its kernel objects, which OpenCL does not allow two threads to
/// use at once, so a backend is used from one thread at a time. Work is enqueued without waiting: the host
/// blocks only in ``download(_:offset:into:)`` and ``synchronize()``. Because the queue is in order, a
/// buffer returned to the pool may be handed out again at once: later commands run after earlier ones.
public final class OpenCLBackend: Backend {
    public let device: DeviceDescription
    /// The kernel parameters this backend was built with.
    public let tuning: OpenCLTuning
    /// Where this backend reads `Kernels/*.cl` from.
    let kernelLocator: ResourceLocator

    let openCLDevice: OpenCLDevice
    let context: cl_context
    let queue: cl_command_queue
    let pool: BufferPool
    /// Programs this backend holds (kept alive while its kernels exist).
    private var programs: [BuiltProgram] = []
    private var kernels: [String: cl_kernel] = [:]
    /// The first error since the last check; while set, new work is skipped.
    private var pendingError: BackendError?
    /// A one-element buffer passed where a kernel's optional buffer argument is absent.
    private(set) lazy var placeholder: DeviceBuffer = allocate(1)

    /// Creates a backend for an OpenCL device, building the core kernel programs.
    ///
    /// - Throws: ``BackendError`` when the device cannot be set up or a kernel file is missing or fails to build.
    convenience init(device: OpenCLDevice) throws(BackendError) {
        let locator = ResourceLocator(.kernels)
        try self.init(device: device, tuning: device.lookUpTuning(kernels: locator).tuning, kernelLocator: locator)
    }

    init(device: OpenCLDevice, tuning: OpenCLTuning, kernelLocator: ResourceLocator = ResourceLocator(.kernels)) throws(BackendError) {
        self.openCLDevice = device
        self.device = device.description
        self.tuning = tuning
        self.kernelLocator = kernelLocator
        let shared = try device.sharedState()
        self.context = shared.context
        self.queue = shared.queue
        self.pool = shared.pool
        // Each family builds its program (its `Kernels/<family>.cl` file) here; spline and scan programs
        // are built on first use, once per spline order or key dimension.
        try loadGemmKernels()
        try loadElementwiseKernels()
        try loadReduceKernels()
        try loadRowKernels()
        try loadEmbeddingKernels()
        try loadRandomKernels()
        try loadOptimizerKernels()
    }

    /// Creates a backend for the OpenCL device with id `opencl:N`, with the device's tuning by the lookup
    /// (the user's tuning file, the shipped database, the built-in defaults; ``TuningLookup``) or custom tuning
    /// (benchmarks use this to try other `-D` parameters) and kernels from another folder (tests use this
    /// to check that a deliberately broken kernel is caught).
    ///
    /// - Parameter kernelFolder: read `*.cl` from this folder only, instead of the usual search.
    /// - Throws: ``BackendError/unknownDevice(_:available:)`` for an id that is not an OpenCL device, or any
    ///   error of setting the device up.
    public convenience init(deviceID: String, tuning: OpenCLTuning? = nil, kernelFolder: URL? = nil) throws(BackendError) {
        guard let device = OpenCLDevice.all.first(where: { $0.description.id == deviceID }) else {
            throw .unknownDevice(deviceID, available: Devices.all().map(\.id))
        }
        let locator = kernelFolder.map { ResourceLocator(.kernels, environment: [ResourceLocator.Kind.kernels.environmentVariable: $0.path]) } ?? ResourceLocator(.kernels)
        try self.init(device: device, tuning: tuning ?? device.lookUpTuning(kernels: locator).tuning, kernelLocator: locator)
    }

    deinit {
        for kernel in kernels.values { clReleaseKernel(kernel) }
    }

    /// Builds (or fetches from the caches) a program and creates the named kernels from it, stored under
    /// `name + suffix`; every family loads its program through this.
    func loadKernels(from file: String, options: String, names: [String], suffix: String = "") throws(BackendError) {
        let program: BuiltProgram
        do {
            program = try ProgramCache.shared.program(file: file, options: options, context: context, device: openCLDevice.handle, locator: kernelLocator)
        } catch {
            throw .kernel(error)
        }
        programs.append(program)
        for name in names {
            var status: cl_int = 0
            guard let kernel = clCreateKernel(program.handle, name, &status), status == CL_SUCCESS else {
                throw .kernel(.openCL(file: file, OpenCLError(call: "clCreateKernel(\(name))", status: status)))
            }
            kernels[name + suffix] = kernel
        }
    }

    /// Whether a kernel has been loaded.
    func hasKernel(_ name: String) -> Bool { kernels[name] != nil }

    // MARK: Errors

    func record(_ error: BackendError) {
        if pendingError == nil { pendingError = error }
    }

    func record(call: String, status: cl_int) {
        let error = OpenCLError(call: call, status: status)
        record(.openCL(device: device.name, error))
    }

    /// Whether new work should be enqueued (no error is pending).
    var isHealthy: Bool { pendingError == nil }

    private func takeError() throws(BackendError) {
        if let error = pendingError {
            pendingError = nil
            throw error
        }
    }

    // MARK: Memory

    func memory(_ buffer: DeviceBuffer) -> cl_mem? {
        buffer.checkOwner(pool, "OpenCL backend for \(device.name)")
        return buffer.handle.map { OpaquePointer($0) }
    }

    public func allocate(_ count: Int) -> DeviceBuffer {
        DeviceBuffer.checkAllocation(count)
        let bytes = pool.roundedByteCount(count * 4)
        if let reused = pool.take(byteCount: bytes) {
            return DeviceBuffer(count: count, handle: reused, pool: pool)
        }
        guard bytes <= openCLDevice.maximumAllocationBytes else {
            record(.outOfMemory(device: device.name, bytes: count * 4))
            return DeviceBuffer(count: count, handle: nil, pool: pool)
        }
        var status: cl_int = 0
        var memory = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &status)
        if memory == nil || status != CL_SUCCESS {
            // Give pooled memory back to the driver and try once more before reporting.
            pool.drain()
            memory = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &status)
        }
        guard let memory, status == CL_SUCCESS else {
            record(.outOfMemory(device: device.name, bytes: count * 4))
            return DeviceBuffer(count: count, handle: nil, pool: pool)
        }
        return DeviceBuffer(count: count, handle: UnsafeMutableRawPointer(memory), pool: pool)
    }

    public func upload(_ values: UnsafeRawBufferPointer, to buffer: DeviceBuffer, offset: Int) {
        let elements = values.count / 4
        buffer.checkRange("upload", offset: offset, count: elements)
        guard isHealthy, elements > 0, let memory = memory(buffer) else { return }
        // The write is not blocking, so the driver reads from a private copy that is freed once it is done.
        guard let copy = malloc(values.count) else {
            record(.outOfMemory(device: "host", bytes: values.count))
            return
        }
        copy.copyMemory(from: values.baseAddress!, byteCount: values.count)
        var event: cl_event?
        let status = clEnqueueWriteBuffer(queue, memory, cl_bool(CL_FALSE), offset * 4, values.count, copy, 0, nil, &event)
        guard status == CL_SUCCESS, let event else {
            free(copy)
            return record(call: "clEnqueueWriteBuffer", status: status)
        }
        let callbackStatus = clSetEventCallback(event, CL_COMPLETE, { _, _, userData in free(userData) }, copy)
        if callbackStatus != CL_SUCCESS {
            // Without a callback the copy must outlive the write: wait for it.
            var waitList: cl_event? = event
            clWaitForEvents(1, &waitList)
            free(copy)
        }
        clReleaseEvent(event)
    }

    public func download(_ buffer: DeviceBuffer, offset: Int, into destination: UnsafeMutableRawBufferPointer) throws(BackendError) {
        let elements = destination.count / 4
        buffer.checkRange("download", offset: offset, count: elements)
        try takeError()
        guard elements > 0, let memory = memory(buffer) else { return }
        let status = clEnqueueReadBuffer(queue, memory, cl_bool(CL_TRUE), offset * 4, destination.count, destination.baseAddress, 0, nil, nil)
        if status != CL_SUCCESS { record(call: "clEnqueueReadBuffer", status: status) }
        try takeError()
    }

    public func copy(_ source: DeviceBuffer, offset sourceOffset: Int, to destination: DeviceBuffer, offset destinationOffset: Int, count: Int) {
        source.checkRange("copy (source)", offset: sourceOffset, count: count)
        destination.checkRange("copy (destination)", offset: destinationOffset, count: count)
        guard isHealthy, count > 0, let from = memory(source), let to = memory(destination) else { return }
        let status = clEnqueueCopyBuffer(queue, from, to, sourceOffset * 4, destinationOffset * 4, count * 4, 0, nil, nil)
        if status != CL_SUCCESS { record(call: "clEnqueueCopyBuffer", status: status) }
    }

    public func fill(_ buffer: DeviceBuffer, offset: Int, count: Int, value: Float) {
        buffer.checkRange("fill", offset: offset, count: count)
        guard isHealthy, count > 0, let memory = memory(buffer) else { return }
        var pattern = value
        let status = clEnqueueFillBuffer(queue, memory, &pattern, 4, offset * 4, count * 4, 0, nil, nil)
        if status != CL_SUCCESS { record(call: "clEnqueueFillBuffer", status: status) }
    }

    public func synchronize() throws(BackendError) {
        try takeError()
        let status = clFinish(queue)
        if status != CL_SUCCESS { record(call: "clFinish", status: status) }
        try takeError()
    }

    // MARK: Launching kernels

    /// One kernel argument.
    enum Argument {
        case buffer(DeviceBuffer)
        case int(Int)
        case float(Float)
        case uint64(UInt64)
        case int4(SIMD4<Int32>)
    }

    /// Sets the arguments of a kernel and enqueues it over `global` work-items in groups of `local`
    /// (the host rounds `global` up; kernels guard their edges).
    func launch(_ name: String, global: [Int], local: [Int], _ arguments: [Argument]) {
        guard isHealthy else { return }
        guard let kernel = kernels[name] else { preconditionFailure("OpenCL kernel \(name) was not loaded") }
        for (index, argument) in arguments.enumerated() {
            let status: cl_int
            switch argument {
            case let .buffer(buffer):
                guard var memory = memory(buffer) else { return }  // its allocation failed; already recorded
                status = clSetKernelArg(kernel, cl_uint(index), MemoryLayout<cl_mem?>.size, &memory)
            case let .int(value):
                precondition(value >= Int(Int32.min) && value <= Int(Int32.max), "\(name): argument \(index) = \(value) does not fit in 32 bits")
                var scalar = Int32(value)
                status = clSetKernelArg(kernel, cl_uint(index), 4, &scalar)
            case let .float(value):
                var scalar = value
                status = clSetKernelArg(kernel, cl_uint(index), 4, &scalar)
            case let .uint64(value):
                var scalar = value
                status = clSetKernelArg(kernel, cl_uint(index), 8, &scalar)
            case let .int4(value):
                var vector = value
                status = clSetKernelArg(kernel, cl_uint(index), 16, &vector)
            }
            if status != CL_SUCCESS { return record(call: "clSetKernelArg(\(name), \(index))", status: status) }
        }
        let rounded = zip(global, local).map { size, group in max(group, (size + group - 1) / group * group) }
        let status = clEnqueueNDRangeKernel(queue, kernel, cl_uint(rounded.count), nil, rounded, local, 0, nil, nil)
        if status != CL_SUCCESS { record(call: "clEnqueueNDRangeKernel(\(name))", status: status) }
    }

    /// Launches a one-dimensional kernel over `count` work-items.
    func launch1D(_ name: String, count: Int, _ arguments: [Argument]) {
        guard count > 0 else { return }
        launch(name, global: [count], local: [tuning.elementwiseGroupSize], arguments)
    }
}

internal import COpenCL
import Foundation
import KilnKernels
import Synchronization

/// An OpenCL device found at start-up, with the context, queue and buffer pool every backend on it shares.
///
/// OpenCL platform, device, context, queue and memory objects are thread-safe (OpenCL 1.2, appendix A.2),
/// and this class never changes them after creation, so it may be shared across threads.
final class OpenCLDevice: @unchecked Sendable {
    let platform: cl_platform_id
    let handle: cl_device_id
    let description: DeviceDescription
    private let shared = Mutex<SharedState?>(nil)

    /// The context, in-order queue and buffer pool of one device, created on first use.
    final class SharedState: @unchecked Sendable {
        let context: cl_context
        let queue: cl_command_queue
        let pool: BufferPool

        init(context: cl_context, queue: cl_command_queue, pool: BufferPool) {
            self.context = context
            self.queue = queue
            self.pool = pool
        }
    }

    private init(platform: cl_platform_id, handle: cl_device_id, description: DeviceDescription) {
        self.platform = platform
        self.handle = handle
        self.description = description
    }

    /// Every OpenCL device of every platform, in platform order; empty when no OpenCL platform is installed.
    static let all: [OpenCLDevice] = enumerate()

    private static func enumerate() -> [OpenCLDevice] {
        var platformCount: cl_uint = 0
        guard clGetPlatformIDs(0, nil, &platformCount) == CL_SUCCESS, platformCount > 0 else { return [] }
        var platforms = [cl_platform_id?](repeating: nil, count: Int(platformCount))
        guard clGetPlatformIDs(platformCount, &platforms, nil) == CL_SUCCESS else { return [] }
        var devices: [OpenCLDevice] = []
        for case let platform? in platforms {
            var deviceCount: cl_uint = 0
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &deviceCount) == CL_SUCCESS,
                deviceCount > 0
            else { continue }
            var handles = [cl_device_id?](repeating: nil, count: Int(deviceCount))
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), deviceCount, &handles, nil) == CL_SUCCESS
            else { continue }
            for case let handle? in handles {
                let index = devices.count
                devices.append(OpenCLDevice(platform: platform, handle: handle, description: describe(handle, index: index)))
            }
        }
        return devices
    }

    private static func describe(_ device: cl_device_id, index: Int) -> DeviceDescription {
        let typeBits = OpenCLInfo.deviceValue(device, cl_device_info(CL_DEVICE_TYPE), as: cl_device_type.self)
        let type: DeviceType =
            if typeBits & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 { .gpu }
            else if typeBits & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 { .cpu }
            else if typeBits & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 { .accelerator }
            else { .other }
        return DeviceDescription(
            id: "opencl:\(index)", backend: .opencl,
            name: OpenCLInfo.deviceString(device, cl_device_info(CL_DEVICE_NAME)),
            vendor: OpenCLInfo.deviceString(device, cl_device_info(CL_DEVICE_VENDOR)),
            type: type,
            computeUnits: Int(OpenCLInfo.deviceValue(device, cl_device_info(CL_DEVICE_MAX_COMPUTE_UNITS), as: cl_uint.self)),
            memoryBytes: Int(clamping: OpenCLInfo.deviceValue(device, cl_device_info(CL_DEVICE_GLOBAL_MEM_SIZE), as: cl_ulong.self)),
            isDefault: false,
            openclCVersion: OpenCLInfo.deviceString(device, cl_device_info(CL_DEVICE_OPENCL_C_VERSION)),
            driverVersion: OpenCLInfo.deviceString(device, cl_device_info(CL_DRIVER_VERSION)))
    }

    /// Which entries of the tuning database apply to this device: vendor, architecture, name, driver.
    var tuningIdentity: TuningIdentity {
        let extensions = OpenCLInfo.deviceString(handle, cl_device_info(CL_DEVICE_EXTENSIONS))
        let platformName = OpenCLInfo.platformString(platform, cl_platform_info(CL_PLATFORM_NAME))
        var computeCapability: (Int, Int)?
        if extensions.contains("cl_nv_device_attribute_query") {
            // CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV and _MINOR_NV (cl_ext.h).
            computeCapability = (Int(OpenCLInfo.deviceValue(handle, cl_device_info(0x4000), as: cl_uint.self)),
                                 Int(OpenCLInfo.deviceValue(handle, cl_device_info(0x4001), as: cl_uint.self)))
        }
        // CL_DEVICE_BOARD_NAME_AMD (cl_ext.h), only where the extension that defines it is present.
        let boardName = extensions.contains("cl_amd_device_attribute_query") ? OpenCLInfo.deviceString(handle, cl_device_info(0x4038)) : ""
        return TuningIdentity(description: description, platformName: platformName, computeCapability: computeCapability, boardName: boardName, hostProcessorName: Devices.cpuDescription.name)
    }

    /// What a kernel variant may use: the largest work-group and the local memory per work-group.
    var limits: DeviceLimits {
        DeviceLimits(
            maximumGroupSize: Int(OpenCLInfo.deviceValue(handle, cl_device_info(CL_DEVICE_MAX_WORK_GROUP_SIZE), as: Int.self)),
            localMemoryBytes: Int(clamping: OpenCLInfo.deviceValue(handle, cl_device_info(CL_DEVICE_LOCAL_MEM_SIZE), as: cl_ulong.self)))
    }

    /// The largest single allocation the device allows.
    var maximumAllocationBytes: Int {
        Int(clamping: OpenCLInfo.deviceValue(handle, cl_device_info(CL_DEVICE_MAX_MEM_ALLOC_SIZE), as: cl_ulong.self))
    }

    /// The device's shared context, queue and pool, created on first use.
    ///
    /// - Throws: ``BackendError/openCL(device:_:)`` when the driver refuses a context or queue.
    func sharedState() throws(BackendError) -> SharedState {
        let result: Result<SharedState, BackendError> = shared.withLock { state in
            if let state { return .success(state) }
            var status: cl_int = 0
            var deviceList: cl_device_id? = handle
            guard let context = clCreateContext(nil, 1, &deviceList, nil, nil, &status), status == CL_SUCCESS else {
                return .failure(.openCL(device: description.name, OpenCLError(call: "clCreateContext", status: status)))
            }
            guard let queue = clCreateCommandQueue(context, handle, 0, &status), status == CL_SUCCESS else {
                clReleaseContext(context)
                return .failure(.openCL(device: description.name, OpenCLError(call: "clCreateCommandQueue", status: status)))
            }
            // Keep up to a quarter of device memory (at most 4 GiB) of freed buffers for reuse.
            let capacity = min(description.memoryBytes / 4, 4 << 30)
            let pool = BufferPool(capacityBytes: capacity) { pointer in
                clReleaseMemObject(OpaquePointer(pointer))
            }
            let created = SharedState(context: context, queue: queue, pool: pool)
            state = created
            return .success(created)
        }
        return try result.get()
    }
}

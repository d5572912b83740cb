import CCLBlast
import Foundation

/// CLBlast's SGEMM on one OpenCL device, with its own context and queue on that device.
///
/// Devices are numbered as Kiln numbers them (`opencl:N`): every device of every platform, in order.
final class CLBlastRunner {
    private let context: cl_context
    private var queue: cl_command_queue?
    let deviceName: String

    init?(deviceIndex: Int) {
        var platformCount: cl_uint = 0
        guard clGetPlatformIDs(0, nil, &platformCount) == CL_SUCCESS, platformCount > 0 else { return nil }
        var platforms = [cl_platform_id?](repeating: nil, count: Int(platformCount))
        clGetPlatformIDs(platformCount, &platforms, nil)
        var all: [cl_device_id] = []
        for case let platform? in platforms {
            var count: cl_uint = 0
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &count) == CL_SUCCESS, count > 0 else { continue }
            var devices = [cl_device_id?](repeating: nil, count: Int(count))
            clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), count, &devices, nil)
            all += devices.compactMap { $0 }
        }
        guard deviceIndex < all.count else { return nil }
        var device: cl_device_id? = all[deviceIndex]
        var status: cl_int = 0
        guard let context = clCreateContext(nil, 1, &device, nil, nil, &status), status == CL_SUCCESS else { return nil }
        self.context = context
        self.queue = clCreateCommandQueue(context, device, 0, &status)
        var nameBytes = [CChar](repeating: 0, count: 256)
        clGetDeviceInfo(device, cl_device_info(CL_DEVICE_NAME), 256, &nameBytes, nil)
        deviceName = String(decoding: nameBytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if queue == nil { return nil }
    }

    deinit {
        if let queue { clReleaseCommandQueue(queue) }
        clReleaseContext(context)
    }

    /// A prepared `C = A·B` (row-major, m × k times k × n) on fresh random buffers.
    final class Sgemm {
        let run: () -> Void
        private let buffers: [cl_mem]

        fileprivate init(runner: CLBlastRunner, m: Int, n: Int, k: Int, a: cl_mem, b: cl_mem, c: cl_mem) {
            buffers = [a, b, c]
            var queue = runner.queue
            // The first call succeeded (see sgemmRunner), so later calls are not checked while timing.
            run = {
                _ = CLBlastSgemm(
                    CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, m, n, k, 1, a, 0, k, b, 0, n, 0, c, 0, n, &queue, nil)
                clFinish(queue)
            }
        }

        deinit { for buffer in buffers { clReleaseMemObject(buffer) } }
    }

    /// Prepares an SGEMM to time, or nil if the buffers cannot be made or CLBlast fails on a first call.
    func sgemmRunner(m: Int, n: Int, k: Int) -> Sgemm? {
        var status: cl_int = 0
        guard let a = makeBuffer(random(m * k), &status), let b = makeBuffer(random(k * n), &status),
            let c = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), m * n * 4, nil, &status)
        else { return nil }
        var queue = self.queue
        let first = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, m, n, k, 1, a, 0, k, b, 0, n, 0, c, 0, n, &queue, nil)
        clFinish(queue)
        guard first == CLBlastSuccess else {
            clReleaseMemObject(a)
            clReleaseMemObject(b)
            clReleaseMemObject(c)
            return nil
        }
        return Sgemm(runner: self, m: m, n: n, k: k, a: a, b: b, c: c)
    }

    private func makeBuffer(_ values: [Float], _ status: inout cl_int) -> cl_mem? {
        var copy = values
        return clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR), values.count * 4, &copy, &status)
    }

    private func random(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1) } }
}

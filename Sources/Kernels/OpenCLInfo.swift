package import COpenCL
import Foundation

/// Small typed readers over `clGetDeviceInfo` and `clGetPlatformInfo`.
package enum OpenCLInfo {
    /// A string-valued device property such as `CL_DEVICE_NAME`, trimmed of its terminating NUL and spaces.
    package static func deviceString(_ device: cl_device_id, _ parameter: cl_device_info) -> String {
        var size = 0
        guard clGetDeviceInfo(device, parameter, 0, nil, &size) == CL_SUCCESS, size > 0 else { return "" }
        var bytes = [CChar](repeating: 0, count: size)
        guard clGetDeviceInfo(device, parameter, size, &bytes, nil) == CL_SUCCESS else { return "" }
        return decode(bytes)
    }

    /// A string-valued platform property such as `CL_PLATFORM_VERSION`.
    package static func platformString(_ platform: cl_platform_id, _ parameter: cl_platform_info) -> String {
        var size = 0
        guard clGetPlatformInfo(platform, parameter, 0, nil, &size) == CL_SUCCESS, size > 0 else { return "" }
        var bytes = [CChar](repeating: 0, count: size)
        guard clGetPlatformInfo(platform, parameter, size, &bytes, nil) == CL_SUCCESS else { return "" }
        return decode(bytes)
    }

    /// A fixed-size scalar device property (`cl_uint`, `cl_ulong`, `size_t`, `cl_device_type`, …).
    package static func deviceValue<T: FixedWidthInteger>(_ device: cl_device_id, _ parameter: cl_device_info, as type: T.Type) -> T {
        var result: T = 0
        _ = clGetDeviceInfo(device, parameter, MemoryLayout<T>.size, &result, nil)
        return result
    }

    /// The platform a device belongs to.
    package static func platform(of device: cl_device_id) -> cl_platform_id? {
        var platform: cl_platform_id?
        _ = clGetDeviceInfo(device, cl_device_info(CL_DEVICE_PLATFORM), MemoryLayout<cl_platform_id?>.size, &platform, nil)
        return platform
    }

    private static func decode(_ bytes: [CChar]) -> String {
        let text = bytes.withUnsafeBufferPointer { pointer in
            String(decoding: pointer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return text.trimmingCharacters(in: .whitespaces)
    }
}


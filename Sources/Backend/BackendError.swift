import Foundation
import KilnKernels

/// Errors a backend reports to the user: each says what went wrong and what to do.
public enum BackendError: Error, CustomStringConvertible, Sendable {
    /// The requested device name matches no device; `available` lists the ids that exist.
    case unknownDevice(String, available: [String])
    /// The device ran out of memory allocating `bytes`.
    case outOfMemory(device: String, bytes: Int)
    /// A kernel file was missing or failed to build.
    case kernel(KernelError)
    /// An OpenCL call failed.
    case openCL(device: String, OpenCLError)

    public var description: String {
        switch self {
        case let .unknownDevice(name, available):
            "unknown device '\(name)'; available devices: \(available.joined(separator: ", ")) "
                + "(also 'auto' and 'opencl'); run `kiln devices` to list them"
        case let .outOfMemory(device, bytes):
            "out of memory on \(device) allocating \(ByteCountText.format(bytes)); "
                + "use a smaller batch size or model, or another --device"
        case let .kernel(error):
            error.description
        case let .openCL(device, error):
            "OpenCL error on \(device): \(error)"
        }
    }
}

/// Human-readable byte counts ("1.5 GiB").
public enum ByteCountText {
    public static func format(_ bytes: Int) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) bytes" : "\((value * 10).rounded() / 10) \(units[unit])"
    }
}

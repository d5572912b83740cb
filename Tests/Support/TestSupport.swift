import Foundation
import KilnBackend

/// The backends a test runs on: the CPU backend and every OpenCL device (PoCL's CPU device included).
///
/// Tests take a `BackendCase` argument (`@Test(arguments: BackendCase.all)`) and make a fresh backend from
/// it, so each case runs on its own kernel objects and may run in parallel with the others.
public struct BackendCase: Sendable, CustomStringConvertible {
    public let deviceID: String
    public let deviceName: String
    /// OpenCL kernel parameters to use instead of the device's defaults (nil: the defaults).
    public let tuning: OpenCLTuning?

    public init(deviceID: String, deviceName: String, tuning: OpenCLTuning? = nil) {
        self.deviceID = deviceID
        self.deviceName = deviceName
        self.tuning = tuning
    }

    /// The CPU backend plus every OpenCL device; when no OpenCL platform exists, only the CPU backend
    /// (and a note on standard error says the OpenCL cases are skipped).
    public static let all: [BackendCase] = {
        let devices = Devices.all()
        if !devices.contains(where: { $0.backend == .opencl }) {
            FileHandle.standardError.write(Data("note: no OpenCL platform found; OpenCL backend test cases are skipped\n".utf8))
        }
        return devices.map { BackendCase(deviceID: $0.id, deviceName: $0.name) }
    }()

    /// Only the OpenCL devices (empty without an OpenCL platform).
    public static let openCL: [BackendCase] = all.filter { $0.deviceID != "cpu" }

    /// ``all``, plus every OpenCL device that is not a GPU once more with the GPU kernel parameters
    /// (``OpenCLTuning/gpuDevice``), so that on a CPU-only machine PoCL checks the GPU code paths too
    /// (work-group reductions over rows, the local-memory SGEMM tiles).
    public static let withGPUParameters: [BackendCase] = all + Devices.all().filter { $0.backend == .opencl && $0.type != .gpu }.map {
        BackendCase(deviceID: $0.id, deviceName: $0.name, tuning: .gpuDevice)
    }

    /// A new backend for this device.
    public func makeBackend() throws -> any Backend {
        if let tuning { return try OpenCLBackend(deviceID: deviceID, tuning: tuning) }
        return try Devices.makeBackend(deviceID)
    }

    public var description: String {
        let device = deviceID == "cpu" ? "cpu" : "\(deviceID) (\(deviceName))"
        guard let tuning else { return device }
        if tuning == .gpuDevice { return device + " with GPU parameters" }
        // The only other explicit tunings the suites use: a GPU device's defaults with the chunked scans' CPU layout.
        var gpu = OpenCLTuning.gpuDevice
        gpu.scan.chunkedLayout = tuning.scan.chunkedLayout
        return device + (tuning == gpu ? " with GPU parameters and the chunked scans' \(tuning.scan.chunkedLayout) layout" : " with explicit parameters")
    }
}

/// Central finite differences of a scalar function of many variables, in float64.
public func finiteDifferenceGradient(_ x: [Double], step: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var point = x
    return x.indices.map { index in
        let original = point[index]
        point[index] = original + step
        let plus = f(point)
        point[index] = original - step
        let minus = f(point)
        point[index] = original
        return (plus - minus) / (2 * step)
    }
}

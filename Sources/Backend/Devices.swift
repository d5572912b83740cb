import Foundation

/// Which backend computes on a device.
public enum BackendKind: String, Sendable, Codable, Hashable, CaseIterable {
    /// ``CPUBackend``: OpenBLAS for gemm, C loops split across cores for the rest.
    case cpu
    /// ``OpenCLBackend``: kernels from `Kernels/*.cl` compiled at run time.
    case opencl
}

/// The kind of processor a device is, as OpenCL reports it (`CL_DEVICE_TYPE`); the CPU backend's is `cpu`.
public enum DeviceType: String, Sendable, Codable, Hashable, CaseIterable {
    case cpu
    case gpu
    case accelerator
    case other
}

/// One device Kiln can compute on, as `kiln devices` lists it.
public struct DeviceDescription: Sendable, Codable, Hashable {
    /// The name `--device` accepts: `cpu` or `opencl:N`.
    public var id: String
    /// The CPU backend (OpenBLAS) or OpenCL.
    public var backend: BackendKind
    public var name: String
    public var vendor: String
    public var type: DeviceType
    public var computeUnits: Int
    /// Global memory in bytes (host memory for the CPU backend).
    public var memoryBytes: Int
    /// Whether `--device auto` picks this device.
    public var isDefault: Bool
    /// The OpenCL C version the device compiles (`nil` for the CPU backend).
    public var openclCVersion: String?
    /// The driver version (OpenCL devices) or the BLAS library (the CPU backend).
    public var driverVersion: String

    public init(
        id: String, backend: BackendKind, name: String, vendor: String, type: DeviceType, computeUnits: Int,
        memoryBytes: Int, isDefault: Bool, openclCVersion: String?, driverVersion: String
    ) {
        self.id = id
        self.backend = backend
        self.name = name
        self.vendor = vendor
        self.type = type
        self.computeUnits = computeUnits
        self.memoryBytes = memoryBytes
        self.isDefault = isDefault
        self.openclCVersion = openclCVersion
        self.driverVersion = driverVersion
    }

    private enum CodingKeys: String, CodingKey {
        case id, backend, name, vendor, type, computeUnits, memoryBytes, isDefault, openclCVersion, driverVersion
    }

    /// Encodes every key, writing `null` for a missing OpenCL C version, so each object has the same keys.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(backend, forKey: .backend)
        try container.encode(name, forKey: .name)
        try container.encode(vendor, forKey: .vendor)
        try container.encode(type, forKey: .type)
        try container.encode(computeUnits, forKey: .computeUnits)
        try container.encode(memoryBytes, forKey: .memoryBytes)
        try container.encode(isDefault, forKey: .isDefault)
        try container.encode(openclCVersion, forKey: .openclCVersion)
        try container.encode(driverVersion, forKey: .driverVersion)
    }
}

/// Device discovery and the one place a device name (`--device`, `KILN_DEVICE`) becomes a backend.
///
/// Names: `auto` (the first OpenCL GPU, else the CPU backend), `cpu`, `opencl` (the first OpenCL
/// device of any type) and `opencl:N` (the N-th OpenCL device across all platforms, as listed).
/// PoCL's CPU device is used only when asked for by name.
public enum Devices {
    /// Every device: the CPU backend first, then each OpenCL device in platform order, with
    /// ``DeviceDescription/isDefault`` marking the one `auto` picks.
    public static func all() -> [DeviceDescription] {
        var devices = [cpuDescription] + OpenCLDevice.all.map(\.description)
        let chosen = autoChoice(devices)
        for index in devices.indices { devices[index].isDefault = devices[index].id == chosen }
        return devices
    }

    /// The device a name refers to; `nil` reads `KILN_DEVICE`, and an empty or unset variable means `auto`.
    ///
    /// - Throws: ``BackendError/unknownDevice(_:available:)`` listing the devices there are.
    public static func resolve(_ request: String? = nil) throws(BackendError) -> DeviceDescription {
        let name = (request ?? ProcessInfo.processInfo.environment["KILN_DEVICE"] ?? "auto")
            .trimmingCharacters(in: .whitespaces).lowercased()
        let devices = all()
        switch name {
        case "", "auto":
            return devices.first { $0.isDefault }!
        case "opencl":
            if let first = devices.first(where: { $0.backend == .opencl }) { return first }
        default:
            if let device = devices.first(where: { $0.id == name }) { return device }
        }
        throw .unknownDevice(name, available: devices.map(\.id))
    }

    /// Creates a backend for a device name (see ``resolve(_:)``).
    ///
    /// - Throws: ``BackendError`` for an unknown name, or when the OpenCL device cannot be set up
    ///   (its context, queue or kernels).
    public static func makeBackend(_ request: String? = nil) throws(BackendError) -> any Backend {
        try makeBackend(for: resolve(request))
    }

    /// Creates a backend for a device from ``all()``.
    public static func makeBackend(for description: DeviceDescription) throws(BackendError) -> any Backend {
        if description.backend == .cpu { return CPUBackend() }
        guard let device = OpenCLDevice.all.first(where: { $0.description.id == description.id }) else {
            throw .unknownDevice(description.id, available: all().map(\.id))
        }
        return try OpenCLBackend(device: device)
    }

    /// Whether any OpenCL platform with at least one device is installed.
    public static var hasOpenCL: Bool { !OpenCLDevice.all.isEmpty }

    static func autoChoice(_ devices: [DeviceDescription]) -> String {
        devices.first { $0.backend == .opencl && $0.type == .gpu }?.id ?? "cpu"
    }

    /// The CPU backend's description: the processor's name from `/proc/cpuinfo`, its core count and memory.
    public static let cpuDescription: DeviceDescription = {
        var name = "CPU"
        var vendor = "unknown"
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2 else { continue }
                if parts[0] == "model name", name == "CPU" { name = parts[1] }
                if parts[0] == "vendor_id", vendor == "unknown" { vendor = parts[1] }
            }
        }
        return DeviceDescription(
            id: "cpu", backend: .cpu, name: name, vendor: vendor, type: .cpu,
            computeUnits: ProcessInfo.processInfo.activeProcessorCount,
            memoryBytes: Int(clamping: ProcessInfo.processInfo.physicalMemory), isDefault: false,
            openclCVersion: nil, driverVersion: "OpenBLAS")
    }()
}

import Foundation
import KilnKernels
import Synchronization

// Where an OpenCL device's kernel parameters come from, most specific first: the user's tuning file for the
// device (`kiln tune`, in $KILN_CACHE_DIR/tuning/), the shipped database (Kernels/tuning/*.json, keyed
// vendor → architecture → device name with a `default` at each level, as CLBlast's), and the built-in
// defaults by device type (OpenCLTuning.cpuDevice / .gpuDevice). Each level may set only some parameters;
// the rest come from the next.

/// What identifies a device to the tuning database.
public struct TuningIdentity: Sendable, Equatable, Codable {
    /// A short vendor key: `pocl` (PoCL's CPU device, whatever the processor's vendor), `nvidia`, `amd`,
    /// `intel`, `apple`, or the vendor string in lower case.
    public var vendor: String
    /// NVIDIA's `SMx.y` (cl_nv_device_attribute_query), AMD's `gfx…` (the device or board name), PoCL's
    /// LLVM CPU name (`skylake-avx512` from `pthread-skylake-avx512-…`), else the device name.
    public var architecture: String
    /// `CL_DEVICE_NAME`.
    public var device: String
    /// `CL_DRIVER_VERSION`: a tuning file from another driver is ignored, with a note.
    public var driverVersion: String
    /// CPU, GPU, … (the built-in defaults depend on it).
    public var type: DeviceType

    public init(vendor: String, architecture: String, device: String, driverVersion: String, type: DeviceType) {
        self.vendor = vendor
        self.architecture = architecture
        self.device = device
        self.driverVersion = driverVersion
        self.type = type
    }

    /// The identity of a device from what OpenCL reports about it (what `OpenCLDevice` passes; public for tests).
    public init(description: DeviceDescription, platformName: String, computeCapability: (Int, Int)?, boardName: String, hostProcessorName: String) {
        let vendorText = description.vendor.lowercased(), name = description.name
        let isPoCL = platformName.contains("Portable Computing Language") || (description.openclCVersion ?? "").contains("PoCL")
        if isPoCL {
            vendor = "pocl"
            // PoCL names its CPU device `<driver>-<LLVM CPU>-<host processor name>` (or without the last part).
            var rest = Substring(name)
            for prefix in ["pthread-", "cpu-", "basic-", "cpu-minimal-"] where rest.hasPrefix(prefix) {
                rest = rest.dropFirst(prefix.count)
                break
            }
            if rest.hasSuffix("-" + hostProcessorName) { rest = rest.dropLast(hostProcessorName.count + 1) }
            architecture = String(rest)
        } else if vendorText.contains("nvidia") {
            vendor = "nvidia"
            architecture = computeCapability.map { "SM\($0.0).\($0.1)" } ?? name
        } else if vendorText.contains("advanced micro devices") || vendorText.hasPrefix("amd") {
            vendor = "amd"
            architecture = name.hasPrefix("gfx") ? String(name.prefix { $0 != ":" }) : (boardName.isEmpty ? name : boardName)
        } else if vendorText.contains("intel") {
            vendor = "intel"
            architecture = name
        } else if vendorText.contains("apple") {
            vendor = "apple"
            architecture = name
        } else {
            vendor = vendorText.isEmpty ? "unknown" : vendorText
            architecture = name
        }
        device = name
        driverVersion = description.driverVersion
        type = description.type
    }

    /// The file name of this device's tuning in the user's cache: vendor and device name, made safe
    /// for a file name (the driver version is inside, so that another driver's file is found and noted).
    public var fileName: String {
        let safe = "\(vendor)-\(device)".map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" }
        return String(safe.prefix(150)) + ".json"
    }
}

/// What a kernel variant may use on a device.
public struct DeviceLimits: Sendable, Equatable {
    /// `CL_DEVICE_MAX_WORK_GROUP_SIZE`.
    public var maximumGroupSize: Int
    /// `CL_DEVICE_LOCAL_MEM_SIZE`.
    public var localMemoryBytes: Int

    public init(maximumGroupSize: Int, localMemoryBytes: Int) {
        self.maximumGroupSize = maximumGroupSize
        self.localMemoryBytes = localMemoryBytes
    }
}

/// Which level of the lookup a device's tuning came from (the most specific one that set anything).
public enum TuningSource: Sendable, Equatable, CustomStringConvertible {
    /// The user's file from `kiln tune`.
    case userFile(URL)
    /// The shipped database, at this key (`pocl/skylake-avx512`, `nvidia/SM9.0/NVIDIA H100 …`, `amd/default`).
    case shipped(String)
    /// The built-in defaults for this device type.
    case builtIn(DeviceType)

    public var description: String {
        switch self {
        case .userFile: "tuned (user file)"
        case let .shipped(key): "shipped: \(key)"
        case let .builtIn(type): "built-in \(type == .cpu ? "cpu" : "gpu")"
        }
    }
}

/// A tuning file as `kiln tune` writes it to `$KILN_CACHE_DIR/tuning/<vendor>-<device>.json`.
public struct TuningFile: Codable, Sendable, Equatable {
    public static let currentFormat = "kiln-tuning/1"
    public var format: String
    public var identity: TuningIdentity
    /// The parameters found best; a file may hold only some (the rest come from the next level).
    public var parameters: [String: Int]
    /// When and how it was measured (`kiln tune …`), for people reading the file.
    public var measured: String
    /// Default against tuned per family and shape, as the final table showed them.
    public var results: [TuningResult]

    public init(identity: TuningIdentity, parameters: [String: Int], measured: String, results: [TuningResult]) {
        self.format = Self.currentFormat
        self.identity = identity
        self.parameters = parameters
        self.measured = measured
        self.results = results
    }

    /// Writes the file through a temporary file and a rename (Foundation's atomic write), so a crash
    /// never leaves half a file; creates the folder.
    public func write(to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: url, options: .atomic)
    }
}

/// One shape's time with the default and the tuned parameters.
public struct TuningResult: Codable, Sendable, Equatable {
    public var family: String
    public var shape: String
    public var defaultSeconds: Double
    public var tunedSeconds: Double
    /// GFLOP/s (gemm) or another rate per second, when the workload has one.
    public var defaultRate: Double?
    public var tunedRate: Double?
    public var unit: String?
}

/// The shipped tuning database: every `Kernels/tuning/*.json` file, merged. A file's form:
///
///     {"format": "kiln-tuning-database/1",
///      "vendors": {"pocl": {"default": {…}, "architectures": {"skylake-avx512": {
///          "default": {"gemm.rowsPerItem": 6, …}, "devices": {"pthread-skylake-avx512-…": {…}}}}}},
///      "notes": ["pocl/skylake-avx512: measured …"]}
public struct TuningDatabase: Codable, Sendable, Equatable {
    public static let currentFormat = "kiln-tuning-database/1"

    public struct Architecture: Codable, Sendable, Equatable {
        public var `default`: [String: Int]?
        public var devices: [String: [String: Int]]?
    }

    public struct Vendor: Codable, Sendable, Equatable {
        public var `default`: [String: Int]?
        public var architectures: [String: Architecture]?
    }

    public var format: String
    public var vendors: [String: Vendor]
    public var notes: [String]?

    public init(vendors: [String: Vendor] = [:], notes: [String]? = nil) {
        self.format = Self.currentFormat
        self.vendors = vendors
        self.notes = notes
    }

    /// A database holding one device's entry, also as its architecture's default (what
    /// `kiln tune --export` prints, ready to save as `Kernels/tuning/<vendor>-<architecture>.json`).
    public static func entry(_ identity: TuningIdentity, parameters: [String: Int], note: String) -> TuningDatabase {
        let architecture = Architecture(default: parameters, devices: [identity.device: parameters])
        return TuningDatabase(vendors: [identity.vendor: Vendor(default: nil, architectures: [identity.architecture: architecture])], notes: [note])
    }

    /// Merges another file's entries into this one (later files win for the same key).
    mutating func merge(_ other: TuningDatabase) {
        for (name, vendor) in other.vendors {
            var mine = vendors[name] ?? Vendor(default: nil, architectures: nil)
            if let value = vendor.default { mine.default = (mine.default ?? [:]).merging(value) { $1 } }
            for (archName, architecture) in vendor.architectures ?? [:] {
                var arch = mine.architectures?[archName] ?? Architecture(default: nil, devices: nil)
                if let value = architecture.default { arch.default = (arch.default ?? [:]).merging(value) { $1 } }
                for (device, value) in architecture.devices ?? [:] { arch.devices = (arch.devices ?? [:]).merging([device: value]) { $1 } }
                mine.architectures = (mine.architectures ?? [:]).merging([archName: arch]) { $1 }
            }
            vendors[name] = mine
        }
    }

    /// The levels that apply to a device, least specific first, each with its key.
    func levels(for identity: TuningIdentity) -> [(key: String, values: [String: Int])] {
        guard let vendor = vendors[identity.vendor] else { return [] }
        var result: [(String, [String: Int])] = []
        if let value = vendor.default { result.append(("\(identity.vendor)/default", value)) }
        if let architecture = vendor.architectures?[identity.architecture] {
            if let value = architecture.default { result.append(("\(identity.vendor)/\(identity.architecture)", value)) }
            if let value = architecture.devices?[identity.device] { result.append(("\(identity.vendor)/\(identity.architecture)/\(identity.device)", value)) }
        } else if let value = vendor.architectures?["default"]?.default {
            result.append(("\(identity.vendor)/default", value))
        }
        return result
    }
}

/// The tuning a device gets, where it came from, and what the lookup had to say (a corrupted file, a file
/// from another driver, a parameter the kernels do not accept).
public struct TuningLookup: Sendable {
    public var tuning: OpenCLTuning
    public var source: TuningSource
    /// One-line warnings and notes, for standard error.
    public var notes: [String]

    /// `$KILN_CACHE_DIR/tuning` (the program cache's root, default `~/.cache/kiln`).
    public static var userFolder: URL { ProgramCache.shared.cacheDirectory.appendingPathComponent("tuning") }

    /// The shipped database folder, `tuning/` inside the kernels folder found as usual (nil when there is none).
    public static func shippedFolder(kernels locator: ResourceLocator = ResourceLocator(.kernels)) -> URL? {
        guard let folder = try? locator.folder() else { return nil }
        return folder.appendingPathComponent("tuning")
    }

    /// Resolves the tuning for a device: user file → shipped database → built-in defaults.
    ///
    /// - Parameters:
    ///   - userFolder: where the user's tuning files are (``userFolder`` by default; tests pass their own).
    ///   - shippedFolder: the shipped database's folder (nil: none).
    public static func resolve(_ identity: TuningIdentity, userFolder: URL = TuningLookup.userFolder, shippedFolder: URL?) -> TuningLookup {
        var notes: [String] = []
        var tuning: OpenCLTuning = identity.type == .cpu ? .cpuDevice : .gpuDevice
        var source = TuningSource.builtIn(identity.type)
        func apply(_ values: [String: Int], from place: String) {
            let (updated, rejected) = tuning.setting(values)
            tuning = updated
            for problem in rejected { notes.append("warning: \(place): \(problem); ignored") }
        }
        if let shippedFolder {
            let (database, problems) = loadDatabase(shippedFolder)
            notes += problems
            for level in database.levels(for: identity) {
                apply(level.values, from: "shipped tuning \(level.key)")
                source = .shipped(level.key.hasSuffix("/\(identity.device)") ? String(level.key.dropLast(identity.device.count + 1)) : level.key)
            }
        }
        let url = userFolder.appendingPathComponent(identity.fileName)
        if FileManager.default.fileExists(atPath: url.path) {
            switch readUserFile(url) {
            case let .success(file):
                if file.identity.driverVersion != identity.driverVersion {
                    notes.append("note: \(url.path) was tuned with driver \(file.identity.driverVersion), this is \(identity.driverVersion); ignored it (run `kiln tune` again)")
                } else if file.identity.device != identity.device || file.identity.vendor != identity.vendor {
                    notes.append("note: \(url.path) is for \(file.identity.vendor) \(file.identity.device); ignored it")
                } else {
                    apply(file.parameters, from: url.path)
                    source = .userFile(url)
                }
            case let .failure(problem):
                notes.append("warning: \(url.path) is not a tuning file (\(problem)); using the \(source) tuning instead (run `kiln tune` again, or delete it)")
            }
        }
        return TuningLookup(tuning: tuning, source: source, notes: notes)
    }

    /// Reads a user tuning file (`kiln tune` merges a new result into the one there).
    public static func readUserFileForMerge(_ url: URL) -> Result<TuningFile, any Error> {
        readUserFile(url).mapError { $0 as any Error }
    }

    /// Reads one user tuning file; a failure is a short reason.
    static func readUserFile(_ url: URL) -> Result<TuningFile, TuningFileProblem> {
        guard let data = FileManager.default.contents(atPath: url.path), data.count <= 16 << 20 else { return .failure(TuningFileProblem("unreadable or larger than 16 MiB")) }
        do {
            let file = try JSONDecoder().decode(TuningFile.self, from: data)
            guard file.format == TuningFile.currentFormat else { return .failure(TuningFileProblem("format '\(file.format.prefix(40))', expected \(TuningFile.currentFormat)")) }
            return .success(file)
        } catch {
            return .failure(TuningFileProblem(decodingReason(error)))
        }
    }

    /// Every `*.json` of the shipped folder merged in name order; a file that does not parse is left out
    /// with a warning.
    static func loadDatabase(_ folder: URL) -> (TuningDatabase, [String]) {
        var database = TuningDatabase()
        var problems: [String] = []
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        for name in names {
            let url = folder.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: url.path) else { continue }
            do {
                let file = try JSONDecoder().decode(TuningDatabase.self, from: data)
                guard file.format == TuningDatabase.currentFormat else {
                    problems.append("warning: \(url.path) has format '\(file.format.prefix(40))', expected \(TuningDatabase.currentFormat); ignored")
                    continue
                }
                database.merge(file)
            } catch {
                problems.append("warning: \(url.path) is not a tuning database (\(decodingReason(error))); ignored")
            }
        }
        return (database, problems)
    }

    static func decodingReason(_ error: any Error) -> String {
        switch error {
        case let DecodingError.dataCorrupted(context): "not valid JSON: \(context.debugDescription.prefix(80))"
        case let DecodingError.keyNotFound(key, _): "no '\(key.stringValue)'"
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context):
            "wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        default: "\(error)".split(whereSeparator: \.isNewline).first.map(String.init) ?? "unreadable"
        }
    }
}

struct TuningFileProblem: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension OpenCLDevice {
    /// This device's tuning by the lookup, its notes printed once per process on standard error.
    func lookUpTuning(kernels locator: ResourceLocator) -> TuningLookup {
        let lookup = TuningLookup.resolve(tuningIdentity, shippedFolder: TuningLookup.shippedFolder(kernels: locator))
        TuningNotes.printOnce(lookup.notes)
        return lookup
    }
}

/// Prints each lookup note once per process (every backend on a device looks its tuning up again).
enum TuningNotes {
    private static let printed = Mutex<Set<String>>([])

    static func printOnce(_ notes: [String]) {
        for note in notes where printed.withLock({ $0.insert(note).inserted }) {
            FileHandle.standardError.write(Data((note + "\n").utf8))
        }
    }
}

extension Devices {
    /// The tuning an OpenCL device gets and where it comes from (nil for the CPU backend); its notes (a
    /// corrupted file, another driver's file) go to standard error once per process.
    public static func tuningLookup(for description: DeviceDescription) -> TuningLookup? {
        guard description.backend == .opencl, let device = OpenCLDevice.all.first(where: { $0.description.id == description.id }) else { return nil }
        return device.lookUpTuning(kernels: ResourceLocator(.kernels))
    }

    /// What identifies an OpenCL device to the tuning database (nil for the CPU backend).
    public static func tuningIdentity(for description: DeviceDescription) -> TuningIdentity? {
        guard description.backend == .opencl else { return nil }
        return OpenCLDevice.all.first { $0.description.id == description.id }?.tuningIdentity
    }
}

import Foundation
import KilnBackend
import Testing

/// The order of the tuning lookup: the user's file beats the shipped database, which beats the built-in
/// defaults; partial files; corrupted files and files of another driver fall back with a note.
@Suite("tuning lookup")
struct TuningLookupTests {
    static let identity = TuningIdentity(vendor: "pocl", architecture: "skylake-avx512", device: "pthread-skylake-avx512-Test CPU", driverVersion: "3.1", type: .cpu)

    /// A shipped database with a vendor default, an architecture default and this device's entry.
    static func writeDatabase(_ folder: URL) throws {
        let json = """
            {"format": "kiln-tuning-database/1",
             "vendors": {"pocl": {"default": {"elementwise.groupSize": 32},
                                  "architectures": {"skylake-avx512": {"default": {"gemm.rowsPerItem": 4, "rows.rowsPerGroup": 8},
                                                                       "devices": {"pthread-skylake-avx512-Test CPU": {"gemm.tileK": 64}}},
                                                    "haswell": {"default": {"gemm.rowsPerItem": 2}}}},
                         "nvidia": {"default": {"gemm.rowsPerItem": 8}}}}
            """
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(json.utf8).write(to: folder.appendingPathComponent("pocl.json"))
    }

    static func writeUserFile(_ folder: URL, driver: String = "3.1", parameters: [String: Int]) throws {
        var identity = Self.identity
        identity.driverVersion = driver
        try TuningFile(identity: identity, parameters: parameters, measured: "test", results: []).write(to: folder.appendingPathComponent(Self.identity.fileName))
    }

    @Test("no files: the built-in defaults for the device type")
    func builtIn() throws {
        try withFolder("lookup-none") { folder in
            let lookup = TuningLookup.resolve(Self.identity, userFolder: folder.appendingPathComponent("user"), shippedFolder: folder.appendingPathComponent("none"))
            #expect(lookup.tuning == .cpuDevice)
            #expect(lookup.source == .builtIn(.cpu))
            #expect(lookup.notes.isEmpty)
            #expect("\(lookup.source)" == "built-in cpu")
        }
    }

    @Test("the shipped database: vendor, architecture and device levels, each setting only some parameters")
    func shipped() throws {
        try withFolder("lookup-shipped") { folder in
            try Self.writeDatabase(folder.appendingPathComponent("shipped"))
            let lookup = TuningLookup.resolve(Self.identity, userFolder: folder.appendingPathComponent("user"), shippedFolder: folder.appendingPathComponent("shipped"))
            #expect(lookup.tuning.elementwiseGroupSize == 32)
            #expect(lookup.tuning.gemm.rowsPerItem == 4)
            #expect(lookup.tuning.rowsPerGroup == 8)
            #expect(lookup.tuning.gemm.tileK == 64)
            #expect(lookup.tuning.gemm.vectorWidth == OpenCLTuning.cpuDevice.gemm.vectorWidth)  // from the built-in level
            #expect("\(lookup.source)" == "shipped: pocl/skylake-avx512")
            // Another architecture of the same vendor gets the vendor's default and its own.
            var haswell = Self.identity
            haswell.architecture = "haswell"
            haswell.device = "pthread-haswell-Other"
            let other = TuningLookup.resolve(haswell, userFolder: folder, shippedFolder: folder.appendingPathComponent("shipped"))
            #expect(other.tuning.gemm.rowsPerItem == 2 && other.tuning.elementwiseGroupSize == 32 && other.tuning.gemm.tileK == OpenCLTuning.cpuDevice.gemm.tileK)
        }
    }

    @Test("the user's file beats the shipped database; a partial file keeps the rest")
    func userFile() throws {
        try withFolder("lookup-user") { folder in
            try Self.writeDatabase(folder.appendingPathComponent("shipped"))
            try Self.writeUserFile(folder.appendingPathComponent("user"), parameters: ["gemm.rowsPerItem": 6, "gemm.directMaximumWork": 4096])
            let lookup = TuningLookup.resolve(Self.identity, userFolder: folder.appendingPathComponent("user"), shippedFolder: folder.appendingPathComponent("shipped"))
            #expect(lookup.tuning.gemm.rowsPerItem == 6 && lookup.tuning.gemm.directMaximumWork == 4096)
            #expect(lookup.tuning.gemm.tileK == 64 && lookup.tuning.elementwiseGroupSize == 32)
            #expect("\(lookup.source)" == "tuned (user file)")
            #expect(lookup.notes.isEmpty)
        }
    }

    @Test("a corrupted user file warns and falls back; another driver's file is ignored with a note")
    func badUserFiles() throws {
        try withFolder("lookup-bad") { folder in
            let shipped = folder.appendingPathComponent("shipped"), user = folder.appendingPathComponent("user")
            try Self.writeDatabase(shipped)
            try FileManager.default.createDirectory(at: user, withIntermediateDirectories: true)
            for corrupted in ["{\"format\": \"kiln-tuning/1\", \"parameters\": ", "", "[1, 2]", "{\"format\": \"other\"}"] {
                try Data(corrupted.utf8).write(to: user.appendingPathComponent(Self.identity.fileName))
                let lookup = TuningLookup.resolve(Self.identity, userFolder: user, shippedFolder: shipped)
                #expect("\(lookup.source)" == "shipped: pocl/skylake-avx512", "\(corrupted)")
                #expect(lookup.tuning.gemm.rowsPerItem == 4)
                #expect(lookup.notes.count == 1 && lookup.notes[0].hasPrefix("warning:") && !lookup.notes[0].contains("\n"), "\(lookup.notes)")
            }
            try Self.writeUserFile(user, driver: "2.0", parameters: ["gemm.rowsPerItem": 6])
            let lookup = TuningLookup.resolve(Self.identity, userFolder: user, shippedFolder: shipped)
            #expect(lookup.tuning.gemm.rowsPerItem == 4)
            #expect(lookup.notes.count == 1 && lookup.notes[0].contains("driver 2.0") && lookup.notes[0].contains("ignored"), "\(lookup.notes)")
            // Values the kernels do not accept and unknown names are left out, with a warning each.
            try Self.writeUserFile(user, parameters: ["gemm.vectorWidth": 3, "gemm.bogus": 1, "gemm.rowsPerItem": 2])
            let partial = TuningLookup.resolve(Self.identity, userFolder: user, shippedFolder: shipped)
            #expect(partial.tuning.gemm.rowsPerItem == 2 && partial.tuning.gemm.vectorWidth == OpenCLTuning.cpuDevice.gemm.vectorWidth)
            #expect(partial.notes.count == 2, "\(partial.notes)")
            // A corrupted shipped file is left out with a warning too.
            try Data("{".utf8).write(to: shipped.appendingPathComponent("broken.json"))
            let brokenShipped = TuningLookup.resolve(Self.identity, userFolder: folder, shippedFolder: shipped)
            #expect(brokenShipped.tuning.gemm.rowsPerItem == 4 && brokenShipped.notes.contains { $0.contains("broken.json") })
        }
    }

    @Test("device identities: PoCL's LLVM CPU name, NVIDIA's SM version, AMD's gfx name")
    func identities() {
        func description(_ name: String, vendor: String, type: DeviceType, c: String? = nil) -> DeviceDescription {
            DeviceDescription(id: "opencl:0", backend: .opencl, name: name, vendor: vendor, type: type, computeUnits: 1, memoryBytes: 1, isDefault: false, openclCVersion: c, driverVersion: "1")
        }
        let pocl = TuningIdentity(description: description("pthread-skylake-avx512-Intel(R) Xeon(R) Processor", vendor: "GenuineIntel", type: .cpu, c: "OpenCL C 1.2 PoCL"),
                                  platformName: "Portable Computing Language", computeCapability: nil, boardName: "", hostProcessorName: "Intel(R) Xeon(R) Processor")
        #expect(pocl.vendor == "pocl" && pocl.architecture == "skylake-avx512")
        let haswell = TuningIdentity(description: description("cpu-haswell-AMD EPYC 7B13", vendor: "AuthenticAMD", type: .cpu), platformName: "Portable Computing Language",
                                     computeCapability: nil, boardName: "", hostProcessorName: "AMD EPYC 7B13")
        #expect(haswell.vendor == "pocl" && haswell.architecture == "haswell")
        let nvidia = TuningIdentity(description: description("NVIDIA H100 80GB HBM3", vendor: "NVIDIA Corporation", type: .gpu), platformName: "NVIDIA CUDA",
                                    computeCapability: (9, 0), boardName: "", hostProcessorName: "x")
        #expect(nvidia.vendor == "nvidia" && nvidia.architecture == "SM9.0")
        let amd = TuningIdentity(description: description("gfx90a:sramecc+:xnack-", vendor: "Advanced Micro Devices, Inc.", type: .gpu), platformName: "AMD Accelerated Parallel Processing",
                                 computeCapability: nil, boardName: "AMD Instinct MI250X", hostProcessorName: "x")
        #expect(amd.vendor == "amd" && amd.architecture == "gfx90a")
    }

    @Test("a tuned file is picked up by the next backend", .enabled(if: Devices.hasOpenCL))
    func nextBackendPicksUp() throws {
        try withFolder("lookup-backend") { folder in
            let device = Devices.all().first { $0.backend == .opencl }!
            let identity = try #require(Devices.tuningIdentity(for: device))
            try TuningFile(identity: identity, parameters: ["gemm.rowsPerItem": 4], measured: "test", results: []).write(to: folder.appendingPathComponent(identity.fileName))
            let lookup = TuningLookup.resolve(identity, userFolder: folder, shippedFolder: nil)
            let backend = try OpenCLBackend(deviceID: device.id, tuning: lookup.tuning)
            #expect(backend.tuning.gemm.rowsPerItem == 4)
            #expect(lookup.source == .userFile(folder.appendingPathComponent(identity.fileName)))
        }
    }
}

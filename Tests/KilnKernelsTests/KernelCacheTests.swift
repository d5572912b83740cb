import COpenCL
import Foundation
import KilnKernels
import Testing

/// A context on the first OpenCL device, for building programs directly.
struct TestContext {
    let device: cl_device_id
    let context: cl_context

    static func make() -> TestContext? {
        var platformCount: cl_uint = 0
        guard clGetPlatformIDs(0, nil, &platformCount) == CL_SUCCESS, platformCount > 0 else { return nil }
        var platforms = [cl_platform_id?](repeating: nil, count: Int(platformCount))
        clGetPlatformIDs(platformCount, &platforms, nil)
        for case let platform? in platforms {
            var device: cl_device_id?
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 1, &device, nil) == CL_SUCCESS, let device else { continue }
            var status: cl_int = 0
            var list: cl_device_id? = device
            guard let context = clCreateContext(nil, 1, &list, nil, nil, &status), status == CL_SUCCESS else { continue }
            return TestContext(device: device, context: context)
        }
        return nil
    }

    static var available: Bool { make() != nil }
}

/// Runs `body` with new, empty folders (`kernels`, `cache`) inside a folder `kiln-tests-<name>-<UUID>` under
/// the temporary directory, and removes it all afterwards, also when `body` throws.
func withTemporaryFolders<Result>(_ name: String, _ body: (_ kernels: URL, _ cache: URL) throws -> Result) throws -> Result {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-tests-\(name)-\(UUID().uuidString)")
    let kernels = url.appendingPathComponent("kernels"), cache = url.appendingPathComponent("cache")
    for folder in [kernels, cache] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(kernels, cache)
}

@Suite("kernel programs: build once, cache on disk, report build logs", .enabled(if: TestContext.available, "no OpenCL platform: kernel build tests skipped"))
struct KernelCacheTests {
    static let probeSource = """
        __kernel void probe(__global float* out) { out[get_global_id(0)] = SCALE * 2.0f; }
        """

    @Test("a cached program is reused; a changed source or option rebuilds")
    func diskCache() throws {
        let context = try #require(TestContext.make())
        try withTemporaryFolders("disk-cache") { kernels, cache in
            try Self.probeSource.write(to: kernels.appendingPathComponent("probe.cl"), atomically: true, encoding: .utf8)
            let locator = ResourceLocator(.kernels, environment: ["KILN_KERNELS": kernels.path])
            let programs = ProgramCache(cacheDirectory: cache)

            let first = try programs.program(file: "probe.cl", options: "-D SCALE=1.0f", context: context.context, device: context.device, locator: locator)
            #expect(first.origin == .source)
            #expect(programs.statistics.sourceBuilds == 1)
            let cached = try FileManager.default.contentsOfDirectory(atPath: cache.path).filter { $0.hasSuffix(".clbin") }
            #expect(cached.count == 1)

            // The same process asks again: the program object itself is reused.
            let again = try programs.program(file: "probe.cl", options: "-D SCALE=1.0f", context: context.context, device: context.device, locator: locator)
            #expect(again === first)
            #expect(programs.statistics.memoryHits == 1)

            // A new process (simulated by forgetting in-memory programs) loads the binary without compiling.
            programs.removeAllInMemory()
            let reloaded = try programs.program(file: "probe.cl", options: "-D SCALE=1.0f", context: context.context, device: context.device, locator: locator)
            #expect(reloaded.origin == .diskCache)
            #expect(programs.statistics.sourceBuilds == 1)
            #expect(programs.statistics.diskLoads == 1)

            // Another option set is another program.
            let otherOptions = try programs.program(file: "probe.cl", options: "-D SCALE=3.0f", context: context.context, device: context.device, locator: locator)
            #expect(otherOptions.origin == .source)
            #expect(programs.statistics.sourceBuilds == 2)

            // Editing the source invalidates both the in-memory and the on-disk entry.
            try Self.probeSource.replacingOccurrences(of: "2.0f", with: "4.0f")
                .write(to: kernels.appendingPathComponent("probe.cl"), atomically: true, encoding: .utf8)
            let edited = try programs.program(file: "probe.cl", options: "-D SCALE=1.0f", context: context.context, device: context.device, locator: locator)
            #expect(edited.origin == .source)
            #expect(programs.statistics.sourceBuilds == 3)

            // A corrupted cache entry is rebuilt from source rather than failing.
            programs.removeAllInMemory()
            for name in try FileManager.default.contentsOfDirectory(atPath: cache.path) {
                try Data("not a binary".utf8).write(to: cache.appendingPathComponent(name))
            }
            let rebuilt = try programs.program(file: "probe.cl", options: "-D SCALE=1.0f", context: context.context, device: context.device, locator: locator)
            #expect(rebuilt.origin == .source)
        }
    }

    @Test("#include \"name.cl\" takes the other file's text: editing it rebuilds, its errors name it, a missing one is missing")
    func includes() throws {
        let context = try #require(TestContext.make())
        try withTemporaryFolders("include") { kernels, cache in
            func write(_ text: String, _ name: String) throws {
                try text.write(to: kernels.appendingPathComponent(name), atomically: true, encoding: .utf8)
            }
            try write("static float twice(float x) { return 2.0f * x; }\n", "helpers.cl")
            // Included twice (once through another include): the second is dropped, else `twice` would be defined twice.
            try write("#include \"helpers.cl\"\n", "more.cl")
            try write("#include \"helpers.cl\"\n#include \"more.cl\"\n__kernel void probe(__global float* out) { out[get_global_id(0)] = twice(1.0f); }\n", "probe.cl")
            let locator = ResourceLocator(.kernels, environment: ["KILN_KERNELS": kernels.path])
            let programs = ProgramCache(cacheDirectory: cache)
            func build() throws(KernelError) -> BuiltProgram {
                try programs.program(file: "probe.cl", options: "", context: context.context, device: context.device, locator: locator)
            }
            #expect(try build().origin == .source)
            programs.removeAllInMemory()
            #expect(try build().origin == .diskCache)

            // Editing only the included file is a new program, in memory and on disk.
            try write("static float twice(float x) { return x + x; }\n", "helpers.cl")
            #expect(try build().origin == .source)
            #expect(programs.statistics.sourceBuilds == 2)

            // A compiler error inside the included file is reported at that file's line.
            try write("\nstatic float twice(float x) { return undeclared_helper_name * x; }\n", "helpers.cl")
            do throws(KernelError) {
                _ = try build()
                Issue.record("a broken included file should not build")
            } catch {
                let log = try #require(error.buildLog)
                #expect(log.contains("undeclared_helper_name"))
                #expect(log.contains("helpers.cl:2"))
            }

            try FileManager.default.removeItem(at: kernels.appendingPathComponent("helpers.cl"))
            do throws(KernelError) {
                _ = try build()
                Issue.record("a missing included file should be an error")
            } catch {
                #expect(error.description.contains("helpers.cl"))
                #expect(error.buildLog == nil)
            }
        }
    }

    @Test("a syntax error is reported with the file name and the compiler's build log")
    func buildFailure() throws {
        let context = try #require(TestContext.make())
        try withTemporaryFolders("broken") { kernels, cache in
            try "__kernel void broken(__global float* out) { out[0] = undeclared_name + ; }"
                .write(to: kernels.appendingPathComponent("broken.cl"), atomically: true, encoding: .utf8)
            let locator = ResourceLocator(.kernels, environment: ["KILN_KERNELS": kernels.path])
            let programs = ProgramCache(cacheDirectory: cache)
            do throws(KernelError) {
                _ = try programs.program(file: "broken.cl", options: "", context: context.context, device: context.device, locator: locator)
                Issue.record("a broken kernel should not build")
            } catch {
                let log = try #require(error.buildLog)
                #expect(log.contains("undeclared_name"))
                #expect(error.description.contains("broken.cl"))
                #expect(error.description.contains("undeclared_name"))
                #expect(!error.description.contains("\n"))
            }
        }
    }

    @Test("a missing kernel file names the folder searched")
    func missingFile() throws {
        let context = try #require(TestContext.make())
        try withTemporaryFolders("empty") { kernels, cache in
            let locator = ResourceLocator(.kernels, environment: ["KILN_KERNELS": kernels.path])
            do throws(KernelError) {
                _ = try ProgramCache(cacheDirectory: cache).program(
                    file: "absent.cl", options: "", context: context.context, device: context.device, locator: locator)
                Issue.record("a missing kernel should be an error")
            } catch {
                #expect(error.description.contains("absent.cl"))
                #expect(error.description.contains(kernels.path))
            }
        }
    }
}

@Suite("finding the kernel folder")
struct ResourceLocatorTests {
    @Test("the environment variable is the only place searched when set, and a missing folder lists it")
    func environmentOverride() {
        let locator = ResourceLocator(.kernels, environment: ["KILN_KERNELS": "/nonexistent/kiln-kernels"])
        #expect(locator.candidates.map(\.path) == ["/nonexistent/kiln-kernels"])
        #expect(throws: ResourceError.folderNotFound(kind: .kernels, searched: ["/nonexistent/kiln-kernels"])) {
            try locator.folder()
        }
    }

    @Test("without the variable: beside the executable, then ../share/kiln, then the source tree; errors list all")
    func searchOrder() throws {
        let executable = URL(fileURLWithPath: "/opt/nowhere/bin")
        let locator = ResourceLocator(.kernels, environment: [:], executableDirectory: executable, sourceTreeRoot: URL(fileURLWithPath: "/also/nowhere"))
        #expect(locator.candidates.map(\.path) == ["/opt/nowhere/bin/Kernels", "/opt/nowhere/share/kiln/Kernels", "/also/nowhere/Kernels"])
        do {
            _ = try locator.folder()
            Issue.record("no folder exists")
        } catch {
            for path in locator.candidates.map(\.path) { #expect(error.description.contains(path)) }
            #expect(error.description.contains("KILN_KERNELS"))
        }
        // The real source tree holds the kernels.
        let real = ResourceLocator(.kernels, environment: [:], executableDirectory: executable)
        #expect(FileManager.default.fileExists(atPath: try real.file(named: "gemm.cl").path))
    }
}

@Suite("program cache key")
struct ProgramCacheKeyTests {
    @Test("the disk key is the SHA-256 of source, options, device, driver and platform, and changes with each")
    func diskKey() {
        #expect(ProgramCache.sha256Hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let fields = ["kernel void f() {}", "-D TILE=8", "pthread-skylake", "PoCL 6.0", "OpenCL 3.0 PoCL"]
        func key(_ fields: [String]) -> String {
            ProgramCache.diskKey(source: fields[0], options: fields[1], deviceName: fields[2], driverVersion: fields[3], platformVersion: fields[4])
        }
        // hashlib.sha256 of the five fields, each followed by a NUL byte.
        #expect(key(fields) == "56411eacdde6c374e9893add4bcb4c14db097e97766b4baff6a44b723029d306")
        for index in fields.indices {
            var changed = fields
            changed[index] += " "
            #expect(key(changed) != key(fields), "field \(index) is not part of the key")
        }
    }
}

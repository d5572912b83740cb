package import COpenCL
internal import COpenSSL
import Foundation
import Synchronization

/// An OpenCL program built for one context and device.
///
/// OpenCL program objects are thread-safe (OpenCL 1.2, appendix A.2) and this wrapper never changes
/// after creation, so it may cross threads; kernels created from it may not.
package final class BuiltProgram: @unchecked Sendable {
    /// How a program came to be built.
    package enum Origin: Sendable, Equatable {
        /// Compiled from the `.cl` source.
        case source
        /// Loaded from a binary in the on-disk cache, without compiling.
        case diskCache
    }

    package let handle: cl_program
    /// The kernel file's name, for example `matmul.cl`.
    package let file: String
    /// The `-D` options it was built with.
    package let options: String
    package let origin: Origin

    init(handle: cl_program, file: String, options: String, origin: Origin) {
        self.handle = handle
        self.file = file
        self.options = options
        self.origin = origin
    }

    deinit { clReleaseProgram(handle) }
}

/// A kernel file that could not be found, read or built.
public enum KernelError: Error, CustomStringConvertible, Sendable {
    /// The `Kernels/` folder or a file in it is missing.
    case missing(ResourceError)
    /// The OpenCL compiler rejected the file; `log` is the complete build log.
    case buildFailed(file: String, path: String, device: String, options: String, log: String)
    /// An OpenCL call failed while creating or building the program.
    case openCL(file: String, OpenCLError)

    public var description: String {
        switch self {
        case let .missing(error):
            return error.description
        case let .buildFailed(file, path, device, options, log):
            let condensed = log.split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
                .joined(separator: " | ")
            let optionText = options.isEmpty ? "" : " with options '\(options)'"
            return "kernel file \(file) (\(path)) failed to build on \(device)\(optionText): \(condensed)"
        case let .openCL(file, error):
            return "kernel file \(file): \(error)"
        }
    }

    /// The OpenCL compiler's build log, when the error is a build failure.
    public var buildLog: String? {
        if case let .buildFailed(_, _, _, _, log) = self { return log }
        return nil
    }
}

/// Builds programs from `Kernels/*.cl` once per context, device and option set, and keeps their binaries
/// on disk so that a later process does not compile them again.
///
/// The disk cache lives in `KILN_CACHE_DIR` (default `~/.cache/kiln`); each entry is keyed by the SHA-256
/// of the source text, the build options, the device name, the driver version and the platform version,
/// so editing a kernel, changing a `-D` option or updating the driver builds afresh.
///
/// A line `#include "name.cl"` in a kernel file is replaced by that file's text from the same kernels
/// folder (each file once, nested includes too), with `#line` directives so that build logs name the
/// file and line the compiler saw; the key covers the text after the replacement, so editing an included
/// file builds afresh as well.
package final class ProgramCache: Sendable {
    /// How programs were obtained so far, for tests and benchmarks.
    public struct Statistics: Sendable, Equatable {
        /// Programs compiled from source.
        public var sourceBuilds = 0
        /// Programs loaded from the on-disk binary cache.
        public var diskLoads = 0
        /// Requests answered from programs already built in this process.
        public var memoryHits = 0
    }

    private struct Key: Hashable {
        let context: UInt
        let device: UInt
        let path: String
        let options: String
        let sourceDigest: String
    }

    /// The process-wide cache used by the OpenCL backend.
    package static let shared = ProgramCache()

    private let programs = Mutex<[Key: BuiltProgram]>([:])
    private let counters = Mutex(Statistics())
    private let cacheDirectoryOverride: URL?

    /// Creates a cache; `cacheDirectory` overrides `KILN_CACHE_DIR` (tests use a fresh folder).
    package init(cacheDirectory: URL? = nil) {
        self.cacheDirectoryOverride = cacheDirectory
    }

    package var statistics: Statistics { counters.withLock { $0 } }

    /// Where program binaries are kept: `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`.
    package var cacheDirectory: URL {
        if let cacheDirectoryOverride { return cacheDirectoryOverride }
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["KILN_CACHE_DIR"], !path.isEmpty { return URL(fileURLWithPath: path) }
        if let path = environment["XDG_CACHE_HOME"], !path.isEmpty {
            return URL(fileURLWithPath: path).appendingPathComponent("kiln")
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/kiln")
    }

    /// Returns the program built from `file` with `options`, building it only if this process has not.
    ///
    /// - Parameters:
    ///   - file: a file name in the kernels folder, such as `matmul.cl`.
    ///   - options: OpenCL build options, typically `-D NAME=value` tuning parameters.
    ///   - context: the context the program belongs to.
    ///   - device: the device to build for.
    ///   - locator: where to find the kernels folder.
    /// - Throws: ``KernelError`` naming the file: missing, rejected by the compiler (with the build log),
    ///   or a failed OpenCL call.
    package func program(
        file: String, options: String, context: cl_context, device: cl_device_id,
        locator: ResourceLocator = ResourceLocator(.kernels)
    ) throws(KernelError) -> BuiltProgram {
        var included = Set<String>()
        let (url, source) = try Self.expandedSource(file, locator: locator, included: &included)
        let key = Key(
            context: UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(context))),
            device: UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(device))),
            path: url.path, options: options, sourceDigest: ProgramCache.sha256Hex(Data(source.utf8)))
        if let program = programs.withLock({ $0[key] }) {
            counters.withLock { $0.memoryHits += 1 }
            return program
        }
        let program = try build(file: file, path: url.path, source: source, key: key, context: context, device: device)
        return programs.withLock { table in
            if let existing = table[key] { return existing }
            table[key] = program
            return program
        }
    }

    /// The text of kernel file `file` with its `#include "name.cl"` lines replaced (see the type's
    /// documentation); a file already in `included` is replaced by nothing.
    private static func expandedSource(_ file: String, locator: ResourceLocator, included: inout Set<String>) throws(KernelError) -> (URL, String) {
        let url: URL
        do { url = try locator.file(named: file) } catch { throw .missing(error) }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw .missing(.fileNotFound(name: file, folder: url.deletingLastPathComponent().path, searched: [url.path]))
        }
        included.insert(file)
        var lines: [String] = []
        for (index, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("#include \""), trimmed.hasSuffix("\""), trimmed.count > 11 else {
                lines.append(String(line))
                continue
            }
            let name = String(trimmed.dropFirst(10).dropLast())
            if !included.contains(name) {
                let (_, text) = try expandedSource(name, locator: locator, included: &included)
                lines.append("#line 1 \"\(name)\"")
                lines.append(text)
            }
            lines.append("#line \(index + 2) \"\(file)\"")
        }
        return (url, lines.joined(separator: "\n"))
    }

    /// Forgets the programs built in this process (the disk cache stays); tests use it to act as a new process.
    package func removeAllInMemory() {
        programs.withLock { $0.removeAll() }
    }

    private func diskKey(source: String, options: String, device: cl_device_id) -> String {
        ProgramCache.diskKey(
            source: source, options: options, deviceName: OpenCLInfo.deviceString(device, cl_device_info(CL_DEVICE_NAME)),
            driverVersion: OpenCLInfo.deviceString(device, cl_device_info(CL_DRIVER_VERSION)),
            platformVersion: OpenCLInfo.platform(of: device).map { OpenCLInfo.platformString($0, cl_platform_info(CL_PLATFORM_VERSION)) })
    }

    /// The name of a program binary in the disk cache: the SHA-256 of everything that changes the binary.
    ///
    /// Each field is followed by a NUL byte so that fields cannot run together.
    package static func diskKey(source: String, options: String, deviceName: String, driverVersion: String, platformVersion: String?) -> String {
        var message: [UInt8] = []
        for field in [source, options, deviceName, driverVersion] + (platformVersion.map { [$0] } ?? []) {
            message += field.utf8
            message.append(0)
        }
        return sha256Hex(message)
    }

    /// The SHA-256 digest of some bytes as 64 lowercase hex digits, computed by OpenSSL's libcrypto.
    package static func sha256Hex(_ bytes: some ContiguousBytes) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let status = bytes.withUnsafeBytes { message in
            EVP_Digest(message.baseAddress, message.count, &digest, &length, EVP_sha256(), nil)
        }
        precondition(status == 1 && length == 32, "SHA-256: OpenSSL's EVP_Digest failed")
        return digest.prefix(Int(length)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    private func build(
        file: String, path: String, source: String, key: Key, context: cl_context, device: cl_device_id
    ) throws(KernelError) -> BuiltProgram {
        let cacheFile = cacheDirectory.appendingPathComponent(
            diskKey(source: source, options: key.options, device: device) + ".clbin")
        if ResourceLocator.isRegularFile(cacheFile.path), let binary = FileManager.default.contents(atPath: cacheFile.path),
            let program = loadBinary(binary, options: key.options, context: context, device: device)
        {
            counters.withLock { $0.diskLoads += 1 }
            return BuiltProgram(handle: program, file: file, options: key.options, origin: .diskCache)
        }

        var status: cl_int = 0
        let program: cl_program? = source.withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            return clCreateProgramWithSource(context, 1, &pointer, nil, &status)
        }
        guard let program, status == CL_SUCCESS else {
            throw .openCL(file: file, OpenCLError(call: "clCreateProgramWithSource", status: status))
        }
        var deviceList: cl_device_id? = device
        let buildStatus = clBuildProgram(program, 1, &deviceList, key.options, nil, nil)
        if buildStatus != CL_SUCCESS {
            let log = buildLog(program, device: device)
            clReleaseProgram(program)
            if buildStatus == CL_BUILD_PROGRAM_FAILURE || buildStatus == CL_INVALID_BUILD_OPTIONS || !log.isEmpty {
                throw .buildFailed(
                    file: file, path: path, device: OpenCLInfo.deviceString(device, cl_device_info(CL_DEVICE_NAME)),
                    options: key.options, log: log.isEmpty ? OpenCLError.name(of: buildStatus) : log)
            }
            throw .openCL(file: file, OpenCLError(call: "clBuildProgram", status: buildStatus))
        }
        counters.withLock { $0.sourceBuilds += 1 }
        storeBinary(of: program, at: cacheFile)
        return BuiltProgram(handle: program, file: file, options: key.options, origin: .source)
    }

    private func loadBinary(_ binary: Data, options: String, context: cl_context, device: cl_device_id) -> cl_program? {
        var status: cl_int = 0
        var binaryStatus: cl_int = 0
        var deviceList: cl_device_id? = device
        let program: cl_program? = binary.withUnsafeBytes { raw in
            var length = raw.count
            var pointer: UnsafePointer<UInt8>? = raw.bindMemory(to: UInt8.self).baseAddress
            return clCreateProgramWithBinary(context, 1, &deviceList, &length, &pointer, &binaryStatus, &status)
        }
        guard let program, status == CL_SUCCESS, binaryStatus == CL_SUCCESS else {
            if let program { clReleaseProgram(program) }
            return nil
        }
        guard clBuildProgram(program, 1, &deviceList, options, nil, nil) == CL_SUCCESS else {
            clReleaseProgram(program)
            return nil
        }
        return program
    }

    /// Writes the program's binary to the cache through a temporary file and a rename; failures are ignored
    /// because the cache only saves time.
    private func storeBinary(of program: cl_program, at url: URL) {
        var size = 0
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil)
            == CL_SUCCESS, size > 0
        else { return }
        var bytes = [UInt8](repeating: 0, count: size)
        let status = bytes.withUnsafeMutableBufferPointer { buffer -> cl_int in
            var pointer: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return clGetProgramInfo(
                program, cl_program_info(CL_PROGRAM_BINARIES), MemoryLayout<UnsafeMutablePointer<UInt8>?>.size,
                &pointer, nil)
        }
        guard status == CL_SUCCESS else { return }
        let directory = url.deletingLastPathComponent()
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: Data(bytes)) else { return }
        if rename(temporary.path, url.path) != 0 {
            try? FileManager.default.removeItem(at: temporary)
        }
    }

    private func buildLog(_ program: cl_program, device: cl_device_id) -> String {
        var size = 0
        guard clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size)
            == CL_SUCCESS, size > 1
        else { return "" }
        var bytes = [CChar](repeating: 0, count: size)
        _ = clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &bytes, nil)
        return bytes.withUnsafeBufferPointer { pointer in
            String(decoding: pointer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

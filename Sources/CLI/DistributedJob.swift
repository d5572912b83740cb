import Foundation
import Kiln

/// What `kiln` does differently under `mpirun`: the communicator of the job (``SingleProcess`` without a
/// launcher: no MPI library is loaded at all), each rank's device, and which rank prints.
enum DistributedJob {
    /// The job's communicator, once ``start()`` ran (errors use it to decide who prints).
    nonisolated(unsafe) static var current: (any Communicator)?

    /// Joins the job `mpirun` started (or runs alone), and gives a CPU rank its share of the host's cores:
    /// `cores / ranks on the host` threads, unless `KILN_CPU_THREADS` or `OPENBLAS_NUM_THREADS` says otherwise.
    ///
    /// - Throws: ``CommandError`` when MPI is needed but missing, too old or not Open MPI.
    static func start() throws -> any Communicator {
        let communicator: any Communicator
        do {
            communicator = try Launch.communicator()
        } catch {
            throw CommandError(error.description)
        }
        current = communicator
        if communicator.size > 1 { reportTermination(rank: communicator.rank) }
        let environment = ProcessInfo.processInfo.environment
        if communicator.localSize > 1 && environment["KILN_CPU_THREADS"] == nil && environment["OPENBLAS_NUM_THREADS"] == nil {
            CPUBackend.setThreadCount(max(1, ProcessInfo.processInfo.activeProcessorCount / communicator.localSize))
        }
        return communicator
    }

    /// The line a rank prints when `mpirun` ends it with SIGTERM (as it ends every rank once one has failed),
    /// written in advance: a signal handler may only call async-signal-safe functions (`write`, `_exit`).
    nonisolated(unsafe) private static var terminationLine: UnsafeMutableBufferPointer<UInt8>?

    private static func reportTermination(rank: Int) {
        let text = Array("error: rank \(rank): ended by mpirun (SIGTERM), as it ends every rank when one fails or is interrupted; see the first error above\n".utf8)
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: text.count)
        _ = buffer.initialize(from: text)
        terminationLine = buffer
        signal(SIGTERM) { _ in
            if let line = DistributedJob.terminationLine { _ = write(2, line.baseAddress, line.count) }
            _exit(1)
        }
    }

    /// The device a rank trains on: with several ranks, `--device opencl` (or `auto` choosing an OpenCL
    /// device) gives each rank the OpenCL device of its type at its local rank modulo their number; a
    /// device named by index (`opencl:1`) and `cpu` are every rank's.
    static func device(_ resolved: DeviceDescription, request: String?, communicator: any Communicator) -> DeviceDescription {
        guard communicator.size > 1, resolved.backend == .opencl else { return resolved }
        let name = (request ?? ProcessInfo.processInfo.environment["KILN_DEVICE"] ?? "auto").trimmingCharacters(in: .whitespaces).lowercased()
        guard ["", "auto", "opencl"].contains(name) else { return resolved }
        let candidates = Devices.all().filter { $0.backend == .opencl && $0.type == resolved.type }
        guard !candidates.isEmpty else { return resolved }
        return candidates[communicator.localRank % candidates.count]
    }

    /// Ends the job after the last collective (MPI_Finalize on every rank).
    static func finish() {
        (current as? MPICommunicator)?.finalize()
    }

    /// Whether this process prints an error: rank 0 always; other ranks unless every rank reports the same
    /// error (a ``DistributedError`` marked collective, such as ranks started with different flags).
    static func printsError(_ error: any Error) -> Bool {
        guard let current, current.rank > 0 else { return true }
        return !((error as? DistributedError)?.isCollective ?? false)
    }

    /// The rank a message comes from, for every rank but 0 (`rank 1: `), unless the message names it.
    static func prefix(_ message: String) -> String {
        guard let current, current.rank > 0, !message.hasPrefix("rank ") else { return "" }
        return "rank \(current.rank): "
    }
}

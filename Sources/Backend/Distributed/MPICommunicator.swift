internal import CKilnMPI
import Foundation

/// Open MPI's world communicator, loaded at run time (``Launch/communicator(_:)``): `libmpi.so.40`, or
/// `KILN_MPI_LIBRARY`. Errors are returned, not fatal (MPI_ERRORS_RETURN), and every wait polls
/// `MPI_Test` against a deadline, so a dead peer is an error within ``Launch/waitLimitSeconds``.
///
/// MPI is called from one thread only (the training loop's); MPI_Init asks for no thread support.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let localRank: Int
    public let localSize: Int
    /// MPI_Get_library_version's first line.
    public let libraryVersion: String
    /// Seconds spent inside ``wait(_:for:)`` since the last ``takeWaitSeconds()``.
    private var waitedSeconds = 0.0

    /// The one communicator of the process (MPI_Init may run once).
    nonisolated(unsafe) private static var shared: MPICommunicator?

    private init(rank: Int, size: Int, localRank: Int, localSize: Int, libraryVersion: String) {
        self.rank = rank
        self.size = size
        self.localRank = localRank
        self.localSize = localSize
        self.libraryVersion = libraryVersion
    }

    static func start(library: String?, environment: [String: String]) throws(DistributedError) -> MPICommunicator {
        if let shared { return shared }
        var message = [CChar](repeating: 0, count: 1024)
        let launcher = environment["OMPI_COMM_WORLD_SIZE"].map { "mpirun (\($0) ranks)" } ?? "an MPI launcher (PMIX_RANK is set)"
        if kiln_mpi_load(library, &message, message.count) != 0 {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw DistributedError("started by \(launcher) but \(reason); install Open MPI 3.0 or later "
                                   + "(Debian: apt-get install openmpi-bin libopenmpi3) or set KILN_MPI_LIBRARY to its libmpi.so.40")
        }
        var rank: Int32 = 0
        var size: Int32 = 0
        let code = kiln_mpi_init(&rank, &size)
        guard code == 0 else { throw DistributedError("MPI_Init failed: \(errorString(code)); check the mpirun command line") }
        var version = [CChar](repeating: 0, count: 512)
        kiln_mpi_library_version(&version, version.count)
        let text = String(decoding: version.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let localRank = Int(environment["OMPI_COMM_WORLD_LOCAL_RANK"] ?? "") ?? Int(rank)
        let localSize = Int(environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? Int(size)
        let communicator = MPICommunicator(rank: Int(rank), size: Int(size), localRank: localRank, localSize: localSize,
                                           libraryVersion: text.split(whereSeparator: \.isNewline).first.map(String.init) ?? text)
        shared = communicator
        return communicator
    }

    static func errorString(_ code: Int32) -> String {
        var text = [CChar](repeating: 0, count: 512)
        kiln_mpi_error_string(code, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// MPI_Finalize; call once, after the last collective, on every rank.
    public func finalize() {
        _ = kiln_mpi_finalize()
    }

    /// Seconds this rank spent waiting on collectives since the last call.
    public func takeWaitSeconds() -> Double {
        defer { waitedSeconds = 0 }
        return waitedSeconds
    }

    private func check(_ code: Int32, _ purpose: String) throws(DistributedError) {
        guard code == 0 else {
            throw DistributedError("rank \(rank): \(purpose) failed: \(Self.errorString(code)) (another rank died or left the job)")
        }
    }

    public func startSum(_ values: UnsafeMutableBufferPointer<Float>) throws(DistributedError) -> PendingOperation {
        precondition(values.count <= Int(Int32.max), "startSum: \(values.count) values exceed MPI's int count")
        var request: kiln_mpi_request?
        try check(kiln_mpi_iallreduce_sum_float(values.baseAddress, Int32(values.count), &request), "gradient allreduce")
        return PendingOperation(request: request)
    }

    public func poll(_ operation: PendingOperation) throws(DistributedError) {
        guard operation.request != nil else { return }
        var done: Int32 = 0
        try check(kiln_mpi_test(&operation.request, &done), "gradient allreduce")
        if done != 0 { operation.request = nil }
    }

    public func wait(_ operation: PendingOperation, for purpose: String) throws(DistributedError) {
        try wait(operation, for: purpose, limitSeconds: Launch.waitLimitSeconds)
    }

    private func wait(_ operation: PendingOperation, for purpose: String, limitSeconds limit: Double) throws(DistributedError) {
        let start = Date()
        defer { waitedSeconds += Date().timeIntervalSince(start) }
        var spins = 0
        while operation.request != nil {
            var done: Int32 = 0
            try check(kiln_mpi_test(&operation.request, &done), purpose)
            if done != 0 {
                operation.request = nil
                return
            }
            spins += 1
            // Spin briefly (a reduction usually completes within microseconds of its last peer), then sleep
            // so that a rank sharing a core with a slower peer gives it the core.
            if spins > 200 {
                usleep(spins > 2000 ? 1000 : 50)
                if spins % 64 == 0, Date().timeIntervalSince(start) > limit {
                    throw DistributedError("rank \(rank): no answer from the other ranks for \(Int(limit)) s in \(purpose); a rank died or hangs "
                                           + "(KILN_MPI_TIMEOUT sets the limit in seconds)")
                }
            }
        }
    }

    /// Starts an operation on memory that stays valid inside `body`'s closure and waits for it there.
    private func complete(_ purpose: String, limitSeconds: Double = Launch.waitLimitSeconds, _ start: () -> (Int32, kiln_mpi_request?)) throws(DistributedError) {
        let (code, request) = start()
        try check(code, purpose)
        try wait(PendingOperation(request: request), for: purpose, limitSeconds: limitSeconds)
    }

    public func sum(_ values: inout [Double], for purpose: String) throws(DistributedError) {
        var failure: DistributedError?
        values.withUnsafeMutableBufferPointer { buffer in
            do throws(DistributedError) {
                try complete(purpose) {
                    var request: kiln_mpi_request?
                    return (kiln_mpi_iallreduce_sum_double(buffer.baseAddress, Int32(buffer.count), &request), request)
                }
            } catch { failure = error }
        }
        if let failure { throw failure }
    }

    public func broadcast(_ bytes: inout [UInt8], root: Int, for purpose: String) throws(DistributedError) {
        precondition(bytes.count <= Int(Int32.max), "broadcast: \(bytes.count) bytes exceed MPI's int count")
        var failure: DistributedError?
        bytes.withUnsafeMutableBytes { buffer in
            do throws(DistributedError) {
                try complete(purpose) {
                    var request: kiln_mpi_request?
                    return (kiln_mpi_ibcast_bytes(buffer.baseAddress, Int32(buffer.count), Int32(root), &request), request)
                }
            } catch { failure = error }
        }
        if let failure { throw failure }
    }

    public func allGather(_ bytes: [UInt8], for purpose: String, limitSeconds: Double) throws(DistributedError) -> [[UInt8]] {
        // The longest length first, then every rank's bytes padded to it, each after its length (8 bytes).
        var longest = [Int64(bytes.count)]
        var failure: DistributedError?
        longest.withUnsafeMutableBufferPointer { buffer in
            do throws(DistributedError) {
                try complete(purpose, limitSeconds: limitSeconds) {
                    var request: kiln_mpi_request?
                    return (kiln_mpi_iallreduce_max_int64(buffer.baseAddress, 1, &request), request)
                }
            } catch { failure = error }
        }
        if let failure { throw failure }
        let stride = Int(longest[0]) + 8
        var sent = withUnsafeBytes(of: UInt64(bytes.count).littleEndian, Array.init) + bytes
        sent += [UInt8](repeating: 0, count: stride - sent.count)
        var received = [UInt8](repeating: 0, count: stride * size)
        sent.withUnsafeBytes { send in
            received.withUnsafeMutableBytes { receive in
                do throws(DistributedError) {
                    try complete(purpose) {
                        var request: kiln_mpi_request?
                        return (kiln_mpi_iallgather_bytes(send.baseAddress, Int32(stride), receive.baseAddress, &request), request)
                    }
                } catch { failure = error }
            }
        }
        if let failure { throw failure }
        return (0..<size).map { rank in
            let start = rank * stride
            let count = received[start..<(start + 8)].enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
            return Array(received[(start + 8)..<(start + 8 + min(count, stride - 8))])
        }
    }
}

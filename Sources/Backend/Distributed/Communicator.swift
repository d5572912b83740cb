import Foundation

/// The processes of one data-parallel job and the collective operations between them: the whole of
/// what Kiln needs from MPI. ``SingleProcess`` is the job of one (every operation returns at once);
/// ``MPICommunicator`` is Open MPI's world communicator under `mpirun`.
///
/// Every rank must call the same collectives in the same order. Every wait has a time limit
/// (``Launch/waitLimitSeconds``): a rank that died or hangs becomes a ``DistributedError`` on the others
/// instead of a hang.
public protocol Communicator: AnyObject {
    /// This process's rank, `0 ..< size`; rank 0 writes every file.
    var rank: Int { get }
    var size: Int { get }
    /// This process's rank among the ranks on its host, and how many ranks its host runs: a rank takes
    /// the local rank's GPU, or its share of the host's cores.
    var localRank: Int { get }
    var localSize: Int { get }

    /// Starts an in-place sum of `values` over every rank; the memory must stay valid until ``wait(_:for:)``
    /// returns.
    func startSum(_ values: UnsafeMutableBufferPointer<Float>) throws(DistributedError) -> PendingOperation
    /// Lets outstanding operations progress (MPI advances non-blocking collectives only inside its calls).
    func poll(_ operation: PendingOperation) throws(DistributedError)
    /// Waits until an operation has completed, at most ``Launch/waitLimitSeconds``; `purpose` names it in errors.
    func wait(_ operation: PendingOperation, for purpose: String) throws(DistributedError)

    /// Sums doubles over every rank, in place (metrics, evaluation counts).
    func sum(_ values: inout [Double], for purpose: String) throws(DistributedError)
    /// Rank `root`'s bytes to every rank; every rank passes a buffer of the same length.
    func broadcast(_ bytes: inout [UInt8], root: Int, for purpose: String) throws(DistributedError)
    /// Every rank's bytes, in rank order (the byte counts may differ between ranks), waiting at most
    /// `limitSeconds` (a sweep's ranks meet after each round of whole runs, which takes longer than
    /// ``Launch/waitLimitSeconds``).
    func allGather(_ bytes: [UInt8], for purpose: String, limitSeconds: Double) throws(DistributedError) -> [[UInt8]]
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    /// Every rank's bytes, in rank order, waiting at most ``Launch/waitLimitSeconds``.
    public func allGather(_ bytes: [UInt8], for purpose: String) throws(DistributedError) -> [[UInt8]] {
        try allGather(bytes, for: purpose, limitSeconds: Launch.waitLimitSeconds)
    }
}

/// An operation started by a ``Communicator`` and not yet waited on.
public final class PendingOperation {
    /// Open MPI's request handle (nil once complete, or for a single process).
    var request: UnsafeMutableRawPointer?
    /// When the operation was started, for the time a step waits on it.
    public let started = Date()

    init(request: UnsafeMutableRawPointer?) { self.request = request }

    public var isComplete: Bool { request == nil }
}

/// A collective operation failed or timed out: a peer died, hangs, or ranks disagree.
public struct DistributedError: Error, CustomStringConvertible, Equatable {
    public let description: String
    /// Whether every rank reports the same error (so only rank 0 needs to print it).
    public let isCollective: Bool

    public init(_ description: String, isCollective: Bool = false) {
        self.description = description
        self.isCollective = isCollective
    }
}

/// A job of one process: every collective is the identity and returns at once.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var localRank: Int { 0 }
    public var localSize: Int { 1 }
    public func startSum(_ values: UnsafeMutableBufferPointer<Float>) throws(DistributedError) -> PendingOperation { PendingOperation(request: nil) }
    public func poll(_ operation: PendingOperation) throws(DistributedError) {}
    public func wait(_ operation: PendingOperation, for purpose: String) throws(DistributedError) {}
    public func sum(_ values: inout [Double], for purpose: String) throws(DistributedError) {}
    public func broadcast(_ bytes: inout [UInt8], root: Int, for purpose: String) throws(DistributedError) {}
    public func allGather(_ bytes: [UInt8], for purpose: String, limitSeconds: Double) throws(DistributedError) -> [[UInt8]] { [bytes] }
}

/// How this process was started: under `mpirun` (Open MPI's or PMIx's environment variables) or alone.
public enum Launch {
    /// The longest any collective waits for the other ranks before the job is given up, in seconds:
    /// `KILN_MPI_TIMEOUT` (seconds, default 20). A rank that died makes the others fail within it.
    public static var waitLimitSeconds: Double {
        if let text = ProcessInfo.processInfo.environment["KILN_MPI_TIMEOUT"], let value = Double(text), value > 0 { return value }
        return 20
    }

    /// The world size the launcher gave this process (0: a PMIx launcher such as `srun --mpi=pmix`, which
    /// says no size: MPI is asked), or nil when it was not started by a launcher. Only
    /// `OMPI_COMM_WORLD_SIZE`, `PMIX_RANK` and MPICH's `PMI_SIZE` are read: without them, kiln runs as
    /// one process and loads no MPI library.
    public static func worldSize(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
        for key in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"] {
            if let text = environment[key], let size = Int(text), size >= 1 { return size }
        }
        return environment["PMIX_RANK"] != nil ? 0 : nil
    }

    /// The job's communicator: ``SingleProcess`` when not under a launcher or with one rank (no MPI is
    /// loaded), else Open MPI's world.
    ///
    /// - Throws: ``DistributedError`` with one line when MPI is needed but missing, too old, MPICH, or
    ///   fails to start.
    public static func communicator(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(DistributedError) -> any Communicator {
        guard let size = worldSize(environment), size != 1 else { return SingleProcess() }
        if environment["OMPI_COMM_WORLD_SIZE"] == nil && environment["PMIX_RANK"] == nil && environment["PMI_SIZE"] != nil {
            throw DistributedError("started by an MPICH-style launcher (PMI_SIZE=\(environment["PMI_SIZE"]!)); kiln supports Open MPI 3.0 or later only: run it with Open MPI's mpirun")
        }
        return try MPICommunicator.start(library: environment["KILN_MPI_LIBRARY"].flatMap { $0.isEmpty ? nil : $0 }, environment: environment)
    }
}

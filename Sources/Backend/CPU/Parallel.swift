internal import CKilnCPU
internal import COpenBLAS
import Dispatch
import Foundation
import Synchronization

/// Splits loops over disjoint ranges across the machine's cores.
enum Parallel {
    /// Threads for the CPU backend's own loops: `KILN_CPU_THREADS`, else the number of cores, unless
    /// changed with ``CPUBackend/setThreadCount(_:)``.
    static let threads = Atomic<Int>({
        if let text = ProcessInfo.processInfo.environment["KILN_CPU_THREADS"], let value = Int(text), value > 0 { return value }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }())

    static var coreCount: Int { threads.load(ordering: .relaxed) }

    /// Calls `body` on disjoint ranges that together cover `0..<count`, in parallel when there is enough
    /// work: each range holds at least `grain` items. Bodies must write only to their own range.
    static func forRanges(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let cores = coreCount
        let chunks = min(cores * 4, max(1, count / max(grain, 1)))
        if chunks <= 1 || cores == 1 {
            body(0..<count)
            return
        }
        let chunkSize = (count + chunks - 1) / chunks
        withoutActuallyEscaping(body) { body in
            // Each iteration writes a disjoint range; the closure is shared read-only between threads.
            nonisolated(unsafe) let work = body
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = chunk * chunkSize
                let end = min(count, start + chunkSize)
                if start < end { work(start..<end) }
            }
        }
    }
}

extension CPUBackend {
    /// Threads the CPU backend uses (for OpenBLAS and its own loops), process-wide.
    public static var threadCount: Int { Parallel.coreCount }

    /// Sets the threads every CPU backend in the process uses, for OpenBLAS and for Kiln's loops; runs
    /// that train side by side (a learning-rate sweep) give each run one thread.
    public static func setThreadCount(_ count: Int) {
        let value = max(1, count)
        Parallel.threads.store(value, ordering: .relaxed)
        openblas_set_num_threads(Int32(value))
    }

    /// Whether the C loops (`CKilnCPU`) run their AVX2 + FMA versions: the default where the processor has
    /// them; `KILN_CPU_VECTORS=portable` starts with the portable C versions instead. Process-wide.
    public static var usesWideVectors: Bool { kiln_cpu_vector_level() >= 1 }

    /// Whether the C loops that gain from AVX-512 (element-wise ops without C library calls, the rows
    /// family, random numbers) run their AVX-512 versions: wide vectors are on, the processor has AVX-512
    /// F/VL/DQ/BW, and `KILN_CPU_VECTORS` is not `avx2`. Process-wide.
    public static var usesAVX512: Bool { kiln_cpu_uses_avx512() != 0 }

    /// Chooses the C loops' versions; asking for wide vectors on a processor without AVX2 + FMA keeps the
    /// portable ones. Returns whether wide vectors are now in use.
    @discardableResult
    public static func setWideVectors(_ enabled: Bool) -> Bool {
        kiln_cpu_set_vector_level(enabled ? 1 : 0) >= 1
    }
}

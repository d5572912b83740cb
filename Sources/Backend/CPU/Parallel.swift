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
    ///
    /// Every range but the last starts and ends at a multiple of `multipleOf`: loops that run whole
    /// vectors and finish the last few elements another way (the C library's `expf` after vectorized
    /// blocks of 8) then compute each element the same way on any number of threads.
    static func forRanges(_ count: Int, grain: Int, multipleOf: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let cores = coreCount
        let chunks = min(cores * 4, max(1, count / max(grain, 1)))
        if chunks <= 1 || cores == 1 {
            body(0..<count)
            return
        }
        let step = max(multipleOf, 1)
        let chunkSize = ((count + chunks - 1) / chunks + step - 1) / step * step
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
    /// Threads of the CPU backend's own loops, process-wide.
    public static var threadCount: Int { Parallel.coreCount }

    /// Sets the threads every CPU backend in the process uses, for OpenBLAS and for Kiln's loops; runs
    /// that train side by side (a learning-rate sweep) give each run one thread.
    ///
    /// Kiln's loops give the same bits on any number of threads; OpenBLAS does not always: its SGEMM picks
    /// kernel tiles by how it splits a product between threads, so a product's last bits can change with
    /// its thread count (measured with OpenBLAS 0.3.21: 114 × 88 × 32 differs between 1 and 2 threads).
    public static func setThreadCount(_ count: Int) {
        _ = openBLASKernels
        setLoopThreadCount(count)
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// Sets the threads of Kiln's own loops only, as `KILN_CPU_THREADS` does; OpenBLAS keeps its own
    /// (`OPENBLAS_NUM_THREADS`). Results do not depend on this number.
    public static func setLoopThreadCount(_ count: Int) {
        Parallel.threads.store(max(1, count), ordering: .relaxed)
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

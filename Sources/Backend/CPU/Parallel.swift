import Dispatch
import Foundation

/// Splits loops over disjoint ranges across the machine's cores.
enum Parallel {
    /// Threads for the CPU backend's own loops: `KILN_CPU_THREADS`, else the number of cores.
    static let coreCount: Int = {
        if let text = ProcessInfo.processInfo.environment["KILN_CPU_THREADS"], let value = Int(text), value > 0 { return value }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Calls `body` on disjoint ranges that together cover `0..<count`, in parallel when there is enough
    /// work: each range holds at least `grain` items. Bodies must write only to their own range.
    static func forRanges(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(coreCount * 4, max(1, count / max(grain, 1)))
        if chunks <= 1 || coreCount == 1 {
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

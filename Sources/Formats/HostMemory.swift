import Foundation

/// How much memory this process may use on the host: the smallest of the physical memory, the memory
/// available when the run starts (`MemAvailable`: what other processes leave), the cgroup's limit
/// (containers) and the address-space and data-segment limits (`ulimit -v`, `ulimit -d`).
public enum HostMemory {
    /// A number of bytes and what sets it.
    public struct Budget: Sendable, Equatable {
        public var bytes: Int
        /// What limits it, for messages: "available memory", "ulimit -v", ….
        public var reason: String

        public init(bytes: Int, reason: String) {
            self.bytes = bytes
            self.reason = reason
        }
    }

    public static var budget: Budget {
        var budget = Budget(bytes: Int(clamping: ProcessInfo.processInfo.physicalMemory), reason: "physical memory")
        for (limit, reason) in [(availableMemory(), "memory available now"), (cgroupLimit(), "the container's limit"),
                                (resourceLimit(RLIMIT_AS), "ulimit -v"), (resourceLimit(RLIMIT_DATA), "ulimit -d")] {
            if let limit, limit > 0, limit < budget.bytes { budget = Budget(bytes: limit, reason: reason) }
        }
        return budget
    }

    public static var budgetBytes: Int { budget.bytes }

    /// `MemAvailable` from `/proc/meminfo`: free memory plus what the kernel can reclaim without swapping.
    static func availableMemory() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kilobytes = Int(fields[1]) { return kilobytes <= Int.max / 1024 ? kilobytes * 1024 : Int.max }
        }
        return nil
    }

    /// cgroup v2's `memory.max`, or v1's `memory.limit_in_bytes`, when set.
    static func cgroupLimit() -> Int? {
        for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            if let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) { return value }
        }
        return nil
    }

    /// A soft resource limit in bytes, nil when unlimited.
    static func resourceLimit(_ resource: __rlimit_resource) -> Int? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(resource.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return Int(clamping: limit.rlim_cur)
    }
}

/// A byte count in MiB with one decimal ("1.5 MiB"), for the formats' messages.
func formatsMebibytes(_ bytes: Int) -> String {
    "\((Double(bytes) / 1_048_576 * 10).rounded() / 10) MiB"
}

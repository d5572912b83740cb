import KilnBackend
import Synchronization

/// One test at a time may switch the CPU loops to their portable versions (a process-wide setting).
private let loopSetting = Mutex<Void>(())

/// Runs `body` with the CPU backend's C loops in their portable versions, restoring the setting
/// afterwards. Tests running meanwhile may see either setting, and must be right with both.
public func withPortableCPULoops<Result>(_ body: () throws -> Result) throws -> Result {
    try loopSetting.withLock { _ in
        let wide = CPUBackend.usesWideVectors
        CPUBackend.setWideVectors(false)
        defer { CPUBackend.setWideVectors(wide) }
        return try body()
    }
}

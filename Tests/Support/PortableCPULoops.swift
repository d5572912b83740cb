import KilnBackend
import Synchronization

/// One test at a time may switch the CPU loops to their portable versions (a process-wide setting).
private let loopSetting = Mutex<Void>(())

/// Runs `body` with the CPU backend's C loops in their portable versions, restoring the setting
/// afterwards. Tests running meanwhile may see either setting, and must be right with both.
public func withPortableCPULoops<Result>(_ body: () throws -> Result) throws -> Result {
    try withWideVectors(false, body)
}

/// Runs `body` with the CPU loops' vector setting set to `wide` and held there (no other test switches
/// it meanwhile), restoring it afterwards.
public func withWideVectors<Result>(_ wide: Bool, _ body: () throws -> Result) throws -> Result {
    try loopSetting.withLock { _ in
        let saved = CPUBackend.usesWideVectors
        CPUBackend.setWideVectors(wide)
        defer { CPUBackend.setWideVectors(saved) }
        return try body()
    }
}

/// Runs `body` while no other test switches the CPU loops' versions: for tests that compare the bits of
/// repeated runs (the versions are each right, but need not round alike in every loop).
public func withSteadyCPULoops<Result>(_ body: () throws -> Result) throws -> Result {
    try loopSetting.withLock { _ in try body() }
}

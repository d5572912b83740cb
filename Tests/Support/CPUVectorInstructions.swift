import KilnBackend
import Synchronization

/// One test at a time may change the CPU loops' instruction set (a process-wide setting).
private let instructionSetting = Mutex<Void>(())

/// Runs `body` with the CPU backend's C loops set to `instructions`, restoring the setting afterwards;
/// returns nil without running it when the processor lacks them. Tests running meanwhile may see either
/// setting, and must be right with both.
public func withCPUVectorInstructions<Result>(_ instructions: CPUBackend.VectorInstructions, _ body: () throws -> Result) throws -> Result? {
    try instructionSetting.withLock { _ in
        let previous = CPUBackend.vectorInstructions
        defer { CPUBackend.setVectorInstructions(previous) }
        guard CPUBackend.setVectorInstructions(instructions) == instructions else { return nil }
        return try body()
    }
}

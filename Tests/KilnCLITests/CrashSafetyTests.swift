import Foundation
import Testing

/// `kill -9` during training loses at most the steps since the last checkpoint: a run killed at a few
/// points and resumed each time logs the same records as a run that was never interrupted, and leaves no
/// temporary file behind.
@Suite("crash safety", .serialized)
struct CrashSafetyTests {
    /// A run of a few seconds: 50 records, a checkpoint every 5th (the kills come after the first).
    static let training = [
        "train", "--task", "digits", "--model", "mlp", "--width", "256", "--batch-size", "256", "--steps", "200",
        "--eval-every", "20", "--log-every", "4", "--device", "cpu", "--plain", "--seed", "5",
    ]

    /// The records of a run, without their times.
    static func records(_ folder: URL) throws -> [[String: String]] {
        let text = try String(contentsOf: folder.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return object.filter { $0.key != "seconds" }.mapValues { "\($0)" }
        }
    }

    static func lineCount(_ url: URL) -> Int {
        (FileManager.default.contents(atPath: url.path) ?? Data()).reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
    }

    /// Starts `kiln`, waits until its metrics file holds `lines` lines, and kills it with SIGKILL.
    ///
    /// - Returns: whether the kill landed (false when the run ended first).
    static func killed(_ arguments: [String], metrics: URL, atLines lines: Int) throws -> Bool {
        let process = Process()
        process.executableURL = KilnProcess.executable
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        while process.isRunning && lineCount(metrics) < lines { usleep(1000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal
    }

    @Test("killed at three points and resumed, a run logs what an uninterrupted run logs")
    func killedAndResumed() throws {
        let root = temporaryFolder("crash")
        defer { try? FileManager.default.removeItem(at: root) }
        let whole = root.appendingPathComponent("whole"), interrupted = root.appendingPathComponent("interrupted")
        let reference = try KilnProcess.run(Self.training + ["--out", whole.path])
        try #require(reference.status == 0, "\(reference.error)")

        let metrics = interrupted.appendingPathComponent("metrics.jsonl")
        let resume = ["train", "--resume", interrupted.path, "--plain"]
        // Mid-interval; just after the record of step 80, where the checkpoint of step 80 comes next (killed
        // there, the resume drops that record and logs it again); mid-interval.
        for (attempt, lines) in [7, 20, 33].enumerated() {
            let landed = try Self.killed(attempt == 0 ? Self.training + ["--out", interrupted.path] : resume, metrics: metrics, atLines: lines)
            #expect(landed, "the run ended before it was killed at \(lines) records; make it longer")
        }
        // What a write killed before its rename leaves.
        let leftover = interrupted.appendingPathComponent(".checkpoint.safetensors.0E5D41A6-5C4B-4E31-8F6C-2B0B3B1E9A77.tmp")
        try Data(repeating: 7, count: 100).write(to: leftover)

        let finished = try KilnProcess.run(resume)
        try #require(finished.status == 0, "\(finished.error)")
        #expect(try Self.records(interrupted) == Self.records(whole))
        let temporary = try FileManager.default.contentsOfDirectory(atPath: interrupted.path).filter { $0.hasSuffix(".tmp") }
        #expect(temporary.isEmpty, "temporary files left: \(temporary)")
    }
}

import Foundation

/// Runs `body` with a new, empty folder `kiln-<name>-<UUID>` under the temporary directory, and removes the
/// folder with everything in it afterwards, also when `body` throws: a test run leaves nothing behind.
func withTemporaryFolder<Result>(_ name: String, _ body: (URL) throws -> Result) throws -> Result {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

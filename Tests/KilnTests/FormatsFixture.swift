import Foundation
import Kiln
import Testing

/// Temporary folders, Python fixtures and error capture shared by the format tests.
enum FormatsFixture {
    /// A new, empty folder under the system's temporary directory.
    static func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("kiln-formats-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Runs a Python 3 script and returns what it printed.
    ///
    /// - Throws: An error holding Python's standard error when the script fails.
    @discardableResult
    static func python(_ script: String, _ arguments: [String] = []) throws -> String {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let scriptURL = folder.appendingPathComponent("script.py")
        try Data(script.utf8).write(to: scriptURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", scriptURL.path] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PythonFailure(message: String(decoding: errorData, as: UTF8.self))
        }
        return String(decoding: outputData, as: UTF8.self)
    }

    struct PythonFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { "python3 failed: \(message)" }
    }

    /// Whether `python3` with numpy can be run.
    static let hasNumpy: Bool = (try? python("import numpy\nprint('ok')"))?.contains("ok") ?? false

    /// Whether `python3` can be run at all.
    static let hasPython: Bool = (try? python("print('ok')"))?.contains("ok") ?? false

    /// Whether the `safetensors` Python package is installed.
    static let hasSafetensors: Bool = (try? python("import numpy, safetensors.numpy\nprint('ok')"))?.contains("ok") ?? false

    /// The digits data set, from the project's data folder or the shared one.
    static let digitsURL: URL? = {
        let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [
            projectRoot.appendingPathComponent("data/digits.csv.gz"),
            URL(fileURLWithPath: "/work/shared/data/digits.csv.gz"),
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }
    }()

    /// The error a throwing call produced, or nil when it returned.
    static func formatError<T>(_ body: () throws(FormatError) -> T) -> FormatError? {
        do {
            _ = try body()
            return nil
        } catch {
            return error
        }
    }

    /// Expects a call to throw a one-line `FormatError` naming `file` whose message contains every fragment.
    static func expectError<T>(
        file: String, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () throws(FormatError) -> T
    ) {
        guard let error = formatError(body) else {
            Issue.record("expected a FormatError containing \(fragments)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.file == file, sourceLocation: sourceLocation)
        #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
        #expect(error.description.hasPrefix("\(file): "), sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(error.message.contains(fragment), "\(error.message) should contain \(fragment)", sourceLocation: sourceLocation)
        }
    }

    /// Deterministic pseudo-random bytes.
    static func randomBytes(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    static func readBytes(_ url: URL) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url))
    }
}

import Foundation
import KilnBackend
import Testing

/// `kiln check`, `kiln tune` and the tuning column of `kiln devices`, run as a user runs them.
@Suite("kiln check and kiln tune")
struct CheckTuneCLITests {
    @Test("kiln check passes on the cpu device and writes the rows as JSON")
    func checkCPU() throws {
        try withTemporaryFolder("check") { folder in
            let json = folder.appendingPathComponent("check.json")
            let result = try KilnProcess.run(["check", "--device", "cpu", "--json", json.path], timeout: 300)
            #expect(result.status == 0, "\(result.error)")
            #expect(result.output.contains("cases pass") && !result.output.contains("FAIL"))
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [[String: Any]])
            #expect(Set(rows.compactMap { $0["family"] as? String }) == Set(OpFamily.allCases.map(\.rawValue)))
            #expect(rows.allSatisfy { $0["passed"] as? Bool == true && $0["case"] is String && $0["bound"] is Double && $0["device"] as? String == "cpu" })
        }
    }

    @Test("bad input: one line, exit status 1, nothing written", arguments: [
        (["check", "--families", "gemm,bogus"], "unknown family 'bogus'"),
        (["check", "--device", "nope"], "nope"),
        (["tune", "--device", "cpu"], "no kernel parameters to tune"),
        (["tune", "--device", "opencl:0", "--budget", "0"], "--budget must be a positive number"),
        (["tune", "--device", "opencl:0", "--budget", "-5"], "--budget must be a positive number"),
        (["tune", "--device", "opencl:0", "--families", "reduce"], "has no tuning parameters"),
        (["tune", "--families", "matmul,bogus"], "unknown family 'bogus'"),
    ])
    func badInput(_ arguments: [String], _ message: String) throws {
        try withTemporaryFolder("tune-bad") { folder in
            let result = try KilnProcess.run(arguments, environment: ["KILN_CACHE_DIR": folder.path], timeout: 120)
            #expect(result.status == 1, "\(arguments): \(result.output) \(result.error)")
            let lines = result.error.split(whereSeparator: \.isNewline)
            #expect(lines.count == 1 && lines[0].hasPrefix("error: "), "\(arguments): \(result.error)")
            // Without OpenCL the device names themselves are the error; the message differs then.
            if Devices.hasOpenCL || arguments.contains("cpu") || arguments[0] == "check" { #expect(result.error.contains(message), "\(arguments): \(result.error)") }
            let written = (try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("tuning").path)) ?? []
            #expect(written.isEmpty, "\(arguments) wrote \(written)")
        }
    }

    @Test("a tiny-budget kiln tune on PoCL writes a tuning file that kiln devices then uses; a corrupted one warns", .enabled(if: Devices.hasOpenCL))
    func tuneEndToEnd() throws {
        try withTemporaryFolder("tune") { folder in
            let environment = ["KILN_CACHE_DIR": folder.path]
            let result = try KilnProcess.run(["tune", "--device", "opencl:0", "--families", "rows", "--budget", "6", "--export"], environment: environment, timeout: 300)
            #expect(result.status == 0, "\(result.output)\n\(result.error)")
            #expect(result.output.contains("default") && result.output.contains("tuned") && result.output.contains("kiln-tuning-database/1"))
            let tuning = folder.appendingPathComponent("tuning")
            let files = try FileManager.default.contentsOfDirectory(atPath: tuning.path)
            #expect(files.count == 1 && files[0].hasSuffix(".json"), "\(files)")  // no temporary file left
            let file = try JSONDecoder().decode(TuningFile.self, from: Data(contentsOf: tuning.appendingPathComponent(files[0])))
            #expect(file.parameters.keys.contains("rows.groupSize") && !file.parameters.keys.contains("gemm.rowsPerItem"))

            let devices = try KilnProcess.run(["devices"], environment: environment, timeout: 120)
            #expect(devices.status == 0)
            #expect(devices.output.contains("tuned (user file)"), "\(devices.output)")

            try Data("{\"format\": \"kiln-tuning/1\", ".utf8).write(to: tuning.appendingPathComponent(files[0]))
            let corrupted = try KilnProcess.run(["devices"], environment: environment, timeout: 120)
            #expect(corrupted.status == 0)
            #expect(!corrupted.output.contains("tuned (user file)"), "\(corrupted.output)")
            #expect(corrupted.error.contains("warning: ") && corrupted.error.contains("is not a tuning file"), "\(corrupted.error)")
        }
    }
}

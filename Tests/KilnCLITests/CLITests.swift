import Foundation
import KilnTestSupport
import Testing

/// Runs the built `kiln` executable (next to the test bundle) and captures its output.
struct KilnProcess {
    static var executable: URL {
        let testBinary = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        return testBinary.deletingLastPathComponent().appendingPathComponent("kiln")
    }

    /// Runs `kiln` with `arguments`; a run still going after `timeout` seconds is killed (status 9, and a
    /// line saying so on standard error), so that an input that makes `kiln` hang fails its test instead of
    /// stopping the suite.
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 600) throws -> (status: Int32, output: String, error: String) {
        try runProgram(executable, arguments, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, timeout: timeout)
    }
}

/// Runs `program` with exactly `environment` (and in `directory`, when given); a run still going after
/// `timeout` seconds is killed (status 9, and a line saying so on standard error).
func runProgram(_ program: URL, _ arguments: [String], environment: [String: String], directory: URL? = nil, timeout: Double = 600) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = program
    process.arguments = arguments
    process.environment = environment
    if let directory { process.currentDirectoryURL = directory }
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let pid = process.processIdentifier
    let killer = DispatchWorkItem { kill(pid, SIGKILL) }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    killer.cancel()
    var errorText = String(decoding: errorData, as: UTF8.self)
    if process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL {
        errorText += "(killed after \(Int(timeout)) s: \(program.lastPathComponent) \(arguments.joined(separator: " ").prefix(120)) did not finish)\n"
    }
    return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), errorText)
}

/// Runs `body` with a new, empty folder `kiln-cli-<name>-<UUID>` under the temporary directory, and removes
/// the folder with everything in it afterwards, also when `body` throws: a test run leaves nothing behind.
func withTemporaryFolder<Result>(_ name: String, _ body: (URL) throws -> Result) throws -> Result {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-cli-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

/// Writes an .npy file with numpy's exact header layout (version 1.0).
func writeNpy(_ url: URL, descr: String, shape: [Int], bytes: [UInt8]) throws {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(\(shape.map(String.init).joined(separator: ", ")))"
    var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
    while (10 + header.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    var data: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)]
    data += Array(header.utf8) + bytes
    try Data(data).write(to: url)
}

func floatBytes(_ values: [Float]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }

@Suite("the kiln command line")
struct CLITests {
    /// A user error: non-zero exit, exactly one line on standard error, no stack trace.
    func expectOneLineError(_ result: (status: Int32, output: String, error: String), containing words: [String], _ comment: String) {
        #expect(result.status != 0, "\(comment): exit status \(result.status)")
        let lines = result.error.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count == 1, "\(comment): expected one line of error, got: \(result.error)")
        #expect(!result.error.contains("Fatal error") && !result.error.contains("Backtrace") && !result.error.contains("0x0000"), "\(comment): crash output \(result.error)")
        for word in words { #expect(result.error.contains(word), "\(comment): '\(word)' missing from: \(result.error)") }
    }

    @Test("kiln devices lists devices as text and JSON with the documented keys")
    func devices() throws {
        let text = try KilnProcess.run(["devices"])
        #expect(text.status == 0 && text.output.contains("cpu") && text.output.contains("*"))
        let json = try KilnProcess.run(["devices", "--json"])
        #expect(json.status == 0)
        let objects = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as! [[String: Any]]
        #expect(objects.first?["id"] as? String == "cpu")
        for object in objects {
            for key in ["id", "backend", "name", "vendor", "type", "computeUnits", "memoryBytes", "isDefault"] {
                #expect(object[key] != nil, "key \(key) missing")
            }
        }
        #expect(objects.filter { $0["isDefault"] as? Bool == true }.count == 1)
    }

    @Test("kiln devices names OpenBLAS's kernel set, and OPENBLAS_CORETYPE's choice stands")
    func openBLASKernels() throws {
        let chosen = try KilnProcess.run(["devices"], environment: ["OPENBLAS_CORETYPE": "Prescott"])
        #expect(chosen.status == 0 && chosen.output.contains("OpenBLAS Prescott (OPENBLAS_CORETYPE)"), "\(chosen.output)")
        let own = try KilnProcess.run(["devices"])
        #expect(own.status == 0 && own.output.contains("OpenBLAS"), "\(own.output)")
    }

    @Test("an unknown device names the devices there are (flag and KILN_DEVICE)")
    func unknownDevice() throws {
        expectOneLineError(try KilnProcess.run(["train", "--device", "tpu:3", "--steps", "1"]), containing: ["unknown device 'tpu:3'", "cpu"], "--device tpu:3")
        expectOneLineError(try KilnProcess.run(["train", "--steps", "1"], environment: ["KILN_DEVICE": "gpu9"]), containing: ["unknown device 'gpu9'"], "KILN_DEVICE")
    }

    @Test("bad flags and values are one-line errors")
    func badFlags() throws {
        try withTemporaryFolder("flags") { folder in
            let out = folder.path
            expectOneLineError(try KilnProcess.run(["train", "--task", "imagenet", "--out", out]), containing: ["unknown task 'imagenet'", "digits"], "unknown task")
            expectOneLineError(try KilnProcess.run(["train", "--optimizer", "lion", "--out", out]), containing: ["lion", "adam"], "unknown optimizer")
            expectOneLineError(try KilnProcess.run(["train", "--activation", "swish2", "--out", out]), containing: ["swish2"], "unknown activation")
            expectOneLineError(try KilnProcess.run(["train", "--lr=-1", "--out", out]), containing: ["--lr"], "negative lr")
            expectOneLineError(try KilnProcess.run(["train", "--batch-size=-1", "--out", out]), containing: ["--batch-size"], "negative batch")
            expectOneLineError(try KilnProcess.run(["train", "--task", "modadd:1", "--out", out]), containing: ["modulus"], "bad modulus")
            // Every flag with a closed set of values: one line naming the value and the choices, exit status 1.
            for (arguments, choices) in [
                (["train", "--model", "rnn"], ["mlp", "kan", "lm"]), (["train", "--mixer", "mamba"], ["linear", "gla", "delta"]),
                (["train", "--schedule", "step"], ["constant", "cosine", "one-cycle"]), (["train", "--param", "ntk"], ["sp", "mup"]),
                (["train", "--readout-init", "ones"], ["zero", "normal"]), (["train", "--target", "labels"], ["auto", "classes", "values"]),
                (["coord-check", "--model", "kan"], ["mlp", "lm"]), (["coord-check", "--optimizer", "adamw"], ["adam", "sgd"]),
                (["coord-check", "--mixer", "rwkv"], ["delta"]), (["sweep", "--optimizer", "lbfgs"], ["sgd", "adam-atan2"]),
                (["sweep", "--param", "sp2"], ["mup"]), (["sweep", "--model", "gpt"], ["lm"]),
            ] {
                let result = try KilnProcess.run(arguments + ["--device", "cpu"])
                expectOneLineError(result, containing: [arguments[2]] + choices, arguments.joined(separator: " "))
                #expect(result.status == 1, "\(arguments): exit status \(result.status)")
            }
            let unknownFlag = try KilnProcess.run(["train", "--bogus"])
            #expect(unknownFlag.status != 0 && unknownFlag.error.contains("--bogus") && !unknownFlag.error.contains("Backtrace"))
        }
    }

    @Test("bad data files: wrong dtype, wrong shape, mismatched rows")
    func badData() throws {
        try withTemporaryFolder("data") { folder in
            let x = folder.appendingPathComponent("x.npy"), y = folder.appendingPathComponent("y.npy")
            try writeNpy(x, descr: "<f4", shape: [10, 3], bytes: floatBytes((0..<30).map(Float.init)))
            try writeNpy(y, descr: "<i8", shape: [9], bytes: (0..<9).flatMap { withUnsafeBytes(of: Int64($0 % 2).littleEndian, Array.init) })
            expectOneLineError(try KilnProcess.run(["train", "--task", "files", "--train-x", x.path, "--train-y", y.path, "--out", folder.path]),
                               containing: ["10 rows", "9"], "mismatched rows")
            let strings = folder.appendingPathComponent("s.npy")
            try writeNpy(strings, descr: "<U5", shape: [10], bytes: [UInt8](repeating: 65, count: 200))
            expectOneLineError(try KilnProcess.run(["train", "--task", "files", "--train-x", x.path, "--train-y", strings.path, "--out", folder.path]),
                               containing: ["s.npy", "<U5"], "wrong dtype")
            let cube = folder.appendingPathComponent("cube.npy")
            try writeNpy(cube, descr: "<f4", shape: [2, 2, 2], bytes: floatBytes([Float](repeating: 1, count: 8)))
            expectOneLineError(try KilnProcess.run(["train", "--task", "files", "--train-x", cube.path, "--train-y", y.path, "--out", folder.path]),
                               containing: ["cube.npy", "2-D"], "3-D inputs")
            expectOneLineError(try KilnProcess.run(["train", "--task", "files", "--train-x", folder.appendingPathComponent("absent.npy").path, "--train-y", y.path, "--out", folder.path]),
                               containing: ["absent.npy"], "missing file")
        }
    }

    @Test("train, predict, corrupted and truncated checkpoints")
    func trainAndPredict() throws {
        try withTemporaryFolder("run") { run in
            let trained = try KilnProcess.run(["train", "--steps", "60", "--eval-every", "30", "--width", "32", "--device", "cpu", "--out", run.path])
            #expect(trained.status == 0, "\(trained.error)")
            for file in ["metrics.jsonl", "checkpoint.safetensors", "summary.json", "loss.svg"] {
                #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent(file).path), "\(file) missing")
            }
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("summary.json"))) as! [String: Any]
            for key in ["task", "model", "device", "steps", "final_train_loss", "test_loss", "test_accuracy", "seconds", "parameters"] {
                #expect(summary[key] != nil, "summary lacks \(key)")
            }

            let input = run.appendingPathComponent("x.npy"), output = run.appendingPathComponent("y.npy")
            try writeNpy(input, descr: "<f4", shape: [5, 64], bytes: floatBytes((0..<320).map { Float($0 % 17) / 16 }))
            let predicted = try KilnProcess.run(["predict", "--checkpoint", run.appendingPathComponent("checkpoint.safetensors").path, "--input", input.path, "--output", output.path])
            #expect(predicted.status == 0, "\(predicted.error)")
            let written = try Data(contentsOf: output)
            #expect(written.count > 5 * 10 * 4 && String(decoding: written.prefix(80), as: UTF8.self).contains("(5, 10)"))

            // The same rows as CSV in and CSV out give the same outputs as the .npy files (float32 values
            // written in shortest round-trip form read back exactly).
            let csvInput = run.appendingPathComponent("x.csv"), csvOutput = run.appendingPathComponent("y.csv")
            let rows = (0..<5).map { row in (0..<64).map { String(Float((row * 64 + $0) % 17) / 16) }.joined(separator: ",") }
            try (rows.joined(separator: "\n") + "\n").write(to: csvInput, atomically: true, encoding: .utf8)
            let predictedCSV = try KilnProcess.run(["predict", "--checkpoint", run.appendingPathComponent("checkpoint.safetensors").path, "--input", csvInput.path, "--output", csvOutput.path])
            #expect(predictedCSV.status == 0, "\(predictedCSV.error)")
            let csvValues = try String(contentsOf: csvOutput, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").map { Float($0)! } }
            let npyValues = Array(written.suffix(5 * 10 * 4)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            #expect(csvValues.count == 5 && csvValues.allSatisfy { $0.count == 10 })
            #expect(csvValues.flatMap { $0 } == npyValues, "CSV outputs differ from the .npy outputs")
            expectOneLineError(try KilnProcess.run(["predict", "--checkpoint", run.appendingPathComponent("checkpoint.safetensors").path, "--input", input.path, "--output", run.appendingPathComponent("y.txt").path]),
                               containing: ["y.txt", ".npy", ".csv"], "an output that is neither .npy nor .csv")

            let wrongWidth = run.appendingPathComponent("w.npy")
            try writeNpy(wrongWidth, descr: "<f4", shape: [2, 3], bytes: floatBytes([Float](repeating: 0, count: 6)))
            expectOneLineError(try KilnProcess.run(["predict", "--checkpoint", run.appendingPathComponent("checkpoint.safetensors").path, "--input", wrongWidth.path, "--output", output.path]),
                               containing: ["64"], "input of the wrong width")

            let bytes = try Data(contentsOf: run.appendingPathComponent("checkpoint.safetensors"))
            for (name, damaged) in [("truncated", bytes.prefix(bytes.count / 2)), ("header", Data([0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0]) + bytes.dropFirst(8)), ("tiny", bytes.prefix(5))] {
                let path = run.appendingPathComponent("\(name).safetensors")
                try damaged.write(to: path)
                expectOneLineError(try KilnProcess.run(["predict", "--checkpoint", path.path, "--input", input.path, "--output", output.path]),
                                   containing: ["\(name).safetensors"], "\(name) checkpoint")
            }
            try withTemporaryFolder("empty") { empty in
                expectOneLineError(try KilnProcess.run(["train", "--resume", empty.path]), containing: ["checkpoint"], "resume from an empty folder")
            }
        }
    }

    @Test("a text model trains, reports bits per character, and generates from a prompt; a KAN plots")
    func textAndKAN() throws {
        try withTemporaryFolder("textkan") { folder in
            let corpus = folder.appendingPathComponent("corpus.txt")
            try String(repeating: "abcabd abcabe. ", count: 120).write(to: corpus, atomically: true, encoding: .utf8)
            let run = folder.appendingPathComponent("text")
            let trained = try KilnProcess.run(["train", "--task", "text:\(corpus.path)", "--model", "lm", "--mixer", "gla", "--width", "16", "--heads", "2",
                                               "--layers", "1", "--seq-len", "16", "--steps", "30", "--eval-every", "30", "--device", "cpu", "--out", run.path])
            #expect(trained.status == 0, "\(trained.error)")
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("summary.json"))) as! [String: Any]
            let bits = try #require(summary["test_bpc"] as? Double)
            #expect(abs(bits - (summary["test_loss"] as! Double) / log(2)) < 1e-9)
            let generated = try KilnProcess.run(["generate", "--checkpoint", run.appendingPathComponent("checkpoint.safetensors").path, "--prompt", "abc", "--tokens", "12"])
            #expect(generated.status == 0, "\(generated.error)")
            #expect(generated.output.trimmingCharacters(in: .newlines).count == 15 && generated.output.hasPrefix("abc"))
            expectOneLineError(try KilnProcess.run(["generate", "--checkpoint", run.appendingPathComponent("checkpoint.safetensors").path, "--prompt", "xyz"]),
                               containing: ["x"], "unknown prompt character")

            let kan = folder.appendingPathComponent("kan")
            let fitted = try KilnProcess.run(["train", "--task", "fit:x1*x2", "--model", "kan", "--arch", "2,2,1", "--optimizer", "lbfgs",
                                              "--grid", "3,5", "--steps", "5", "--eval-every", "5", "--device", "cpu", "--out", kan.path])
            #expect(fitted.status == 0, "\(fitted.error)")
            expectOneLineError(try KilnProcess.run(["train", "--task", "teacher", "--optimizer", "lbfgs", "--steps", "1", "--device", "cpu", "--out", folder.appendingPathComponent("teacher").path]),
                               containing: ["fresh batches", "--batch-size"], "L-BFGS's whole-set default on a task without a fixed training set")
            let plotted = try KilnProcess.run(["plot", "--checkpoint", kan.appendingPathComponent("checkpoint.safetensors").path])
            #expect(plotted.status == 0 && plotted.output.contains("6 edge activations"), "\(plotted.output) \(plotted.error)")
            let svg = try String(contentsOf: kan.appendingPathComponent("kan.svg"), encoding: .utf8)
            #expect(svg.contains("layer 1: x2 → y1"))
            expectOneLineError(try KilnProcess.run(["plot", "--checkpoint", run.appendingPathComponent("checkpoint.safetensors").path]), containing: ["not a KAN"], "plot of an lm")
        }
    }

    @Test("a missing kernel folder is a one-line error listing the place searched", .enabled(if: !BackendCase.openCL.isEmpty, "needs an OpenCL device"))
    func missingKernels() throws {
        let result = try KilnProcess.run(["train", "--device", "opencl:0", "--steps", "1"], environment: ["KILN_KERNELS": "/nonexistent/kernels"])
        expectOneLineError(result, containing: ["/nonexistent/kernels", "KILN_KERNELS"], "missing kernels")
    }
}

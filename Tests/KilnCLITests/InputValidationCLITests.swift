import Foundation
import Testing

/// A user error as `kiln` must report it: exit status 1, exactly one line on standard error starting with
/// `error: `, no crash trace and no raw Foundation error, holding every one of `words`.
func expectUserError(_ result: (status: Int32, output: String, error: String), _ words: [String], _ comment: String) {
    #expect(result.status == 1, "\(comment): exit status \(result.status), stderr: \(result.error.prefix(300))")
    let lines = result.error.split(separator: "\n", omittingEmptySubsequences: true)
    #expect(lines.count == 1 && result.error.hasPrefix("error: "), "\(comment): expected one 'error:' line, got: \(result.error.prefix(600))")
    for marker in ["Fatal error", "Backtrace", "Precondition failed", "NSCocoaErrorDomain", "Error Domain="] {
        #expect(!result.error.contains(marker), "\(comment): \(marker) in: \(result.error.prefix(600))")
    }
    for word in words { #expect(result.error.contains(word), "\(comment): '\(word)' missing from: \(result.error.prefix(600))") }
}

/// Edits a checkpoint's `__metadata__` (the safetensors header's JSON) and writes the result to `destination`.
func editCheckpointMetadata(_ source: URL, to destination: URL, _ change: (inout [String: String]) throws -> Void) throws {
    let bytes = [UInt8](try Data(contentsOf: source))
    let length = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    var header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as! [String: Any]
    var metadata = header["__metadata__"] as! [String: String]
    try change(&metadata)
    header["__metadata__"] = metadata
    var text = [UInt8](try JSONSerialization.data(withJSONObject: header))
    while (8 + text.count) % 8 != 0 { text.append(0x20) }
    let prefix = (0..<8).map { UInt8(truncatingIfNeeded: text.count >> (8 * $0)) }
    try Data(prefix + text + bytes[(8 + length)...]).write(to: destination)
}

/// A JSON object's text with top-level keys replaced.
func editedJSON(_ text: String, _ changes: [String: Any]) throws -> String {
    var object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
    object.merge(changes) { $1 }
    return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
}

/// Every input the issue found crashing, hanging or silently accepted, run through the built `kiln`: each is
/// now a one-line error with exit status 1 (or, where the input is valid, a run that works).
@Suite("kiln answers bad input with one line")
struct InputValidationCLITests {
    static let cpu = ["--device", "cpu", "--plain"]

    @Test("tasks that do not fit the model, empty columns, deep formulas, sizes beyond memory, negative numbers")
    func trainFlags() throws {
        try withTemporaryFolder("train-flags") { folder in
            let out = ["--out", folder.appendingPathComponent("out").path] + Self.cpu
            let text = folder.appendingPathComponent("text.txt")
            try String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 100).write(to: text, atomically: true, encoding: .utf8)
            let x = folder.appendingPathComponent("x.npy"), y = folder.appendingPathComponent("y.npy")
            let x0 = folder.appendingPathComponent("x0.npy"), y0 = folder.appendingPathComponent("y0.npy")
            try writeNpy(x, descr: "<f4", shape: [10, 3], bytes: floatBytes((0..<30).map(Float.init)))
            try writeNpy(y, descr: "<i8", shape: [10], bytes: (0..<10).flatMap { withUnsafeBytes(of: Int64($0 % 2).littleEndian, Array.init) })
            try writeNpy(x0, descr: "<f4", shape: [10, 0], bytes: [])
            try writeNpy(y0, descr: "<f4", shape: [10, 0], bytes: [])
            let deep = "fit:" + String(repeating: "(", count: 20_000) + "x1" + String(repeating: ")", count: 20_000)
            for (arguments, words) in [
                (["--task", "mqar", "--model", "mlp"], ["task mqar gives token sequences", "--model lm"]),
                (["--task", "text:\(text.path)", "--model", "kan"], ["gives token sequences", "kan"]),
                (["--task", "digits", "--model", "lm"], ["model lm reads token sequences", "digits"]),
                (["--task", "mqar:3", "--model", "lm"], ["unknown task 'mqar:3'", "known tasks"]),
                (["--task", "files", "--train-x", x0.path, "--train-y", y.path], ["x0.npy", "0 feature columns"]),
                (["--task", "files", "--train-x", x.path, "--train-y", y0.path], ["y0.npy", "0 target columns"]),
                (["--task", deep, "--model", "kan"], ["500 levels deep"]),
                (["--width", "1000000"], ["out of memory on", "allocating about", "TiB", "--width"]),
                (["--batch-size", "100000000000"], ["--batch-size must be 1 to 16777216"]),
                (["--model", "kan", "--grid", "100000000"], ["--grid", "1 to 1000"]),
                (["--depth", "100000", "--width", "1"], ["--depth must be 0 to 1000"]),
                (["--width", "-1"], ["--width must be at least 1, got -1"]),
                (["--width=-1"], ["--width must be at least 1, got -1"]),
                (["--lr", "-1"], ["--lr must be a positive number, got -1"]),
                (["--clip", "inf"], ["--clip must be a positive finite number"]),
                (["--stop-after", "0", "--steps", "5"], ["--stop-after must be at least 1, got 0"]),
                (["--task", "fit:exp(x1)", "--model", "kan", "--range", "0,100"], ["not finite", "--range"]),
                (["--task", "fit:x1", "--model", "kan", "--range", "1e39,1e40"], ["--range", "float32"]),
                (["--width"], ["Missing value for '--width"]),
                (["--bogus"], ["--bogus"]),
                (["--seed", "-1"], ["'-1' is invalid for '--seed"]),
            ] {
                // The flags under test come last, so that a flag missing its value is the last argument.
                expectUserError(try KilnProcess.run(["train"] + out + arguments, timeout: 300), words, arguments.joined(separator: " ").prefix(80).description)
            }
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out").path), "a refused run left its output folder")
            // A run that fails once training has started (here it diverges before its first log line) leaves no empty folder.
            expectUserError(try KilnProcess.run(["train", "--width", "8", "--lr", "1e20", "--steps", "20", "--log-every", "1000", "--eval-every", "1000"] + out),
                            ["training diverged", "lower --lr"], "a diverging run")
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out").path), "a failed run left an empty output folder")
            // Negative numbers reach the flags that take them.
            let fit = try KilnProcess.run(["train", "--task", "fit:x1", "--model", "kan", "--arch", "1,1,1", "--range", "-2,2", "--steps", "2"] + out)
            #expect(fit.status == 0, "--range -2,2: \(fit.error)")
        }
    }

    @Test("data files: a device, a FIFO, a folder, a gzip bomb, NaN and infinity")
    func dataFiles() throws {
        try withTemporaryFolder("data-files") { folder in
            let out = ["--out", folder.appendingPathComponent("out").path] + Self.cpu
            let y = folder.appendingPathComponent("y.npy")
            try writeNpy(y, descr: "<i8", shape: [10], bytes: (0..<10).flatMap { withUnsafeBytes(of: Int64($0 % 2).littleEndian, Array.init) })
            let fifo = folder.appendingPathComponent("fifo")
            try #require(mkfifo(fifo.path, 0o600) == 0)
            for path in ["/dev/zero", fifo.path] {
                expectUserError(try KilnProcess.run(["train", "--task", "files", "--train-x", path, "--train-y", y.path] + out, timeout: 120), [path, "not a regular file"], path)
                expectUserError(try KilnProcess.run(["predict", "--checkpoint", path, "--input", y.path, "--output", folder.appendingPathComponent("o.npy").path], timeout: 120),
                                [path, "not a regular file"], "checkpoint \(path)")
                expectUserError(try KilnProcess.run(["train", "--task", "text:\(path)", "--model", "lm"] + out, timeout: 120), [path, "not a regular file"], "text:\(path)")
            }
            expectUserError(try KilnProcess.run(["train", "--task", "files", "--train-x", folder.path, "--train-y", y.path] + out), ["folder"], "a folder as data")

            // 300 gzip members of 1 MiB of zeros each: a 300 KB file that inflates to 300 MiB.
            let zeros = folder.appendingPathComponent("zeros")
            try Data(repeating: UInt8(ascii: "0"), count: 1 << 20).write(to: zeros)
            let gzip = Process()
            gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
            gzip.arguments = [zeros.path]
            try gzip.run()
            gzip.waitUntilExit()
            let member = try Data(contentsOf: folder.appendingPathComponent("zeros.gz"))
            let bomb = folder.appendingPathComponent("bomb.csv.gz")
            try Data((0..<300).flatMap { _ in member }).write(to: bomb)
            expectUserError(try KilnProcess.run(["train", "--task", "files", "--train-x", bomb.path, "--train-y", y.path] + out),
                            ["bomb.csv.gz", "inflates to more than 256.0 MiB", ".npy"], "gzip bomb")

            for (name, value, shown) in [("nan", Float.nan, "nan"), ("inf", Float.infinity, "inf")] {
                var values = (0..<30).map(Float.init)
                values[7] = value
                let x = folder.appendingPathComponent("\(name).npy")
                try writeNpy(x, descr: "<f4", shape: [10, 3], bytes: floatBytes(values))
                expectUserError(try KilnProcess.run(["train", "--task", "files", "--train-x", x.path, "--train-y", y.path] + out),
                                ["\(name).npy", "row 3, column 2", "is \(shown)"], "\(name) in the data")
            }
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out").path), "a refused run left its output folder")
        }
    }

    @Test("--target auto: integer labels that are not 0…n−1 are classes 0…max with a note, negative ones an error")
    func integerLabels() throws {
        try withTemporaryFolder("integer-labels") { folder in
            let out = folder.appendingPathComponent("out")
            let x = folder.appendingPathComponent("x.csv")
            try (0..<20).map { "\(Double($0) / 10),\(Double($0 % 3))" }.joined(separator: "\n").write(to: x, atomically: true, encoding: .utf8)
            func labels(_ name: String, _ values: [Int]) throws -> String {
                let url = folder.appendingPathComponent(name)
                try (0..<20).map { "\(values[$0 % values.count])" }.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
                return url.path
            }
            let small = ["--task", "files", "--train-x", x.path, "--width", "8", "--depth", "1", "--steps", "3", "--eval-every", "3", "--out", out.path] + Self.cpu
            func summary() throws -> [String: Any] {
                try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json"))) as? [String: Any])
            }

            // Labels 1, 2 and 5: classes 0…5 (2 · 8 + 8 + 8 · 6 + 6 = 78 parameters), a note naming 0, 3 and 4.
            let sparse = try KilnProcess.run(["train", "--train-y", try labels("sparse.csv", [1, 2, 5])] + small)
            #expect(sparse.status == 0, "\(sparse.error)")
            let notes = sparse.error.split(separator: "\n").filter { $0.hasPrefix("note: ") }
            #expect(notes.count == 1 && notes[0].contains("sparse.csv") && notes[0].contains("classes 0…5") && notes[0].contains("classes 0, 3, 4 do not occur")
                    && notes[0].contains("--target values"), "\(sparse.error)")
            #expect(try summary()["parameters"] as? Int == 78 && summary()["test_accuracy"] is Double)
            try FileManager.default.removeItem(at: out)

            // Labels 0…n−1: classes and no note.
            let dense = try KilnProcess.run(["train", "--train-y", try labels("dense.csv", [0, 1, 2])] + small)
            #expect(dense.status == 0 && !dense.error.contains("note:"), "\(dense.error)")
            #expect(try summary()["parameters"] as? Int == 2 * 8 + 8 + 8 * 3 + 3)
            try FileManager.default.removeItem(at: out)

            // A negative label: one line naming the labels and --target values; nothing written.
            let negative = try labels("negative.csv", [-1, 2, 5, -3])
            expectUserError(try KilnProcess.run(["train", "--train-y", negative] + small), ["negative.csv", "negative labels (-1, -3)", "--target values"], "negative labels")
            #expect(!FileManager.default.fileExists(atPath: out.path), "a refused run left its output folder")
            expectUserError(try KilnProcess.run(["train", "--train-y", negative, "--target", "classes"] + small), ["negative labels (-1, -3)"], "negative labels as classes")

            // --target values trains a regression on the same numbers (one output, an RMSE).
            let regression = try KilnProcess.run(["train", "--train-y", negative, "--target", "values"] + small)
            #expect(regression.status == 0 && !regression.error.contains("note:"), "\(regression.error)")
            #expect(try summary()["parameters"] as? Int == 2 * 8 + 8 + 8 + 1 && summary()["test_rmse"] is Double && summary()["test_accuracy"] is NSNull)
        }
    }

    @Test("checkpoints: damaged or out-of-range metadata names the file; --resume checks before it writes")
    func checkpoints() throws {
        try withTemporaryFolder("checkpoints") { folder in
            let run = folder.appendingPathComponent("run")
            let trained = try KilnProcess.run(["train", "--width", "8", "--steps", "6", "--eval-every", "3", "--stop-after", "3", "--out", run.path] + Self.cpu)
            try #require(trained.status == 0, "\(trained.error)")
            let checkpoint = run.appendingPathComponent("checkpoint.safetensors")
            let input = folder.appendingPathComponent("x.npy"), output = folder.appendingPathComponent("o.npy")
            try writeNpy(input, descr: "<f4", shape: [2, 64], bytes: floatBytes([Float](repeating: 0.5, count: 128)))
            for (name, change, words) in [
                ("width", { (m: inout [String: String]) in m["kiln.model"] = try editedJSON(m["kiln.model"]!, ["width": -28]) }, ["--width must be at least 1, got -28"]),
                ("depth", { (m: inout [String: String]) in m["kiln.training"] = try editedJSON(m["kiln.training"]!, ["depth": -1]) }, ["--depth"]),
                ("dropout", { (m: inout [String: String]) in m["kiln.training"] = try editedJSON(m["kiln.training"]!, ["dropout": 5]) }, ["--dropout"]),
                ("step", { (m: inout [String: String]) in m["kiln.step"] = "-3" }, ["kiln.step '-3'"]),
                ("json", { (m: inout [String: String]) in m["kiln.training"] = "{\"width\": 12," }, ["kiln.training metadata cannot be read"]),
                ("huge", { (m: inout [String: String]) in m["kiln.model"] = try editedJSON(m["kiln.model"]!, ["width": 1_000_000]) }, ["parameters but the file holds"]),
            ] as [(String, (inout [String: String]) throws -> Void, [String])] {
                let damaged = folder.appendingPathComponent("\(name).safetensors")
                try editCheckpointMetadata(checkpoint, to: damaged, change)
                expectUserError(try KilnProcess.run(["predict", "--checkpoint", damaged.path, "--input", input.path, "--output", output.path, "--device", "cpu"]),
                                ["checkpoint \(damaged.path)"] + words, "predict with \(name) metadata")
                let folderToResume = folder.appendingPathComponent("resume-\(name)")
                try FileManager.default.createDirectory(at: folderToResume, withIntermediateDirectories: true)
                try FileManager.default.copyItem(at: damaged, to: folderToResume.appendingPathComponent("checkpoint.safetensors"))
                expectUserError(try KilnProcess.run(["train", "--resume", folderToResume.path] + Self.cpu), ["checkpoint"] + words, "resume with \(name) metadata")
            }

            let missing = folder.appendingPathComponent("missing")
            expectUserError(try KilnProcess.run(["train", "--resume", missing.path] + Self.cpu), ["checkpoint", "no such file"], "resume a missing folder")
            #expect(!FileManager.default.fileExists(atPath: missing.path), "--resume created the missing folder")
            expectUserError(try KilnProcess.run(["train", "--resume", run.path, "--lr", "0.5"] + Self.cpu),
                            ["--lr 0.5 differs from the checkpoint's 0.001", checkpoint.path, "--steps"], "resume with another --lr")
            expectUserError(try KilnProcess.run(["train", "--resume", run.path, "--width", "64"] + Self.cpu), ["--width 64 differs from the checkpoint's 8"], "resume with another --width")
            expectUserError(try KilnProcess.run(["train", "--resume", run.path, "--stop-after", "2"] + Self.cpu), ["--stop-after 2 is not beyond the 3 steps"], "stop before the checkpoint")
            let same = try KilnProcess.run(["train", "--resume", run.path, "--width", "8", "--steps", "8"] + Self.cpu)
            #expect(same.status == 0 && same.output.contains("resuming at step 3"), "a flag equal to the checkpoint's is accepted: \(same.error)")
            expectUserError(try KilnProcess.run(["train", "--resume", run.path] + Self.cpu), ["nothing to train", "8 of 8 steps", "--steps"], "resume a finished run")

            // The output path: a folder that cannot be created, a file where a folder should be.
            expectUserError(try KilnProcess.run(["train", "--steps", "1", "--out", "/proc/kiln-cli-test/out"] + Self.cpu), ["/proc/kiln-cli-test/out", "--out"], "unwritable --out")
            expectUserError(try KilnProcess.run(["train", "--steps", "1", "--out", input.path] + Self.cpu), ["x.npy", "not a folder"], "a file as --out")
            expectUserError(try KilnProcess.run(["train", "--steps", "1", "--out", "/proc"] + Self.cpu), ["/proc", "not writable", "--out"], "--out /proc, which exists")
            expectUserError(try KilnProcess.run(["predict", "--checkpoint", checkpoint.path, "--input", input.path, "--output", missing.appendingPathComponent("o.npy").path, "--device", "cpu"]),
                            [missing.appendingPathComponent("o.npy").path, "does not exist"], "predict into a missing folder")
        }
    }

    @Test("coord-check, sweep, generate and plot check their flags; sweep takes --device")
    func otherCommands() throws {
        try withTemporaryFolder("commands") { folder in
            let plot = ["--plot", folder.appendingPathComponent("plot.svg").path]
            expectUserError(try KilnProcess.run(["coord-check", "--seeds", "0", "--widths", "8,16", "--steps", "2", "--device", "cpu"] + plot),
                            ["--seeds must be at least 1, got 0"], "coord-check --seeds 0")
            expectUserError(try KilnProcess.run(["coord-check", "--widths", "8,8", "--steps", "2", "--device", "cpu"] + plot), ["two different widths"], "coord-check one width twice")
            expectUserError(try KilnProcess.run(["coord-check", "--widths", "8,,16", "--steps", "2", "--device", "cpu"] + plot),
                            ["--widths must be comma-separated positive integers, got '8,,16'"], "coord-check an empty width")
            expectUserError(try KilnProcess.run(["coord-check", "--seeds", "99999999999", "--widths", "8,16", "--steps", "2", "--device", "cpu"] + plot, timeout: 120),
                            ["199999999998 runs", "more than 100000", "--seeds"], "coord-check a seed count that never ends")
            // /proc exists and root passes every permission check, but no file can be created there: refused before the first run.
            expectUserError(try KilnProcess.run(["coord-check", "--widths", "8,16", "--steps", "2", "--device", "cpu", "--json", "/proc/kiln-c.json"] + plot),
                            ["/proc/kiln-c.json", "not writable", "--json"], "coord-check --json in /proc")
            expectUserError(try KilnProcess.run(["coord-check", "--widths", "8,16", "--steps", "2", "--device", "cpu", "--plot", folder.appendingPathComponent("missing/c.svg").path]),
                            [folder.appendingPathComponent("missing/c.svg").path, "does not exist", "--plot"], "coord-check into a missing folder")
            let sweep = ["sweep", "--widths", "8", "--lrs", "2^-8:2^-7", "--steps", "2", "--seeds", "1"] + plot
            let swept = try KilnProcess.run(sweep + ["--device", "cpu"])
            #expect(swept.status == 0 && swept.output.contains("best lr"), "sweep --device cpu: \(swept.error)")
            expectUserError(try KilnProcess.run(sweep + ["--device", "cpu", "--devices", "cpu"]), ["--device", "--devices", "not both"], "sweep --device and --devices")
            expectUserError(try KilnProcess.run(sweep + ["--device", "tpu"]), ["unknown device 'tpu'"], "sweep --device tpu")
            expectUserError(try KilnProcess.run(sweep + ["--jobs", "0"]), ["--jobs must be at least 1, got 0"], "sweep --jobs 0")
            expectUserError(try KilnProcess.run(["sweep", "--widths", "8", "--lrs", "2^-1000:2^10", "--steps", "2"] + plot), ["-126 to 127"], "sweep --lrs beyond float32")
            expectUserError(try KilnProcess.run(sweep + ["--runs", "/dev/zero"], timeout: 120), ["--runs", "/dev/zero", "not a regular file"], "sweep --runs /dev/zero")

            let lm = folder.appendingPathComponent("lm")
            let text = folder.appendingPathComponent("text.txt")
            try String(repeating: "abcabd abcabe. ", count: 120).write(to: text, atomically: true, encoding: .utf8)
            let trained = try KilnProcess.run(["train", "--task", "text:\(text.path)", "--model", "lm", "--width", "8", "--heads", "2", "--layers", "1", "--seq-len", "16",
                                               "--steps", "2", "--out", lm.path] + Self.cpu)
            try #require(trained.status == 0, "\(trained.error)")
            let checkpoint = lm.appendingPathComponent("checkpoint.safetensors").path
            expectUserError(try KilnProcess.run(["generate", "--checkpoint", checkpoint, "--prompt", "abc", "--temperature", "inf"]), ["--temperature"], "temperature inf")
            expectUserError(try KilnProcess.run(["generate", "--checkpoint", checkpoint, "--prompt", "abc", "--tokens", "-1"]), ["--tokens must be 0 or more, got -1"], "tokens -1")
            expectUserError(try KilnProcess.run(["predict", "--checkpoint", checkpoint, "--input", text.path, "--output", folder.appendingPathComponent("o.npy").path]),
                            ["holds an lm", "generate"], "predict with an lm")
            expectUserError(try KilnProcess.run(["plot", "--checkpoint", checkpoint, "--points", "1"]), ["not a KAN"], "plot of an lm")
        }
    }

    @Test("environment variables are checked before a command runs")
    func environment() throws {
        try withTemporaryFolder("environment") { folder in
            // A folder that no test creates: every run below must stop before it would be.
            let never = folder.appendingPathComponent("never").path
            for (variable, value, words) in [
                ("KILN_CPU_THREADS", "abc", ["KILN_CPU_THREADS", "1 to 1024", "'abc'"]), ("KILN_CPU_THREADS", "0", ["KILN_CPU_THREADS"]),
                ("KILN_CPU_THREADS", "100000", ["KILN_CPU_THREADS"]), ("KILN_CPU_VECTORS", "avx9", ["KILN_CPU_VECTORS", "portable"]),
                ("KILN_CACHE_DIR", "/etc/passwd", ["KILN_CACHE_DIR", "is a file"]), ("KILN_DEVICE", "gpu9", ["KILN_DEVICE", "unknown device 'gpu9'"]),
            ] {
                expectUserError(try KilnProcess.run(["train", "--steps", "1", "--plain", "--out", never], environment: [variable: value]), words, "\(variable)=\(value)")
            }
            #expect(!FileManager.default.fileExists(atPath: never), "a refused run created its output folder")
            let listed = try KilnProcess.run(["devices"], environment: ["KILN_DEVICE": "gpu9"])
            expectUserError(listed, ["KILN_DEVICE='gpu9' names no device"], "kiln devices with KILN_DEVICE=gpu9")
            #expect(listed.output.contains("cpu"), "the devices are still listed: \(listed.output)")
            for value in ["portable", "avx2"] {
                let accepted = try KilnProcess.run(["devices"], environment: ["KILN_CPU_VECTORS": value])
                #expect(accepted.status == 0, "KILN_CPU_VECTORS=\(value) is a setting the CPU loops take: \(accepted.error)")
            }
        }
    }
}

import Foundation
import Kiln
import Testing

/// Everything a user gives is checked before use: each case here trapped, overflowed the stack, ran out of
/// memory, hung or trained on garbage before it was checked (issue 11, item 2).
@Suite("user input is validated before use")
struct InputValidationTests {
    /// The message of the `TaskError` (or any error) `body` throws, or nil when it throws none.
    func message(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return String(describing: error)
        }
    }

    /// Expects `body` to throw an error whose description contains every word.
    func expectFailure(_ words: [String], _ comment: String, _ body: () throws -> Void) {
        guard let text = message(body) else {
            Issue.record("\(comment): no error")
            return
        }
        for word in words { #expect(text.contains(word), "\(comment): '\(word)' missing from: \(text)") }
        #expect(!text.contains("\n"), "\(comment): not one line: \(text)")
    }

    // MARK: Formulas

    @Test("formulas nested deeper than Expression.maximumDepth are an error, not a stack overflow")
    func formulaDepth() throws {
        let deep = String(repeating: "(", count: 20_000) + "x1" + String(repeating: ")", count: 20_000)
        expectFailure(["500 levels deep"], "20,000 parentheses") { _ = try Expression.parse(deep) }
        expectFailure(["levels deep"], "30,000 signs") { _ = try Expression.parse(String(repeating: "-", count: 30_000) + "x1") }
        expectFailure(["levels deep"], "a chain of 50,000 sums") { _ = try Expression.parse(Array(repeating: "x1", count: 50_000).joined(separator: "+")) }
        expectFailure(["levels deep"], "a tower of powers") { _ = try Expression.parse(Array(repeating: "x1", count: 2_000).joined(separator: "^")) }
        expectFailure(["levels deep"], "nested functions") { _ = try Expression.parse(String(repeating: "sin(", count: 2_000) + "x1" + String(repeating: ")", count: 2_000)) }
        // Just inside the limit, the formula parses and evaluates.
        let nested = String(repeating: "(", count: 450) + "x1+1" + String(repeating: ")", count: 450)
        #expect(try Expression.parse(nested).evaluate([2]) == 3)
        #expect(try Expression.parse(Array(repeating: "x1", count: 400).joined(separator: "+")).evaluate([1]) == 400)
    }

    @Test("formulas: at most x1000, finite numbers, and float32-finite targets")
    func formulaValues() throws {
        #expect(try Expression.parse("x1000").variableCount == 1000)
        expectFailure(["x1001", "x1000"], "x1001") { _ = try Expression.parse("x1001") }
        expectFailure(["x99999999999999999999"], "an index beyond Int") { _ = try Expression.parse("x99999999999999999999") }
        expectFailure(["not a finite number"], "1e400") { _ = try Expression.parse("1e400*x1") }
        expectFailure(["not finite", "--range"], "exp(x1) beyond float32") {
            _ = try FunctionFittingTask.make(formula: "exp(x1)", range: 0...100, seed: 0)
        }
        var configuration = TrainingConfiguration()
        configuration.task = "fit:x1"
        configuration.model = .kan
        configuration.range = "1e39,1e40"
        expectFailure(["--range", "float32"], "a range beyond float32") { try configuration.validate() }
        configuration.range = "-1,1"
        try configuration.validate()
    }

    // MARK: Configurations

    @Test("every flag's range is checked, including the limits that keep sizes and stacks safe")
    func configurationRanges() {
        let cases: [(String, (inout TrainingConfiguration) -> Void, [String])] = [
            ("depth 100000", { $0.depth = 100_000 }, ["--depth must be 0 to 1000"]),
            ("depth -1", { $0.depth = -1 }, ["--depth"]),
            ("lm layers 1000", { $0.model = .lm; $0.task = "mqar"; $0.layers = 1000 }, ["--layers must be 1 to 100"]),
            ("grid 10^8", { $0.model = .kan; $0.gridSchedule = [100_000_000] }, ["--grid", "1000"]),
            ("batch 10^11", { $0.batchSize = 100_000_000_000 }, ["--batch-size must be 1 to 16777216"]),
            ("steps 0", { $0.steps = 0 }, ["--steps"]),
            ("steps 10^18", { $0.steps = 1_000_000_000_000_000_000 }, ["--steps must be 1 to 1000000000"]),
            ("weight decay inf", { $0.weightDecay = .infinity }, ["--weight-decay"]),
            ("clip inf", { $0.gradientClip = .infinity }, ["--clip"]),
            ("lr nan", { $0.learningRate = .nan }, ["--lr"]),
            ("grid updates 0", { $0.gridUpdates = 0 }, ["--grid-updates"]),
            ("grid update until -1", { $0.gridUpdateUntil = -1 }, ["--grid-update-until"]),
            ("vocab 0", { $0.vocabulary = 0 }, ["--vocab"]),
            ("seq-len 10^9", { $0.sequenceLength = 1_000_000_000 }, ["--seq-len must be 2 to 1048576"]),
            ("pairs 10^18", { $0.pairs = 1_000_000_000_000_000_000 }, ["--pairs"]),
            ("arch with a zero", { $0.model = .kan; $0.architecture = [64, 0, 10] }, ["--arch"]),
            ("lm on digits", { $0.model = .lm; $0.task = "digits" }, ["model lm reads token sequences", "digits"]),
            ("mlp on mqar", { $0.task = "mqar" }, ["task mqar gives token sequences", "mlp", "--model lm"]),
            ("kan on text", { $0.model = .kan; $0.task = "text:book.txt" }, ["gives token sequences", "kan"]),
        ]
        for (name, change, words) in cases {
            var configuration = TrainingConfiguration()
            change(&configuration)
            expectFailure(words, name) { try configuration.validate() }
        }
        #expect(message { try TrainingConfiguration().validate() } == nil)
    }

    @Test("a task whose data has no feature or no target columns is refused before a model is built")
    func emptyColumns() throws {
        try withTemporaryFolder("columns") { folder in
            let x = folder.appendingPathComponent("x.npy"), x0 = folder.appendingPathComponent("x0.npy")
            let y = folder.appendingPathComponent("y.npy"), y0 = folder.appendingPathComponent("y0.npy")
            try NpyArray(shape: [20, 3], floats: (0..<60).map(Float.init)).write(to: x)
            try NpyArray(shape: [20, 0], floats: []).write(to: x0)
            try NpyArray(shape: [20], values: (0..<20).map { Double($0 % 2) }, dtype: .int64).write(to: y)
            try NpyArray(shape: [20, 0], floats: []).write(to: y0)
            var configuration = TrainingConfiguration()
            configuration.task = "files"
            (configuration.trainX, configuration.trainY) = (x0.path, y.path)
            expectFailure(["x0.npy", "0 feature columns"], "no features") { _ = try Trainer(configuration: configuration, backend: CPUBackend()) }
            (configuration.trainX, configuration.trainY) = (x.path, y0.path)
            expectFailure(["y0.npy", "0 target columns"], "no targets") { _ = try Trainer(configuration: configuration, backend: CPUBackend()) }
        }
    }

    @Test("non-finite data is refused naming the file, row and column")
    func nonFiniteData() throws {
        try withTemporaryFolder("finite") { folder in
            let y = folder.appendingPathComponent("y.npy")
            try NpyArray(shape: [10], values: (0..<10).map { Double($0 % 2) }, dtype: .int64).write(to: y)
            for (name, bad, problem) in [("nan", Double.nan, "is nan"), ("inf", -Double.infinity, "is -inf"), ("big", 1e39, "beyond float32")] {
                var values = (0..<30).map(Double.init)
                values[3 * 4 + 2] = bad
                let x = folder.appendingPathComponent("\(name).npy")
                try NpyArray(shape: [10, 3], values: values, dtype: .float64).write(to: x)
                var configuration = TrainingConfiguration()
                configuration.task = "files"
                (configuration.trainX, configuration.trainY) = (x.path, y.path)
                expectFailure(["\(name).npy", "row 5, column 3", problem], name) { _ = try FileTask.make(configuration) }
            }
            let csv = folder.appendingPathComponent("x.csv")
            try "a,b\n1,2\n3,nan\n5,6\n7,8\n9,10\n11,12\n13,14\n15,16\n17,18\n19,20\n".write(to: csv, atomically: true, encoding: .utf8)
            var configuration = TrainingConfiguration()
            configuration.task = "files"
            (configuration.trainX, configuration.trainY) = (csv.path, y.path)
            expectFailure(["x.csv", "row 2, column 2", "nan"], "CSV") { _ = try FileTask.make(configuration) }
        }
    }

    // MARK: Files

    @Test("a device, FIFO or folder as a data file or checkpoint is refused before it is read")
    func nonRegularFiles() throws {
        try withTemporaryFolder("special") { folder in
            let fifo = folder.appendingPathComponent("fifo")
            try #require(mkfifo(fifo.path, 0o600) == 0)
            for path in ["/dev/zero", fifo.path] {
                expectFailure([path, "not a regular file"], "npy \(path)") { _ = try NpyArray.read(from: URL(fileURLWithPath: path)) }
                expectFailure([path, "not a regular file"], "csv \(path)") { _ = try CSVTable.read(from: URL(fileURLWithPath: path)) }
                expectFailure([path, "not a regular file"], "checkpoint \(path)") { _ = try Checkpoint.read(URL(fileURLWithPath: path)) }
                expectFailure([path, "not a regular file"], "text \(path)") { _ = try TextTask(path: path, length: 16, seed: 0) }
            }
            expectFailure([folder.path, "folder"], "a folder as data") { _ = try NpyArray.read(from: folder) }
            expectFailure([folder.path, "folder"], "a folder as checkpoint") { _ = try Checkpoint.read(folder) }
        }
    }

    @Test("gzip data inflating beyond the limit is refused as soon as it passes it")
    func gzipBomb() throws {
        try withTemporaryFolder("bomb") { folder in
            let plain = folder.appendingPathComponent("zeros.csv")
            // 8 MiB of "0,0,…": DEFLATE makes it 8 KB.
            try Data(repeating: UInt8(ascii: "0"), count: 8 << 20).write(to: plain)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/gzip")
            process.arguments = ["-k", plain.path]
            try process.run()
            process.waitUntilExit()
            let compressed = [UInt8](try Data(contentsOf: folder.appendingPathComponent("zeros.csv.gz")))
            #expect(compressed.count < 100_000)
            expectFailure(["zeros.csv.gz", "inflates to more than 1.0 MiB"], "1 MiB limit") {
                _ = try Gzip.decompress(compressed, file: "zeros.csv.gz", maximumBytes: 1 << 20)
            }
            #expect(try Gzip.decompress(compressed, file: "zeros.csv.gz").count == 8 << 20)
            #expect(Gzip.maximumInflatedBytes == CSVTable.maximumTextBytes && CSVTable.maximumTextBytes == 256 << 20)
        }
    }

    @Test("a CSV row of more than CSVTable.maximumColumns values is refused")
    func csvColumns() {
        let line = String(repeating: "0,", count: CSVTable.maximumColumns) + "0\n"
        expectFailure(["row 1", "more than 1000000 values"], "a row of 1,000,001 values") { _ = try CSVTable.parse(line, file: "wide.csv") }
    }

    // MARK: Memory

    @Test("a model's parameter count is computed exactly from its sizes, without building it")
    func parameterCounts() throws {
        var configurations: [TrainingConfiguration] = []
        for (depth, dropout) in [(0, Float(0)), (2, 0), (3, 0.1)] {
            var mlp = TrainingConfiguration()
            (mlp.depth, mlp.dropout, mlp.width) = (depth, dropout, 24)
            configurations.append(mlp)
        }
        var kan = TrainingConfiguration()
        (kan.model, kan.task, kan.architecture, kan.gridSchedule, kan.splineOrder) = (.kan, "fit:x1*x2", [2, 3, 1], [7], 2)
        configurations.append(kan)
        for mixer in MixerKind.allCases {
            var lm = TrainingConfiguration()
            (lm.model, lm.task, lm.mixer, lm.width, lm.heads, lm.layers, lm.sequenceLength, lm.pairs, lm.vocabulary) = (.lm, "mqar", mixer, 40, 4, 2, 16, 2, 24)
            configurations.append(lm)
        }
        for configuration in configurations {
            let trainer = try Trainer(configuration: configuration, backend: CPUBackend())
            #expect(trainer.modelConfiguration.parameterCount == trainer.model.parameterCount, "\(trainer.modelConfiguration)")
        }
    }

    @Test("a run too large for its device is refused before anything is allocated, naming the size and the memory")
    func memoryEstimate() throws {
        var configuration = TrainingConfiguration()
        configuration.width = 1_000_000
        let cpu = Devices.cpuDescription
        // Without the check, MLP.init would ask for 4 TB of weights on the host and die.
        expectFailure(["out of memory on \(cpu.name) allocating about", "TiB", "--width"], "width 10^6") {
            _ = try Trainer(configuration: configuration, backend: CPUBackend())
        }
        configuration.width = 128
        let trainer = try Trainer(configuration: configuration, backend: CPUBackend())
        let estimate = MemoryEstimate.training(configuration, model: trainer.modelConfiguration, task: trainer.task, batchSize: 64)
        #expect(estimate.deviceBytes > trainer.model.parameterCount * 4 * 4, "parameters, gradients and Adam's two moments at least")
        #expect(estimate.deviceBytes < 64 << 20, "the digits MLP needs far less than 64 MiB: \(estimate.deviceBytes)")
        try estimate.check(on: cpu)
        expectFailure(["out of memory on", "the host may use 1.0 MiB (ulimit -v)"], "a 1 MiB limit") {
            try estimate.check(on: cpu, host: HostMemory.Budget(bytes: 1 << 20, reason: "ulimit -v"))
        }
        expectFailure(["for 100000 runs at once"], "parallel runs") { try estimate.check(on: cpu, copies: 100_000) }
        var gpu = cpu
        (gpu.id, gpu.backend, gpu.type, gpu.name, gpu.memoryBytes) = ("opencl:9", .opencl, .gpu, "Tiny GPU", 1 << 20)
        expectFailure(["out of memory on Tiny GPU", "the device has 1.0 MiB"], "a 1 MiB device") { try estimate.check(on: gpu) }
        var huge = MemoryEstimate()
        huge.largestTensorElements = 1 << 31
        gpu.memoryBytes = Int.max
        expectFailure(["2147483648 elements", "2147483647"], "a tensor beyond the kernels' int indices") { try huge.check(on: gpu) }
        // Generated data is estimated before it exists: modadd:1000 holds 1000² rows of 2000 floats.
        var modadd = TrainingConfiguration()
        modadd.task = "modadd:1000"
        let data = try #require(MemoryEstimate.taskData(modadd))
        #expect(data.hostBytes > 8_000_000_000)
        expectFailure(["data of task modadd:1000"], "modadd:1000 under 4 GiB") { try data.check(on: cpu, host: HostMemory.Budget(bytes: 4 << 30, reason: "a test's limit")) }
    }

    // MARK: Checkpoints

    /// A trained checkpoint's file, with `change` applied to its metadata.
    func checkpoint(_ change: (inout [String: String]) -> Void) throws -> SafeTensorsFile {
        var configuration = TrainingConfiguration()
        configuration.width = 8
        let trainer = try Trainer(configuration: configuration, backend: CPUBackend())
        try trainer.step()
        var file = try trainer.checkpoint(elapsedSeconds: 1)
        change(&file.metadata)
        return file
    }

    /// `json` with the top-level keys of `changes` replaced.
    func edited(_ json: String?, _ changes: [String: Any]) throws -> String {
        var object = try JSONSerialization.jsonObject(with: Data((json ?? "{}").utf8)) as! [String: Any]
        object.merge(changes) { $1 }
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    @Test("checkpoint metadata that parses but is out of range is refused, naming the file")
    func invalidCheckpointMetadata() throws {
        let cases: [(String, (inout [String: String]) throws -> Void, [String])] = [
            ("width -28", { $0[Checkpoint.trainingKey] = try self.edited($0[Checkpoint.trainingKey], ["width": -28]) }, ["training configuration is invalid", "--width must be at least 1, got -28"]),
            ("depth -1", { $0[Checkpoint.modelKey] = try self.edited($0[Checkpoint.modelKey], ["depth": -1]) }, ["model configuration is invalid", "--depth"]),
            ("dropout 5", { $0[Checkpoint.trainingKey] = try self.edited($0[Checkpoint.trainingKey], ["dropout": 5]) }, ["--dropout must be in [0, 1), got 5"]),
            ("step -3", { $0[Checkpoint.stepKey] = "-3" }, ["kiln.step '-3'"]),
            ("optimizer step -1", { $0[Checkpoint.optimizerStepKey] = "-1" }, ["kiln.optimizer_step '-1'"]),
            ("elapsed nan", { $0[Checkpoint.elapsedKey] = "nan" }, ["kiln.elapsed_seconds"]),
            ("broken JSON", { $0[Checkpoint.trainingKey] = "{\"width\": 12," }, ["kiln.training metadata cannot be read"]),
            ("not an object", { $0[Checkpoint.modelKey] = "[1, 2]" }, ["kiln.model metadata cannot be read"]),
            ("a far larger model", { $0[Checkpoint.modelKey] = try self.edited($0[Checkpoint.modelKey], ["width": 1_000_000]) }, ["describes a model of", "parameters but the file holds"]),
            ("kinds disagree", { $0[Checkpoint.trainingKey] = try self.edited($0[Checkpoint.trainingKey], ["model": "kan"]) }, ["trained as kan"]),
        ]
        try withTemporaryFolder("metadata") { folder in
            for (name, change, words) in cases {
                var file = try checkpoint { _ in }
                try change(&file.metadata)
                let url = folder.appendingPathComponent("\(name).safetensors")
                try file.write(to: url)
                expectFailure(["checkpoint \(url.path)"] + words, name) { _ = try Checkpoint.read(url) }
            }
            var poisoned = try checkpoint { _ in }
            poisoned.tensors[0].values[3] = .nan
            let url = folder.appendingPathComponent("nan.safetensors")
            try poisoned.write(to: url)
            expectFailure(["nan.safetensors", "holds nan at index 3"], "a NaN weight") { _ = try Checkpoint.read(url) }
        }
    }

    /// Found by the checkpoint fuzz target: with a key written twice, the reader took the last value while
    /// `JSONDecoder` takes the first. Keys missing from the metadata take their defaults.
    @Test("checkpoint metadata is read as JSONDecoder reads it, with defaults for missing keys")
    func metadataReadAsJSONDecoder() throws {
        let model = try #require(try checkpoint { _ in }.metadata[Checkpoint.modelKey])
        let repeated = #"{"model": "mlp", "pairs": 10, "width": 16, "pairs": 16}"#
        let (training, _) = try Checkpoint.configurations(from: [Checkpoint.formatKey: Checkpoint.formatVersion, Checkpoint.trainingKey: repeated, Checkpoint.modelKey: model], path: "m")
        let direct = try JSONDecoder().decode([String: Int].self, from: Data(#"{"pairs": 10, "pairs": 16}"#.utf8))
        #expect(training.pairs == direct["pairs"])
        #expect(training.width == 16 && training.steps == TrainingConfiguration().steps)
    }

    @Test("a ModelConfiguration out of range is refused by ModelFactory instead of trapping in a layer")
    func modelFactoryValidates() throws {
        /// The model configuration of a small run, with top-level keys of its stored JSON replaced.
        func model(_ configuration: TrainingConfiguration, _ changes: [String: Any]) throws -> ModelConfiguration {
            let trainer = try Trainer(configuration: configuration, backend: CPUBackend())
            let json = String(decoding: try JSONEncoder().encode(trainer.modelConfiguration), as: UTF8.self)
            return try JSONDecoder().decode(ModelConfiguration.self, from: Data(try edited(json, changes).utf8))
        }
        var mlp = TrainingConfiguration()
        mlp.width = 8
        let negative = try model(mlp, ["width": -28])
        expectFailure(["--width must be at least 1, got -28"], "negative width") { _ = try ModelFactory.make(negative, on: CPUBackend()) }
        var lm = TrainingConfiguration()
        (lm.model, lm.task, lm.width, lm.heads, lm.layers, lm.sequenceLength, lm.pairs, lm.vocabulary) = (.lm, "mqar", 8, 2, 1, 16, 2, 24)
        let characters = try model(lm, ["characters": ["a", "b"]])
        expectFailure(["24 tokens but 2 characters"], "characters that do not match the vocabulary") { _ = try ModelFactory.make(characters, on: CPUBackend()) }
        let repeated = try model(lm, ["characters": Array(repeating: "a", count: 24)])
        expectFailure(["characters repeat"], "a character twice") { _ = try ModelFactory.make(repeated, on: CPUBackend()) }
    }

    // MARK: Runs

    @Test("a run refused before training leaves no folder; resuming a missing folder creates none")
    func runFolders() throws {
        try withTemporaryFolder("folders") { folder in
            var configuration = TrainingConfiguration()
            configuration.width = 8
            configuration.steps = 4
            configuration.evalEvery = 2
            let missing = folder.appendingPathComponent("missing")
            expectFailure(["checkpoint", "no such file"], "resume from a missing folder") {
                _ = try TrainingRun.run(configuration: configuration, backend: CPUBackend(), directory: missing, resume: true)
            }
            #expect(!FileManager.default.fileExists(atPath: missing.path), "resume created \(missing.path)")
            var bad = configuration
            bad.task = "modadd:1"
            let refused = folder.appendingPathComponent("refused/inner")
            expectFailure(["modulus"], "a bad task") { _ = try TrainingRun.run(configuration: bad, backend: CPUBackend(), directory: refused) }
            #expect(!FileManager.default.fileExists(atPath: refused.path))
            expectFailure(["--stop-after must be at least 1, got 0"], "stop after 0") {
                _ = try TrainingRun.run(configuration: configuration, backend: CPUBackend(), directory: refused, stopAfter: 0)
            }
            #expect(!FileManager.default.fileExists(atPath: refused.path))

            let run = folder.appendingPathComponent("run")
            _ = try TrainingRun.run(configuration: configuration, backend: CPUBackend(), directory: run, stopAfter: 2)
            expectFailure(["--stop-after 2 is not beyond the 2 steps"], "stop after steps already done") {
                _ = try TrainingRun.run(configuration: configuration, backend: CPUBackend(), directory: run, resume: true, stopAfter: 2)
            }
            let finished = try TrainingRun.run(configuration: configuration, backend: CPUBackend(), directory: run, resume: true)
            #expect(finished.steps == 4)
            expectFailure(["nothing to train", "4 of 4 steps", "--steps"], "resume a finished run") {
                _ = try TrainingRun.run(configuration: configuration, backend: CPUBackend(), directory: run, resume: true)
            }
            let extended = try TrainingRun.run(configuration: configuration, backend: CPUBackend(), directory: run, resume: true, overrideSteps: 6)
            #expect(extended.steps == 6)
            let unwritable = URL(fileURLWithPath: "/proc/kiln-test/run")
            expectFailure(["/proc/kiln-test/run", "--out"], "an output folder that cannot be created") {
                _ = try TrainingRun.run(configuration: configuration, backend: CPUBackend(), directory: unwritable)
            }
        }
    }

    @Test("coordinate checks need seeds and distinct widths; sweeps need seeds, jobs and float32 learning rates")
    func checksAndSweeps() throws {
        var check = CoordinateCheck.Configuration()
        (check.widths, check.steps, check.seeds) = ([8, 16], 2, 0)
        expectFailure(["--seeds must be at least 1, got 0"], "no seeds") { _ = try CoordinateCheck.run(check, makeBackend: { CPUBackend() }) }
        (check.widths, check.seeds) = ([8, 8], 1)
        expectFailure(["two different widths"], "one width twice") { _ = try CoordinateCheck.run(check, makeBackend: { CPUBackend() }) }
        (check.widths, check.steps) = ([8, 16], 1000)
        expectFailure(["--steps must be 2 to 100"], "a thousand steps") { _ = try CoordinateCheck.run(check, makeBackend: { CPUBackend() }) }
        (check.steps, check.batchSize) = (2, 0)
        expectFailure(["--batch-size"], "an empty batch") { _ = try CoordinateCheck.run(check, makeBackend: { CPUBackend() }) }
        (check.batchSize, check.widths) = (8, [8, 10_000_000])
        var ran = 0
        expectFailure(["out of memory on"], "a width beyond memory") { _ = try CoordinateCheck.run(check, makeBackend: { CPUBackend() }, progress: { _ in ran += 1 }) }
        #expect(ran == 0, "the widest width is checked before the first run")

        expectFailure(["--lrs exponents must be -126 to 127"], "2^-1000") { _ = try LearningRateSweep.parseRange("2^-1000:2^10") }
        #expect(try LearningRateSweep.parseRange("2^-3:2^-1") == [-3, -2, -1])
        var sweep = LearningRateSweep.Configuration()
        (sweep.widths, sweep.log2LearningRates, sweep.training.steps) = ([8], [-8], 2)
        for (change, words) in [
            ({ (s: inout LearningRateSweep.Configuration) in s.seeds = 0 }, ["at least one seed"]),
            ({ (s: inout LearningRateSweep.Configuration) in s.jobs = 0 }, ["--jobs must be at least 1"]),
            ({ (s: inout LearningRateSweep.Configuration) in s.widths = [8, 8] }, ["lists a width twice"]),
            ({ (s: inout LearningRateSweep.Configuration) in s.seeds = 1_000_000_000 }, ["more than 100000"]),
            ({ (s: inout LearningRateSweep.Configuration) in s.log2LearningRates = [200] }, ["-126 to 127"]),
            ({ (s: inout LearningRateSweep.Configuration) in s.training.model = .lm }, ["model lm reads token sequences"]),
            ({ (s: inout LearningRateSweep.Configuration) in s.widths = [8, 10_000_000]; s.jobs = 2 }, ["out of memory on", "for 2 runs at once"]),
        ] as [((inout LearningRateSweep.Configuration) -> Void, [String])] {
            var changed = sweep
            change(&changed)
            expectFailure(words, "\(words)") { _ = try LearningRateSweep.run(changed) }
        }
    }
}

import Foundation
import Kiln
import KilnTestSupport
import Testing

/// A fresh folder under the temporary directory.
func temporaryFolder(_ name: String) -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(name)-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Training losses by step from a metrics file.
func trainLosses(_ directory: URL) throws -> [Int: Double] {
    let text = try String(contentsOf: directory.appendingPathComponent(TrainingRun.metricsFile), encoding: .utf8)
    var losses: [Int: Double] = [:]
    for line in text.split(separator: "\n") {
        guard case let .object(object) = try JSONValue.parse(String(line), file: "metrics"),
            case let .integer(step)? = object["step"], case let .number(loss)? = object["train_loss"]
        else { continue }
        losses[step] = loss
    }
    return losses
}

@Suite("training runs")
struct TrainingTests {
    static func smallConfiguration(steps: Int = 30) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.task = "digits"
        configuration.width = 32
        configuration.depth = 2
        configuration.steps = steps
        configuration.evalEvery = 10
        configuration.logEvery = 1
        configuration.batchSize = 32
        configuration.learningRate = 3e-3
        configuration.seed = 7
        return configuration
    }

    @Test("30 steps with the same seed give the same loss curve on every device (1e-4 relative)")
    func sameCurveOnEveryDevice() throws {
        var curves: [(String, [Int: Double])] = []
        for backendCase in BackendCase.all {
            let directory = temporaryFolder("curve")
            _ = try TrainingRun.run(configuration: Self.smallConfiguration(), backend: try backendCase.makeBackend(), directory: directory)
            curves.append((backendCase.deviceID, try trainLosses(directory)))
        }
        let (referenceDevice, reference) = curves[0]
        #expect(reference.count == 30)
        #expect(reference[30]! < reference[1]!, "the loss should fall")
        for (device, curve) in curves.dropFirst() {
            for step in 1...30 {
                let difference = abs(curve[step]! - reference[step]!) / abs(reference[step]!)
                #expect(difference < 1e-4, "step \(step): \(device) \(curve[step]!) vs \(referenceDevice) \(reference[step]!)")
            }
        }
    }

    @Test("resuming after step N gives the same losses as an uninterrupted run", arguments: BackendCase.all)
    func exactResume(_ backendCase: BackendCase) throws {
        var configuration = Self.smallConfiguration(steps: 40)
        configuration.dropout = 0.1
        configuration.schedule = .cosine
        configuration.warmupSteps = 5
        let whole = temporaryFolder("whole"), pieces = temporaryFolder("pieces")
        _ = try TrainingRun.run(configuration: configuration, backend: try backendCase.makeBackend(), directory: whole)
        let stopped = try TrainingRun.run(configuration: configuration, backend: try backendCase.makeBackend(), directory: pieces, stopAfter: 20)
        #expect(stopped.stoppedEarly && stopped.steps == 20)
        let resumed = try TrainingRun.run(configuration: TrainingConfiguration(), backend: try backendCase.makeBackend(), directory: pieces, resume: true)
        #expect(resumed.steps == 40 && !resumed.stoppedEarly)
        let expected = try trainLosses(whole), actual = try trainLosses(pieces)
        #expect(expected.count == 40 && actual.count == 40)
        for step in 1...40 { #expect(actual[step] == expected[step], "step \(step): resumed \(actual[step] ?? .nan) vs \(expected[step]!)") }
    }

    @Test("checkpoint round trip: a reloaded model gives identical outputs; the file is valid safetensors", arguments: BackendCase.all)
    func checkpointRoundTrip(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        let trainer = try Trainer(configuration: Self.smallConfiguration(), backend: backend)
        for _ in 0..<5 { try trainer.step() }
        let url = temporaryFolder("checkpoint").appendingPathComponent("model.safetensors")
        try trainer.checkpoint(elapsedSeconds: 1.5).write(to: url)

        let (file, training, model) = try Checkpoint.read(url)
        #expect(training == Self.smallConfiguration())
        #expect(model.kind == "mlp" && model.inputCount == 64 && model.outputCount == 10)
        let rebuilt = try ModelFactory.make(model, on: backend)
        try rebuilt.load(Dictionary(file.tensors.map { ($0.name, (shape: $0.shape, values: $0.values)) }, uniquingKeysWith: { a, _ in a }))
        let examples = trainer.task.testSet.rows(0..<50)
        #expect(try Trainer.predict(model: rebuilt, examples, on: backend) == trainer.predict(examples))

        // The header as the safetensors format defines it: u64 little-endian length, JSON, then data.
        let bytes = [UInt8](try Data(contentsOf: url))
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0 && 8 + headerLength <= bytes.count)
        guard case let .object(header) = try JSONValue.parse(String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self), file: url.path),
            case let .object(weight)? = header["layers.0.weight"], case let .array(offsets)? = weight["data_offsets"]
        else {
            Issue.record("header lacks layers.0.weight")
            return
        }
        #expect(weight["dtype"] == .string("F32"))
        #expect(weight["shape"] == .array([.integer(32), .integer(64)]))
        guard case let .integer(begin) = offsets[0], case let .integer(end) = offsets[1] else { return }
        #expect(end - begin == 32 * 64 * 4)
        let first = try trainer.model.parameters[0].tensor.toArray()[0]
        let stored = bytes[(8 + headerLength + begin)..<(8 + headerLength + begin + 4)].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        #expect(Float(bitPattern: stored) == first, "little-endian float32 data")
        #expect(header["__metadata__"] != nil)
        #expect(file.tensors.contains { $0.name == "optimizer.layers.0.weight.exp_avg" })
    }

    @Test("tasks: digits split 80/20, batches depend only on step and seed, modadd and teacher shapes")
    func tasks() throws {
        let digits = try DigitsTask.make(seed: 1)
        #expect(digits.trainCount == 1438 && digits.testSet.rows == 359)
        #expect(digits.inputCount == 64 && digits.targetKind == .classes(10))
        let again = try DigitsTask.make(seed: 1)
        #expect(digits.trainBatch(step: 17, batchSize: 50).inputs == again.trainBatch(step: 17, batchSize: 50).inputs)
        #expect(digits.trainBatch(step: 17, batchSize: 50).labels != digits.trainBatch(step: 18, batchSize: 50).labels)
        // One epoch visits every training example once.
        let epochRows: [[Float]] = (0..<1438).map { digits.trainBatch(step: $0, batchSize: 1).inputs }
        let trainRows: [[Float]] = (0..<1438).map { Array(digits.train.inputs[($0 * 64)..<($0 * 64 + 64)]) }
        let sortedEpoch = epochRows.sorted { $0.lexicographicallyPrecedes($1) }
        let sortedTrain = trainRows.sorted { $0.lexicographicallyPrecedes($1) }
        #expect(sortedEpoch == sortedTrain)

        let modadd = ModularAdditionTask.make(modulus: 7, seed: 0)
        #expect(modadd.inputCount == 14 && modadd.targetKind == .classes(7))
        #expect(modadd.trainCount! + modadd.testSet.rows == 49)
        let teacher = TeacherTask(seed: 2)
        let batch = teacher.trainBatch(step: 3, batchSize: 16)
        #expect(batch.rows == 16 && batch.features == 32 && batch.labels!.allSatisfy { (0..<10).contains($0) })
        #expect(Set(teacher.testSet.labels!).count > 3, "the teacher should use several classes")
    }

    @Test("the default digits MLP learns: above 90% test accuracy in 300 steps")
    func learns() throws {
        var configuration = TrainingConfiguration()
        configuration.steps = 300
        let summary = try TrainingRun.run(configuration: configuration, backend: CPUBackend(), directory: temporaryFolder("learn"))
        #expect(summary.testAccuracy! > 0.9)
        #expect(summary.parameters == 64 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10)
    }
}

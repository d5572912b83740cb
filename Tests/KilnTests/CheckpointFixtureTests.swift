import Foundation
import Kiln
import KilnTestSupport
import Testing

/// Checkpoints written by an earlier Kiln (commit 811c844, before the op-family redesign) still load,
/// and give the outputs that Kiln gave then. `Tests/Fixtures/checkpoints/NAME.safetensors` holds each
/// model and `NAME.expected.npy` its outputs for the inputs below, computed by that commit on the CPU.
@Suite("checkpoints from earlier versions")
struct CheckpointFixtureTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/checkpoints")

    /// Fixed inputs for a model: pixel-like values for the MLP, points in [-1, 1] for the KAN, token ids
    /// for the language models.
    static func inputs(for model: ModelConfiguration) -> HostBatch {
        let rows = 5
        if model.kind == .lm {
            let length = 16, vocabulary = model.outputCount
            let tokens = (0..<(rows * length)).map { Int32(($0 * 5 + $0 / length * 3) % vocabulary) }
            return HostBatch(tokens: tokens, rows: rows, length: length, labels: [Int32](repeating: -1, count: rows * length))
        }
        let features = model.inputCount
        let values = (0..<(rows * features)).map { index in
            model.kind == .kan ? Float(Foundation.sin(Double(index) * 0.7)) : Float((index * 7 + index / features * 3) % 17)
        }
        return HostBatch(inputs: values, rows: rows, features: features)
    }

    static func outputs(_ name: String, on backend: any Backend) throws -> [Float] {
        let (file, _, configuration) = try Checkpoint.read(folder.appendingPathComponent("\(name).safetensors"))
        let model = try ModelFactory.make(configuration, on: backend)
        try model.load(Dictionary(file.tensors.map { ($0.name, (shape: $0.shape, values: $0.values)) }, uniquingKeysWith: { a, _ in a }))
        model.setTraining(false)
        return try noGrad { try model.outputs(for: inputs(for: configuration), on: backend).toArray() }
    }

    @Test("MLP, KAN and lm checkpoints of an earlier version give the same outputs", arguments: ["mlp", "kan", "lm-delta", "lm-gla", "lm-linear"])
    func earlierCheckpointsGiveTheSameOutputs(_ name: String) throws {
        let expected = try NpyArray.read(from: Self.folder.appendingPathComponent("\(name).expected.npy"))
        let outputs = try Self.outputs(name, on: CPUBackend())
        #expect(outputs.count == expected.floats.count)
        // The same arithmetic on the same device: equal to float32 rounding of a changed summation order.
        #expect(relativeError(outputs, expected.floats.map(Double.init)) < 1e-6, "\(name)")
    }
}

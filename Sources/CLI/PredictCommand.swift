import ArgumentParser
import Foundation
import Kiln

/// `kiln predict`: rebuilds a model from a checkpoint and writes its outputs for every row of an input array.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Write a trained model's outputs (logits or values) for every row of an .npy or CSV array."
    )

    @Option(parsing: .unconditional, help: "A checkpoint.safetensors written by kiln train (an mlp or kan model).") var checkpoint: String
    @Option(parsing: .unconditional, help: "Inputs [rows, features]: an .npy array (float32 or float64) or a numeric CSV file (.csv, .csv.gz).") var input: String
    @Option(parsing: .unconditional, help: "Where to write the outputs [rows, outputs]: .npy (float32) or .csv.") var output: String
    @Option(parsing: .unconditional, help: "Device: auto, cpu, opencl or opencl:N.") var device: String?

    func run() throws {
        let (file, _, modelConfiguration) = try Checkpoint.read(URL(fileURLWithPath: checkpoint))
        guard modelConfiguration.kind != .lm else {
            throw CommandError("\(checkpoint) holds an lm, which reads token sequences; predict takes mlp and kan checkpoints (kiln generate samples from an lm)")
        }
        guard output.hasSuffix(".npy") || output.hasSuffix(".csv") else {
            throw CommandError("--output \(output): name an .npy or a .csv file (the extension picks the format)")
        }
        let (inputs, shape) = try readInputs()
        guard shape[1] == modelConfiguration.inputCount else {
            throw CommandError("--input \(input): rows have \(shape[1]) features but the model takes \(modelConfiguration.inputCount)")
        }
        try FileTask.checkValues(inputs, shape: shape, role: "input", path: input)
        try OutputPath.checkFile(output, flag: "--output")
        let description = try resolveDevice(device)
        try MemoryEstimate.inference(modelConfiguration, rows: shape[0]).check(on: description)

        let backend = try Devices.makeBackend(for: description)
        let model = try ModelFactory.make(modelConfiguration, on: backend)
        let values = Dictionary(file.tensors.map { ($0.name, (shape: $0.shape, values: $0.values)) }, uniquingKeysWith: { first, _ in first })
        do { try model.load(values) } catch { throw CheckpointError(path: checkpoint, message: error.description) }
        let batch = HostBatch(inputs: inputs.map { Float($0) }, rows: shape[0], features: shape[1])
        let outputs = try Trainer.predict(model: model, batch, on: backend)
        let destination = URL(fileURLWithPath: output)
        if output.hasSuffix(".csv") {
            try CSVTable(rows: shape[0], columns: modelConfiguration.outputCount, values: outputs.map { Double($0) }).write(to: destination)
        } else {
            try NpyArray(shape: [shape[0], modelConfiguration.outputCount], floats: outputs).write(to: destination)
        }
        print("wrote \(output): [\(shape[0]), \(modelConfiguration.outputCount)] outputs from \(backend.device.id)")
    }

    /// The rows to predict: an `.npy` array (a 1-D array is one row of features) or a CSV table.
    private func readInputs() throws -> (values: [Double], shape: [Int]) {
        guard input.hasSuffix(".npy") else { return try FileTask.loadMatrix(input, role: "input") }
        let array = try NpyArray.read(from: URL(fileURLWithPath: input))
        let shape = array.shape.count == 1 ? [1, array.shape[0]] : array.shape
        guard shape.count == 2 else {
            throw CommandError("--input \(input): expected a 2-D array [rows, features], got shape \(array.shape)")
        }
        return (array.values, shape)
    }
}

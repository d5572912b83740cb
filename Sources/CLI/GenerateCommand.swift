import ArgumentParser
import Foundation
import Kiln

/// `kiln generate`: samples text from a character-level language model, one token at a time.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Sample text from an lm model trained on a text:FILE task, using its recurrent form (constant memory per token)."
    )

    @Option(parsing: .unconditional, help: "A checkpoint.safetensors of an lm model trained on text:FILE.") var checkpoint: String
    @Option(parsing: .unconditional, help: "Text to start from.") var prompt: String
    @Option(parsing: .unconditional, help: "Characters to generate.") var tokens = 200
    @Option(parsing: .unconditional, help: "Sampling temperature (0: always the most likely character).") var temperature: Double = 1
    @Option(parsing: .unconditional, help: "Seed of the sampler.") var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Device: auto, cpu, opencl or opencl:N.") var device: String?

    func run() throws {
        guard tokens >= 0 else { throw CommandError("--tokens must be 0 or more, got \(tokens)") }
        guard temperature >= 0, temperature.isFinite else { throw CommandError("--temperature must be a finite number, 0 or more, got \(temperature)") }
        guard !prompt.isEmpty else { throw CommandError("--prompt must not be empty") }
        let (file, _, configuration) = try Checkpoint.read(URL(fileURLWithPath: checkpoint))
        guard case var .lm(languageModel) = configuration, let characters = languageModel.characters else {
            throw CommandError("\(checkpoint) is not a language model trained on a text:FILE task; generate needs one")
        }
        let description = try resolveDevice(device)
        // The prompt runs through the model as one sequence.
        languageModel.sequenceLength = max(prompt.count, 1)
        try MemoryEstimate.inference(.lm(languageModel), rows: 1).check(on: description)
        let backend = try Devices.makeBackend(for: description)
        guard let model = try ModelFactory.make(configuration, on: backend) as? LanguageModel else {
            throw CommandError("\(checkpoint) does not hold an lm model")
        }
        let values = Dictionary(file.tensors.map { ($0.name, (shape: $0.shape, values: $0.values)) }, uniquingKeysWith: { first, _ in first })
        do { try model.load(values) } catch { throw CheckpointError(path: checkpoint, message: error.description) }
        model.setTraining(false)

        let index = Dictionary(uniqueKeysWithValues: characters.enumerated().map { ($1, Int32($0)) })
        var promptTokens: [Int32] = []
        for character in prompt {
            guard let token = index[String(character)] else {
                throw CommandError("the prompt's character '\(character)' never occurs in the training text; the model knows \(characters.count) characters")
            }
            promptTokens.append(token)
        }

        var generator = RandomGenerator(seed: seed)
        let state = model.initialState()
        FileHandle.standardOutput.write(Data(prompt.utf8))
        // The prompt runs as one chunk through the scans; then one token per call.
        var logits = try noGrad { model.forward(IndexTensor(promptTokens, shape: [1, promptTokens.count], on: backend), state: state) }
            .sliced(axis: 1, (promptTokens.count - 1)..<promptTokens.count).toArray()
        for _ in 0..<tokens {
            let token = sample(logits, generator: &generator)
            FileHandle.standardOutput.write(Data(characters[token].utf8))
            logits = try noGrad { model.forward(IndexTensor([Int32(token)], shape: [1, 1], on: backend), state: state) }.toArray()
        }
        print("")
    }

    /// A token drawn from softmax(logits / temperature), or the argmax at temperature 0.
    private func sample(_ logits: [Float], generator: inout RandomGenerator) -> Int {
        if temperature == 0 { return logits.indices.max { logits[$0] < logits[$1] }! }
        let largest = Double(logits.max()!)
        let weights = logits.map { Foundation.exp((Double($0) - largest) / temperature) }
        var target = generator.nextUniform() * weights.reduce(0, +)
        for (token, weight) in weights.enumerated() {
            if target < weight { return token }
            target -= weight
        }
        return weights.count - 1
    }
}

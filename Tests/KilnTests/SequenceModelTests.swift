import Foundation
import Kiln
import KilnTestSupport
import Testing

@Suite("sequence tasks and lm models")
struct SequenceModelTests {
    @Test("mqar sequences: key–value pairs, then queries labelled with their values, nothing else scored")
    func associativeRecall() throws {
        let task = try AssociativeRecallTask(pairs: 8, length: 64, vocabulary: 128, seed: 3, testCount: 20)
        let batch = task.trainBatch(step: 5, batchSize: 50)
        #expect(batch.rows == 50 && batch.features == 64 && batch.tokens!.count == 50 * 64)
        for row in 0..<50 {
            let tokens = Array(batch.tokens![(row * 64)..<((row + 1) * 64)])
            let labels = Array(batch.labels![(row * 64)..<((row + 1) * 64)])
            var values: [Int32: Int32] = [:]
            for pair in 0..<8 {
                let (key, value) = (tokens[2 * pair], tokens[2 * pair + 1])
                #expect(key >= 1 && key < 64 && value >= 64 && value < 128)
                #expect(values[key] == nil, "keys are distinct")
                values[key] = value
            }
            #expect(labels[0..<16].allSatisfy { $0 < 0 }, "the context itself is not scored")
            let scored = labels.indices.filter { labels[$0] >= 0 }
            #expect(scored.count == 8, "one scored position per pair")
            for position in scored {
                #expect(position >= 16 && (position - 16) % 2 == 0, "queries sit at even offsets after the context")
                #expect(values[tokens[position]] == labels[position], "the label is the queried key's value")
            }
        }
        #expect(task.trainBatch(step: 5, batchSize: 50).tokens == batch.tokens, "batches depend only on step and seed")
        #expect(task.testSet.rows == 20)
        #expect(throws: TaskError.self) { try AssociativeRecallTask(pairs: 40, length: 64, vocabulary: 128, seed: 0) }
    }

    @Test("text tasks: a character vocabulary, a held-out tail, windows shifted by one")
    func text() throws {
        let url = temporaryFolder("text").appendingPathComponent("corpus.txt")
        let text = String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 40)
        try text.write(to: url, atomically: true, encoding: .utf8)
        let task = try TextTask(path: url.path, length: 16, seed: 1)
        #expect(task.characters.count == Set(text).count)
        let batch = task.trainBatch(step: 0, batchSize: 4)
        for row in 0..<4 {
            let tokens = Array(batch.tokens![(row * 16)..<((row + 1) * 16)]), labels = Array(batch.labels![(row * 16)..<((row + 1) * 16)])
            #expect(Array(tokens.dropFirst()) == Array(labels.dropLast()), "labels are the next characters")
        }
        #expect(task.testSet.rows > 0)
        #expect(throws: TaskError.self) { try TextTask(path: "/nonexistent.txt", length: 16, seed: 0) }
        #expect(throws: TaskError.self) { try task.encode("the ∑") }
    }

    static func model(_ mixer: MixerKind, on backend: any Backend) -> LanguageModel {
        var generator = RandomGenerator(seed: 9)
        // A normal readout, so that outputs depend on everything from the start.
        return LanguageModel(vocabulary: 20, width: 16, layers: 2, heads: 2, mixer: mixer, parametrization: Parametrization(readoutZeroInit: false), generator: &generator, on: backend)
    }

    @Test("token-by-token generation with carried state equals one parallel forward, for every mixer", arguments: BackendCase.all, MixerKind.allCases)
    func recurrentEqualsParallel(_ backendCase: BackendCase, mixer: MixerKind) throws {
        let backend = try backendCase.makeBackend()
        let model = Self.model(mixer, on: backend)
        var random = RandomGenerator.withFreshSeed()
        let tokens = random.integers(11, in: 0..<20)
        let parallel = try noGrad { model.forward(IndexTensor(tokens, shape: [1, 11], on: backend)) }.toArray()
        let state = model.initialState()
        // A prompt of 4 tokens in one call, then one token per call.
        var stepwise = try noGrad { model.forward(IndexTensor(Array(tokens[0..<4]), shape: [1, 4], on: backend), state: state) }.toArray()
        for token in tokens[4...] {
            stepwise += try noGrad { model.forward(IndexTensor([token], shape: [1, 1], on: backend), state: state) }.toArray()
        }
        #expect(relativeError(stepwise, parallel.map(Double.init)) < 1e-4, "\(mixer) on \(backendCase)")
    }

    @Test("lm parameter roles for μP, and SP ≡ μP at the base width")
    func languageModelParametrization() throws {
        var generator = RandomGenerator(seed: 1)
        let model = LanguageModel(vocabulary: 32, width: 128, layers: 1, heads: 4, mixer: .gla, parametrization: Parametrization(kind: .mup, baseWidth: 32), generator: &generator, on: CPUBackend())
        let roles = Dictionary(uniqueKeysWithValues: model.parameterRoles.map { ($0.name, $0.role) })
        #expect(roles.count == model.parameters.count, "every parameter has a role")
        #expect(roles["embedding.weight"] == .embedding && roles["readout.weight"] == .output)
        #expect(roles["blocks.0.mixer.q.weight"] == .hidden && roles["blocks.0.mlp.down.weight"] == .hidden)
        #expect(roles["blocks.0.mixer.gate_down.weight"] == .output && roles["blocks.0.mixer.gate_up.weight"] == .input)
        #expect(roles["blocks.0.mixer_norm.weight"] == .gain)
        #expect(try model.parameters.first { $0.name == "readout.weight" }!.tensor.toArray().allSatisfy { $0 == 0 })
        // Every mixer's parameters carry the roles they were created with.
        for mixer in MixerKind.allCases {
            let other = LanguageModel(vocabulary: 32, width: 64, layers: 2, heads: 4, mixer: mixer, parametrization: Parametrization(kind: .mup, baseWidth: 32),
                                      generator: &generator, on: CPUBackend())
            let roles = Dictionary(uniqueKeysWithValues: other.parameterRoles.map { ($0.name, $0.role) })
            #expect(roles.count == other.parameters.count && other.parameters.count == other.declaredParameters.count, "\(mixer)")
            #expect(roles["blocks.1.mixer.o_norm.weight"] == .gain && roles["blocks.1.mixer.o.weight"] == .hidden, "\(mixer)")
            if mixer == .delta {
                #expect(roles["blocks.0.mixer.q_conv"] == .input && roles["blocks.1.mixer.v_conv"] == .input && roles["blocks.0.mixer.beta.weight"] == .output)
            }
            if mixer == .gla { #expect(roles["blocks.1.mixer.gate_up.bias"] == .bias && roles["blocks.1.mixer.g.weight"] == .hidden) }
        }

        func losses(_ kind: Parametrization.Kind) throws -> [Float] {
            var configuration = TrainingConfiguration()
            configuration.task = "mqar"
            configuration.pairs = 2
            configuration.sequenceLength = 16
            configuration.vocabulary = 32
            configuration.model = .lm
            configuration.mixer = .delta
            configuration.width = 32
            configuration.heads = 2
            configuration.batchSize = 4
            configuration.parametrization = Parametrization(kind: kind, baseWidth: 32)
            let trainer = try Trainer(configuration: configuration, backend: CPUBackend())
            return try (0..<3).map { _ in try trainer.step().item() }
        }
        #expect(try losses(.sp) == losses(.mup))
    }

    static func lmConfiguration(width: Int, kind: Parametrization.Kind, headDimension: Int? = nil) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.task = "mqar"
        configuration.model = .lm
        configuration.mixer = .delta
        configuration.width = width
        configuration.heads = 4
        configuration.headDimension = headDimension
        configuration.batchSize = 8
        configuration.parametrization = Parametrization(kind: kind, baseWidth: 64)
        return configuration
    }

    @Test("μP's q·k scale and the head norm's ε, with a fixed number of heads and with --head-dim")
    func attentionScaleAndNormEpsilon() throws {
        func firstMixer(_ configuration: TrainingConfiguration) throws -> any TokenMixer {
            let trainer = try Trainer(configuration: configuration, backend: CPUBackend())
            let block = trainer.model.children.first { $0.name == "blocks.0" }!.module
            return block.children.first { $0.name == "mixer" }!.module as! any TokenMixer
        }
        func epsilon(_ mixer: any TokenMixer) -> Float { (mixer.children.first { $0.name == "o_norm" }!.module as! RMSNorm).epsilon }
        // 4 heads at width 256: d_head 64, 16 at the base width 64.
        let sp = try firstMixer(Self.lmConfiguration(width: 256, kind: .sp)), mup = try firstMixer(Self.lmConfiguration(width: 256, kind: .mup))
        #expect(sp.heads == 4 && sp.headDimension == 64)
        #expect(abs(sp.attentionScale - 1 / 8) < 1e-7 && abs(epsilon(sp) - 1e-5) < 1e-12)
        #expect(abs(mup.attentionScale - 4 / 64) < 1e-7, "√16 / 64")
        #expect(abs(epsilon(mup) - 1e-5 * 16 / 64) < 1e-12, "ε × (scale ratio)² = ε × 16/64")
        // --head-dim 16: 16 heads of 16 at width 256, the same size as at the base width, so nothing changes.
        let grown = try firstMixer(Self.lmConfiguration(width: 256, kind: .mup, headDimension: 16))
        #expect(grown.heads == 16 && grown.headDimension == 16)
        #expect(abs(grown.attentionScale - 1 / 4) < 1e-7 && abs(epsilon(grown) - 1e-5) < 1e-12)
        // The checkpoint's model description keeps the resolved heads and the base head size.
        let task = try AssociativeRecallTask(pairs: 16, length: 128, vocabulary: 256, seed: 0, testCount: 4)
        let description = try ModelConfiguration(Self.lmConfiguration(width: 256, kind: .mup, headDimension: 16), task: task, stage: 0)
        guard case let .lm(sizes) = description else {
            Issue.record("an lm training configuration described a \(description.kind) model")
            return
        }
        #expect(sizes.heads == 16 && sizes.baseHeadDimension == 16)
        let decoded = try JSONDecoder().decode(ModelConfiguration.self, from: JSONEncoder().encode(description))
        #expect(decoded == description)
        #expect(throws: TaskError.self) { try Self.lmConfiguration(width: 100, kind: .mup, headDimension: 16).validate() }
    }

    @Test("under μP a DeltaNet mixer's output keeps its size at initialization as its heads widen")
    func mixerOutputSizeAcrossWidths() throws {
        // With 4 heads, d_head grows from 16 to 256; μP's 1/d_head scale shrinks the scan output by 4× in
        // RMS, and a head norm with a fixed ε shrank the mixer's output by about 30% here.
        func meanAbsoluteMixerOutput(width: Int) throws -> Double {
            let trainer = try Trainer(configuration: Self.lmConfiguration(width: width, kind: .mup), backend: CPUBackend())
            let recorder = ActivationRecorder()
            _ = trainer.recordedOutputs(for: trainer.task.trainBatch(step: 0, batchSize: 8), recorder: recorder)
            let output = try recorder.records.first { $0.name == "blocks.0.mixer" }!.tensor.toArray()
            return output.map { Double(abs($0)) }.reduce(0, +) / Double(output.count)
        }
        let narrow = try meanAbsoluteMixerOutput(width: 64), wide = try meanAbsoluteMixerOutput(width: 1024)
        #expect(abs(wide / narrow - 1) < 0.15, "mean |mixer output| \(narrow) at width 64, \(wide) at 1024")
    }

    @Test("an lm learns a tiny recall task", arguments: [MixerKind.delta])
    func learnsRecall(_ mixer: MixerKind) throws {
        var configuration = TrainingConfiguration()
        configuration.task = "mqar"
        configuration.pairs = 2
        configuration.sequenceLength = 16
        configuration.vocabulary = 24
        configuration.model = .lm
        configuration.mixer = mixer
        configuration.width = 32
        configuration.heads = 2
        configuration.batchSize = 32
        configuration.steps = 300
        configuration.learningRate = 1e-2
        configuration.evalEvery = 300
        let summary = try TrainingRun.run(configuration: configuration, backend: CPUBackend(), directory: temporaryFolder("recall"))
        #expect(summary.testAccuracy! > 0.5, "accuracy \(summary.testAccuracy!)")
    }
}

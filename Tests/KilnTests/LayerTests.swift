import Foundation
import Kiln
import KilnTestSupport
import Testing

@Suite("layers against plain float64 computations")
struct LayerTests {
    @Test("Linear, MLP and Sequential outputs; parameter names are stable", arguments: BackendCase.all)
    func mlp(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var generator = RandomGenerator(seed: 3)
        let model = MLP(inputCount: 5, width: 7, depth: 2, outputCount: 3, activation: .tanh, generator: &generator, on: backend)
        #expect(model.parameters.map(\.name) == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias", "layers.4.weight", "layers.4.bias"])
        #expect(model.parameterCount == 5 * 7 + 7 + 7 * 7 + 7 + 7 * 3 + 3)
        var random = RandomGenerator.withFreshSeed()
        let x = random.floats(4 * 5)
        let out = try model(Tensor(x, shape: [4, 5], on: backend)).toArray()

        var activations = x.map(Double.init)
        var features = 5
        for (index, layer) in model.linearLayers.enumerated() {
            let w = try layer.weight.toArray().map(Double.init), b = try layer.bias!.toArray().map(Double.init)
            let outputs = layer.outputCount
            var next = [Double](repeating: 0, count: 4 * outputs)
            for row in 0..<4 {
                for o in 0..<outputs {
                    var sum = b[o]
                    for i in 0..<features { sum += activations[row * features + i] * w[o * features + i] }
                    next[row * outputs + o] = index < 2 ? Foundation.tanh(sum) : sum
                }
            }
            activations = next
            features = outputs
        }
        #expect(relativeError(out, activations) < 1e-5)
        // PyTorch's default init: every weight within ±1/√fan_in.
        for layer in model.linearLayers {
            let bound = 1 / Float(layer.inputCount).squareRoot()
            #expect(try layer.weight.toArray().allSatisfy { abs($0) <= bound })
        }
    }

    @Test("the same seed gives the same initial weights on every device")
    func identicalInitialization() throws {
        var reference: [[Float]]?
        for backendCase in BackendCase.all {
            let backend = try backendCase.makeBackend()
            var generator = RandomGenerator(seed: 11)
            let model = MLP(inputCount: 8, width: 16, depth: 1, outputCount: 4, generator: &generator, on: backend)
            let values = try model.parameters.map { try $0.tensor.toArray() }
            if let reference { #expect(values == reference, "initial weights differ on \(backendCase)") } else { reference = values }
        }
    }

    @Test("Embedding, RMSNorm and LayerNorm layers", arguments: BackendCase.all)
    func normalizationAndEmbedding(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var generator = RandomGenerator(seed: 5)
        let embedding = Embedding(count: 6, features: 4, generator: &generator, on: backend)
        let table = try embedding.weight.toArray()
        let looked = try embedding(IndexTensor([5, 0, 5], shape: [3], on: backend)).toArray()
        #expect(looked == Array(table[20..<24]) + Array(table[0..<4]) + Array(table[20..<24]))

        var random = RandomGenerator.withFreshSeed()
        let x = random.floats(3 * 4, in: -2...2)
        let input = Tensor(x, shape: [3, 4], on: backend)
        let rms = try RMSNorm(features: 4, epsilon: 1e-6, on: backend)(input).toArray()
        let layer = try LayerNorm(features: 4, on: backend)(input).toArray()
        var expectedRMS: [Double] = [], expectedLayer: [Double] = []
        for row in 0..<3 {
            let values = x[(row * 4)..<(row * 4 + 4)].map(Double.init)
            let rstd = 1 / (values.map { $0 * $0 }.reduce(0, +) / 4 + 1e-6).squareRoot()
            expectedRMS += values.map { $0 * rstd }
            let mean = values.reduce(0, +) / 4
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4
            expectedLayer += values.map { ($0 - mean) / (variance + 1e-5).squareRoot() }
        }
        #expect(relativeError(rms, expectedRMS) < 1e-5)
        #expect(relativeError(layer, expectedLayer) < 1e-5)
    }

    @Test("Dropout is active in training mode only, and its mask depends on the step", arguments: BackendCase.all)
    func dropoutLayer(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        let layer = Dropout(probability: 0.5, seed: 9)
        let ones = Tensor.ones([1000], on: backend)
        let trained = try layer(ones).toArray()
        let kept = trained.filter { $0 != 0 }
        #expect(kept.allSatisfy { $0 == 2 })
        #expect(abs(Double(kept.count) / 1000 - 0.5) < 0.07)
        layer.step = 1
        #expect(try layer(ones).toArray() != trained)
        layer.step = 0
        #expect(try layer(ones).toArray() == trained)
        layer.setTraining(false)
        #expect(try layer(ones).toArray() == [Float](repeating: 1, count: 1000))
    }
}

@Suite("optimizer and schedules")
struct OptimizerFrontendTests {
    @Test("two Adam steps with per-group learning rates and gradient clipping match a hand computation", arguments: BackendCase.all)
    func groupsAndClipping(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        let a = Tensor.parameter([1, -2], shape: [2], on: backend)
        let b = Tensor.parameter([0.5], shape: [1], on: backend)
        var settings = OptimizerSettings(kind: .adam)
        settings.maximumGradientNorm = 1
        let optimizer = Optimizer(settings: settings, groups: [
            ParameterGroup(name: "a", parameters: [("a", a)]),
            ParameterGroup(name: "b", parameters: [("b", b)], learningRateScale: 0.5),
        ])
        // Loss = 3·Σa + 4·b: gradients (3, 3) and 4, global norm √34, clipped to norm 1.
        var expectedA: [Double] = [1, -2], expectedB: [Double] = [0.5]
        var m = [0.0, 0.0, 0.0], v = [0.0, 0.0, 0.0]
        for step in 1...2 {
            (a.sum() * 3 + b.sum() * 4).backward()
            optimizer.step(learningRate: 0.1)
            a.zeroGradient()
            b.zeroGradient()
            let scale = 1 / (34.0.squareRoot() + 1e-6)
            let gradients = [3 * scale, 3 * scale, 4 * scale]
            for i in 0..<3 {
                m[i] = 0.9 * m[i] + 0.1 * gradients[i]
                v[i] = 0.999 * v[i] + 0.001 * gradients[i] * gradients[i]
                let update = (m[i] / (1 - pow(0.9, Double(step)))) / ((v[i] / (1 - pow(0.999, Double(step)))).squareRoot() + 1e-8)
                if i < 2 { expectedA[i] -= 0.1 * update } else { expectedB[0] -= 0.05 * update }
            }
        }
        #expect(relativeError(try a.toArray(), expectedA) < 1e-5)
        #expect(relativeError(try b.toArray(), expectedB) < 1e-5)
        #expect(abs(Double(try optimizer.lastGradientNorm!.item()) - 34.0.squareRoot()) < 1e-4)
    }

    @Test("learning-rate schedules")
    func schedules() {
        #expect(LearningRateSchedule.constant.multiplier(step: 7, totalSteps: 10, warmupSteps: 0) == 1)
        let cosine = LearningRateSchedule.cosine
        #expect(cosine.multiplier(step: 5, totalSteps: 110, warmupSteps: 10) == 0.5)
        #expect(cosine.multiplier(step: 10, totalSteps: 110, warmupSteps: 10) == 1)
        #expect(abs(cosine.multiplier(step: 60, totalSteps: 110, warmupSteps: 10) - 0.5) < 1e-6)
        #expect(abs(cosine.multiplier(step: 110, totalSteps: 110, warmupSteps: 10)) < 1e-6)
        let cycle = LearningRateSchedule.oneCycle
        #expect(abs(cycle.multiplier(step: 1, totalSteps: 100, warmupSteps: 0) - 0.04) < 1e-6)
        #expect(abs(cycle.multiplier(step: 30, totalSteps: 100, warmupSteps: 0) - 1) < 1e-6)
        #expect(abs(cycle.multiplier(step: 100, totalSteps: 100, warmupSteps: 0) - 0.04e-4) < 1e-7)
    }
}

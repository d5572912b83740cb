import Foundation
import KilnBackend
import KilnTestSupport
import Testing

/// One update of every rule, in float64, as the papers and PyTorch write them.
struct ReferenceOptimizer {
    var parameter: [Double]
    var state0: [Double]
    var state1: [Double]

    init(parameter: [Float]) {
        self.parameter = parameter.map(Double.init)
        state0 = [Double](repeating: 0, count: parameter.count)
        state1 = state0
    }

    mutating func step(_ rule: UpdateRule, gradient: [Float], learningRate: Double, step t: Int, scale: Double) {
        for i in parameter.indices {
            var g = Double(gradient[i]) * scale
            switch rule {
            case let .sgd(momentum, nesterov, weightDecay):
                g += Double(weightDecay) * parameter[i]
                if momentum != 0 {
                    state0[i] = Double(momentum) * state0[i] + g
                    g = nesterov ? g + Double(momentum) * state0[i] : state0[i]
                }
                parameter[i] -= learningRate * g
            case let .adam(beta1, beta2, epsilon, weightDecay, decoupled):
                if decoupled { parameter[i] *= 1 - learningRate * Double(weightDecay) } else { g += Double(weightDecay) * parameter[i] }
                state0[i] = Double(beta1) * state0[i] + (1 - Double(beta1)) * g
                state1[i] = Double(beta2) * state1[i] + (1 - Double(beta2)) * g * g
                let mHat = state0[i] / (1 - pow(Double(beta1), Double(t)))
                let vHat = state1[i] / (1 - pow(Double(beta2), Double(t)))
                parameter[i] -= learningRate * mHat / (vHat.squareRoot() + Double(epsilon))
            case let .adamAtan2(beta1, beta2, a, b, weightDecay):
                parameter[i] *= 1 - learningRate * Double(weightDecay)
                state0[i] = Double(beta1) * state0[i] + (1 - Double(beta1)) * g
                state1[i] = Double(beta2) * state1[i] + (1 - Double(beta2)) * g * g
                let mHat = state0[i] / (1 - pow(Double(beta1), Double(t)))
                let vHat = state1[i] / (1 - pow(Double(beta2), Double(t)))
                parameter[i] -= learningRate * Double(a) * atan2(mHat, Double(b) * vHat.squareRoot())
            }
        }
    }
}

@Suite("fused optimizer updates against hand-computed float64 steps")
struct OptimizerTests {
    static let rules: [UpdateRule] = [
        .sgd(momentum: 0, nesterov: false, weightDecay: 0),
        .sgd(momentum: 0.9, nesterov: false, weightDecay: 0.01),
        .sgd(momentum: 0.9, nesterov: true, weightDecay: 0),
        .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, decoupledWeightDecay: false),
        .adam(beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.1, decoupledWeightDecay: false),
        .adam(beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1, decoupledWeightDecay: true),
        .adamAtan2(beta1: 0.9, beta2: 0.99, a: 1.27, b: 1, weightDecay: 0.05),
    ]

    @Test("two steps of every rule, with and without a device-side gradient scale", arguments: BackendCase.all)
    func twoSteps(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for rule in Self.rules {
            for useScale in [false, true] {
                let count = 1031
                let initial = random.floats(count)
                var reference = ReferenceOptimizer(parameter: initial)
                let parameter = backend.makeBuffer(initial)
                let state = (0..<rule.stateCount).map { _ in backend.makeBuffer([Float](repeating: 0, count: count)) }
                let scaleValue: Float = 0.37
                let scale = useScale ? backend.makeBuffer([scaleValue]) : nil
                for step in 1...2 {
                    let gradient = random.floats(count)
                    let learningRate: Float = 0.01 * Float(step)
                    backend.optimizerStep(rule, parameter: parameter, gradient: backend.makeBuffer(gradient), state: state, count: count,
                                          learningRate: learningRate, step: step, gradientScale: scale)
                    reference.step(rule, gradient: gradient, learningRate: Double(learningRate), step: step, scale: useScale ? Double(scaleValue) : 1)
                }
                let error = relativeError(try backend.download(parameter), reference.parameter)
                #expect(error < 1e-5, "\(rule) scale \(useScale) seed \(random.seed)")
                if rule.stateCount > 0 {
                    #expect(relativeError(try backend.download(state[0]), reference.state0) < 1e-5, "\(rule) first state")
                }
                if rule.stateCount > 1 {
                    #expect(relativeError(try backend.download(state[1]), reference.state1) < 1e-5, "\(rule) second state")
                }
            }
        }
    }
}

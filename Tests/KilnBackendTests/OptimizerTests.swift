import KilnBackend
import KilnTestSupport
import Testing

@Suite("fused optimizer updates against the float64 reference")
struct OptimizerTests {
    // One update is element-wise work (DESIGN.md): relative error below 1e-5.
    static let bound = CheckBound.elementwise

    static let rules: [UpdateRule] = [
        .sgd(momentum: 0, nesterov: false, weightDecay: 0),
        .sgd(momentum: 0.9, nesterov: false, weightDecay: 0.01),
        .sgd(momentum: 0.9, nesterov: true, weightDecay: 0),
        .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, decoupledWeightDecay: false),
        .adam(beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.1, decoupledWeightDecay: false),
        .adam(beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1, decoupledWeightDecay: true),
        .adamAtan2(beta1: 0.9, beta2: 0.99, a: 1.27, b: 1, weightDecay: 0.05),
    ]

    @Test("two steps of every rule, with and without a device-side gradient scale", arguments: BackendCase.withGPUParameters, [1, 7, 33, 1031])
    func twoSteps(_ backendCase: BackendCase, count: Int) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for rule in Self.rules {
            for scaleValue in [nil, Float(0.37)] {
                let initial = random.floats(count)
                var expected = (parameter: initial.doubles, state: [[Double]](repeating: [Double](repeating: 0, count: count), count: rule.stateCount))
                // The same steps on |gradient|: each state then sums its terms without cancelling, the
                // magnitude its rounding scales with (a single moment can cancel to near 0, e.g.
                // 0.8 · 0.2 · g1 + 0.2 · g2 with g2 ≈ −0.8 g1).
                var magnitudes = expected
                let parameter = backend.makeBuffer(initial)
                let state = (0..<rule.stateCount).map { _ in backend.makeBuffer([Float](repeating: 0, count: count)) }
                let scale = scaleValue.map { backend.makeBuffer([$0]) }
                for step in 1...2 {
                    let gradient = random.floats(count)
                    let update = OptimizerUpdate(rule, count: count, learningRate: 0.01 * Float(step), step: step)
                    backend.optimizerStep(update, parameter: parameter, gradient: backend.makeBuffer(gradient), state: state, gradientScale: scale)
                    expected = Reference.optimizerStep(update, parameter: expected.parameter, gradient: gradient.doubles, state: expected.state, gradientScale: scaleValue.map(Double.init))
                    magnitudes = Reference.optimizerStep(update, parameter: magnitudes.parameter, gradient: gradient.doubles.map(abs), state: magnitudes.state, gradientScale: scaleValue.map(Double.init))
                }
                // A parameter's rounding scales with its old value and the step: |p0| + |p| bounds both.
                let parameterMagnitude = zip(initial, expected.parameter).map { abs(Double($0)) + abs($1) }
                let label = "\(rule), n \(count), scale \(scaleValue.map { "\($0)" } ?? "none"), seed \(random.seed)"
                #expect(relativeError(try backend.download(parameter), expected.parameter, magnitude: parameterMagnitude) < Self.bound, "parameters, \(label)")
                for (index, buffer) in state.enumerated() {
                    let magnitude = zip(expected.state[index], magnitudes.state[index]).map { abs($0) + abs($1) }
                    #expect(relativeError(try backend.download(buffer), expected.state[index], magnitude: magnitude) < Self.bound, "state \(index), \(label)")
                }
            }
        }
    }
}

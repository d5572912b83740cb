import KilnBackend
import KilnTestSupport
import Testing

@Suite("fused optimizer updates against the float64 reference")
struct OptimizerTests {
    /// Every rule with and without momentum, weight decay in both forms (also the CPU loops' bit test's).
    static let rules: [UpdateRule] = [
        .sgd(momentum: 0, nesterov: false, weightDecay: 0),
        .sgd(momentum: 0.9, nesterov: false, weightDecay: 0.01),
        .sgd(momentum: 0.9, nesterov: true, weightDecay: 0),
        .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, decoupledWeightDecay: false),
        .adam(beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.1, decoupledWeightDecay: false),
        .adam(beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1, decoupledWeightDecay: true),
        .adamAtan2(beta1: 0.9, beta2: 0.99, a: 1.27, b: 1, weightDecay: 0.05),
    ]

    // The check's optimizer case (CheckCases.optimizer): two steps from a random parameter with fresh
    // gradients, learning rate 0.01 then 0.02, the parameter and every state against the reference, each
    // relative to the magnitude its rounding scales with; here every rule at every count, with and without
    // a device-side gradient scale.
    @Test("two steps of every rule, with and without a device-side gradient scale", arguments: BackendCase.withGPUParameters, [1, 7, 33, 1031])
    func twoSteps(_ backendCase: BackendCase, count: Int) throws {
        expectCheckCasesPass(.optimizer, on: try backendCase.makeBackend(), "\(backendCase)") { lists in
            lists.optimizer = Self.rules.flatMap { [CheckLists.OptimizerCase($0, count: count), CheckLists.OptimizerCase($0, count: count, gradientScale: 0.37)] }
        }
    }
}

import Foundation
import Kiln
import KilnTestSupport
import Testing

/// ``Tensor/backward(_:gradientReady:)``, the hook data-parallel training starts its gradient buckets
/// from: each leaf is reported once, when its gradient is final, and the gradients are those of a plain
/// backward pass.
@Suite("autograd: the gradient-ready hook")
struct GradientReadyTests {
    @Test("each parameter is reported once, with its final gradient, last layers first", arguments: BackendCase.all)
    func readyOnce(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let label = "on \(backendCase), seed \(random.seed)"
        var generator = RandomGenerator(seed: random.seed)
        let model = MLP(inputCount: 5, width: 7, depth: 2, outputCount: 3, generator: &generator, on: backend)
        let rows = 9
        let inputs = Tensor(random.floats(rows * 5), shape: [rows, 5], on: backend)
        // A leaf used four times (final only after its last use), and every parameter used twice.
        let shared = Tensor.parameter(random.floats(3), shape: [3], on: backend)
        func loss() -> Tensor { ((model(inputs) * shared + shared) * (model(inputs) - 1)).sum() }

        loss().backward()
        let parameters = model.parameters.map(\.tensor) + [shared]
        let plain = try parameters.map { try $0.gradient!.toArray() }
        model.zeroGradients()
        shared.zeroGradient()

        var reported: [ObjectIdentifier] = []
        var atReport: [ObjectIdentifier: [Float]] = [:]
        loss().backward(Tensor(scalar: 1, on: backend)) { leaf in
            reported.append(ObjectIdentifier(leaf))
            atReport[ObjectIdentifier(leaf)] = try? leaf.gradient?.toArray()
        }
        #expect(reported.count == parameters.count && Set(reported).count == parameters.count, "\(label): \(reported.count) reports for \(parameters.count) leaves")
        for (index, parameter) in parameters.enumerated() {
            // Reported with its final value, which is the plain pass's (the same operations in the same order).
            #expect(atReport[ObjectIdentifier(parameter)] == plain[index], "\(label): parameter \(index)")
            #expect(try parameter.gradient!.toArray() == plain[index], "\(label): parameter \(index)")
        }
        // Backward reaches the readout before the first layer.
        let readout = ObjectIdentifier(model.parameters.last!.tensor), first = ObjectIdentifier(model.parameters.first!.tensor)
        #expect(reported.firstIndex(of: readout)! < reported.firstIndex(of: first)!, "\(label)")
    }
}

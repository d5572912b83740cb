import Foundation
import Kiln
import KilnTestSupport
import Testing

/// Operations with several outputs (``Tensor/recordGradient(_:inputs:outputs:backward:)``): one backward
/// call per pass receives the gradients of all outputs at once, nil for an output the loss does not use.
@Suite("autograd: operations with several outputs")
struct AutogradTests {
    /// What the operation's backward received: per call, each output's gradient (nil where none came).
    final class Received {
        var calls: [[[Float]?]] = []
    }

    /// `(a + b, a ⊙ b)` recorded as one operation with two outputs.
    static func sumAndProduct(_ a: Tensor, _ b: Tensor, received: Received) -> (sum: Tensor, product: Tensor) {
        let (sum, product) = noGrad { (a + b, a * b) }
        let (aValues, bValues) = (a.detached(), b.detached())
        Tensor.recordGradient("sumAndProduct", inputs: [a, b], outputs: [sum, product]) { gradients in
            received.calls.append(gradients.map { try? $0?.toArray() })
            var da = gradients[0], db = gradients[0]
            if let dp = gradients[1] {
                da = da.map { $0 + dp * bValues } ?? dp * bValues
                db = db.map { $0 + dp * aValues } ?? dp * aValues
            }
            return [da, db]
        }
        return (sum, product)
    }

    @Test("both gradients at once, one alone, and a gradient summed from two paths first", arguments: BackendCase.all)
    func twoOutputs(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let count = 7
        let aValues = random.floats(count), bValues = random.floats(count)
        let w1 = random.floats(count), w2 = random.floats(count), w3 = random.floats(count)
        func tensor(_ values: [Float]) -> Tensor { Tensor(values, shape: [count], on: backend) }
        let label = "on \(backendCase), seed \(random.seed)"

        // (uses the sum, uses the product, a second path into the sum): which gradients must arrive.
        for (useSum, useProduct, twoPaths) in [(true, true, false), (false, true, false), (true, false, false), (true, true, true)] {
            let a = Tensor.parameter(aValues, shape: [count], on: backend), b = Tensor.parameter(bValues, shape: [count], on: backend)
            let received = Received()
            let (sum, product) = Self.sumAndProduct(a, b, received: received)
            var terms: [Tensor] = []
            if useSum { terms.append((sum * tensor(w1)).sum()) }
            if twoPaths { terms.append((sum * tensor(w3)).sum()) }
            if useProduct { terms.append((product * tensor(w2)).sum()) }
            terms.dropFirst().reduce(terms[0], +).backward()

            let which = "sum \(useSum), product \(useProduct), two paths \(twoPaths) \(label)"
            try #require(received.calls.count == 1, "backward ran \(received.calls.count) times: \(which)")
            let call = received.calls[0]
            let sumGradient = (0..<count).map { (useSum ? Double(w1[$0]) : 0) + (twoPaths ? Double(w3[$0]) : 0) }
            if useSum {
                #expect(relativeError(try #require(call[0], "\(which)"), sumGradient) < 1e-6, "sum's gradient: \(which)")
            } else {
                #expect(call[0] == nil, "an unused output's gradient is nil, not zeros: \(which)")
            }
            if useProduct {
                #expect(relativeError(try #require(call[1], "\(which)"), w2.map(Double.init)) < 1e-6, "product's gradient: \(which)")
            } else {
                #expect(call[1] == nil, "an unused output's gradient is nil, not zeros: \(which)")
            }
            let productWeight = (0..<count).map { useProduct ? Double(w2[$0]) : 0 }
            let expectedA = (0..<count).map { sumGradient[$0] + productWeight[$0] * Double(bValues[$0]) }
            let expectedB = (0..<count).map { sumGradient[$0] + productWeight[$0] * Double(aValues[$0]) }
            #expect(relativeError(try #require(a.gradient).toArray(), expectedA) < 1e-6, "da: \(which)")
            #expect(relativeError(try #require(b.gradient).toArray(), expectedB) < 1e-6, "db: \(which)")
        }
    }

    @Test("a chain of 5000 two-output operations, one output carried on (iterative graph walk)")
    func deepChain() throws {
        let backend = CPUBackend()
        let x = Tensor.parameter([0.5], shape: [1], on: backend), one = Tensor([1], shape: [1], on: backend)
        let received = Received()
        var value = x
        // value ← value + 1 through the sum output; the product output is never used.
        for _ in 0..<5000 { value = Self.sumAndProduct(value, one, received: received).sum }
        value.sum().backward()
        #expect(received.calls.count == 5000 && received.calls.allSatisfy { $0[1] == nil })
        #expect(try value.item() == 5000.5)
        #expect(try #require(x.gradient).item() == 1)
    }
}

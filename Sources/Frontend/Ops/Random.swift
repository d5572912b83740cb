// The random family's op: dropout, whose masks come from the backend's counter-based generator. Backend:
// RandomKernels (Sources/Backend/Families/Random.swift).

/// Inverted dropout (Srivastava et al., 2014): zeroes each element with probability `probability` and
/// scales the rest by `1 / (1 − probability)`. The mask comes from the backend's counter-based generator
/// at `(seed, offset)`, so it is the same on every device and reproducible on resume.
public func dropout(_ x: Tensor, probability: Float, seed: UInt64, offset: UInt64) -> Tensor {
    precondition(probability >= 0 && probability < 1, "dropout: probability \(probability) must be in [0, 1)")
    if probability == 0 { return x }
    let backend = x.backend
    let mask = Tensor(uninitialized: x.shape, on: backend)
    backend.randomUniform(into: mask.storage, count: x.elementCount, seed: seed, offset: offset)
    backend.unary(.step(threshold: probability), mask.storage, into: mask.storage, count: x.elementCount)
    backend.unary(.scale(1 / (1 - probability)), mask.storage, into: mask.storage, count: x.elementCount)
    let out = x.binaryValues(.multiply, mask, name: "dropout")
    out.recordGradient("dropout", inputs: [x]) { gradient in [gradient.binaryValues(.multiply, mask, name: "dropout")] }
    return out
}

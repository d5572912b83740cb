// Row lookups by index (embeddings), with the deterministic scatter-add gradient.

/// Rows of `table` (`[rows, features]`) picked by `indices`; the result is `indices.shape + [features]`.
/// Out-of-range indices give zero rows.
public func embeddingLookup(_ table: Tensor, indices: IndexTensor) -> Tensor {
    precondition(table.rank == 2, "embeddingLookup: table must be [rows, features], got \(table.shape)")
    precondition(indices.backend === table.backend || indices.backend.device.id == table.backend.device.id,
                 "embeddingLookup: table on \(table.backend.device.id) but indices on \(indices.backend.device.id)")
    let (rows, columns) = (table.shape[0], table.shape[1])
    let backend = table.backend
    let out = Tensor(uninitialized: indices.shape + [columns], on: backend)
    backend.gatherRows(table.storage, tableRows: rows, indices: indices.storage, into: out.storage, indexCount: indices.elementCount, columns: columns)
    out.recordGradient("embeddingLookup", inputs: [table]) { gradient in
        let result = Tensor.zeros(table.shape, on: backend)
        backend.scatterAddRows(gradient.storage, indices: indices.storage, indexCount: indices.elementCount, into: result.storage, tableRows: rows, columns: columns)
        return [result]
    }
    return out
}

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

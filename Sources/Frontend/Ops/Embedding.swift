// The embedding family's op: rows of a table looked up by index, with the deterministic scatter-add
// gradient. Backend: EmbeddingKernels (Sources/Backend/Families/Embedding.swift).

/// Rows of `table` (`[rows, features]`) picked by `indices`; the result is `indices.shape + [features]`.
/// Out-of-range indices give zero rows.
public func embeddingLookup(_ table: Tensor, indices: IndexTensor) -> Tensor {
    precondition(table.rank == 2, "embeddingLookup: table must be [rows, features], got \(table.shape)")
    precondition(indices.backend === table.backend || indices.backend.device.id == table.backend.device.id,
                 "embeddingLookup: table on \(table.backend.device.id) but indices on \(indices.backend.device.id)")
    let (rows, columns) = (table.shape[0], table.shape[1])
    let backend = table.backend
    let out = Tensor(uninitialized: indices.shape + [columns], on: backend)
    let shape = EmbeddingShape(tableRows: rows, indexCount: indices.elementCount, columns: columns)
    backend.gatherRows(table.storage, indices: indices.storage, into: out.storage, shape: shape)
    out.recordGradient("embeddingLookup", inputs: [table]) { gradient in
        let result = Tensor.zeros(table.shape, on: backend)
        backend.scatterAddRows(gradient.storage, indices: indices.storage, into: result.storage, shape: shape)
        return [result]
    }
    return out
}

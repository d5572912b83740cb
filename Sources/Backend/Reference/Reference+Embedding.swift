// The embedding family in float64 (see Families/Embedding.swift).

extension Reference {
    /// ``EmbeddingKernels/gatherRows(_:indices:into:shape:)``: `out[n, c] = table[indices[n], c]`, 0 when
    /// `indices[n]` is outside `0..<tableRows`. Returns `[indexCount, columns]`.
    public static func gatherRows(_ table: [Double], indices: [Int32], shape: EmbeddingShape) -> [Double] {
        (0..<shape.indexCount).flatMap { n in
            let row = Int(indices[n])
            return (0..<shape.columns).map { c in (0..<shape.tableRows).contains(row) ? table[row * shape.columns + c] : 0 }
        }
    }

    /// ``EmbeddingKernels/scatterAddRows(_:indices:into:shape:)``: `table[indices[n], c] += source[n, c]` for
    /// `n` in increasing order, skipping indices outside `0..<tableRows`. Returns the updated table.
    public static func scatterAddRows(_ source: [Double], indices: [Int32], into table: [Double], shape: EmbeddingShape) -> [Double] {
        var result = table
        for n in 0..<shape.indexCount {
            let row = Int(indices[n])
            guard (0..<shape.tableRows).contains(row) else { continue }
            for c in 0..<shape.columns { result[row * shape.columns + c] += source[n * shape.columns + c] }
        }
        return result
    }
}

// The embedding family: rows of a table gathered by index, and the deterministic scatter-add of the
// gradient. Frontend: Ops/Embedding.swift (embeddingLookup) · CPU: CPU/CPUBackend+Embedding.swift,
// CKilnCPU/embedding.c · OpenCL: OpenCL/OpenCLBackend+Embedding.swift, Kernels/embedding.cl · float64:
// Reference/Reference+Embedding.swift.

/// Row lookups by index on a device. `indices` holds `Int32` row numbers; an index outside
/// `0..<tableRows` reads zeros and receives nothing.
public protocol EmbeddingKernels {
    /// Embedding lookup: `out[n, :] = table[indices[n], :]` for `n < indexCount` (`out` is
    /// `[indexCount, columns]`, the table `[tableRows, columns]`).
    func gatherRows(_ table: DeviceBuffer, indices: DeviceBuffer, into out: DeviceBuffer, shape: EmbeddingShape)
    /// The embedding gradient: `table[indices[n], :] += source[n, :]`, adding rows in increasing `n` so the
    /// result does not depend on scheduling, however often an index repeats.
    func scatterAddRows(_ source: DeviceBuffer, indices: DeviceBuffer, into table: DeviceBuffer, shape: EmbeddingShape)
}

/// Sizes of a lookup: a `[tableRows, columns]` table and `indexCount` indices.
public struct EmbeddingShape: Sendable, Hashable, CustomStringConvertible {
    public var tableRows: Int
    public var indexCount: Int
    public var columns: Int

    public init(tableRows: Int, indexCount: Int, columns: Int) {
        self.tableRows = tableRows
        self.indexCount = indexCount
        self.columns = columns
    }

    public var description: String { "[table \(tableRows) × \(columns), \(indexCount) indices]" }

    /// Traps with a message naming the op and the sizes when a size is negative or a buffer is too small;
    /// `rows` is the `[indexCount, columns]` operand. Both backends' lookups start with it.
    func validate(_ op: StaticString, table: DeviceBuffer, indices: DeviceBuffer, rows: DeviceBuffer) {
        precondition(tableRows >= 0 && indexCount >= 0 && columns >= 0, "\(op): negative size in \(self)")
        table.require(tableRows * columns, "table", of: op, "\(self)")
        indices.require(indexCount, "indices", of: op, "\(self)")
        rows.require(indexCount * columns, "the [indexCount, columns] operand", of: op, "\(self)")
    }
}

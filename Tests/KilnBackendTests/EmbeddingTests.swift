import KilnBackend
import KilnTestSupport
import Testing

@Suite("row lookups by index against the float64 reference")
struct EmbeddingTests {
    // The check's embedding case (CheckCases.embedding): gather and deterministic scatter-add of rows with a
    // negative index, one past the table and 100 indices into one row, outputs poisoned first, relative
    // error below 1e-5 (copies and in-order sums of few terms, element-wise work, DESIGN.md); here at every
    // odd width.
    @Test("gather and deterministic scatter-add of rows, repeated and out-of-range indices", arguments: BackendCase.withGPUParameters)
    func rowsByIndex(_ backendCase: BackendCase) throws {
        expectCheckCasesPass(.embedding, on: try backendCase.makeBackend(), "\(backendCase)") { lists in
            lists.embedding = [1, 7, 33, 127, 513].map { EmbeddingShape(tableRows: 11, indexCount: 300, columns: $0) }
        }
    }
}

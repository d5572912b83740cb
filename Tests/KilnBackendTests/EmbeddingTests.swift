import KilnBackend
import KilnTestSupport
import Testing

@Suite("row lookups by index against the float64 reference")
struct EmbeddingTests {
    // Copies and in-order sums of few terms (element-wise work, DESIGN.md): relative error below 1e-5.
    static let bound = CheckBound.elementwise

    @Test("gather and deterministic scatter-add of rows, repeated and out-of-range indices", arguments: BackendCase.withGPUParameters)
    func rowsByIndex(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for columns in [1, 7, 33, 127, 513] {
            let shape = EmbeddingShape(tableRows: 11, indexCount: 300, columns: columns)
            let table = random.floats(shape.tableRows * columns)
            var indices = random.integers(shape.indexCount, in: 0..<Int32(shape.tableRows))
            indices[5] = -1
            indices[17] = Int32(shape.tableRows)
            indices[100..<200] = ArraySlice(repeating: 3, count: 100)  // many rows into one entry
            let indexBuffer = backend.makeBuffer(indices)
            let gathered = backend.poisoned(shape.indexCount * columns)
            backend.gatherRows(backend.makeBuffer(table), indices: indexBuffer, into: gathered, shape: shape)
            let expectedGather = Reference.gatherRows(table.doubles, indices: indices, shape: shape)
            #expect(relativeError(try backend.download(gathered), expectedGather) < Self.bound, "gather \(shape), seed \(random.seed)")

            let source = random.floats(shape.indexCount * columns), start = random.floats(shape.tableRows * columns)
            let accumulated = backend.makeBuffer(start)
            backend.scatterAddRows(backend.makeBuffer(source), indices: indexBuffer, into: accumulated, shape: shape)
            let expectedScatter = Reference.scatterAddRows(source.doubles, indices: indices, into: start.doubles, shape: shape)
            #expect(relativeError(try backend.download(accumulated), expectedScatter) < Self.bound, "scatter-add \(shape), seed \(random.seed)")
        }
    }
}

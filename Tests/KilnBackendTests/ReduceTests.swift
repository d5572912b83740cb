import KilnBackend
import KilnTestSupport
import Testing

@Suite("reductions against the float64 reference")
struct ReduceTests {
    // Long reductions (DESIGN.md): relative error below 1e-4 (CheckBound.longReduction).
    // The check's reduce case (CheckCases.reduce): every reduction of one fresh input along the middle axis,
    // outputs poisoned first; here over the long list of shapes (lengths 1 to 100 003, inner strides).
    @Test("sum, mean, max, min and sum of squares along an axis", arguments: BackendCase.withGPUParameters)
    func reductions(_ backendCase: BackendCase) throws {
        expectCheckCasesPass(.reduce, on: try backendCase.makeBackend(), "\(backendCase)") { lists in
            lists.reduce = [
                (1, 1, 1), (1, 513, 1), (7, 33, 1), (1, 7, 127), (33, 127, 7), (3, 1, 513), (127, 7, 33), (1, 100_003, 1),
                (2, 5000, 3), (5, 1031, 1), (2, 3, 300),
            ].map { ReduceShape(outer: $0.0, length: $0.1, inner: $0.2) }
        }
    }
}

import KilnBackend
import KilnTestSupport
import Testing

@Suite("counter-based random numbers against the reference")
struct RandomTests {
    // The check's random case (CheckCases.random): a fresh seed and offset, the output poisoned first, the
    // values equal to the reference's bit for bit (24-bit values are exact in float32: the same bits on
    // every device); here at every odd count.
    @Test("every backend gives the reference's values exactly, at odd counts and offsets", arguments: BackendCase.withGPUParameters)
    func uniform(_ backendCase: BackendCase) throws {
        expectCheckCasesPass(.random, on: try backendCase.makeBackend(), "\(backendCase)") { $0.randomCounts = [1, 7, 33, 127, 513, 100_003] }
    }

    @Test("the values are uniform in [0, 1): range, mean and variance of many")
    func moments() {
        let values = Reference.randomUniform(count: 100_003, seed: 1234, offset: 99)
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
        #expect(values.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(abs(mean - 0.5) < 0.005)
        #expect(abs(variance - 1.0 / 12) < 0.002)
    }
}

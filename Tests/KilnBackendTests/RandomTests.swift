import KilnBackend
import KilnTestSupport
import Testing

@Suite("counter-based random numbers against the reference")
struct RandomTests {
    @Test("every backend gives the reference's values exactly, at odd counts and offsets", arguments: BackendCase.withGPUParameters)
    func uniform(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        for count in [1, 7, 33, 127, 513, 100_003] {
            let seed = random.next(), offset = random.next() >> 1
            let buffer = backend.poisoned(count)
            backend.randomUniform(into: buffer, count: count, seed: seed, offset: offset)
            let values = try backend.download(buffer)
            // 24-bit values are exact in float32: the same bits on every device.
            #expect(values.doubles == Reference.randomUniform(count: count, seed: seed, offset: offset), "n \(count), seed \(seed), offset \(offset)")
            #expect(values.allSatisfy { $0 >= 0 && $0 < 1 })
        }
    }

    @Test("the values are uniform: mean and variance of many")
    func moments() {
        let values = Reference.randomUniform(count: 100_003, seed: 1234, offset: 99)
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
        #expect(abs(mean - 0.5) < 0.005)
        #expect(abs(variance - 1.0 / 12) < 0.002)
    }
}

import Foundation

/// The host-side random generator behind every initializer and data set: xoshiro256** (Blackman &
/// Vigna, 2018) seeded through SplitMix64. Because it runs on the host, initial weights and data order are
/// identical on every device. Tests and checks draw their inputs from it too, each from a fresh seed that
/// they print on failure, so a failing case can be replayed with ``init(seed:)``.
public struct RandomGenerator: RandomNumberGenerator, Sendable {
    /// The seed that replays this generator's stream from its start with ``init(seed:)``.
    public let seed: UInt64
    private var state: (UInt64, UInt64, UInt64, UInt64)
    private var spareNormal: Double?

    public init(seed: UInt64) {
        self.seed = seed
        var z = seed
        func next() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        state = (next(), next(), next(), next())
    }

    /// A generator for an independent stream derived from this seed and a label (one per parameter, per
    /// data split, …), so adding a stream does not shift the others.
    public init(seed: UInt64, stream: String) {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in stream.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        self.init(seed: seed ^ hash)
    }

    /// A generator with a seed drawn from the system's generator, for tests and device checks that report
    /// ``seed`` when they fail. Model code always passes its seed.
    public static func withFreshSeed() -> RandomGenerator {
        RandomGenerator(seed: UInt64.random(in: 0...UInt64.max))
    }

    public mutating func next() -> UInt64 {
        let result = rotate(state.1 &* 5, 7) &* 9
        let shifted = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= shifted
        state.3 = rotate(state.3, 45)
        return result
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A uniform double in [0, 1) with 53 random bits.
    public mutating func nextUniform() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A standard normal sample (Box–Muller, both values used).
    public mutating func nextNormal() -> Double {
        if let spare = spareNormal {
            spareNormal = nil
            return spare
        }
        var u = nextUniform()
        while u <= 0 { u = nextUniform() }
        let v = nextUniform()
        let radius = (-2 * Foundation.log(u)).squareRoot()
        spareNormal = radius * Foundation.sin(2 * Double.pi * v)
        return radius * Foundation.cos(2 * Double.pi * v)
    }

    /// `count` floats uniform in `[low, high)`.
    public mutating func uniform(_ count: Int, low: Float, high: Float) -> [Float] {
        (0..<count).map { _ in low + (high - low) * Float(nextUniform()) }
    }

    /// `count` floats from N(mean, std²).
    public mutating func normal(_ count: Int, mean: Float = 0, standardDeviation: Float = 1) -> [Float] {
        (0..<count).map { _ in mean + standardDeviation * Float(nextNormal()) }
    }

    /// `count` floats uniform in the closed `range`, drawn with the standard library's
    /// `Float.random(in:using:)` (test and check inputs).
    public mutating func floats(_ count: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in Float.random(in: range, using: &self) }
    }

    /// `count` integers uniform in `range` (labels and indices).
    public mutating func integers(_ count: Int, in range: Range<Int32>) -> [Int32] {
        (0..<count).map { _ in Int32.random(in: range, using: &self) }
    }

    /// A uniformly random permutation of `0..<count` (Fisher–Yates).
    public mutating func permutation(_ count: Int) -> [Int] {
        var values = Array(0..<count)
        guard count > 1 else { return values }
        for index in stride(from: count - 1, to: 0, by: -1) {
            let other = Int(next() % UInt64(index + 1))
            values.swapAt(index, other)
        }
        return values
    }
}

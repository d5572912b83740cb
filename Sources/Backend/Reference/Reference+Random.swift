// The random family in float64 terms (see Families/Random.swift).

extension Reference {
    /// SplitMix64's finalizer (Steele, Lea & Flood, 2014): `z += 0x9E3779B97F4A7C15`, then
    /// `z = (z ⊕ (z >> 30)) · 0xBF58476D1CE4E5B9`, `z = (z ⊕ (z >> 27)) · 0x94D049BB133111EB`, `z ⊕ (z >> 31)`.
    public static func splitMix64(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// ``RandomKernels/randomUniform(into:count:seed:offset:)``: element `i < count` is
    /// `⌊splitMix64(seed ⊕ splitMix64(offset + i)) / 2⁴⁰⌋ / 2²⁴`, a float in [0, 1) with 24 random bits
    /// (exact in float32, so every backend must match it bit for bit).
    public static func randomUniform(count: Int, seed: UInt64, offset: UInt64) -> [Double] {
        (0..<count).map { index in
            Double(splitMix64(seed ^ splitMix64(offset &+ UInt64(index))) >> 40) / 16_777_216
        }
    }
}

import Foundation

/// Eight-lane float math for the CPU backend's hot loops. `Foundation.exp` on a `Float` is a scalar
/// libm call; softmax, SiLU and sigmoid over large tensors spend most of their time there.
enum VectorMath {
    private static let log2e = SIMD8<Float>(repeating: 1.442_695_040_888_963_4)
    // ln 2 split so that n · ln2High is exact for |n| < 2^9 (Cody & Waite).
    private static let ln2High = SIMD8<Float>(repeating: 0.693_359_375)
    private static let ln2Low = SIMD8<Float>(repeating: -2.121_944_4e-4)

    /// 1.5 · 2²³: adding it rounds a float to an integer held in the low mantissa bits.
    private static let roundingMagic = SIMD8<Float>(repeating: 12_582_912)

    /// e^x with a relative error of about 2 ulp: x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by a degree-7
    /// polynomial (Cephes' `expf` coefficients), then scaled by 2^n through the exponent bits. Overflow
    /// gives +∞, underflow 0, NaN stays NaN. Written with bit casts only: Swift's generic conversions
    /// between vector types are scalar loops.
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var clamped = x
        clamped.replace(with: SIMD8(repeating: -87.33), where: x .< -87.33)
        clamped.replace(with: SIMD8(repeating: 88.72), where: x .> 88.72)
        let shifted = clamped * log2e + roundingMagic
        let n = shifted - roundingMagic
        let r = clamped - n * ln2High - n * ln2Low
        var p = SIMD8<Float>(repeating: 1.987_569_150_0e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let er = 1 + r + r * r * p
        let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(roundingMagic, to: SIMD8<Int32>.self)
        let exponent = (integer &+ SIMD8(repeating: 127)) &<< SIMD8(repeating: 23)
        var result = er * unsafeBitCast(exponent, to: SIMD8<Float>.self)
        result.replace(with: .infinity, where: x .> 88.72)
        result.replace(with: 0, where: x .< -87.33)
        result.replace(with: x, where: x .!= x)
        return result
    }

    /// The larger of two vectors, lane by lane.
    @inline(__always)
    static func maximum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        var result = a
        result.replace(with: b, where: b .> a)
        return result
    }

    /// σ(x) = 1 / (1 + e^−x), without overflow for either sign.
    @inline(__always)
    static func sigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let e = exp(-abs(x))
        let positive = 1 / (1 + e)
        var result = e / (1 + e)
        result.replace(with: positive, where: x .>= 0)
        return result
    }

    @inline(__always)
    static func abs(_ x: SIMD8<Float>) -> SIMD8<Float> {
        unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: SIMD8<Float>.self)
    }

    /// `dx = dy · f′(x)` eight elements at a time, `scalar` for the tail.
    @inline(__always)
    static func scaleByDerivative(
        _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ count: Int,
        lanes: (SIMD8<Float>) -> SIMD8<Float>, scalar: (Float) -> Float
    ) {
        var index = 0
        while index + 8 <= count {
            let value = UnsafeRawPointer(x + index).loadUnaligned(as: SIMD8<Float>.self)
            let gradient = UnsafeRawPointer(dy + index).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(dx + index).storeBytes(of: gradient * lanes(value), as: SIMD8<Float>.self)
            index += 8
        }
        while index < count {
            dx[index] = dy[index] * scalar(x[index])
            index += 1
        }
    }

    /// Applies `lanes` to eight elements at a time and `scalar` to the tail.
    @inline(__always)
    static func map(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
        lanes: (SIMD8<Float>) -> SIMD8<Float>, scalar: (Float) -> Float
    ) {
        var index = 0
        while index + 8 <= count {
            let value = UnsafeRawPointer(x + index).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(y + index).storeBytes(of: lanes(value), as: SIMD8<Float>.self)
            index += 8
        }
        while index < count {
            y[index] = scalar(x[index])
            index += 1
        }
    }
}

import Foundation
import KilnBackend

/// The backends a test runs on: the CPU backend and every OpenCL device (PoCL's CPU device included).
///
/// Tests take a `BackendCase` argument (`@Test(arguments: BackendCase.all)`) and make a fresh backend from
/// it, so each case runs on its own kernel objects and may run in parallel with the others.
public struct BackendCase: Sendable, CustomStringConvertible {
    public let deviceID: String
    public let deviceName: String

    /// The CPU backend plus every OpenCL device; when no OpenCL platform exists, only the CPU backend
    /// (and a note on standard error says the OpenCL cases are skipped).
    public static let all: [BackendCase] = {
        let devices = Devices.all()
        if !devices.contains(where: { $0.backend == "opencl" }) {
            FileHandle.standardError.write(Data("note: no OpenCL platform found; OpenCL backend test cases are skipped\n".utf8))
        }
        return devices.map { BackendCase(deviceID: $0.id, deviceName: $0.name) }
    }()

    /// Only the OpenCL devices (empty without an OpenCL platform).
    public static let openCL: [BackendCase] = all.filter { $0.deviceID != "cpu" }

    /// A new backend for this device.
    public func makeBackend() throws -> any Backend {
        try Devices.makeBackend(deviceID)
    }

    public var description: String { deviceID == "cpu" ? "cpu" : "\(deviceID) (\(deviceName))" }
}


/// A seeded generator (xoshiro256**) for test data. Each test draws a fresh seed and reports it, so a
/// failure can be replayed with `TestRandom(seed:)`.
public struct TestRandom: RandomNumberGenerator, Sendable {
    public let seed: UInt64
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator with a fresh seed from the system.
    public init() {
        self.init(seed: UInt64.random(in: 0...UInt64.max))
    }

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

    public mutating func next() -> UInt64 {
        let result = rotate(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotate(state.3, 45)
        return result
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// `count` floats uniform in `range`.
    public mutating func floats(_ count: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in Float.random(in: range, using: &self) }
    }

    /// `count` integers uniform in `range`.
    public mutating func integers(_ count: Int, in range: Range<Int32>) -> [Int32] {
        (0..<count).map { _ in Int32.random(in: range, using: &self) }
    }
}

/// Relative error ‖out − reference‖₂ / ‖reference‖₂ (absolute when the reference is zero). NaN anywhere in
/// `out` (an unwritten, poisoned element) gives infinity, so it always fails a tolerance.
public func relativeError(_ out: [Float], _ reference: [Double]) -> Double {
    precondition(out.count == reference.count, "relativeError: \(out.count) values against \(reference.count) references")
    var difference = 0.0
    var norm = 0.0
    for (value, expected) in zip(out, reference) {
        if !value.isFinite && expected.isFinite { return .infinity }
        if value.isInfinite && expected.isInfinite && (value > 0) == (expected > 0) { continue }
        difference += (Double(value) - expected) * (Double(value) - expected)
        norm += expected * expected
    }
    return norm == 0 ? difference.squareRoot() : (difference / norm).squareRoot()
}

/// Error ‖out − reference‖₂ relative to ‖magnitude‖₂, the size of the terms the reference sums (see
/// `SplineReference.Layer.forwardMagnitude()`): the measure for sums whose terms may cancel, where the
/// error of a float32 result is bounded by the size of its terms rather than by the result.
public func relativeError(_ out: [Float], _ reference: [Double], magnitude: [Double]) -> Double {
    precondition(out.count == reference.count && magnitude.count == reference.count, "relativeError: sizes \(out.count), \(reference.count), \(magnitude.count) differ")
    var difference = 0.0, norm = 0.0
    for index in out.indices {
        if !out[index].isFinite && reference[index].isFinite { return .infinity }
        difference += (Double(out[index]) - reference[index]) * (Double(out[index]) - reference[index])
        norm += magnitude[index] * magnitude[index]
    }
    return norm == 0 ? difference.squareRoot() : (difference / norm).squareRoot()
}

/// Largest absolute difference, infinity for a NaN or infinite value where the reference is finite.
public func maximumAbsoluteError(_ out: [Float], _ reference: [Double]) -> Double {
    precondition(out.count == reference.count)
    var worst = 0.0
    for (value, expected) in zip(out, reference) {
        if !value.isFinite && expected.isFinite { return .infinity }
        worst = max(worst, abs(Double(value) - expected))
    }
    return worst
}

extension Backend {
    /// A buffer of `count` elements filled with NaN, so any element an op fails to write shows up.
    public func poisoned(_ count: Int) -> DeviceBuffer {
        let buffer = allocate(count)
        fill(buffer, offset: 0, count: count, value: .nan)
        return buffer
    }
}

/// Central finite differences of a scalar function of many variables, in float64.
public func finiteDifferenceGradient(_ x: [Double], step: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var point = x
    return x.indices.map { index in
        let original = point[index]
        point[index] = original + step
        let plus = f(point)
        point[index] = original - step
        let minus = f(point)
        point[index] = original
        return (plus - minus) / (2 * step)
    }
}

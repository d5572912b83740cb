// The random family: counter-based uniform numbers, identical on every device (dropout masks). The host
// generator behind initial weights and data order is ``RandomGenerator``.
// Frontend: Ops/Random.swift (dropout) · CPU: CPU/CPUBackend+Random.swift, CKilnCPU/random.c · OpenCL:
// OpenCL/OpenCLBackend+Random.swift, Kernels/random.cl · float64: Reference/Reference+Random.swift.

/// Random numbers generated on a device.
public protocol RandomKernels {
    /// Fills `count` elements with uniform values in [0, 1) from a counter-based generator: element `i` is
    /// `(splitMix64(seed ^ splitMix64(offset + i)) >> 40) / 2²⁴` (see ``Reference/randomUniform(count:seed:offset:)``),
    /// identical on every backend.
    func randomUniform(into buffer: DeviceBuffer, count: Int, seed: UInt64, offset: UInt64)
}

/// The size check of ``RandomKernels/randomUniform(into:count:seed:offset:)``, written once.
enum RandomValidation {
    static func uniform(_ buffer: DeviceBuffer, count: Int) {
        precondition(count >= 0 && count <= buffer.count, "randomUniform: count \(count) exceeds buffer \(buffer.count)")
    }
}

// The reduce family: sum, mean, max, min and sum of squares along one axis.
// Frontend: Ops/Reduce.swift (sum, mean, max) · CPU: CPU/CPUBackend+Reduce.swift, CKilnCPU/reduce.c ·
// OpenCL: OpenCL/OpenCLBackend+Reduce.swift, Kernels/reduce.cl · float64: Reference/Reference+Reduce.swift.

/// Reductions along one axis on a device.
public protocol ReduceKernels {
    /// Reduces the middle axis of `x` viewed as `[outer, length, inner]` into `y` viewed as `[outer, inner]`:
    /// `y[o, i] = op over l < length of x[o, l, i]`. Sums are accumulated in a fixed order (never
    /// depending on the thread count or the scheduling), in double precision on the CPU.
    func reduce(_ op: ReductionOp, _ x: DeviceBuffer, into y: DeviceBuffer, shape: ReduceShape)
}

/// Reductions along one axis (``ReduceKernels/reduce(_:_:into:shape:)``).
public enum ReductionOp: Int32, Sendable, Hashable, CaseIterable {
    case sum = 0
    case mean = 1
    case max = 2
    case min = 3
    /// `Σ x²` (squared norms for gradient clipping).
    case sumOfSquares = 4
}

/// The view of a reduction: the input as `[outer, length, inner]`, reduced over `length`.
public struct ReduceShape: Sendable, Hashable, CustomStringConvertible {
    public var outer: Int
    public var length: Int
    public var inner: Int

    public init(outer: Int, length: Int, inner: Int) {
        self.outer = outer
        self.length = length
        self.inner = inner
    }

    /// Elements read: `outer · length · inner`.
    public var inputCount: Int { outer * length * inner }
    /// Elements written: `outer · inner`.
    public var outputCount: Int { outer * inner }

    public var description: String { "[outer \(outer), length \(length), inner \(inner)]" }

    /// Traps with a message naming the op and the shape when a size is negative, a buffer is too small, or
    /// a max or min is asked of an empty axis; every backend's `reduce` starts with it.
    func validate(_ op: ReductionOp, x: DeviceBuffer, y: DeviceBuffer) {
        precondition(outer >= 0 && length >= 0 && inner >= 0, "reduce \(op): negative size in \(self)")
        precondition(length > 0 || (op != .max && op != .min), "reduce \(op): cannot take the \(op) of an empty axis")
        x.require(inputCount, "x", of: "reduce", "\(op) over \(self)")
        y.require(outputCount, "y", of: "reduce", "\(op) over \(self)")
    }
}

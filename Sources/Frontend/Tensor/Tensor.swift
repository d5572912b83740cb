import Foundation
@_exported import KilnBackend
@_exported import KilnFormats

/// A float32 array on one device, with an optional gradient.
///
/// A tensor is a `final class` over device memory, a shape and, when gradients are being recorded, the
/// operation that produced it. Operations are methods and free functions that compute on the tensor's
/// backend without waiting for the result; only reading values back (``toArray()``, ``item()``) waits.
///
/// ```swift
/// let backend = try Devices.makeBackend("cpu")
/// let w = Tensor.parameter(randomNormal: [3, 2], standardDeviation: 0.1, generator: &random, on: backend)
/// let loss = (x.matmul(w) - y).square().mean()
/// loss.backward()          // w.gradient now holds ∂loss/∂w
/// ```
///
/// Tensors are not `Sendable`: use one from one thread at a time, like the backend it lives on.
public final class Tensor {
    /// The size of each dimension; `[]` is a scalar.
    public let shape: [Int]
    /// The device the tensor lives on.
    public let backend: any Backend
    /// Device memory holding `elementCount` floats in row-major order (shared by reshaped views).
    public let storage: DeviceBuffer
    /// Whether gradients flow to this tensor (set for parameters, and for results computed from one while
    /// recording).
    public internal(set) var requiresGradient: Bool
    /// The gradient accumulated by ``backward(_:)``, for tensors that require gradients and were not
    /// produced by an operation (parameters).
    public internal(set) var gradient: Tensor?
    /// The recorded operation that produced this tensor, while gradients are being recorded.
    var node: GradientNode?

    /// Wraps existing device memory (which must hold at least `shape`'s element count).
    public init(storage: DeviceBuffer, shape: [Int], backend: any Backend, requiresGradient: Bool = false) {
        let count = shape.reduce(1, *)
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        precondition(storage.count >= count, "Tensor: shape \(shape) needs \(count) elements, storage holds \(storage.count)")
        self.shape = shape
        self.backend = backend
        self.storage = storage
        self.requiresGradient = requiresGradient
    }

    /// A tensor with uninitialized contents.
    public convenience init(uninitialized shape: [Int], on backend: any Backend) {
        self.init(storage: backend.allocate(shape.reduce(1, *)), shape: shape, backend: backend)
    }

    /// A tensor holding `values` in row-major order.
    public convenience init(_ values: [Float], shape: [Int], on backend: any Backend) {
        precondition(values.count == shape.reduce(1, *), "Tensor: \(values.count) values do not fill shape \(shape)")
        self.init(storage: backend.makeBuffer(values), shape: shape, backend: backend)
    }

    /// A scalar tensor.
    public convenience init(scalar value: Float, on backend: any Backend) {
        self.init([value], shape: [], on: backend)
    }

    /// A tensor with every element equal to `value`.
    public static func full(_ shape: [Int], value: Float, on backend: any Backend) -> Tensor {
        let tensor = Tensor(uninitialized: shape, on: backend)
        backend.fill(tensor.storage, offset: 0, count: tensor.elementCount, value: value)
        return tensor
    }

    public static func zeros(_ shape: [Int], on backend: any Backend) -> Tensor { full(shape, value: 0, on: backend) }
    public static func ones(_ shape: [Int], on backend: any Backend) -> Tensor { full(shape, value: 1, on: backend) }

    /// Samples from N(mean, std²), drawn on the host so every device gets the same values.
    public static func randomNormal(
        _ shape: [Int], mean: Float = 0, standardDeviation: Float = 1, generator: inout RandomGenerator, on backend: any Backend
    ) -> Tensor {
        Tensor(generator.normal(shape.reduce(1, *), mean: mean, standardDeviation: standardDeviation), shape: shape, on: backend)
    }

    /// Samples uniform in `[low, high)`, drawn on the host.
    public static func randomUniform(
        _ shape: [Int], low: Float, high: Float, generator: inout RandomGenerator, on backend: any Backend
    ) -> Tensor {
        Tensor(generator.uniform(shape.reduce(1, *), low: low, high: high), shape: shape, on: backend)
    }

    /// A trainable leaf tensor: gradients accumulate into ``gradient``.
    public static func parameter(_ values: [Float], shape: [Int], on backend: any Backend) -> Tensor {
        let tensor = Tensor(values, shape: shape, on: backend)
        tensor.requiresGradient = true
        return tensor
    }

    /// Number of elements.
    public var elementCount: Int { shape.reduce(1, *) }
    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// The device's description, for messages.
    public var deviceName: String { backend.device.id }

    /// Copies the values back to the host, waiting for pending work.
    ///
    /// - Throws: ``BackendError`` if the device reported an error (out of memory, a failed kernel).
    public func toArray() throws(BackendError) -> [Float] {
        try backend.download(storage, offset: 0, count: elementCount)
    }

    /// The value of a one-element tensor.
    public func item() throws(BackendError) -> Float {
        precondition(elementCount == 1, "item(): tensor of shape \(shape) has \(elementCount) elements")
        return try toArray()[0]
    }

    /// Marks this tensor as a trainable leaf (or not). Only leaves may change.
    public func setRequiresGradient(_ value: Bool) {
        precondition(node == nil, "setRequiresGradient: only leaf tensors (not results of operations) can change")
        requiresGradient = value
    }

    /// Drops the accumulated gradient.
    public func zeroGradient() { gradient = nil }

    /// A copy in fresh memory, detached from the graph.
    public func copied() -> Tensor {
        let copy = Tensor(uninitialized: shape, on: backend)
        backend.copy(storage, offset: 0, to: copy.storage, offset: 0, count: elementCount)
        return copy
    }

    /// The same values, without the recorded operation (gradients stop here).
    public func detached() -> Tensor {
        Tensor(storage: storage, shape: shape, backend: backend)
    }

    /// Overwrites this tensor's values with another's (same shape), outside the graph (loading
    /// checkpoints, optimizer updates).
    public func assign(_ other: Tensor) {
        precondition(other.shape == shape, "assign: shape \(other.shape) into \(shape)")
        Tensor.checkSameDevice("assign", self, other)
        backend.copy(other.storage, offset: 0, to: storage, offset: 0, count: elementCount)
    }

    /// Overwrites this tensor's values from the host.
    public func assign(_ values: [Float]) {
        precondition(values.count == elementCount, "assign: \(values.count) values into shape \(shape)")
        backend.upload(values, to: storage)
    }

    /// Traps, naming the op and both devices, when tensors of two devices meet in one op.
    static func checkSameDevice(_ op: String, _ tensors: Tensor...) {
        guard let first = tensors.first else { return }
        for tensor in tensors.dropFirst() where tensor.backend !== first.backend && tensor.backend.device.id != first.backend.device.id {
            preconditionFailure(
                "\(op): tensors live on different devices (\(first.backend.device.id) and \(tensor.backend.device.id)); move one with .to(_:) first")
        }
    }

    /// This tensor on another backend (copied through the host), detached from the graph.
    public func to(_ other: any Backend) throws(BackendError) -> Tensor {
        if other === backend { return self }
        return Tensor(try toArray(), shape: shape, on: other)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(shape: \(shape), device: \(backend.device.id)\(requiresGradient ? ", requiresGradient" : ""))" }
}

/// Integer class labels or row indices (`Int32`) on a device, for cross-entropy and embedding lookups.
/// Not differentiable.
public final class IndexTensor {
    public let shape: [Int]
    public let backend: any Backend
    public let storage: DeviceBuffer
    /// How many entries are valid labels (non-negative); negative entries are ignored by cross-entropy.
    public let validCount: Int

    /// Uploads indices; negative values mark ignored entries (for cross-entropy).
    public init(_ values: [Int32], shape: [Int], on backend: any Backend) {
        precondition(values.count == shape.reduce(1, *), "IndexTensor: \(values.count) values do not fill shape \(shape)")
        self.shape = shape
        self.backend = backend
        self.storage = backend.makeBuffer(values)
        self.validCount = values.lazy.filter { $0 >= 0 }.count
    }

    public var elementCount: Int { shape.reduce(1, *) }
}

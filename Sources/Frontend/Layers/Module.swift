/// A part of a model: its own parameters and its submodules, each under a stable local name.
///
/// Names compose with dots, as in PyTorch: an `MLP` whose `layers` child is a `Sequential` whose child
/// `"0"` is a `Linear` has the parameter `layers.0.weight`. These names are the checkpoint keys.
public protocol Module: AnyObject {
    /// This module's own trainable tensors, in a fixed order, with local names (`weight`, `bias`) and the
    /// μP role each was created with.
    var ownParameters: [Parameter] { get }
    /// Submodules in a fixed order, with local names (`0`, `embedding`).
    var children: [(name: String, module: any Module)] { get }
    /// State that is saved with the parameters but not trained (a KAN layer's knots).
    var ownBuffers: [(name: String, tensor: Tensor)] { get }
    /// Called after ``load(_:)`` replaced this module's tensors, to refresh anything derived from them.
    func stateDidLoad() throws(BackendError)
}

/// A trainable tensor under its name, with what it is to μP (see ``ParameterRole``).
public struct Parameter {
    /// The local name in ``Module/ownParameters``; the dotted path in ``Module/declaredParameters``.
    public let name: String
    public let tensor: Tensor
    /// How μP scales this tensor with width; nil in models that have no width parametrization (KAN).
    public let role: ParameterRole?

    public init(_ name: String, _ tensor: Tensor, role: ParameterRole?) {
        self.name = name
        self.tensor = tensor
        self.role = role
    }
}

extension Module {
    public var ownParameters: [Parameter] { [] }
    public var children: [(name: String, module: any Module)] { [] }
    public var ownBuffers: [(name: String, tensor: Tensor)] { [] }
    public func stateDidLoad() throws(BackendError) {}

    /// Every parameter of this module and its descendants with its role, under its dotted name, in a
    /// stable order: own parameters first, then each child's.
    public var declaredParameters: [Parameter] {
        var result = ownParameters
        for (childName, child) in children {
            result += child.declaredParameters.map { Parameter("\(childName).\($0.name)", $0.tensor, role: $0.role) }
        }
        return result
    }

    /// Every parameter of this module and its descendants, with dotted names, in a stable order.
    public var parameters: [(name: String, tensor: Tensor)] { declaredParameters.map { ($0.name, $0.tensor) } }

    /// Every buffer of this module and its descendants, with dotted names.
    public var buffers: [(name: String, tensor: Tensor)] {
        var result = ownBuffers
        for (childName, child) in children {
            result += child.buffers.map { ("\(childName).\($0.name)", $0.tensor) }
        }
        return result
    }

    /// Parameters and buffers: everything a checkpoint stores for the model.
    public var state: [(name: String, tensor: Tensor)] { parameters + buffers }

    /// Total number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.tensor.elementCount } }

    /// Calls `body` on this module and every descendant, depth first.
    public func visit(_ body: (any Module) -> Void) {
        body(self)
        for (_, child) in children { child.visit(body) }
    }

    /// Switches dropout (and any other training-only behaviour) on or off in the whole tree.
    public func setTraining(_ training: Bool) {
        visit { ($0 as? any TrainingModeDependent)?.isTraining = training }
    }

    /// Tells step-dependent modules (dropout masks) which training step runs next.
    public func setStep(_ step: Int) {
        visit { ($0 as? any TrainingModeDependent)?.step = step }
    }

    /// Drops every parameter's gradient.
    public func zeroGradients() {
        for (_, tensor) in parameters { tensor.zeroGradient() }
    }

    /// Copies parameter and buffer values from `values` by name.
    ///
    /// - Throws: ``ModelLoadingError`` naming a missing tensor or a shape that differs.
    public func load(_ values: [String: (shape: [Int], values: [Float])]) throws(ModelLoadingError) {
        for (name, tensor) in state {
            guard let entry = values[name] else { throw .missingTensor(name) }
            guard entry.shape == tensor.shape else { throw .shapeMismatch(name, expected: tensor.shape, found: entry.shape) }
            tensor.assign(entry.values)
        }
        var failure: BackendError?
        visit { module in
            do throws(BackendError) { try module.stateDidLoad() } catch { failure = failure ?? error }
        }
        if let failure { throw .device(failure.description) }
    }
}

/// A module that maps one tensor to another.
public protocol Layer: Module {
    func callAsFunction(_ input: Tensor) -> Tensor
}

/// Modules whose forward pass differs between training and evaluation (dropout).
public protocol TrainingModeDependent: Module {
    var isTraining: Bool { get set }
    var step: Int { get set }
}

/// Parameters in a checkpoint that do not fit the model being loaded.
public enum ModelLoadingError: Error, CustomStringConvertible, Equatable {
    case missingTensor(String)
    case shapeMismatch(String, expected: [Int], found: [Int])
    case device(String)

    public var description: String {
        switch self {
        case let .missingTensor(name): "the checkpoint has no tensor '\(name)'; was it written for another model?"
        case let .shapeMismatch(name, expected, found): "tensor '\(name)' has shape \(found) in the checkpoint but the model needs \(expected)"
        case let .device(message): message
        }
    }
}

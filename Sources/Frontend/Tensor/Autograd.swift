/// Reverse-mode automatic differentiation over the dynamic graph that operations record.
///
/// Each operation that receives a tensor requiring gradients records a ``RecordedOperation``: its inputs,
/// its outputs' shapes and a closure mapping the gradients of all its outputs at once to the inputs'
/// gradients (the shape of MLX's VJPs, so an op with two outputs, such as a scan's output and final state,
/// runs one backward for both). The closure sits next to the operation's forward code (see
/// `Sources/Frontend/Ops`). ``Tensor/backward(_:)`` walks the operations in reverse topological order,
/// summing gradients that reach a tensor along several paths, and accumulates the result into the
/// ``Tensor/gradient`` of every leaf that requires gradients.
final class RecordedOperation {
    let name: String
    let inputs: [Tensor]
    let outputShapes: [[Int]]
    /// Given the gradient of each output (nil for an output that no gradient reached; never all nil), the
    /// gradient of each input (nil where an input needs none).
    let backward: ([Tensor?]) -> [Tensor?]

    init(name: String, inputs: [Tensor], outputShapes: [[Int]], backward: @escaping ([Tensor?]) -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.outputShapes = outputShapes
        self.backward = backward
    }
}

/// A computed tensor's place in the graph: the operation that produced it and which of its outputs it is.
/// The operation does not hold its outputs (that would be a cycle); each output holds its operation.
struct GradientNode {
    let operation: RecordedOperation
    let output: Int
}

/// Whether operations record the graph (off inside ``noGrad(_:)`` and while running backward passes).
public enum Autograd {
    @TaskLocal public static var isRecording = true
}

/// Runs `body` without recording gradients: for evaluation, and for updates outside the graph.
public func noGrad<Result>(_ body: () throws -> Result) rethrows -> Result {
    try Autograd.$isRecording.withValue(false) { try body() }
}

extension Tensor {
    /// Records that `outputs` were computed by `operation` from `inputs`, if any input requires gradients
    /// and recording is on. `backward` receives the gradient of every output at once, in `outputs` order,
    /// nil for an output whose gradient did not reach the loss (no zeros are made for it), and returns
    /// the gradient of every input in `inputs` order (nil where none is needed). It runs at most once per
    /// ``backward(_:)``, after every gradient of its outputs has been summed.
    ///
    /// `backward` must not capture the outputs themselves (that would keep the graph alive in a cycle):
    /// capture their storage instead. The outputs must be fresh results, not yet part of a graph.
    public static func recordGradient(_ operation: String, inputs: [Tensor], outputs: [Tensor], backward: @escaping ([Tensor?]) -> [Tensor?]) {
        guard Autograd.isRecording, inputs.contains(where: \.requiresGradient) else { return }
        let recorded = RecordedOperation(name: operation, inputs: inputs, outputShapes: outputs.map(\.shape), backward: backward)
        for (index, output) in outputs.enumerated() {
            precondition(output.node == nil, "\(operation): output \(index) \(output.shape) is already the result of an operation")
            output.requiresGradient = true
            output.node = GradientNode(operation: recorded, output: index)
        }
    }

    /// Records that this tensor was computed by `operation` from `inputs`: the one-output form of
    /// ``recordGradient(_:inputs:outputs:backward:)``, whose `backward` maps this tensor's gradient to the
    /// inputs' gradients.
    func recordGradient(_ operation: String, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        Tensor.recordGradient(operation, inputs: inputs, outputs: [self]) { gradients in backward(gradients[0]!) }
    }

    /// Computes gradients of this tensor with respect to every leaf that requires them, adding them into
    /// the leaves' ``gradient``.
    ///
    /// - Parameters:
    ///   - seed: the gradient of some scalar with respect to this tensor; omitted, this tensor must hold
    ///     one element and the seed is 1.
    ///   - gradientReady: called with each leaf as soon as its ``gradient`` is final, that is once the
    ///     last operation that uses it has run its backward (data-parallel training starts reducing a
    ///     bucket of gradients while the rest of backward runs). Without it, leaves receive their
    ///     gradients at the end, in the order they were first reached.
    public func backward(_ seed: Tensor? = nil, gradientReady: ((Tensor) -> Void)? = nil) {
        precondition(seed != nil || elementCount == 1, "backward(): tensor of shape \(shape) is not a scalar; pass a seed gradient")
        guard requiresGradient else { return }
        if let seed { precondition(seed.shape == shape, "backward(): seed shape \(seed.shape) differs from \(shape)") }
        noGrad {
            var start = seed ?? Tensor.ones(shape, on: backend)
            guard let root = node else {
                accumulateGradient(&start)
                gradientReady?(self)
                return
            }
            // The summed gradients of each pending operation's outputs, and of each leaf (in the order
            // leaves were first reached).
            var outputGradients: [ObjectIdentifier: [Tensor?]] = [:]
            var leafGradients: [ObjectIdentifier: Tensor] = [:]
            var leaves: [Tensor] = []
            func add(_ gradient: Tensor, into slots: inout [Tensor?], at index: Int) {
                slots[index] = slots[index].map { $0 + gradient } ?? gradient
            }
            var rootSlots = [Tensor?](repeating: nil, count: root.operation.outputShapes.count)
            rootSlots[root.output] = start
            outputGradients[ObjectIdentifier(root.operation)] = rootSlots
            let order = Array(Tensor.topologicalOrder(from: root.operation).reversed())
            // With a ready callback: the position of the last operation that uses each leaf, after which
            // the leaf's gradient is final.
            var lastUse: [ObjectIdentifier: Int] = [:]
            if gradientReady != nil {
                for (position, operation) in order.enumerated() {
                    for input in operation.inputs where input.requiresGradient && input.node == nil { lastUse[ObjectIdentifier(input)] = position }
                }
            }
            for (position, operation) in order.enumerated() {
                defer {
                    if let gradientReady {
                        for input in operation.inputs where input.node == nil && lastUse[ObjectIdentifier(input)] == position {
                            lastUse[ObjectIdentifier(input)] = nil
                            if var incoming = leafGradients.removeValue(forKey: ObjectIdentifier(input)) { input.accumulateGradient(&incoming) }
                            gradientReady(input)
                        }
                    }
                }
                guard let gradients = outputGradients.removeValue(forKey: ObjectIdentifier(operation)) else { continue }
                let inputGradients = operation.backward(gradients)
                precondition(inputGradients.count == operation.inputs.count, "\(operation.name): backward returned \(inputGradients.count) gradients for \(operation.inputs.count) inputs")
                for (input, gradient) in zip(operation.inputs, inputGradients) {
                    guard input.requiresGradient, let gradient else { continue }
                    precondition(gradient.shape == input.shape, "\(operation.name): gradient shape \(gradient.shape) for input \(input.shape)")
                    if let producer = input.node {
                        let key = ObjectIdentifier(producer.operation)
                        var slots = outputGradients.removeValue(forKey: key) ?? [Tensor?](repeating: nil, count: producer.operation.outputShapes.count)
                        add(gradient, into: &slots, at: producer.output)
                        outputGradients[key] = slots
                    } else {
                        let key = ObjectIdentifier(input)
                        if let existing = leafGradients[key] {
                            leafGradients[key] = existing + gradient
                        } else {
                            leafGradients[key] = gradient
                            leaves.append(input)
                        }
                    }
                }
            }
            for leaf in leaves {
                // With a ready callback, every leaf has been given its gradient already.
                guard var incoming = leafGradients.removeValue(forKey: ObjectIdentifier(leaf)) else { continue }
                leaf.accumulateGradient(&incoming)
            }
        }
    }

    /// Adds a gradient into this leaf's ``gradient``, taking over the tensor when nothing else holds it.
    private func accumulateGradient(_ incoming: inout Tensor) {
        if let gradient {
            backend.binary(.add, gradient.storage, .contiguous(shape), incoming.storage, .contiguous(shape), into: gradient.storage, shape: shape)
        } else if isKnownUniquelyReferenced(&incoming) && incoming.node == nil && incoming.storage !== storage {
            gradient = incoming
        } else {
            gradient = incoming.copied()
        }
    }

    /// Every operation `root` depends on through tensors that require gradients, each after every
    /// operation that produced one of its inputs.
    private static func topologicalOrder(from root: RecordedOperation) -> [RecordedOperation] {
        var order: [RecordedOperation] = []
        var visited = Set<ObjectIdentifier>()
        // Iterative depth-first search: deep graphs (long sequences) would overflow the stack recursively.
        var stack: [(RecordedOperation, Bool)] = [(root, false)]
        while let (operation, expanded) = stack.popLast() {
            if expanded {
                order.append(operation)
                continue
            }
            guard visited.insert(ObjectIdentifier(operation)).inserted else { continue }
            stack.append((operation, true))
            for input in operation.inputs where input.requiresGradient {
                guard let producer = input.node?.operation, !visited.contains(ObjectIdentifier(producer)) else { continue }
                stack.append((producer, false))
            }
        }
        return order
    }
}

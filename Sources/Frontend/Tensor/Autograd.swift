/// Reverse-mode automatic differentiation over the dynamic graph that operations record.
///
/// Each operation that receives a tensor requiring gradients records a ``GradientNode``: its inputs and a
/// closure mapping the output's gradient to the inputs' gradients. The closure sits next to the
/// operation's forward code (see `Sources/Frontend/Ops`). ``Tensor/backward(_:)`` walks the graph in
/// reverse topological order, summing gradients that reach a tensor along several paths, and
/// accumulates the result into the ``Tensor/gradient`` of every leaf that requires gradients.
final class GradientNode {
    let operation: String
    let inputs: [Tensor]
    /// Given the gradient of the output, the gradient of each input (nil where an input needs none).
    let backward: (Tensor) -> [Tensor?]

    init(operation: String, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        self.operation = operation
        self.inputs = inputs
        self.backward = backward
    }
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
    /// Records that this tensor was computed by `operation` from `inputs`, if any input requires gradients
    /// and recording is on. `backward` must not capture this tensor itself (that would keep the graph
    /// alive in a cycle): capture its storage instead.
    func recordGradient(_ operation: String, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        guard Autograd.isRecording, inputs.contains(where: \.requiresGradient) else { return }
        requiresGradient = true
        node = GradientNode(operation: operation, inputs: inputs, backward: backward)
    }

    /// Computes gradients of this tensor with respect to every leaf that requires them, adding them into
    /// the leaves' ``gradient``.
    ///
    /// - Parameter seed: the gradient of some scalar with respect to this tensor; omitted, this tensor
    ///   must hold one element and the seed is 1.
    public func backward(_ seed: Tensor? = nil) {
        precondition(seed != nil || elementCount == 1, "backward(): tensor of shape \(shape) is not a scalar; pass a seed gradient")
        guard requiresGradient else { return }
        if let seed { precondition(seed.shape == shape, "backward(): seed shape \(seed.shape) differs from \(shape)") }
        noGrad {
            let order = topologicalOrder()
            var gradients: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed ?? Tensor.ones(shape, on: backend)]
            for tensor in order.reversed() {
                guard var incoming = gradients.removeValue(forKey: ObjectIdentifier(tensor)) else { continue }
                if let node = tensor.node {
                    let inputGradients = node.backward(incoming)
                    precondition(inputGradients.count == node.inputs.count, "\(node.operation): backward returned \(inputGradients.count) gradients for \(node.inputs.count) inputs")
                    for (input, gradient) in zip(node.inputs, inputGradients) {
                        guard input.requiresGradient, let gradient else { continue }
                        precondition(gradient.shape == input.shape, "\(node.operation): gradient shape \(gradient.shape) for input \(input.shape)")
                        let key = ObjectIdentifier(input)
                        if let existing = gradients[key] {
                            gradients[key] = existing + gradient
                        } else {
                            gradients[key] = gradient
                        }
                    }
                } else {
                    tensor.accumulateGradient(&incoming)
                }
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

    /// Every tensor this one depends on through recorded operations, each after all of its inputs.
    private func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        // Iterative depth-first search: deep graphs (long sequences) would overflow the stack recursively.
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (tensor, expanded) = stack.popLast() {
            if expanded {
                order.append(tensor)
                continue
            }
            guard visited.insert(ObjectIdentifier(tensor)).inserted else { continue }
            stack.append((tensor, true))
            for input in tensor.node?.inputs ?? [] where input.requiresGradient && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        return order
    }
}

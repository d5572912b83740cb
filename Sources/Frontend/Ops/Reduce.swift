// The reduce family's ops: sum, mean and max over axes, with their gradients. Backend: ReduceKernels
// (Sources/Backend/Families/Reduce.swift).

extension Tensor {
    /// Sorted, non-negative, de-duplicated axes (all axes when nil).
    private func resolvedAxes(_ axes: [Int]?, op: String) -> [Int] {
        guard let axes else { return Array(0..<rank) }
        return Array(Set(axes.map { Broadcasting.axis($0, rank: rank, op: op) })).sorted()
    }

    /// The shape after reducing `axes`, with them kept as 1 or dropped.
    private func reducedShape(_ axes: [Int], keepingDimensions: Bool) -> [Int] {
        keepingDimensions ? shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element } : shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
    }

    /// Applies a backend reduction over `axes` (merging runs of adjacent axes into one pass), returning a
    /// tensor of the kept-dimensions shape.
    private func reduceValues(_ op: ReductionOp, axes: [Int]) -> Tensor {
        var current = self
        var currentShape = shape
        // Reduce runs of adjacent axes from the last run to the first, so earlier axis numbers stay valid.
        var runs: [[Int]] = []
        for axis in axes {
            if let last = runs.last?.last, last == axis - 1 { runs[runs.count - 1].append(axis) } else { runs.append([axis]) }
        }
        for run in runs.reversed() {
            let outer = currentShape[..<run[0]].reduce(1, *)
            let length = run.map { currentShape[$0] }.reduce(1, *)
            let inner = currentShape[(run.last! + 1)...].reduce(1, *)
            for axis in run { currentShape[axis] = 1 }
            let out = Tensor(uninitialized: currentShape, on: backend)
            // A mean over several runs is a sum per run and one division at the end.
            let passOp: ReductionOp = (op == .mean && runs.count > 1) ? .sum : op
            backend.reduce(passOp, current.storage, into: out.storage, shape: ReduceShape(outer: outer, length: length, inner: inner))
            current = out
        }
        if op == .mean && runs.count > 1 {
            let count = axes.map { shape[$0] }.reduce(1, *)
            current = current.scaledValues(1 / Float(count))
        }
        return current
    }

    /// `a·x` without recording (for use inside gradients and reductions).
    func scaledValues(_ factor: Float) -> Tensor {
        let out = Tensor(uninitialized: shape, on: backend)
        backend.unary(.scale(factor), storage, into: out.storage, count: elementCount)
        return out
    }

    /// The sum over `axes` (all axes when nil).
    public func sum(axes: [Int]? = nil, keepingDimensions: Bool = false) -> Tensor {
        let resolved = resolvedAxes(axes, op: "sum")
        if resolved.isEmpty { return self }
        let kept = reduceValues(.sum, axes: resolved)
        let out = keepingDimensions ? kept : kept.reshapedValues(reducedShape(resolved, keepingDimensions: false))
        let inputShape = shape
        let keptShape = kept.shape
        out.recordGradient("sum", inputs: [self]) { gradient in
            [gradient.reshapedValues(keptShape).expandedValues(to: inputShape)]
        }
        return out
    }

    /// The sum over one axis.
    public func sum(axis: Int, keepingDimensions: Bool = false) -> Tensor { sum(axes: [axis], keepingDimensions: keepingDimensions) }

    /// The mean over `axes` (all axes when nil).
    public func mean(axes: [Int]? = nil, keepingDimensions: Bool = false) -> Tensor {
        let resolved = resolvedAxes(axes, op: "mean")
        if resolved.isEmpty { return self }
        let kept = reduceValues(.mean, axes: resolved)
        let out = keepingDimensions ? kept : kept.reshapedValues(reducedShape(resolved, keepingDimensions: false))
        let inputShape = shape
        let keptShape = kept.shape
        let count = resolved.map { shape[$0] }.reduce(1, *)
        out.recordGradient("mean", inputs: [self]) { gradient in
            [gradient.reshapedValues(keptShape).expandedValues(to: inputShape).scaledValues(1 / Float(count))]
        }
        return out
    }

    public func mean(axis: Int, keepingDimensions: Bool = false) -> Tensor { mean(axes: [axis], keepingDimensions: keepingDimensions) }

    /// The maximum over `axes` (all axes when nil). The gradient is shared equally among tied maxima.
    public func max(axes: [Int]? = nil, keepingDimensions: Bool = false) -> Tensor {
        let resolved = resolvedAxes(axes, op: "max")
        if resolved.isEmpty { return self }
        let kept = reduceValues(.max, axes: resolved)
        let out = keepingDimensions ? kept : kept.reshapedValues(reducedShape(resolved, keepingDimensions: false))
        let input = self
        out.recordGradient("max", inputs: [self]) { gradient in
            let mask = input.binaryValues(.equal, kept, name: "max")
            let ties = mask.reduceValues(.sum, axes: resolved)
            let share = gradient.reshapedValues(kept.shape).binaryValues(.divide, ties, name: "max")
            return [mask.binaryValues(.multiply, share, name: "max")]
        }
        return out
    }

    public func max(axis: Int, keepingDimensions: Bool = false) -> Tensor { max(axes: [axis], keepingDimensions: keepingDimensions) }

    /// Broadcast to `target` without recording.
    func expandedValues(to target: [Int]) -> Tensor {
        if target == shape { return self }
        let out = Tensor(uninitialized: target, on: backend)
        backend.copy(storage, Broadcasting.layout(shape, to: target), to: out.storage, .contiguous(target), shape: target)
        return out
    }
}

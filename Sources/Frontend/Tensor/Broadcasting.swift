/// NumPy broadcasting rules: shapes are aligned at the right; a dimension of 1 (or a missing one)
/// stretches to match the other.
enum Broadcasting {
    /// The shape two operands broadcast to; traps with both shapes named when they are incompatible.
    static func shape(_ a: [Int], _ b: [Int], op: String) -> [Int] {
        let rank = max(a.count, b.count)
        return (0..<rank).map { axis in
            let left = axis - (rank - a.count) >= 0 ? a[axis - (rank - a.count)] : 1
            let right = axis - (rank - b.count) >= 0 ? b[axis - (rank - b.count)] : 1
            precondition(left == right || left == 1 || right == 1, "\(op): shapes \(a) and \(b) do not broadcast")
            return left == 1 ? right : left
        }
    }

    /// The strided layout that reads a dense tensor of `shape` as if it had `target` shape (stride 0 on
    /// stretched dimensions).
    static func layout(_ shape: [Int], to target: [Int]) -> StridedLayout {
        let dense = StridedLayout.contiguous(shape).strides
        let padding = target.count - shape.count
        precondition(padding >= 0, "broadcast: cannot read shape \(shape) as \(target)")
        let strides = target.indices.map { axis -> Int in
            guard axis >= padding else { return 0 }
            let size = shape[axis - padding]
            precondition(size == target[axis] || size == 1, "broadcast: cannot read shape \(shape) as \(target)")
            return size == 1 && target[axis] != 1 ? 0 : dense[axis - padding]
        }
        return StridedLayout(strides: strides)
    }

    /// Normalizes a possibly negative axis for a tensor of `rank` dimensions.
    static func axis(_ axis: Int, rank: Int, op: String) -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        precondition(resolved >= 0 && resolved < max(rank, 1), "\(op): axis \(axis) is out of range for rank \(rank)")
        return resolved
    }
}

extension Tensor {
    /// This tensor read as `target` shape by broadcasting, materialized densely.
    public func expanded(to target: [Int]) -> Tensor {
        if target == shape { return self }
        let out = Tensor(uninitialized: target, on: backend)
        backend.copy(storage, Broadcasting.layout(shape, to: target), to: out.storage, .contiguous(target), shape: target)
        let inputShape = shape
        out.recordGradient("expand", inputs: [self]) { gradient in [gradient.summed(toShape: inputShape)] }
        return out
    }

    /// Sums a gradient of a broadcast result back to an operand's shape: the adjoint of broadcasting.
    public func summed(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        let padding = rank - target.count
        precondition(padding >= 0, "summed(toShape:): cannot reduce \(shape) to \(target)")
        var axes: [Int] = Array(0..<padding)
        for axis in padding..<rank where target[axis - padding] == 1 && shape[axis] != 1 { axes.append(axis) }
        let reduced = axes.isEmpty ? self : sum(axes: axes, keepingDimensions: true)
        return reduced.reshaped(target)
    }
}

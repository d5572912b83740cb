// Reshaping, transposing, slicing and concatenation. Reshapes share memory; the others copy.

extension Tensor {
    /// The same elements in another shape of equal size (no copy). One dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        let resolved = resolveShape(newShape)
        let out = reshapedValues(resolved)
        let inputShape = shape
        out.recordGradient("reshape", inputs: [self]) { gradient in [gradient.reshapedValues(inputShape)] }
        return out
    }

    private func resolveShape(_ newShape: [Int]) -> [Int] {
        let inferred = newShape.filter { $0 == -1 }.count
        precondition(inferred <= 1 && newShape.allSatisfy { $0 >= -1 }, "reshaped: invalid shape \(newShape)")
        guard inferred == 1 else {
            precondition(newShape.reduce(1, *) == elementCount, "reshaped: cannot view \(shape) (\(elementCount) elements) as \(newShape)")
            return newShape
        }
        let known = newShape.filter { $0 != -1 }.reduce(1, *)
        precondition(known > 0 && elementCount % known == 0, "reshaped: cannot view \(shape) as \(newShape)")
        return newShape.map { $0 == -1 ? elementCount / known : $0 }
    }

    /// A view with another shape, without recording.
    func reshapedValues(_ newShape: [Int]) -> Tensor {
        if newShape == shape { return self }
        precondition(newShape.reduce(1, *) == elementCount, "reshape: \(shape) to \(newShape)")
        return Tensor(storage: storage, shape: newShape, backend: backend)
    }

    /// Collapses all dimensions from `axis` on into one.
    public func flattened(from axis: Int = 0) -> Tensor {
        let start = Broadcasting.axis(axis, rank: rank, op: "flattened")
        return reshaped(Array(shape[..<start]) + [shape[start...].reduce(1, *)])
    }

    /// The dimensions reordered: result dimension `i` is input dimension `axes[i]` (a copy).
    public func permuted(_ axes: [Int]) -> Tensor {
        let resolved = axes.map { Broadcasting.axis($0, rank: rank, op: "permuted") }
        precondition(resolved.count == rank && Set(resolved).count == rank, "permuted: \(axes) is not a permutation of \(rank) axes")
        let out = permutedValues(resolved)
        var inverse = [Int](repeating: 0, count: rank)
        for (position, axis) in resolved.enumerated() { inverse[axis] = position }
        out.recordGradient("permute", inputs: [self]) { gradient in [gradient.permutedValues(inverse)] }
        return out
    }

    func permutedValues(_ axes: [Int]) -> Tensor {
        if axes == Array(0..<rank) { return self }
        let dense = StridedLayout.contiguous(shape).strides
        let outShape = axes.map { shape[$0] }
        let out = Tensor(uninitialized: outShape, on: backend)
        backend.copy(storage, StridedLayout(strides: axes.map { dense[$0] }), to: out.storage, .contiguous(outShape), shape: outShape)
        return out
    }

    /// Swaps two dimensions (a copy); by default the last two (a matrix transpose).
    public func transposed(_ first: Int = -2, _ second: Int = -1) -> Tensor {
        var axes = Array(0..<rank)
        axes.swapAt(Broadcasting.axis(first, rank: rank, op: "transposed"), Broadcasting.axis(second, rank: rank, op: "transposed"))
        return permuted(axes)
    }

    /// Elements `range` along `axis` (a copy).
    public func sliced(axis: Int, _ range: Range<Int>) -> Tensor {
        let resolved = Broadcasting.axis(axis, rank: rank, op: "sliced")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[resolved], "sliced: range \(range) is outside 0..<\(shape[resolved]) on axis \(axis) of \(shape)")
        var outShape = shape
        outShape[resolved] = range.count
        let dense = StridedLayout.contiguous(shape).strides
        let out = Tensor(uninitialized: outShape, on: backend)
        backend.copy(storage, StridedLayout(offset: range.lowerBound * dense[resolved], strides: dense), to: out.storage, .contiguous(outShape), shape: outShape)
        let inputShape = shape
        let inputBackend = backend
        out.recordGradient("slice", inputs: [self]) { gradient in
            let full = Tensor.zeros(inputShape, on: inputBackend)
            inputBackend.copy(gradient.storage, .contiguous(outShape), to: full.storage, StridedLayout(offset: range.lowerBound * dense[resolved], strides: dense), shape: outShape)
            return [full]
        }
        return out
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    public static func concatenate(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate: no tensors")
        let first = tensors[0]
        let resolved = Broadcasting.axis(axis, rank: first.rank, op: "concatenate")
        for tensor in tensors {
            Tensor.checkSameDevice("concatenate", first, tensor)
            precondition(tensor.rank == first.rank && tensor.shape.enumerated().allSatisfy { $0.offset == resolved || $0.element == first.shape[$0.offset] },
                         "concatenate: shape \(tensor.shape) does not match \(first.shape) outside axis \(axis)")
        }
        var outShape = first.shape
        outShape[resolved] = tensors.map { $0.shape[resolved] }.reduce(0, +)
        let out = Tensor(uninitialized: outShape, on: first.backend)
        let dense = StridedLayout.contiguous(outShape).strides
        var start = 0
        var ranges: [Range<Int>] = []
        for tensor in tensors {
            first.backend.copy(tensor.storage, .contiguous(tensor.shape), to: out.storage, StridedLayout(offset: start * dense[resolved], strides: dense), shape: tensor.shape)
            ranges.append(start..<(start + tensor.shape[resolved]))
            start += tensor.shape[resolved]
        }
        out.recordGradient("concatenate", inputs: tensors) { gradient in
            zip(tensors, ranges).map { tensor, range in tensor.requiresGradient ? gradient.sliced(axis: resolved, range) : nil }
        }
        return out
    }
}

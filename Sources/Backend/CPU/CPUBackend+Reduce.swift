internal import CKilnCPU

// The reduce family on the CPU: rows (inner = 1) or blocks of 256 output columns split across cores; the
// loops are `CKilnCPU/reduce.c`. One output is always summed by one thread, in order.

extension CPUBackend {
    public func reduce(_ op: ReductionOp, _ x: DeviceBuffer, into y: DeviceBuffer, shape: ReduceShape) {
        shape.validate(op, x: x, y: y)
        guard shape.outputCount > 0, ready(x, y) else { return }
        let (outer, length, inner) = (shape.outer, shape.length, shape.inner)
        // Threads own disjoint output ranges.
        nonisolated(unsafe) let input = floats(x), output = floats(y)
        if inner == 1 {
            Parallel.forRanges(outer, grain: max(1, 65_536 / max(length, 1))) { range in
                kiln_reduce_rows(op.rawValue, input, output, range.lowerBound, range.upperBound, length)
            }
            return
        }
        // [outer, length, inner]: column blocks, each walking the axis line by line so reads stay contiguous.
        let blockWidth = 256
        let blocksPerRow = (inner + blockWidth - 1) / blockWidth
        Parallel.forRanges(outer * blocksPerRow, grain: max(1, 65_536 / max(length * blockWidth, 1))) { range in
            kiln_reduce_columns(op.rawValue, input, output, range.lowerBound, range.upperBound, length, inner, blockWidth)
        }
    }
}

internal import CKilnCPU

// The elementwise family on the CPU: Swift splits the elements (or, for strided ops, the rows of the
// coalesced shape) across cores; the loops are `CKilnCPU/elementwise.c`.

/// Elements below which a loop stays on one thread.
let elementwiseGrain = 16_384

/// The C loops run blocks of this many elements in vectors and the rest with the C library
/// (`elementwise.c`), so ranges split between threads are multiples of it (results then do not depend on
/// the thread count).
let elementwiseBlock = 8

extension CPUBackend {
    public func unary(_ op: UnaryOp, _ x: DeviceBuffer, into y: DeviceBuffer, count: Int) {
        ElementwiseValidation.unary("unary", op, count: count, x, y)
        guard count > 0, ready(x, y) else { return }
        let (a, b) = op.parameters
        // Ranges are disjoint, so parallel writes never touch the same element.
        nonisolated(unsafe) let input = floats(x), output = floats(y)
        Parallel.forRanges(count, grain: elementwiseGrain, multipleOf: elementwiseBlock) { range in
            kiln_unary(op.code, a, b, input + range.lowerBound, output + range.lowerBound, range.count)
        }
    }

    public func unaryBackward(_ op: UnaryOp, input x: DeviceBuffer, output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, count: Int) {
        ElementwiseValidation.unary("unaryBackward", op, count: count, x, y, dy, dx)
        guard count > 0, ready(x, y, dy, dx) else { return }
        let (a, b) = op.parameters
        // Disjoint ranges per thread (see `unary`).
        nonisolated(unsafe) let px = floats(x), py = floats(y), pdy = floats(dy), pdx = floats(dx)
        Parallel.forRanges(count, grain: elementwiseGrain, multipleOf: elementwiseBlock) { range in
            let start = range.lowerBound
            kiln_unary_backward(op.code, a, b, px + start, py + start, pdy + start, pdx + start, range.count)
        }
    }

    public func binary(_ op: BinaryOp, _ a: DeviceBuffer, _ aLayout: StridedLayout, _ b: DeviceBuffer, _ bLayout: StridedLayout, into out: DeviceBuffer, shape: [Int]) {
        ElementwiseValidation.binary(op, a: a, aLayout, b: b, bLayout, out: out, shape: shape)
        let count = shape.reduce(1, *)
        guard count > 0, ready(a, b, out) else { return }
        let rows = RowWalk(CoalescedLayouts(shape: shape, layouts: [aLayout, bLayout, .contiguous(shape)]))
        // Output rows are disjoint between threads.
        nonisolated(unsafe) let pa = floats(a), pb = floats(b), pout = floats(out)
        rows.forRanges { range, sizes, aStrides, bStrides in
            kiln_binary(op.rawValue, range.lowerBound, range.upperBound, rows.inner, rows.outerRank, sizes,
                        pa, rows.offsets[0], aStrides, pb, rows.offsets[1], bStrides, pout)
        }
    }

    public func copy(_ source: DeviceBuffer, _ sourceLayout: StridedLayout, to destination: DeviceBuffer, _ destinationLayout: StridedLayout, shape: [Int]) {
        ElementwiseValidation.copy(source: source, sourceLayout, destination: destination, destinationLayout, shape: shape)
        guard shape.reduce(1, *) > 0, ready(source, destination) else { return }
        let rows = RowWalk(CoalescedLayouts(shape: shape, layouts: [sourceLayout, destinationLayout]))
        // Destination rows are disjoint between threads (the regions may not overlap).
        nonisolated(unsafe) let from = floats(source), to = floats(destination)
        rows.forRanges { range, sizes, sourceStrides, destinationStrides in
            kiln_copy_strided(range.lowerBound, range.upperBound, rows.inner, rows.outerRank, sizes,
                              from, rows.offsets[0], sourceStrides, to, rows.offsets[1], destinationStrides)
        }
    }
}

/// A coalesced strided problem as rows of its last dimension, for the C loops: the dimensions' sizes and
/// each operand's strides, in arrays the loops read (the leading `outerRank` sizes, `outerRank + 1` strides).
private struct RowWalk {
    let inner: Int
    let outerRank: Int
    let rowCount: Int
    let shape: [Int]
    let strides: [[Int]]
    let offsets: [Int]

    init(_ merged: CoalescedLayouts) {
        // A problem of one element coalesces to rank 0: read it as one row of one, at stride 1.
        shape = merged.shape.isEmpty ? [1] : merged.shape
        strides = merged.layouts.map { $0.strides.isEmpty ? [1] : $0.strides }
        offsets = merged.layouts.map(\.offset)
        inner = shape[shape.count - 1]
        outerRank = shape.count - 1
        rowCount = shape.dropLast().reduce(1, *)
    }

    /// Calls `body(rows, sizes, first operand's strides, second operand's strides)` on disjoint row
    /// ranges in parallel.
    func forRanges(_ body: (Range<Int>, UnsafePointer<Int>, UnsafePointer<Int>, UnsafePointer<Int>) -> Void) {
        shape.withUnsafeBufferPointer { sizes in
            strides[0].withUnsafeBufferPointer { first in
                strides[1].withUnsafeBufferPointer { second in
                    // Only read while the threads run.
                    nonisolated(unsafe) let pointers = (sizes.baseAddress!, first.baseAddress!, second.baseAddress!)
                    Parallel.forRanges(rowCount, grain: max(1, elementwiseGrain / inner)) { range in
                        body(range, pointers.0, pointers.1, pointers.2)
                    }
                }
            }
        }
    }
}

// The elementwise family on OpenCL devices: `Kernels/elementwise.cl`, one work-item per element; strided
// problems are coalesced and cut into pieces of at most four dimensions on the host.

extension OpenCLBackend {
    func loadElementwiseKernels() throws(BackendError) {
        try loadKernels(from: "elementwise.cl", options: "", names: ["unary", "unary_backward", "binary_contiguous", "binary_strided", "copy_strided"])
    }

    public func unary(_ op: UnaryOp, _ x: DeviceBuffer, into y: DeviceBuffer, count: Int) {
        ElementwiseValidation.unary("unary", op, count: count, x, y)
        let (a, b) = op.parameters
        launch1D("unary", count: count, [.int(count), .int(Int(op.code)), .float(a), .float(b), .buffer(x), .buffer(y)])
    }

    public func unaryBackward(_ op: UnaryOp, input x: DeviceBuffer, output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, count: Int) {
        ElementwiseValidation.unary("unaryBackward", op, count: count, x, y, dy, dx)
        let (a, b) = op.parameters
        launch1D("unary_backward", count: count, [.int(count), .int(Int(op.code)), .float(a), .float(b), .buffer(x), .buffer(y), .buffer(dy), .buffer(dx)])
    }

    public func binary(_ op: BinaryOp, _ a: DeviceBuffer, _ aLayout: StridedLayout, _ b: DeviceBuffer, _ bLayout: StridedLayout, into out: DeviceBuffer, shape: [Int]) {
        ElementwiseValidation.binary(op, a: a, aLayout, b: b, bLayout, out: out, shape: shape)
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        let dense = StridedLayout.contiguous(shape)
        if aLayout == dense && bLayout == dense {
            launch1D("binary_contiguous", count: count, [.int(count), .int(Int(op.rawValue)), .buffer(a), .buffer(b), .buffer(out)])
            return
        }
        let merged = CoalescedLayouts(shape: shape, layouts: [aLayout, bLayout, dense])
        for piece in merged.pieces(maximumRank: 4) {
            let pieceCount = piece.elementCount
            launch1D("binary_strided", count: pieceCount, [
                .int(pieceCount), .int(Int(op.rawValue)), .int4(vector(piece.shape)),
                .buffer(a), .int(piece.layouts[0].offset), .int4(vector(piece.layouts[0].strides)),
                .buffer(b), .int(piece.layouts[1].offset), .int4(vector(piece.layouts[1].strides)),
                .buffer(out), .int(piece.layouts[2].offset),
            ])
        }
    }

    public func copy(_ source: DeviceBuffer, _ sourceLayout: StridedLayout, to destination: DeviceBuffer, _ destinationLayout: StridedLayout, shape: [Int]) {
        ElementwiseValidation.copy(source: source, sourceLayout, destination: destination, destinationLayout, shape: shape)
        guard !shape.contains(0) else { return }
        let merged = CoalescedLayouts(shape: shape, layouts: [sourceLayout, destinationLayout])
        if merged.shape.count <= 1, merged.layouts.allSatisfy({ $0.strides.first ?? 1 == 1 }) {
            copy(source, offset: sourceLayout.offset, to: destination, offset: destinationLayout.offset, count: merged.elementCount)
            return
        }
        for piece in merged.pieces(maximumRank: 4) {
            let pieceCount = piece.elementCount
            launch1D("copy_strided", count: pieceCount, [
                .int(pieceCount), .int4(vector(piece.shape)),
                .buffer(source), .int(piece.layouts[0].offset), .int4(vector(piece.layouts[0].strides)),
                .buffer(destination), .int(piece.layouts[1].offset), .int4(vector(piece.layouts[1].strides)),
            ])
        }
    }

    private func vector(_ values: [Int]) -> SIMD4<Int32> {
        precondition(values.count == 4)
        return SIMD4(values.map { value in
            precondition(value >= Int(Int32.min) && value <= Int(Int32.max), "stride or size \(value) does not fit in 32 bits")
            return Int32(value)
        })
    }
}

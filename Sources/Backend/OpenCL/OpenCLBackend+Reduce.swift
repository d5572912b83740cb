// The reduce family on OpenCL devices: `Kernels/reduce.cl`; one work-item per output, or on GPUs one
// work-group per row for long contiguous rows.

extension OpenCLBackend {
    func loadReduceKernels() throws(BackendError) {
        try loadKernels(from: "reduce.cl", options: "-D GROUP_SIZE=\(tuning.rowGroupSize)",
                        names: tuning.rowGroupSize > 1 ? ["reduce_columns", "reduce_rows"] : ["reduce_columns"])
    }

    public func reduce(_ op: ReductionOp, _ x: DeviceBuffer, into y: DeviceBuffer, shape: ReduceShape) {
        shape.validate(op, x: x, y: y)
        let (outer, length, inner) = (shape.outer, shape.length, shape.inner)
        guard outer * inner > 0 else { return }
        if tuning.rowGroupSize > 1 && inner == 1 && length >= 4 * tuning.rowGroupSize {
            launch("reduce_rows", global: [outer * tuning.rowGroupSize], local: [tuning.rowGroupSize],
                   [.int(outer), .int(length), .int(Int(op.rawValue)), .buffer(x), .buffer(y)])
        } else {
            launch1D("reduce_columns", count: outer * inner, [.int(outer), .int(length), .int(inner), .int(Int(op.rawValue)), .buffer(x), .buffer(y)])
        }
    }
}

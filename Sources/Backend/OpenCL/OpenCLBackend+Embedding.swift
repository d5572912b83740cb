// The embedding family on OpenCL devices: `Kernels/embedding.cl`.

extension OpenCLBackend {
    func loadEmbeddingKernels() throws(BackendError) {
        try loadKernels(from: "embedding.cl", options: "", names: ["gather_rows", "scatter_add_rows"])
    }

    public func gatherRows(_ table: DeviceBuffer, indices: DeviceBuffer, into out: DeviceBuffer, shape: EmbeddingShape) {
        shape.validate("gatherRows", table: table, indices: indices, rows: out)
        launch1D("gather_rows", count: shape.indexCount * shape.columns, [
            .int(shape.indexCount), .int(shape.columns), .int(shape.tableRows), .buffer(table), .buffer(indices), .buffer(out),
        ])
    }

    public func scatterAddRows(_ source: DeviceBuffer, indices: DeviceBuffer, into table: DeviceBuffer, shape: EmbeddingShape) {
        shape.validate("scatterAddRows", table: table, indices: indices, rows: source)
        guard shape.indexCount > 0 else { return }
        launch1D("scatter_add_rows", count: shape.columns, [
            .int(shape.indexCount), .int(shape.columns), .int(shape.tableRows), .buffer(source), .buffer(indices), .buffer(table),
        ])
    }
}

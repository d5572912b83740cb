internal import CKilnCPU

// The embedding family on the CPU: the gather splits indices across cores, the scatter-add splits columns
// (each thread adds every row, in order, to its own columns); the loops are `CKilnCPU/embedding.c`.

extension CPUBackend {
    public func gatherRows(_ table: DeviceBuffer, indices: DeviceBuffer, into out: DeviceBuffer, shape: EmbeddingShape) {
        shape.validate("gatherRows", table: table, indices: indices, rows: out)
        guard shape.indexCount * shape.columns > 0, ready(table, indices, out) else { return }
        // Each thread writes its own output rows.
        nonisolated(unsafe) let source = floats(table), rows = integers(indices), destination = floats(out)
        Parallel.forRanges(shape.indexCount, grain: max(1, elementwiseGrain / shape.columns)) { range in
            kiln_gather_rows(source, shape.tableRows, rows, destination, range.lowerBound, range.upperBound, shape.columns)
        }
    }

    public func scatterAddRows(_ source: DeviceBuffer, indices: DeviceBuffer, into table: DeviceBuffer, shape: EmbeddingShape) {
        shape.validate("scatterAddRows", table: table, indices: indices, rows: source)
        guard shape.indexCount * shape.columns > 0, ready(source, indices, table) else { return }
        // Threads own disjoint column ranges and add rows in increasing n, as the OpenCL kernel does.
        nonisolated(unsafe) let input = floats(source), rows = integers(indices), output = floats(table)
        Parallel.forRanges(shape.columns, grain: max(1, elementwiseGrain / max(shape.indexCount, 1))) { range in
            kiln_scatter_add_rows(input, rows, shape.indexCount, output, shape.tableRows, range.lowerBound, range.upperBound, shape.columns)
        }
    }
}

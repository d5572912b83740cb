import Foundation

// Reductions and the row-wise fused operations (softmax family, cross-entropy, RMSNorm) of the CPU
// backend. Sums accumulate in Double, so long axes stay accurate; rows run in parallel.

extension CPUBackend {
    public func reduce(_ op: ReductionOp, _ x: DeviceBuffer, into y: DeviceBuffer, outer: Int, length: Int, inner: Int) {
        precondition(outer >= 0 && length >= 0 && inner >= 0 && outer * length * inner <= x.count && outer * inner <= y.count,
                     "reduce \(op): [\(outer), \(length), \(inner)] overflows x (\(x.count)) or y (\(y.count))")
        precondition(length > 0 || (op != .max && op != .min), "reduce \(op): cannot take the \(op) of an empty axis")
        guard outer * inner > 0, ready(x, y) else { return }
        // Threads own disjoint output ranges.
        nonisolated(unsafe) let input = floats(x), output = floats(y)
        if inner == 1 {
            Parallel.forRanges(outer, grain: max(1, 65_536 / max(length, 1))) { range in
                for row in range { output[row] = CPUBackend.reduceContiguous(op, input + row * length, length) }
            }
            return
        }
        // [outer, length, inner]: split the outputs into column blocks and walk the axis row by row, so
        // reads stay contiguous.
        let blockWidth = 256
        let blocksPerRow = (inner + blockWidth - 1) / blockWidth
        Parallel.forRanges(outer * blocksPerRow, grain: max(1, 65_536 / max(length * blockWidth, 1))) { range in
            var accumulator = [Double](repeating: 0, count: blockWidth)
            var extreme = [Float](repeating: 0, count: blockWidth)
            for block in range {
                let o = block / blocksPerRow
                let start = (block % blocksPerRow) * blockWidth
                let width = min(blockWidth, inner - start)
                let base = input + o * length * inner + start
                let out = output + o * inner + start
                switch op {
                case .max, .min:
                    for column in 0..<width { extreme[column] = base[column] }
                    for step in 1..<max(length, 1) {
                        let line = base + step * inner
                        if op == .max {
                            for column in 0..<width { extreme[column] = Swift.max(extreme[column], line[column]) }
                        } else {
                            for column in 0..<width { extreme[column] = Swift.min(extreme[column], line[column]) }
                        }
                    }
                    for column in 0..<width { out[column] = extreme[column] }
                case .sum, .mean, .sumOfSquares:
                    for column in 0..<width { accumulator[column] = 0 }
                    for step in 0..<length {
                        let line = base + step * inner
                        if op == .sumOfSquares {
                            for column in 0..<width { accumulator[column] += Double(line[column] * line[column]) }
                        } else {
                            for column in 0..<width { accumulator[column] += Double(line[column]) }
                        }
                    }
                    let divisor = op == .mean ? Double(length) : 1
                    for column in 0..<width { out[column] = Float(accumulator[column] / divisor) }
                }
            }
        }
    }

    static func reduceContiguous(_ op: ReductionOp, _ x: UnsafePointer<Float>, _ length: Int) -> Float {
        switch op {
        case .max:
            var result = x[0]
            for index in 1..<max(length, 1) { result = Swift.max(result, x[index]) }
            return result
        case .min:
            var result = x[0]
            for index in 1..<max(length, 1) { result = Swift.min(result, x[index]) }
            return result
        case .sum, .mean:
            var sum = 0.0
            for index in 0..<length { sum += Double(x[index]) }
            return Float(op == .mean ? sum / Double(length) : sum)
        case .sumOfSquares:
            var sum = 0.0
            for index in 0..<length { sum += Double(x[index]) * Double(x[index]) }
            return Float(sum)
        }
    }

    // MARK: Row operations

    private func checkRows(_ name: String, rows: Int, columns: Int, _ buffers: DeviceBuffer...) {
        precondition(rows >= 0 && columns >= 0, "\(name): negative size [\(rows), \(columns)]")
        for buffer in buffers {
            precondition(buffer.count >= rows * columns, "\(name): [\(rows), \(columns)] overflows a buffer of \(buffer.count)")
        }
    }

    /// Runs `body(row)` for every row in parallel.
    private func forEachRow(_ rows: Int, columns: Int, _ body: (Int) -> Void) {
        Parallel.forRanges(rows, grain: max(1, 16_384 / max(columns, 1))) { range in
            for row in range { body(row) }
        }
    }

    /// The maximum of a row and the sum of `exp(x − max)`, the two passes every softmax-like op needs
    /// (eight lanes at a time).
    @inline(__always)
    private static func maxAndExpSum(_ row: UnsafePointer<Float>, _ columns: Int) -> (Float, Double) {
        var largest = -Float.infinity
        var column = 0
        if columns >= 8 {
            var lanes = SIMD8<Float>(repeating: -.infinity)
            while column + 8 <= columns {
                lanes = VectorMath.maximum(lanes, UnsafeRawPointer(row + column).loadUnaligned(as: SIMD8<Float>.self))
                column += 8
            }
            largest = lanes.max()
        }
        while column < columns {
            largest = Swift.max(largest, row[column])
            column += 1
        }
        var sums = SIMD8<Float>(repeating: 0)
        column = 0
        let shift = SIMD8<Float>(repeating: largest)
        while column + 8 <= columns {
            sums += VectorMath.exp(UnsafeRawPointer(row + column).loadUnaligned(as: SIMD8<Float>.self) - shift)
            column += 8
        }
        var total = (0..<8).reduce(0.0) { $0 + Double(sums[$1]) }
        while column < columns {
            total += Double(Foundation.exp(row[column] - largest))
            column += 1
        }
        return (largest, total)
    }

    /// `out[c] = exp(in[c] − shift) · factor` for a row.
    @inline(__always)
    private static func writeExp(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ columns: Int, shift: Float, factor: Float) {
        VectorMath.map(input, output, columns, lanes: { VectorMath.exp($0 - SIMD8(repeating: shift)) * factor }, scalar: { Foundation.exp($0 - shift) * factor })
    }

    public func softmax(_ x: DeviceBuffer, into y: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("softmax", rows: rows, columns: columns, x, y)
        guard rows * columns > 0, ready(x, y) else { return }
        // Each row is written by one thread.
        nonisolated(unsafe) let input = floats(x), output = floats(y)
        forEachRow(rows, columns: columns) { row in
            let inRow = input + row * columns, outRow = output + row * columns
            let (largest, total) = CPUBackend.maxAndExpSum(inRow, columns)
            CPUBackend.writeExp(inRow, outRow, columns, shift: largest, factor: Float(1 / total))
        }
    }

    public func softmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("softmaxBackward", rows: rows, columns: columns, y, dy, dx)
        guard rows * columns > 0, ready(y, dy, dx) else { return }
        // Each row is written by one thread.
        nonisolated(unsafe) let py = floats(y), pdy = floats(dy), pdx = floats(dx)
        forEachRow(rows, columns: columns) { row in
            let base = row * columns
            var dot = 0.0
            for column in 0..<columns { dot += Double(pdy[base + column] * py[base + column]) }
            let shift = Float(dot)
            for column in 0..<columns { pdx[base + column] = py[base + column] * (pdy[base + column] - shift) }
        }
    }

    public func logSoftmax(_ x: DeviceBuffer, into y: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("logSoftmax", rows: rows, columns: columns, x, y)
        guard rows * columns > 0, ready(x, y) else { return }
        // Each row is written by one thread.
        nonisolated(unsafe) let input = floats(x), output = floats(y)
        forEachRow(rows, columns: columns) { row in
            let inRow = input + row * columns, outRow = output + row * columns
            let (largest, total) = CPUBackend.maxAndExpSum(inRow, columns)
            let shift = largest + Float(Foundation.log(total))
            for column in 0..<columns { outRow[column] = inRow[column] - shift }
        }
    }

    public func logSoftmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("logSoftmaxBackward", rows: rows, columns: columns, y, dy, dx)
        guard rows * columns > 0, ready(y, dy, dx) else { return }
        // Each row is written by one thread.
        nonisolated(unsafe) let py = floats(y), pdy = floats(dy), pdx = floats(dx)
        forEachRow(rows, columns: columns) { row in
            let base = row * columns
            var total = 0.0
            for column in 0..<columns { total += Double(pdy[base + column]) }
            let sum = Float(total)
            for column in 0..<columns { pdx[base + column] = pdy[base + column] - Foundation.exp(py[base + column]) * sum }
        }
    }

    public func softmaxCrossEntropy(logits: DeviceBuffer, labels: DeviceBuffer, into losses: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("softmaxCrossEntropy", rows: rows, columns: columns, logits)
        precondition(labels.count >= rows && losses.count >= rows, "softmaxCrossEntropy: \(rows) rows but \(labels.count) labels and \(losses.count) losses")
        guard rows > 0, ready(logits, labels, losses) else { return }
        // Each row's loss is written by one thread.
        nonisolated(unsafe) let input = floats(logits), targets = integers(labels), output = floats(losses)
        forEachRow(rows, columns: columns) { row in
            let label = Int(targets[row])
            guard label >= 0 && label < columns else {
                output[row] = 0
                return
            }
            let inRow = input + row * columns
            let (largest, total) = CPUBackend.maxAndExpSum(inRow, columns)
            output[row] = largest + Float(Foundation.log(total)) - inRow[label]
        }
    }

    public func softmaxCrossEntropyBackward(logits: DeviceBuffer, labels: DeviceBuffer, lossGradient: DeviceBuffer, into logitsGradient: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("softmaxCrossEntropyBackward", rows: rows, columns: columns, logits, logitsGradient)
        precondition(labels.count >= rows && lossGradient.count >= rows, "softmaxCrossEntropyBackward: \(rows) rows but \(labels.count) labels and \(lossGradient.count) loss gradients")
        guard rows * columns > 0, ready(logits, labels, lossGradient, logitsGradient) else { return }
        // Each row is written by one thread.
        nonisolated(unsafe) let input = floats(logits), targets = integers(labels), upstream = floats(lossGradient), output = floats(logitsGradient)
        forEachRow(rows, columns: columns) { row in
            let label = Int(targets[row])
            let inRow = input + row * columns, outRow = output + row * columns
            guard label >= 0 && label < columns else {
                outRow.update(repeating: 0, count: columns)
                return
            }
            let (largest, total) = CPUBackend.maxAndExpSum(inRow, columns)
            let gradient = upstream[row]
            CPUBackend.writeExp(inRow, outRow, columns, shift: largest, factor: gradient / Float(total))
            outRow[label] -= gradient
        }
    }

    public func rmsNorm(_ x: DeviceBuffer, weight: DeviceBuffer, into y: DeviceBuffer, inverseRMS: DeviceBuffer, rows: Int, columns: Int, epsilon: Float) {
        checkRows("rmsNorm", rows: rows, columns: columns, x, y)
        precondition(weight.count >= columns && inverseRMS.count >= rows, "rmsNorm: weight \(weight.count) < \(columns) columns or inverseRMS \(inverseRMS.count) < \(rows) rows")
        guard rows * columns > 0, ready(x, weight, y, inverseRMS) else { return }
        // Each row (and its saved statistic) is written by one thread.
        nonisolated(unsafe) let px = floats(x), pw = floats(weight), py = floats(y), pr = floats(inverseRMS)
        forEachRow(rows, columns: columns) { row in
            let base = row * columns
            var squares = 0.0
            for column in 0..<columns { squares += Double(px[base + column]) * Double(px[base + column]) }
            let rstd = Float(1 / (squares / Double(columns) + Double(epsilon)).squareRoot())
            pr[row] = rstd
            for column in 0..<columns { py[base + column] = px[base + column] * rstd * pw[column] }
        }
    }

    public func rmsNormBackward(_ x: DeviceBuffer, weight: DeviceBuffer, inverseRMS: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, weightGradient: DeviceBuffer, rows: Int, columns: Int) {
        checkRows("rmsNormBackward", rows: rows, columns: columns, x, dy, dx)
        precondition(weight.count >= columns && weightGradient.count >= columns && inverseRMS.count >= rows, "rmsNormBackward: weight, weightGradient or inverseRMS too small")
        guard columns > 0, ready(x, weight, inverseRMS, dy, dx, weightGradient) else { return }
        // Rows of dx, and column blocks of the weight gradient, are each written by one thread.
        nonisolated(unsafe) let px = floats(x), pw = floats(weight), pr = floats(inverseRMS), pdy = floats(dy), pdx = floats(dx), pdw = floats(weightGradient)
        forEachRow(rows, columns: columns) { row in
            let base = row * columns
            var dot = 0.0
            for column in 0..<columns { dot += Double(pdy[base + column] * pw[column] * px[base + column]) }
            let rstd = pr[row]
            let correction = rstd * rstd * rstd * Float(dot) / Float(columns)
            for column in 0..<columns {
                pdx[base + column] = rstd * pw[column] * pdy[base + column] - correction * px[base + column]
            }
        }
        Parallel.forRanges(columns, grain: max(1, 16_384 / max(rows, 1))) { range in
            var sums = [Double](repeating: 0, count: range.count)
            for row in 0..<rows {
                let base = row * columns
                let rstd = Double(pr[row])
                for (slot, column) in range.enumerated() { sums[slot] += Double(pdy[base + column] * px[base + column]) * rstd }
            }
            for (slot, column) in range.enumerated() { pdw[column] = Float(sums[slot]) }
        }
    }
}

import Foundation

// The rows family in float64 (see Families/Rows.swift). Every function works row by row on row-major
// `[rows, columns]` arrays.

extension Reference {
    /// ``RowKernels/softmax(_:into:shape:)``: `y[r, c] = exp(x[r, c] − m) / Σ_c′ exp(x[r, c′] − m)`,
    /// `m = max_c x[r, c]`.
    public static func softmax(_ x: [Double], shape: RowShape) -> [Double] {
        (0..<shape.rows).flatMap { r in
            let row = x[rowRange(r, shape)]
            let largest = row.max() ?? 0
            let exponentials = row.map { exp($0 - largest) }
            let total = exponentials.reduce(0, +)
            return exponentials.map { $0 / total }
        }
    }

    /// ``RowKernels/softmaxBackward(output:outputGradient:into:shape:)``, from the softmax output `y`:
    /// `dx[r, c] = y[r, c] · (dy[r, c] − Σ_c′ dy[r, c′] · y[r, c′])`.
    public static func softmaxBackward(output y: [Double], outputGradient dy: [Double], shape: RowShape) -> [Double] {
        (0..<shape.rows).flatMap { r in
            let range = rowRange(r, shape)
            let dot = range.map { dy[$0] * y[$0] }.reduce(0, +)
            return range.map { y[$0] * (dy[$0] - dot) }
        }
    }

    /// ``RowKernels/logSoftmax(_:into:shape:)``: `y[r, c] = x[r, c] − m − log Σ_c′ exp(x[r, c′] − m)`.
    public static func logSoftmax(_ x: [Double], shape: RowShape) -> [Double] {
        (0..<shape.rows).flatMap { r in
            let row = x[rowRange(r, shape)]
            let largest = row.max() ?? 0
            let shift = largest + log(row.map { exp($0 - largest) }.reduce(0, +))
            return row.map { $0 - shift }
        }
    }

    /// ``RowKernels/logSoftmaxBackward(output:outputGradient:into:shape:)``, from the log-softmax output `y`:
    /// `dx[r, c] = dy[r, c] − exp(y[r, c]) · Σ_c′ dy[r, c′]`.
    public static func logSoftmaxBackward(output y: [Double], outputGradient dy: [Double], shape: RowShape) -> [Double] {
        (0..<shape.rows).flatMap { r in
            let range = rowRange(r, shape)
            let total = range.map { dy[$0] }.reduce(0, +)
            return range.map { dy[$0] - exp(y[$0]) * total }
        }
    }

    /// ``RowKernels/softmaxCrossEntropy(logits:labels:into:shape:)``: `loss[r] = −log softmax(x[r])[label[r]]`,
    /// 0 for a label outside `0..<columns`. Returns `[rows]`.
    public static func softmaxCrossEntropy(logits: [Double], labels: [Int32], shape: RowShape) -> [Double] {
        let probabilities = softmax(logits, shape: shape)
        return (0..<shape.rows).map { r in
            let label = Int(labels[r])
            return (0..<shape.columns).contains(label) ? -log(probabilities[r * shape.columns + label]) : 0
        }
    }

    /// ``RowKernels/softmaxCrossEntropyBackward(logits:labels:lossGradient:into:shape:)``:
    /// `dx[r, c] = (softmax(x[r])[c] − (c == label[r] ? 1 : 0)) · dloss[r]`, 0 for an ignored row.
    public static func softmaxCrossEntropyBackward(logits: [Double], labels: [Int32], lossGradient: [Double], shape: RowShape) -> [Double] {
        let probabilities = softmax(logits, shape: shape)
        return (0..<shape.rows).flatMap { r in
            let label = Int(labels[r])
            return (0..<shape.columns).map { c -> Double in
                guard (0..<shape.columns).contains(label) else { return 0 }
                return (probabilities[r * shape.columns + c] - (c == label ? 1 : 0)) * lossGradient[r]
            }
        }
    }

    /// ``RowKernels/rmsNorm(_:weight:into:inverseRMS:shape:epsilon:)``: `rstd[r] = 1 / √(Σ_c x[r, c]² / columns + ε)`,
    /// `y[r, c] = x[r, c] · rstd[r] · weight[c]`. Returns `y` and `rstd` (`[rows]`).
    public static func rmsNorm(_ x: [Double], weight: [Double], shape: RowShape, epsilon: Double) -> (output: [Double], inverseRMS: [Double]) {
        let inverseRMS = (0..<shape.rows).map { inverseRootMeanSquare(x[rowRange($0, shape)], epsilon: epsilon) }
        let output = (0..<shape.rows).flatMap { r in
            (0..<shape.columns).map { c in x[r * shape.columns + c] * inverseRMS[r] * weight[c] }
        }
        return (output, inverseRMS)
    }

    /// ``RowKernels/rmsNormBackward(_:weight:inverseRMS:outputGradient:into:weightGradient:shape:)``: the
    /// gradients of ``rmsNorm(_:weight:shape:epsilon:)``, with `rstd` computed from `x` in float64,
    /// `dx[r, c] = rstd·w[c]·dy[r, c] − rstd³ · x[r, c] · Σ_c′ dy[r, c′]·w[c′]·x[r, c′] / columns` and
    /// `dweight[c] = Σ_r dy[r, c] · x[r, c] · rstd[r]`.
    public static func rmsNormBackward(_ x: [Double], weight: [Double], outputGradient dy: [Double], shape: RowShape, epsilon: Double) -> (input: [Double], weight: [Double]) {
        var input: [Double] = []
        var weightGradient = [Double](repeating: 0, count: shape.columns)
        for r in 0..<shape.rows {
            let range = rowRange(r, shape)
            let rstd = inverseRootMeanSquare(x[range], epsilon: epsilon)
            let dot = range.map { dy[$0] * weight[$0 - range.lowerBound] * x[$0] }.reduce(0, +)
            for index in range {
                let c = index - range.lowerBound
                input.append(rstd * weight[c] * dy[index] - rstd * rstd * rstd * x[index] * dot / Double(shape.columns))
                weightGradient[c] += dy[index] * x[index] * rstd
            }
        }
        return (input, weightGradient)
    }

    private static func inverseRootMeanSquare(_ row: ArraySlice<Double>, epsilon: Double) -> Double {
        1 / (row.map { $0 * $0 }.reduce(0, +) / Double(row.count) + epsilon).squareRoot()
    }

    /// The elements of row `row` of a `[rows, columns]` array.
    private static func rowRange(_ row: Int, _ shape: RowShape) -> Range<Int> {
        (row * shape.columns)..<((row + 1) * shape.columns)
    }
}

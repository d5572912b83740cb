// The reduce family in float64 (see Families/Reduce.swift).

extension Reference {
    /// ``ReduceKernels/reduce(_:_:into:shape:)``: with `x` viewed as `[outer, length, inner]`,
    /// `y[o, i] = Σ_l x[o, l, i]` (sum), that over `length` (mean), `max_l` / `min_l x[o, l, i]`, or
    /// `Σ_l x[o, l, i]²` (sum of squares). Returns `y`, `[outer, inner]`.
    public static func reduce(_ op: ReductionOp, _ x: [Double], shape: ReduceShape) -> [Double] {
        var y: [Double] = []
        for o in 0..<shape.outer {
            for i in 0..<shape.inner {
                let values = (0..<shape.length).map { x[(o * shape.length + $0) * shape.inner + i] }
                switch op {
                case .sum: y.append(values.reduce(0, +))
                case .mean: y.append(values.reduce(0, +) / Double(shape.length))
                case .max: y.append(values.max()!)
                case .min: y.append(values.min()!)
                case .sumOfSquares: y.append(values.map { $0 * $0 }.reduce(0, +))
                }
            }
        }
        return y
    }
}

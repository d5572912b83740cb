import Foundation

/// A Kolmogorov–Arnold Network layer (Liu et al., 2024): every edge (i → j) carries a learnable univariate
/// function `φ(x) = scaleBase·silu(x) + scaleSpline·Σ_n c_n B_n(x)` and every output sums its edges.
///
/// pykan's conventions, exactly: input i has its own knots, G + 1 grid points extended by k knots on each
/// side (`knots` [in, G+2k+1], not trained), so each edge has G + k coefficients (`coefficients`
/// [in, out, G+k]); initialization draws noise of scale `noiseScale / G` at the grid points and fits the
/// coefficients to it by least squares, `scaleBase = (μ + σ·U(−1, 1)) / √in` (μ = 0, σ = 1) and
/// `scaleSpline = 1/√in`. ``updateGrid(samples:)`` re-places the knots where the data are and refits the
/// coefficients so the function is kept; ``refined(intervals:)`` moves to a finer grid on the same range.
public final class KANLayer: Layer {
    public let inputCount: Int
    public let outputCount: Int
    /// Grid intervals G and spline order k.
    public let intervals: Int
    public let order: Int
    /// Mixing of uniform (1) and sample-percentile (0) grids in grid updates (pykan's `grid_eps`).
    public let gridEpsilon: Double
    public let knots: Tensor
    public let coefficients: Tensor
    public let scaleBase: Tensor
    public let scaleSpline: Tensor
    /// Whether every input's knots are equally spaced (the kernels' closed form for k = 3 applies).
    public private(set) var uniform: Bool

    /// Defaults as pykan's `MultKAN`: noise 0.3, grid range [−1, 1], grid_eps 0.02.
    public init(
        inputCount: Int, outputCount: Int, intervals: Int, order: Int = 3, range: ClosedRange<Double> = -1...1, noiseScale: Double = 0.3,
        gridEpsilon: Double = 0.02, generator: inout RandomGenerator, on backend: any Backend
    ) {
        precondition(inputCount > 0 && outputCount > 0 && intervals >= 1 && (1...5).contains(order), "KANLayer: bad sizes in \(inputCount) → \(outputCount), G \(intervals), k \(order)")
        self.inputCount = inputCount
        self.outputCount = outputCount
        self.intervals = intervals
        self.order = order
        self.gridEpsilon = gridEpsilon
        let points = (0...intervals).map { range.lowerBound + (range.upperBound - range.lowerBound) * Double($0) / Double(intervals) }
        let rowKnots = BSpline.extendedKnots(points: points, order: order)
        let allKnots = [[Double]](repeating: rowKnots, count: inputCount)
        knots = Tensor(allKnots.flatMap { $0.map(Float.init) }, shape: [inputCount, rowKnots.count], on: backend)
        // Noise at the grid points, fitted by least squares (pykan: curve2coef of the noise).
        var noise = [Double](repeating: 0, count: (intervals + 1) * inputCount * outputCount)
        for index in noise.indices { noise[index] = (generator.nextUniform() - 0.5) * noiseScale / Double(intervals) }
        let samples = (0...intervals).map { point in [Double](repeating: points[point], count: inputCount) }
        let values = (0...intervals).map { point in
            (0..<inputCount).map { i in (0..<outputCount).map { j in noise[(point * inputCount + i) * outputCount + j] } }
        }
        let fitted = KANLayer.fitCoefficients(samples: samples, values: values, knots: allKnots, order: order, outputs: outputCount)
        coefficients = Tensor.parameter(fitted.map(Float.init), shape: [inputCount, outputCount, intervals + order], on: backend)
        let root = Float(inputCount).squareRoot()
        scaleBase = Tensor.parameter((0..<(inputCount * outputCount)).map { _ in Float(generator.nextUniform() * 2 - 1) / root }, shape: [inputCount, outputCount], on: backend)
        scaleSpline = Tensor.parameter([Float](repeating: 1 / root, count: inputCount * outputCount), shape: [inputCount, outputCount], on: backend)
        uniform = true
    }

    /// A layer with given tensors (for refinement and loading).
    init(knots: Tensor, coefficients: Tensor, scaleBase: Tensor, scaleSpline: Tensor, order: Int, gridEpsilon: Double, uniform: Bool) {
        inputCount = knots.shape[0]
        outputCount = coefficients.shape[1]
        intervals = knots.shape[1] - 2 * order - 1
        self.order = order
        self.gridEpsilon = gridEpsilon
        self.knots = knots
        self.coefficients = coefficients
        self.scaleBase = scaleBase
        self.scaleSpline = scaleSpline
        self.uniform = uniform
    }

    /// No μP roles: a KAN has no width parametrization, and trains as one optimizer group.
    public var ownParameters: [Parameter] {
        [Parameter("coefficients", coefficients, role: nil), Parameter("scale_base", scaleBase, role: nil), Parameter("scale_spline", scaleSpline, role: nil)]
    }
    public var ownBuffers: [(name: String, tensor: Tensor)] { [("knots", knots)] }

    /// Loaded knots may be non-uniform (after grid updates): check, so the kernels take the right path.
    public func stateDidLoad() throws(BackendError) {
        uniform = KANLayer.isUniform(try knotRows())
    }

    /// Whether every row of knots is equally spaced (to a relative 1e-5).
    static func isUniform(_ rows: [[Double]]) -> Bool {
        rows.allSatisfy { row in
            let step = (row.last! - row.first!) / Double(row.count - 1)
            return zip(row, row.dropFirst()).allSatisfy { Swift.abs(($1 - $0) - step) <= 1e-5 * Swift.abs(step) }
        }
    }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        splineLayer(input, knots: knots, coefficients: coefficients, scaleBase: scaleBase, scaleSpline: scaleSpline, order: order, uniform: uniform)
    }

    // MARK: Host-side views (float64)

    /// Each input's knots.
    public func knotRows() throws(BackendError) -> [[Double]] {
        let values = try knots.toArray().map(Double.init)
        let width = knots.shape[1]
        return (0..<inputCount).map { Array(values[($0 * width)..<(($0 + 1) * width)]) }
    }

    /// The edge function φ_ij at x (base and spline parts), in float64.
    public func edgeFunction(input i: Int, output j: Int, knots rows: [[Double]], coefficients c: [Double], scaleBase sb: [Double], scaleSpline ss: [Double]) -> (Double) -> Double {
        let count = intervals + order
        let edge = Array(c[((i * outputCount + j) * count)..<((i * outputCount + j + 1) * count)])
        let base = sb[i * outputCount + j], spline = ss[i * outputCount + j]
        return { x in base * x / (1 + Foundation.exp(-x)) + spline * BSpline.evaluate(at: x, knots: rows[i], coefficients: edge, order: self.order) }
    }

    /// Least-squares coefficients: for each input i and output j, the c minimizing Σ_s (Σ_n c_n B_n(x_si) − y_sij)².
    ///
    /// - Parameters:
    ///   - samples: `[samples][in]` points.
    ///   - values: `[samples][in][out]` targets.
    /// - Returns: `[in, out, G+k]` flattened.
    static func fitCoefficients(samples: [[Double]], values: [[[Double]]], knots: [[Double]], order: Int, outputs: Int) -> [Double] {
        let inputs = knots.count
        let count = knots[0].count - order - 1
        var result = [Double](repeating: 0, count: inputs * outputs * count)
        for i in 0..<inputs {
            // Normal equations BᵀB c = Bᵀy, banded; a tiny ridge keeps them solvable where some basis has no
            // samples (giving the minimum-norm-like solution pykan's lstsq returns).
            var normal = [Double](repeating: 0, count: count * count)
            var right = [Double](repeating: 0, count: count * outputs)
            for (s, point) in samples.enumerated() {
                guard let (first, bases) = BSpline.nonZeroBases(at: point[i], knots: knots[i], order: order) else { continue }
                for (a, valueA) in bases.enumerated() where first + a >= 0 && first + a < count {
                    for (b, valueB) in bases.enumerated() where first + b >= 0 && first + b < count {
                        normal[(first + a) * count + first + b] += valueA * valueB
                    }
                    for j in 0..<outputs { right[(first + a) * outputs + j] += valueA * values[s][i][j] }
                }
            }
            let trace = (0..<count).map { normal[$0 * count + $0] }.reduce(0, +)
            let ridge = max(trace / Double(count), 1e-12) * 1e-10
            for d in 0..<count { normal[d * count + d] += ridge }
            let factor = choleskyFactor(normal, size: count)
            for j in 0..<outputs {
                let solution = choleskySolve(factor, size: count, right: (0..<count).map { right[$0 * outputs + j] })
                for n in 0..<count { result[(i * outputs + j) * count + n] = solution[n] }
            }
        }
        return result
    }

    /// The lower-triangular L with A = L·Lᵀ (A symmetric positive definite, row-major).
    static func choleskyFactor(_ a: [Double], size: Int) -> [Double] {
        var l = [Double](repeating: 0, count: size * size)
        for row in 0..<size {
            for column in 0...row {
                var sum = a[row * size + column]
                for k in 0..<column { sum -= l[row * size + k] * l[column * size + k] }
                l[row * size + column] = row == column ? Swift.max(sum, 1e-300).squareRoot() : sum / l[column * size + column]
            }
        }
        return l
    }

    static func choleskySolve(_ l: [Double], size: Int, right: [Double]) -> [Double] {
        var y = right
        for row in 0..<size {
            for k in 0..<row { y[row] -= l[row * size + k] * y[k] }
            y[row] /= l[row * size + row]
        }
        for row in stride(from: size - 1, through: 0, by: -1) {
            for k in (row + 1)..<size { y[row] -= l[k * size + row] * y[k] }
            y[row] /= l[row * size + row]
        }
        return y
    }

    /// The spline parts (without scales) at points, `[samples][in][out]`.
    func splineValues(at points: [[Double]], knots rows: [[Double]], coefficients c: [Double]) -> [[[Double]]] {
        let count = intervals + order
        return points.map { point in
            (0..<inputCount).map { i in
                (0..<outputCount).map { j in
                    BSpline.evaluate(at: point[i], knots: rows[i], coefficients: Array(c[((i * outputCount + j) * count)..<((i * outputCount + j + 1) * count)]), order: order)
                }
            }
        }
    }

    /// pykan's `update_grid_from_samples`: place each input's G + 1 grid points at its samples'
    /// percentiles, mixed with the uniform grid over the samples' range by `gridEpsilon`, extend by k knots,
    /// and refit the coefficients to the spline's values at the (sorted) samples.
    ///
    /// - Parameter samples: `[samples][in]`, the layer's inputs on the training data.
    public func updateGrid(samples: [[Double]]) throws(BackendError) {
        guard samples.count >= 2 else { return }
        let rows = try knotRows()
        let c = try coefficients.toArray().map(Double.init)
        // Sort each input's column on its own, as pykan does (x_pos = sort(x, dim=0)).
        let columns = (0..<inputCount).map { i in samples.map { $0[i] }.sorted() }
        let sorted = samples.indices.map { s in (0..<inputCount).map { columns[$0][s] } }
        let values = splineValues(at: sorted, knots: rows, coefficients: c)
        let count = samples.count
        let newRows: [[Double]] = (0..<inputCount).map { i in
            let ids = (0..<intervals).map { Int(Double(count) / Double(intervals) * Double($0)) } + [count - 1]
            let adaptive = ids.map { columns[i][$0] }
            let step = (adaptive.last! - adaptive.first!) / Double(intervals)
            let points = (0...intervals).map { point in gridEpsilon * (adaptive.first! + step * Double(point)) + (1 - gridEpsilon) * adaptive[point] }
            return BSpline.extendedKnots(points: KANLayer.strictlyIncreasing(points), order: order)
        }
        let fitted = KANLayer.fitCoefficients(samples: sorted, values: values, knots: newRows, order: order, outputs: outputCount)
        knots.assign(newRows.flatMap { $0.map(Float.init) })
        coefficients.assign(fitted.map(Float.init))
        uniform = KANLayer.isUniform(newRows)
    }

    /// Grid points nudged apart where repeated samples made two equal (knots must increase).
    static func strictlyIncreasing(_ points: [Double]) -> [Double] {
        var result = points
        let span = Swift.max(Swift.abs(points.last! - points.first!), 1e-6)
        for index in 1..<result.count where result[index] <= result[index - 1] {
            result[index] = result[index - 1] + span * 1e-6
        }
        return result
    }

    /// The same functions on a uniform grid of `intervals` on this layer's grid range (from knot k to knot
    /// G + k), coefficients fitted by least squares to this layer's splines at 20 points per new interval.
    /// Refining G → 2G on a uniform grid reproduces the function exactly (up to rounding).
    public func refined(intervals newIntervals: Int) throws(BackendError) -> KANLayer {
        let rows = try knotRows()
        let c = try coefficients.toArray().map(Double.init)
        let newRows: [[Double]] = rows.map { row in
            let (low, high) = (row[order], row[intervals + order])
            return BSpline.extendedKnots(points: (0...newIntervals).map { low + (high - low) * Double($0) / Double(newIntervals) }, order: order)
        }
        let perInterval = 20
        let sampleCount = newIntervals * perInterval + 1
        let points = (0..<sampleCount).map { s in
            rows.map { row in
                let (low, high) = (row[order], row[intervals + order])
                // Stay inside the half-open grid so the last point still has its bases.
                return low + (high - low) * Double(s) / Double(sampleCount - 1) * (1 - 1e-9)
            }
        }
        let values = splineValues(at: points, knots: rows, coefficients: c)
        let fitted = KANLayer.fitCoefficients(samples: points, values: values, knots: newRows, order: order, outputs: outputCount)
        let backend = knots.backend
        return KANLayer(
            knots: Tensor(newRows.flatMap { $0.map(Float.init) }, shape: [inputCount, newIntervals + 2 * order + 1], on: backend),
            coefficients: Tensor.parameter(fitted.map(Float.init), shape: [inputCount, outputCount, newIntervals + order], on: backend),
            scaleBase: scaleBase.copied().asParameter(), scaleSpline: scaleSpline.copied().asParameter(), order: order, gridEpsilon: gridEpsilon, uniform: true)
    }
}

extension Tensor {
    /// This tensor marked as a trainable leaf.
    func asParameter() -> Tensor {
        requiresGradient = true
        return self
    }
}

/// A KAN: KAN layers of widths `arch` (`--arch 2,5,1`), evaluated in order.
public final class KANModel: TaskModel {
    public let architecture: [Int]
    public private(set) var layers: [KANLayer]

    public init(architecture: [Int], intervals: Int, order: Int, gridEpsilon: Double, generator: inout RandomGenerator, on backend: any Backend) {
        precondition(architecture.count >= 2, "KANModel: the architecture needs at least an input and an output width")
        self.architecture = architecture
        layers = zip(architecture, architecture.dropFirst()).map { inputs, outputs in
            KANLayer(inputCount: inputs, outputCount: outputs, intervals: intervals, order: order, gridEpsilon: gridEpsilon, generator: &generator, on: backend)
        }
    }

    public var children: [(name: String, module: any Module)] { layers.enumerated().map { ("layers.\($0.offset)", $0.element) } }

    public func callAsFunction(_ x: Tensor) -> Tensor { layers.reduce(x) { $1($0) } }

    public func outputs(for batch: HostBatch, on backend: any Backend) -> Tensor {
        self(Tensor(batch.inputs, shape: [batch.rows, batch.features], on: backend))
    }

    /// Updates every layer's grid from the training inputs, layer by layer (each layer sees the inputs
    /// the already-updated layers before it produce), as pykan's `update_grid_from_samples`.
    public func updateGrids(inputs: HostBatch) throws(BackendError) {
        let backend = layers[0].knots.backend
        var x = Tensor(inputs.inputs, shape: [inputs.rows, inputs.features], on: backend)
        for layer in layers {
            let values = try x.toArray().map(Double.init)
            let samples = (0..<inputs.rows).map { Array(values[($0 * layer.inputCount)..<(($0 + 1) * layer.inputCount)]) }
            try layer.updateGrid(samples: samples)
            x = noGrad { layer(x) }
        }
    }

    /// Every layer moved to a grid of `intervals` (see ``KANLayer/refined(intervals:)``).
    public func refine(intervals: Int) throws(BackendError) {
        layers = try layers.map { layer throws(BackendError) in try layer.refined(intervals: intervals) }
    }
}

import Foundation

// KAN spline layers on the CPU (see `Backend.splineForward` for the math).
//
// Only k + 1 bases are non-zero at any x, so nothing of size batch × in × (G+k) is ever built. Each call:
// 1. evaluates, once per (b, i), the k + 1 non-zero order-k bases (and, for the backward, the k non-zero
//    order-(k−1) bases of the derivative), windowed so they index coefficient rows that exist
//    (`SplineBasisEvaluator`), into tables of batch × in × (k+1) floats;
// 2. moves the coefficients into an [in, row, out] layout with outputs contiguous, so the work per (b, i)
//    is k + 1 scaled rows of `out` floats added together: SIMD8 over outputs;
// 3. leaves the SiLU branch (a dense product) to OpenBLAS.
// Sums over the batch (the coefficient and scale gradients) run over samples in a fixed order: per input
// (one thread each), samples sorted by grid interval, then by index.

extension CPUBackend {
    public func splineForward(_ x: DeviceBuffer, knots: DeviceBuffer, coefficients: DeviceBuffer, scaleBase: DeviceBuffer, scaleSpline: DeviceBuffer, into y: DeviceBuffer, shape: SplineShape) {
        shape.validate("splineForward", shape.parameterBuffers(x: x, knots: knots, coefficients: coefficients, scaleBase: scaleBase, scaleSpline: scaleSpline)
            + [("y [batch, out]", y, shape.batch * shape.outputs)])
        guard shape.batch * shape.outputs > 0, ready(x, knots, coefficients, scaleBase, scaleSpline, y) else { return }
        if shape.inputs == 0 {
            fill(y, offset: 0, count: shape.batch * shape.outputs, value: 0)
            return
        }
        let (batch, inputs, outputs, order) = (shape.batch, shape.inputs, shape.outputs, shape.order)
        let rows = shape.coefficientCount

        // w[i, n, j] = scaleSpline[i, j] · c[i, j, n].
        let weights = allocate(inputs * rows * outputs)
        let table = SplineTable(backend: self, shape: shape, derivatives: false)
        guard ready(weights), table.isReady else { return }
        CPUSpline.scaledRows(coefficients: floats(coefficients), scaleSpline: floats(scaleSpline), into: floats(weights), shape: shape)
        table.fill(x: floats(x), knots: floats(knots))

        // The SiLU branch: y = silu(x) · scaleBase, [batch, in] × [in, out].
        gemm(GemmProblem(m: batch, n: outputs, k: inputs), a: table.silu, b: scaleBase, c: y)

        // The spline branch, added in blocks of inputs × 32 outputs small enough to stay in L1 while a
        // thread's rows of the batch stream past. Threads own disjoint rows of y.
        nonisolated(unsafe) let out = floats(y), w = floats(weights)
        nonisolated(unsafe) let starts = integers(table.starts), values = floats(table.values)
        let width = order + 1
        let inputBlock = max(1, 24_576 / (rows * 32 * 4))
        Parallel.forRanges(batch, grain: max(1, 4096 / max(inputs * outputs / 64, 1))) { range in
            for blockStart in stride(from: 0, to: inputs, by: inputBlock) {
                let blockEnd = min(inputs, blockStart + inputBlock)
                var column = 0
                while column < outputs {
                    let tile = outputs - column >= 32 ? 32 : (outputs - column >= 8 ? 8 : 1)
                    for b in range {
                        let target = out + (b &* outputs &+ column)
                        let rowBase = b &* inputs
                        switch tile {
                        case 32:
                            var a0 = Lanes.load(target, 0), a1 = Lanes.load(target, 8), a2 = Lanes.load(target, 16), a3 = Lanes.load(target, 24)
                            for i in blockStart..<blockEnd {
                                let start = Int(starts[rowBase &+ i])
                                if start < 0 { continue }
                                let weight = values + (rowBase &+ i) &* width
                                var line = w + ((i &* rows &+ start) &* outputs &+ column)
                                for r in 0..<width {
                                    let c = SIMD8<Float>(repeating: weight[r])
                                    a0 += c * Lanes.load(line, 0)
                                    a1 += c * Lanes.load(line, 8)
                                    a2 += c * Lanes.load(line, 16)
                                    a3 += c * Lanes.load(line, 24)
                                    line += outputs
                                }
                            }
                            Lanes.store(a0, target, 0)
                            Lanes.store(a1, target, 8)
                            Lanes.store(a2, target, 16)
                            Lanes.store(a3, target, 24)
                        case 8:
                            var a0 = Lanes.load(target, 0)
                            for i in blockStart..<blockEnd {
                                let start = Int(starts[rowBase &+ i])
                                if start < 0 { continue }
                                let weight = values + (rowBase &+ i) &* width
                                var line = w + ((i &* rows &+ start) &* outputs &+ column)
                                for r in 0..<width {
                                    a0 += SIMD8<Float>(repeating: weight[r]) * Lanes.load(line, 0)
                                    line += outputs
                                }
                            }
                            Lanes.store(a0, target, 0)
                        default:
                            var a0 = target[0]
                            for i in blockStart..<blockEnd {
                                let start = Int(starts[rowBase &+ i])
                                if start < 0 { continue }
                                let weight = values + (rowBase &+ i) &* width
                                var line = w + ((i &* rows &+ start) &* outputs &+ column)
                                for r in 0..<width {
                                    a0 += weight[r] * line[0]
                                    line += outputs
                                }
                            }
                            target[0] = a0
                        }
                    }
                    column += tile
                }
            }
        }
    }

    public func splineBackward(_ x: DeviceBuffer, knots: DeviceBuffer, coefficients: DeviceBuffer, scaleBase: DeviceBuffer, scaleSpline: DeviceBuffer, outputGradient dy: DeviceBuffer, shape: SplineShape, inputGradient: DeviceBuffer?, coefficientGradient: DeviceBuffer?, scaleBaseGradient: DeviceBuffer?, scaleSplineGradient: DeviceBuffer?) {
        let (batch, inputs, outputs) = (shape.batch, shape.inputs, shape.outputs)
        let rows = shape.coefficientCount
        shape.validate("splineBackward", shape.parameterBuffers(x: x, knots: knots, coefficients: coefficients, scaleBase: scaleBase, scaleSpline: scaleSpline) + [
            ("outputGradient [batch, out]", dy, batch * outputs),
            ("inputGradient [batch, in]", inputGradient, batch * inputs),
            ("coefficientGradient [in, out, G+k]", coefficientGradient, inputs * outputs * rows),
            ("scaleBaseGradient [in, out]", scaleBaseGradient, inputs * outputs),
            ("scaleSplineGradient [in, out]", scaleSplineGradient, inputs * outputs),
        ])
        let outputsToWrite = [inputGradient, coefficientGradient, scaleBaseGradient, scaleSplineGradient].compactMap { $0 }
        guard ready(x, knots, coefficients, scaleBase, scaleSpline, dy), outputsToWrite.allSatisfy({ ready($0) }) else { return }
        if batch * inputs * outputs == 0 {
            // Empty sums: every gradient is zero.
            if let inputGradient { fill(inputGradient, offset: 0, count: batch * inputs, value: 0) }
            if let coefficientGradient { fill(coefficientGradient, offset: 0, count: inputs * outputs * rows, value: 0) }
            if let scaleBaseGradient { fill(scaleBaseGradient, offset: 0, count: inputs * outputs, value: 0) }
            if let scaleSplineGradient { fill(scaleSplineGradient, offset: 0, count: inputs * outputs, value: 0) }
            return
        }
        let table = SplineTable(backend: self, shape: shape, derivatives: inputGradient != nil)
        guard table.isReady else { return }
        table.fill(x: floats(x), knots: floats(knots))

        if let scaleBaseGradient {
            // Σ_b silu(x[b, i]) · dy[b, j] = silu(x)ᵀ · dy, summed by OpenBLAS in its fixed blocking order.
            gemm(GemmProblem(m: inputs, n: outputs, k: batch, transposeA: true), a: table.silu, b: dy, c: scaleBaseGradient)
        }
        if let inputGradient {
            inputGradientPass(table: table, knots: knots, coefficients: coefficients, scaleBase: scaleBase, scaleSpline: scaleSpline, dy: dy, into: inputGradient, shape: shape)
        }
        if coefficientGradient != nil || scaleSplineGradient != nil {
            coefficientGradientPass(table: table, coefficients: coefficients, scaleSpline: scaleSpline, dy: dy, coefficientGradient: coefficientGradient, scaleSplineGradient: scaleSplineGradient, shape: shape)
        }
    }

    /// dx[b, i] = silu′(x) · (dy · scaleBaseᵀ)[b, i] + Σ_j dy[b, j] · Σ_r D_r(x[b, i]) · v[i, s + r, j], where
    /// `v` are the coefficients of the spline's derivative (an order-(k−1) spline) and `D_r` its k bases.
    private func inputGradientPass(table: SplineTable, knots: DeviceBuffer, coefficients: DeviceBuffer, scaleBase: DeviceBuffer, scaleSpline: DeviceBuffer, dy: DeviceBuffer, into dx: DeviceBuffer, shape: SplineShape) {
        let (batch, inputs, outputs, order) = (shape.batch, shape.inputs, shape.outputs, shape.order)
        let derivativeRows = shape.coefficientCount + 1
        let derivativeWeights = allocate(inputs * derivativeRows * outputs)
        guard ready(derivativeWeights) else { return }
        CPUSpline.derivativeRows(coefficients: floats(coefficients), scaleSpline: floats(scaleSpline), knots: floats(knots), into: floats(derivativeWeights), shape: shape)
        gemm(GemmProblem(m: batch, n: inputs, k: outputs, transposeB: true), a: dy, b: scaleBase, c: dx)

        // Threads own disjoint rows of dx. A block of inputs' derivative rows stays in L2 while the
        // thread's samples pass; each sample's dy row stays in L1 across the block.
        nonisolated(unsafe) let gradient = floats(dx), upstream = floats(dy), v = floats(derivativeWeights)
        nonisolated(unsafe) let starts = integers(table.lowerStarts!), values = floats(table.lowerValues!), siluGradient = floats(table.siluGradient!)
        let inputBlock = max(1, 196_608 / (derivativeRows * outputs * 4))
        Parallel.forRanges(batch, grain: max(1, 4096 / max(inputs * outputs / 64, 1))) { range in
            for blockStart in stride(from: 0, to: inputs, by: inputBlock) {
                let blockEnd = min(inputs, blockStart + inputBlock)
                for b in range {
                    let dyRow = upstream + b &* outputs
                    for i in blockStart..<blockEnd {
                        let index = b &* inputs &+ i
                        var total = gradient[index] * siluGradient[index]
                        let start = Int(starts[index])
                        if start >= 0 {
                            let weight = values + index &* order
                            let first = v + (i &* derivativeRows &+ start) &* outputs
                            var r = 0
                            while r < order {
                                // Up to three rows share each load of dy.
                                let count = min(3, order - r)
                                let dots = CPUSpline.dots(dyRow, first + r &* outputs, outputs, count: count)
                                total += weight[r] * dots[0]
                                if count > 1 { total += weight[r + 1] * dots[1] }
                                if count > 2 { total += weight[r + 2] * dots[2] }
                                r += count
                            }
                        }
                        gradient[index] = total
                    }
                }
            }
        }
    }

    /// The sums over the batch. Per input i (one thread each), with S[n, j] = Σ_b B_n(x[b, i]) · dy[b, j]:
    /// coefficientGradient[i, j, n] = scaleSpline[i, j] · S[n, j] and scaleSplineGradient[i, j] =
    /// Σ_n c[i, j, n] · S[n, j]. Samples are visited grouped by their window of bases (a counting sort), so
    /// each group's k + 1 rows of S are summed in registers; the order depends only on the data.
    private func coefficientGradientPass(table: SplineTable, coefficients: DeviceBuffer, scaleSpline: DeviceBuffer, dy: DeviceBuffer, coefficientGradient: DeviceBuffer?, scaleSplineGradient: DeviceBuffer?, shape: SplineShape) {
        let (batch, inputs, outputs, order) = (shape.batch, shape.inputs, shape.outputs, shape.order)
        let rows = shape.coefficientCount, width = order + 1
        let windows = shape.intervals  // window starts run over 0..<G
        nonisolated(unsafe) let upstream = floats(dy), c = floats(coefficients), scale = floats(scaleSpline)
        nonisolated(unsafe) let starts = integers(table.starts), values = floats(table.values)
        nonisolated(unsafe) let dc = coefficientGradient.map { floats($0) }, dScale = scaleSplineGradient.map { floats($0) }
        Parallel.forRanges(inputs, grain: 1) { range in
            let sums = UnsafeMutablePointer<Float>.allocate(capacity: rows * outputs)
            let order32 = UnsafeMutablePointer<Int32>.allocate(capacity: batch)
            let sortedValues = UnsafeMutablePointer<Float>.allocate(capacity: width * batch)
            let groupStart = UnsafeMutablePointer<Int>.allocate(capacity: windows + 1)
            defer {
                sums.deallocate()
                order32.deallocate()
                sortedValues.deallocate()
                groupStart.deallocate()
            }
            for i in range {
                sums.update(repeating: 0, count: rows * outputs)
                // Counting sort of the samples inside the grid by window start, keeping sample order.
                groupStart.update(repeating: 0, count: windows + 1)
                for b in 0..<batch {
                    let start = Int(starts[b &* inputs &+ i])
                    if start >= 0 { groupStart[start + 1] += 1 }
                }
                for s in 0..<windows { groupStart[s + 1] += groupStart[s] }
                let inside = groupStart[windows]
                for b in 0..<batch {
                    let index = b &* inputs &+ i
                    let start = Int(starts[index])
                    if start < 0 { continue }
                    let slot = groupStart[start]
                    groupStart[start] = slot + 1
                    order32[slot] = Int32(b)
                    for r in 0..<width { sortedValues[r &* batch &+ slot] = values[index &* width &+ r] }
                }
                // groupStart[s] now holds the end of group s; group s begins where group s − 1 ends.
                var begin = 0
                for s in 0..<windows {
                    let end = groupStart[s]
                    if end > begin {
                        CPUSpline.accumulateGroup(samples: order32 + begin, count: end - begin, values: sortedValues + begin, valueStride: batch, width: width, dy: upstream, outputs: outputs, into: sums + s &* outputs)
                    }
                    begin = end
                }
                precondition(begin == inside)
                for j in 0..<outputs {
                    let edge = i &* outputs &+ j
                    let coefficientRow = c + edge &* rows
                    if let dc {
                        let target = dc + edge &* rows
                        for n in 0..<rows { target[n] = scale[edge] * sums[n &* outputs &+ j] }
                    }
                    if let dScale {
                        var total: Float = 0
                        for n in 0..<rows { total += coefficientRow[n] * sums[n &* outputs &+ j] }
                        dScale[edge] = total
                    }
                }
            }
        }
    }
}

/// Per-call tables of the non-zero bases at every x[b, i]: batch × in × (k+1) values, never × (G+k).
struct SplineTable {
    let shape: SplineShape
    /// [batch, in] `Int32`: the first coefficient row of the k + 1 order-k bases (window start), −1 outside the grid.
    let starts: DeviceBuffer
    /// [batch, in, k+1]: their values (zero where a basis index falls outside 0..<G+k).
    let values: DeviceBuffer
    /// [batch, in]: silu(x).
    let silu: DeviceBuffer
    /// With derivatives: the window start of the k order-(k−1) bases (rows 0...G+k of the derivative's
    /// coefficients), their values [batch, in, k], and silu′(x).
    let lowerStarts: DeviceBuffer?
    let lowerValues: DeviceBuffer?
    let siluGradient: DeviceBuffer?
    private let backend: CPUBackend

    init(backend: CPUBackend, shape: SplineShape, derivatives: Bool) {
        let count = shape.batch * shape.inputs
        self.backend = backend
        self.shape = shape
        starts = backend.allocate(count)
        values = backend.allocate(count * (shape.order + 1))
        silu = backend.allocate(count)
        lowerStarts = derivatives ? backend.allocate(count) : nil
        lowerValues = derivatives ? backend.allocate(count * shape.order) : nil
        siluGradient = derivatives ? backend.allocate(count) : nil
    }

    var isReady: Bool {
        backend.ready(starts, values, silu) && [lowerStarts, lowerValues, siluGradient].allSatisfy { $0.map { backend.ready($0) } ?? true }
    }

    /// Evaluates the bases at every x[b, i], in parallel over rows of the batch.
    func fill(x: UnsafeMutablePointer<Float>, knots: UnsafeMutablePointer<Float>) {
        let (inputs, order) = (shape.inputs, shape.order)
        // Threads write disjoint rows of every table.
        nonisolated(unsafe) let input = x, knotRows = knots
        nonisolated(unsafe) let starts = backend.integers(self.starts), values = backend.floats(self.values), silu = backend.floats(self.silu)
        nonisolated(unsafe) let lowerStarts = self.lowerStarts.map { backend.integers($0) }
        nonisolated(unsafe) let lowerValues = self.lowerValues.map { backend.floats($0) }
        nonisolated(unsafe) let siluGradient = self.siluGradient.map { backend.floats($0) }
        let shape = self.shape
        Parallel.forRanges(shape.batch, grain: max(1, 2048 / max(inputs, 1))) { range in
            let evaluator = SplineBasisEvaluator(shape: shape)
            defer { evaluator.release() }
            for b in range {
                for i in 0..<inputs {
                    let index = b &* inputs &+ i
                    let value = input[index]
                    let sigmoid = CPUKernels.sigmoid(value)
                    silu[index] = value * sigmoid
                    if let siluGradient { siluGradient[index] = sigmoid * (1 + value * CPUKernels.sigmoid(-value)) }
                    let (start, lowerStart) = evaluator.evaluate(value, knots: knotRows + i &* shape.knotCount, values: values + index &* (order + 1), lowerValues: lowerValues.map { $0 + index &* order })
                    starts[index] = Int32(start)
                    lowerStarts?[index] = Int32(lowerStart)
                }
            }
        }
    }
}

/// The non-zero B-spline bases at one point, by the local Cox–de Boor triangle (or, for cubic splines on
/// uniform knots, the closed form), in float32.
struct SplineBasisEvaluator {
    let order: Int
    let intervals: Int
    let knotCount: Int
    let uniform: Bool
    /// Scratch for the triangle: the bases of the current order, x − t_{m+1−j} and t_{m+j} − x.
    private let scratch: UnsafeMutablePointer<Float>

    init(shape: SplineShape) {
        order = shape.order
        intervals = shape.intervals
        knotCount = shape.knotCount
        uniform = shape.uniform
        scratch = .allocate(capacity: 3 * 8)
    }

    func release() { scratch.deallocate() }

    /// The interval m with t_m ≤ x < t_{m+1}, or nil outside [t_0, t_{G+2k}).
    @inline(__always)
    func interval(_ x: Float, _ t: UnsafePointer<Float>) -> Int? {
        let last = knotCount - 1
        guard x >= t[0], x < t[last] else { return nil }
        var m: Int
        if uniform {
            // Index arithmetic, then corrected against the knots themselves so that points on a knot
            // follow the half-open convention exactly.
            let h = (t[last] - t[0]) / Float(last)
            m = min(max(Int((x - t[0]) / h), 0), last - 1)
            while m > 0 && x < t[m] { m -= 1 }
            while m < last - 1 && x >= t[m + 1] { m += 1 }
        } else {
            var low = 0, high = last
            while high - low > 1 {
                let middle = (low + high) >> 1
                if x >= t[middle] { low = middle } else { high = middle }
            }
            m = low
        }
        return m
    }

    /// Writes the k + 1 order-k bases at x into `values` and, when `lowerValues` is given, the k order-(k−1)
    /// bases (the derivative's) into it. Returns the window starts: the coefficient row of `values[0]`
    /// (in 0..<G) and of `lowerValues[0]` (in 0...G+1); entries for bases that do not exist are zero.
    /// Outside the grid both starts are −1 and nothing is written.
    @inline(__always)
    func evaluate(_ x: Float, knots t: UnsafePointer<Float>, values: UnsafeMutablePointer<Float>, lowerValues: UnsafeMutablePointer<Float>?) -> (Int, Int) {
        guard let m = interval(x, t) else { return (-1, -1) }
        let k = order
        let bases = scratch, left = scratch + 8, right = scratch + 16
        if uniform && k == 3 {
            // Cubic bases at m−3…m in u = (x − t_m)/h: (1−u)³/6, (3u³ − 6u² + 4)/6, (−3u³ + 3u² + 3u + 1)/6, u³/6,
            // and the quadratic bases at m−2…m: (1−u)²/2, (−2u² + 2u + 1)/2, u²/2.
            let h = (t[knotCount - 1] - t[0]) / Float(knotCount - 1)
            let u = min(max((x - t[m]) / h, 0), 1)
            let v = 1 - u, u2 = u * u, u3 = u2 * u
            bases[0] = v * v * v * (1.0 / 6)
            bases[1] = (3 * u3 - 6 * u2 + 4) * (1.0 / 6)
            bases[2] = (-3 * u3 + 3 * u2 + 3 * u + 1) * (1.0 / 6)
            bases[3] = u3 * (1.0 / 6)
            if let lowerValues {
                left[0] = v * v * 0.5
                left[1] = (-2 * u2 + 2 * u + 1) * 0.5
                left[2] = u2 * 0.5
                return (window(m, level: 3, rows: intervals + 3, from: bases, into: values),
                        window(m, level: 2, rows: intervals + 4, from: left, into: lowerValues))
            }
            return (window(m, level: 3, rows: intervals + 3, from: bases, into: values), -1)
        }
        // Knots beyond either end (needed only by bases that do not exist) continue the end spacing.
        @inline(__always) func knot(_ q: Int) -> Float {
            if q < 0 { return t[0] + Float(q) * (t[1] - t[0]) }
            if q >= knotCount { return t[knotCount - 1] + Float(q - knotCount + 1) * (t[knotCount - 1] - t[knotCount - 2]) }
            return t[q]
        }
        for j in 1...k {
            left[j] = x - knot(m + 1 - j)
            right[j] = knot(m + j) - x
        }
        // bases[r] holds B_{m−j+r, j} after level j.
        bases[0] = 1
        var lowerStart = -1
        for j in 1...k {
            if j == k, let lowerValues {
                lowerStart = window(m, level: k - 1, rows: intervals + k + 1, from: bases, into: lowerValues)
            }
            var carried: Float = 0
            for r in 0..<j {
                let share = bases[r] / (right[r + 1] + left[j - r])
                bases[r] = carried + right[r + 1] * share
                carried = left[j - r] * share
            }
            bases[j] = carried
        }
        return (window(m, level: k, rows: intervals + k, from: bases, into: values), lowerStart)
    }

    /// Copies the `level + 1` bases B_{m−level…m, level} into a window of rows that exist (0..<rows):
    /// returns the window's first row; entries that fall outside are zero.
    @inline(__always)
    func window(_ m: Int, level: Int, rows: Int, from bases: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) -> Int {
        let first = m - level
        let start = min(max(first, 0), rows - level - 1)
        let shift = start - first
        for r in 0...level {
            let source = r + shift
            out[r] = source >= 0 && source <= level ? bases[source] : 0
        }
        return start
    }
}

/// The inner loops of the CPU spline kernels.
enum CPUSpline {
    /// w[i, n, j] = scaleSpline[i, j] · c[i, j, n]: outputs become contiguous, in parallel over inputs.
    static func scaledRows(coefficients: UnsafeMutablePointer<Float>, scaleSpline: UnsafeMutablePointer<Float>, into weights: UnsafeMutablePointer<Float>, shape: SplineShape) {
        let (outputs, rows) = (shape.outputs, shape.coefficientCount)
        // Threads write disjoint inputs' blocks.
        nonisolated(unsafe) let c = coefficients, scale = scaleSpline, w = weights
        Parallel.forRanges(shape.inputs, grain: max(1, 16_384 / max(outputs * rows, 1))) { range in
            for i in range {
                let block = w + i &* rows &* outputs
                for j in 0..<outputs {
                    let edge = i &* outputs &+ j
                    let s = scale[edge], source = c + edge &* rows
                    for n in 0..<rows { block[n &* outputs &+ j] = s * source[n] }
                }
            }
        }
    }

    /// The coefficients of the derivative of edge (i, j)'s scaled spline, an order-(k−1) spline with
    /// G + k + 1 coefficients: v[i, n, j] = k · (w_n − w_{n−1}) / (t_{n+k} − t_n) with w_{−1} = w_{G+k} = 0
    /// and w = scaleSpline · c. Layout [in, G+k+1, out].
    static func derivativeRows(coefficients: UnsafeMutablePointer<Float>, scaleSpline: UnsafeMutablePointer<Float>, knots: UnsafeMutablePointer<Float>, into weights: UnsafeMutablePointer<Float>, shape: SplineShape) {
        let (outputs, rows, order, knotCount) = (shape.outputs, shape.coefficientCount, shape.order, shape.knotCount)
        nonisolated(unsafe) let c = coefficients, scale = scaleSpline, t = knots, v = weights
        Parallel.forRanges(shape.inputs, grain: max(1, 16_384 / max(outputs * rows, 1))) { range in
            for i in range {
                let block = v + i &* (rows + 1) &* outputs
                let knotRow = t + i &* knotCount
                for j in 0..<outputs {
                    let edge = i &* outputs &+ j
                    let s = scale[edge], source = c + edge &* rows
                    var previous: Float = 0
                    for n in 0...rows {
                        let current = n < rows ? s * source[n] : 0
                        block[n &* outputs &+ j] = Float(order) * (current - previous) / (knotRow[n + order] - knotRow[n])
                        previous = current
                    }
                }
            }
        }
    }

    /// Up to three dot products of `a` with the rows `rows`, `rows + length`, `rows + 2·length` (each of
    /// `length` floats), sharing the loads of `a`.
    @inline(__always)
    static func dots(_ a: UnsafeMutablePointer<Float>, _ rows: UnsafeMutablePointer<Float>, _ length: Int, count: Int) -> SIMD3<Float> {
        // Rows past `count` alias the first, and their sums are ignored.
        let row0 = rows, row1 = count > 1 ? rows + length : rows, row2 = count > 2 ? rows + 2 &* length : rows
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>()
        var j = 0
        while j &+ 8 <= length {
            let value = Lanes.load(a, j)
            s0 += value * Lanes.load(row0, j)
            s1 += value * Lanes.load(row1, j)
            s2 += value * Lanes.load(row2, j)
            j &+= 8
        }
        var result = SIMD3<Float>(s0.sum(), s1.sum(), s2.sum())
        while j < length {
            result += a[j] * SIMD3(row0[j], row1[j], row2[j])
            j &+= 1
        }
        return result
    }

    /// Adds, for r in 0...k, Σ over the group's samples of value_r · dy[sample, :] into row r of `sums`
    /// (rows `outputs` apart), visiting samples in the given order.
    @inline(__always)
    static func accumulateGroup(samples: UnsafeMutablePointer<Int32>, count: Int, values: UnsafeMutablePointer<Float>, valueStride: Int, width: Int, dy: UnsafeMutablePointer<Float>, outputs: Int, into sums: UnsafeMutablePointer<Float>) {
        var column = 0
        while column < outputs {
            let tile = outputs - column >= 32 ? 32 : (outputs - column >= 8 ? 8 : 1)
            for r in 0..<width {
                let weights = values + r &* valueStride
                let target = sums + (r &* outputs &+ column)
                switch tile {
                case 32:
                    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                    for position in 0..<count {
                        let row = dy + (Int(samples[position]) &* outputs &+ column)
                        let c = SIMD8<Float>(repeating: weights[position])
                        a0 += c * Lanes.load(row, 0)
                        a1 += c * Lanes.load(row, 8)
                        a2 += c * Lanes.load(row, 16)
                        a3 += c * Lanes.load(row, 24)
                    }
                    Lanes.store(Lanes.load(target, 0) + a0, target, 0)
                    Lanes.store(Lanes.load(target, 8) + a1, target, 8)
                    Lanes.store(Lanes.load(target, 16) + a2, target, 16)
                    Lanes.store(Lanes.load(target, 24) + a3, target, 24)
                case 8:
                    var a0 = SIMD8<Float>()
                    for position in 0..<count {
                        a0 += SIMD8<Float>(repeating: weights[position]) * Lanes.load(dy + (Int(samples[position]) &* outputs &+ column), 0)
                    }
                    Lanes.store(Lanes.load(target, 0) + a0, target, 0)
                default:
                    var a0: Float = 0
                    for position in 0..<count { a0 += weights[position] * dy[Int(samples[position]) &* outputs &+ column] }
                    target[0] += a0
                }
            }
            column += tile
        }
    }
}

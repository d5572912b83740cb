internal import CKilnCPU
import Foundation

// KAN spline layers on the CPU (see `SplineKernels` in Families/Spline.swift for the math).
//
// Only k + 1 bases are non-zero at any x, so nothing of size batch × in × (G+k) is ever built. Each call:
// 1. evaluates, once per (b, i), silu(x) and the k + 1 non-zero order-k bases (for the backward also
//    silu′(x) and the k non-zero order-(k−1) bases of the derivative), windowed so they index coefficient
//    rows that exist (`SplineTable`), into tables of in × batch × (k+1) floats;
// 2. lays the scaled coefficients out as rows of outputs, followed by one more row per input holding
//    scaleBase[i, :], so the work per (b, i) is k + 2 rows of outputs scaled and added. The innermost
//    loops are C (`CKilnCPU/spline.c`): AVX2 + FMA where the processor has them, picked at run time,
//    since the package is built for the baseline x86-64 instruction set (SSE2, no FMA); portable C
//    elsewhere. The SiLU branch is that extra row: no BLAS call, whose worker threads would keep
//    spinning on the cores these loops run on.
// 3. The forward stores its rows in column tiles ([tile][in][row][32 outputs]) so a block of inputs' rows
//    sits together in L1, instead of 1 KiB apart (a power-of-two stride that maps every row to the same
//    few cache sets); the sums over the batch read dy in the same tiles.
// Sums over the batch (the coefficient and scale gradients) run in a fixed order: per input (one thread
// each), samples grouped by their window of bases, in sample order within a group; the SiLU row over
// all samples in sample order.

extension CPUBackend {
    public func splineForward(_ operands: SplineOperands, shape: SplineShape, into y: DeviceBuffer) {
        shape.validate(operands, output: y)
        let (x, knots, coefficients, scaleBase, scaleSpline) = (operands.x, operands.knots, operands.coefficients, operands.scaleBase, operands.scaleSpline)
        guard shape.batch * shape.outputs > 0, ready(x, knots, coefficients, scaleBase, scaleSpline, y), !writesEmptySplineSums(shape, into: y) else { return }
        let (batch, inputs, outputs, order) = (shape.batch, shape.inputs, shape.outputs, shape.order)
        let rows = shape.coefficientCount, rowsPerInput = rows + 1

        // Rows 0..<G+k of input i: scaleSpline[i, j] · c[i, j, n]; row G+k: scaleBase[i, j]; in column tiles.
        let weights = allocate(inputs * rowsPerInput * outputs)
        let table = SplineTable(backend: self, shape: shape, derivatives: false)
        guard ready(weights), table.isReady else { return }
        CPUSpline.forwardRows(coefficients: floats(coefficients), scaleSpline: floats(scaleSpline), scaleBase: floats(scaleBase), into: floats(weights), shape: shape)
        table.fill(x: floats(x), knots: floats(knots))

        // For a block of inputs and one tile of outputs at a time: the block's rows (at most 24 KiB) stay in
        // L1 while the thread's samples pass. Threads own disjoint rows of y.
        nonisolated(unsafe) let out = floats(y), w = floats(weights)
        nonisolated(unsafe) let starts = integers(table.starts), values = floats(table.values), silu = floats(table.silu)
        let width = order + 1
        let inputBlock = max(1, 24_576 / (rowsPerInput * 32 * 4))
        Parallel.forRanges(batch, grain: max(1, 4096 / max(inputs * outputs / 64, 1))) { range in
            kiln_spline_forward_range(range.lowerBound, range.upperBound, width, rows, inputBlock, batch, inputs, outputs, w, starts, values, silu, out)
        }
    }

    public func splineBackward(_ operands: SplineOperands, shape: SplineShape, outputGradient dy: DeviceBuffer, into gradients: SplineGradients) {
        shape.validate(operands, outputGradient: dy, gradients: gradients)
        let (x, knots) = (operands.x, operands.knots)
        guard ready(x, knots, operands.coefficients, operands.scaleBase, operands.scaleSpline, dy), gradients.requested.allSatisfy({ ready($0) }),
              !writesEmptySplineSums(shape, into: gradients), !gradients.requested.isEmpty else { return }
        let table = SplineTable(backend: self, shape: shape, derivatives: gradients.input != nil)
        guard table.isReady else { return }
        table.fill(x: floats(x), knots: floats(knots))
        if let inputGradient = gradients.input {
            inputGradientPass(table: table, operands, dy: dy, into: inputGradient, shape: shape)
        }
        if gradients.wantsBatchSums {
            batchSumPass(table: table, operands, dy: dy, into: gradients, shape: shape)
        }
    }

    /// dx[b, i] = silu′(x) · Σ_j dy[b, j] · scaleBase[i, j] + Σ_r D_r(x) · Σ_j dy[b, j] · v[i, s + r, j]: dot
    /// products of dy's row with k + 1 rows per input, where `v` are the coefficients of the derivative of
    /// the scaled spline (an order-(k−1) spline, G + k + 1 rows) and `D_r` its k non-zero bases; the last
    /// row of each input is scaleBase[i, :].
    private func inputGradientPass(table: SplineTable, _ operands: SplineOperands, dy: DeviceBuffer, into dx: DeviceBuffer, shape: SplineShape) {
        let (batch, inputs, outputs, order) = (shape.batch, shape.inputs, shape.outputs, shape.order)
        let rowsPerInput = shape.coefficientCount + 2, baseRow = shape.coefficientCount + 1
        let derivativeWeights = allocate(inputs * rowsPerInput * outputs)
        guard ready(derivativeWeights) else { return }
        CPUSpline.derivativeRows(
            coefficients: floats(operands.coefficients), scaleSpline: floats(operands.scaleSpline), scaleBase: floats(operands.scaleBase), knots: floats(operands.knots),
            into: floats(derivativeWeights), shape: shape)

        // Threads own disjoint rows of dx. A block of inputs' rows stays in L2 while the thread's samples
        // pass; each sample's dy row stays in L1 across the block. Up to four rows share each load of dy.
        nonisolated(unsafe) let gradient = floats(dx), upstream = floats(dy), v = floats(derivativeWeights)
        nonisolated(unsafe) let starts = integers(table.lowerStarts!), values = floats(table.lowerValues!), siluGradient = floats(table.siluGradient!)
        let inputBlock = max(1, 196_608 / (rowsPerInput * outputs * 4))
        Parallel.forRanges(batch, grain: max(1, 4096 / max(inputs * outputs / 64, 1))) { range in
            kiln_spline_input_gradient_range(range.lowerBound, range.upperBound, inputBlock, batch, inputs, outputs, order, rowsPerInput, baseRow,
                                             v, starts, values, siluGradient, upstream, gradient)
        }
    }

    /// The sums over the batch, per input i (one thread each): S[n, j] = Σ_b B_n(x[b, i]) · dy[b, j] gives
    /// dCoefficients[i, j, n] = scaleSpline[i, j] · S[n, j] and dScaleSpline[i, j] =
    /// Σ_n c[i, j, n] · S[n, j]; dScaleBase[i, j] = Σ_b silu(x[b, i]) · dy[b, j]. For S, samples are
    /// visited grouped by their window of bases (a counting sort that keeps sample order), so each group's
    /// k + 1 rows of S are summed in registers; the order depends only on the data. dy is first copied into
    /// column tiles ([tile][batch][32]) so a group's slices of a tile are 128 bytes apart, not 1 KiB.
    private func batchSumPass(table: SplineTable, _ operands: SplineOperands, dy: DeviceBuffer, into gradients: SplineGradients, shape: SplineShape) {
        let (batch, inputs, outputs, order) = (shape.batch, shape.inputs, shape.outputs, shape.order)
        let rows = shape.coefficientCount, width = order + 1
        let windows = shape.intervals  // window starts run over 0..<G
        let needsSplineSums = gradients.coefficients != nil || gradients.scaleSpline != nil
        let tiled = allocate(batch * outputs)
        guard ready(tiled) else { return }
        CPUSpline.tileColumns(floats(dy), rows: batch, columns: outputs, into: floats(tiled))
        nonisolated(unsafe) let upstream = floats(tiled), c = floats(operands.coefficients), scale = floats(operands.scaleSpline)
        nonisolated(unsafe) let starts = integers(table.starts), values = floats(table.values), silu = floats(table.silu)
        nonisolated(unsafe) let dc = gradients.coefficients.map { floats($0) }, dBase = gradients.scaleBase.map { floats($0) }, dScale = gradients.scaleSpline.map { floats($0) }
        Parallel.forRanges(inputs, grain: 1) { range in
            // S in rows 0..<G+k, the SiLU sums in row G+k.
            let sums = UnsafeMutablePointer<Float>.allocate(capacity: (rows + 1) * outputs)
            let samples = UnsafeMutablePointer<Int32>.allocate(capacity: batch)
            let sortedValues = UnsafeMutablePointer<Float>.allocate(capacity: width * batch)
            let groupEnd = UnsafeMutablePointer<Int>.allocate(capacity: windows + 1)
            defer {
                sums.deallocate()
                samples.deallocate()
                sortedValues.deallocate()
                groupEnd.deallocate()
            }
            for i in range {
                sums.update(repeating: 0, count: (rows + 1) * outputs)
                if dBase != nil {
                    for b in 0..<batch { samples[b] = Int32(b) }
                    kiln_spline_accumulate_group(samples, batch, silu + i &* batch, 0, 1, upstream, batch, outputs, sums + rows &* outputs)
                }
                if needsSplineSums {
                    let inputStarts = starts + i &* batch, inputValues = values + i &* batch &* width
                    // Counting sort of the samples inside the grid by window start, keeping sample order.
                    groupEnd.update(repeating: 0, count: windows + 1)
                    for b in 0..<batch {
                        let start = Int(inputStarts[b])
                        if start >= 0 { groupEnd[start + 1] += 1 }
                    }
                    for s in 0..<windows { groupEnd[s + 1] += groupEnd[s] }
                    for b in 0..<batch {
                        let start = Int(inputStarts[b])
                        if start < 0 { continue }
                        let slot = groupEnd[start]
                        groupEnd[start] = slot + 1
                        samples[slot] = Int32(b)
                        for r in 0..<width { sortedValues[r &* batch &+ slot] = inputValues[b &* width &+ r] }
                    }
                    // groupEnd[s] is now the end of group s, which begins where group s − 1 ends.
                    var begin = 0
                    for s in 0..<windows {
                        let end = groupEnd[s]
                        if end > begin {
                            kiln_spline_accumulate_group(samples + begin, end - begin, sortedValues + begin, batch, width, upstream, batch, outputs, sums + s &* outputs)
                        }
                        begin = end
                    }
                }
                for j in 0..<outputs {
                    let edge = i &* outputs &+ j
                    if let dBase { dBase[edge] = sums[rows &* outputs &+ j] }
                    if let dc {
                        let target = dc + edge &* rows
                        for n in 0..<rows { target[n] = scale[edge] * sums[n &* outputs &+ j] }
                    }
                    if let dScale {
                        let coefficientRow = c + edge &* rows
                        var total: Float = 0
                        for n in 0..<rows { total += coefficientRow[n] * sums[n &* outputs &+ j] }
                        dScale[edge] = total
                    }
                }
            }
        }
    }
}

/// Per-call tables at every x[b, i]: silu(x) and the non-zero bases, in × batch × (k+1) values at most,
/// never × (G+k). Inputs come first so that the per-input sums over the batch read them contiguously.
struct SplineTable {
    let shape: SplineShape
    /// [in, batch] `Int32`: the first coefficient row of the k + 1 order-k bases (window start), −1 outside the grid.
    let starts: DeviceBuffer
    /// [in, batch, k+1]: their values (zero where a basis index falls outside 0..<G+k).
    let values: DeviceBuffer
    /// [in, batch]: silu(x).
    let silu: DeviceBuffer
    /// With derivatives: the window start of the k order-(k−1) bases (rows 0...G+k of the derivative's
    /// coefficients), their values [in, batch, k], and silu′(x), all [in, batch].
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

    /// Evaluates everything at every x[b, i], in parallel over inputs.
    func fill(x: UnsafeMutablePointer<Float>, knots: UnsafeMutablePointer<Float>) {
        let (batch, inputs, order) = (shape.batch, shape.inputs, shape.order)
        // Threads write disjoint inputs' rows of every table.
        nonisolated(unsafe) let input = x, knotRows = knots
        nonisolated(unsafe) let starts = backend.integers(self.starts), values = backend.floats(self.values), silu = backend.floats(self.silu)
        nonisolated(unsafe) let lowerStarts = self.lowerStarts.map { backend.integers($0) }
        nonisolated(unsafe) let lowerValues = self.lowerValues.map { backend.floats($0) }
        nonisolated(unsafe) let siluGradient = self.siluGradient.map { backend.floats($0) }
        let shape = self.shape
        Parallel.forRanges(inputs, grain: max(1, 2048 / max(batch, 1))) { range in
            let evaluator = SplineBasisEvaluator(shape: shape)
            defer { evaluator.release() }
            for i in range {
                let t = knotRows + i &* shape.knotCount
                let row = i &* batch
                for b in 0..<batch {
                    let value = input[b &* inputs &+ i]
                    // σ(x) and σ(−x) from one exponential, each without cancellation.
                    let e = Foundation.exp(-Swift.abs(value))
                    let inverse = 1 / (1 + e)
                    let (positive, negative) = value >= 0 ? (inverse, e * inverse) : (e * inverse, inverse)
                    silu[row &+ b] = value * positive
                    if let siluGradient { siluGradient[row &+ b] = positive * (1 + value * negative) }
                }
                if shape.uniform && order == 3 {
                    evaluator.uniformCubic(input + i, stride: inputs, count: batch, knots: t, starts: starts + row, values: values + row &* 4,
                                           lowerStarts: lowerStarts.map { $0 + row }, lowerValues: lowerValues.map { $0 + row &* 3 })
                    continue
                }
                for b in 0..<batch {
                    let index = row &+ b
                    let value = input[b &* inputs &+ i]
                    if let lowerValues {
                        let (start, lowerStart) = evaluator.evaluate(value, knots: t, values: values + index &* (order + 1), lowerValues: lowerValues + index &* order)
                        starts[index] = Int32(start)
                        lowerStarts![index] = Int32(lowerStart)
                    } else {
                        starts[index] = Int32(evaluator.evaluate(value, knots: t, values: values + index &* (order + 1), lowerValues: nil).0)
                    }
                }
            }
        }
    }
}

/// The non-zero B-spline bases at one point, in float32: the local Cox–de Boor triangle for any order and
/// knots, and the closed form for cubic splines on uniform knots.
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
    func evaluate(_ x: Float, knots t: UnsafePointer<Float>, values: UnsafeMutablePointer<Float>, lowerValues: UnsafeMutablePointer<Float>?) -> (Int, Int) {
        guard let m = interval(x, t) else { return (-1, -1) }
        let k = order
        let bases = scratch, left = scratch + 8, right = scratch + 16
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

    /// Cubic bases on uniform knots for `count` points `x[b · stride]`, in closed form. With m the interval
    /// (index arithmetic, corrected against the knots so points on a knot follow the half-open rule),
    /// u = (x − t_m)/h and v = (t_{m+1} − x)/h (= 1 − u, but both exact differences, so bases near either
    /// end of an interval keep their relative precision), the bases at m−3…m are v³/6,
    /// (3u³ − 6u² + 4)/6, (3v³ − 6v² + 4)/6, u³/6, and the quadratic bases at m−2…m are v²/2,
    /// (1 + 2uv)/2, u²/2. Writes the same tables as `evaluate` (four values and three lower values per
    /// point).
    func uniformCubic(_ x: UnsafePointer<Float>, stride: Int, count: Int, knots t: UnsafePointer<Float>, starts: UnsafeMutablePointer<Int32>, values: UnsafeMutablePointer<Float>, lowerStarts: UnsafeMutablePointer<Int32>?, lowerValues: UnsafeMutablePointer<Float>?) {
        let last = knotCount - 1
        let first = t[0], end = t[last]
        let inverse = Float(last) / (end - first)
        let bases = scratch, lower = scratch + 8
        for b in 0..<count {
            let value = x[b &* stride]
            guard value >= first && value < end else {
                starts[b] = -1
                lowerStarts?[b] = -1
                continue
            }
            var m = min(Int((value - first) * inverse), last - 1)
            while m > 0 && value < t[m] { m -= 1 }
            while m < last - 1 && value >= t[m + 1] { m += 1 }
            let u = min((value - t[m]) * inverse, 1), v = min((t[m + 1] - value) * inverse, 1)
            let u2 = u * u, u3 = u2 * u, v2 = v * v, v3 = v2 * v
            let out = values + b &* 4
            if m >= 3 && m <= intervals + 2 {
                starts[b] = Int32(m - 3)
                out[0] = v3 * (1.0 / 6)
                out[1] = (3 * u3 - 6 * u2 + 4) * (1.0 / 6)
                out[2] = (3 * v3 - 6 * v2 + 4) * (1.0 / 6)
                out[3] = u3 * (1.0 / 6)
            } else {
                bases[0] = v3 * (1.0 / 6)
                bases[1] = (3 * u3 - 6 * u2 + 4) * (1.0 / 6)
                bases[2] = (3 * v3 - 6 * v2 + 4) * (1.0 / 6)
                bases[3] = u3 * (1.0 / 6)
                starts[b] = Int32(window(m, level: 3, rows: intervals + 3, from: bases, into: out))
            }
            guard let lowerStarts, let lowerValues else { continue }
            let lowerOut = lowerValues + b &* 3
            if m >= 2 && m <= intervals + 3 {
                lowerStarts[b] = Int32(m - 2)
                lowerOut[0] = v2 * 0.5
                lowerOut[1] = (1 + 2 * u * v) * 0.5
                lowerOut[2] = u2 * 0.5
            } else {
                lower[0] = v2 * 0.5
                lower[1] = (1 + 2 * u * v) * 0.5
                lower[2] = u2 * 0.5
                lowerStarts[b] = Int32(window(m, level: 2, rows: intervals + 4, from: lower, into: lowerOut))
            }
        }
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
    /// The width of the column tile that starts at `column`: 32 while 32 outputs remain, then 8, then 1.
    @inline(__always)
    static func tileWidth(at column: Int, outputs: Int) -> Int {
        outputs - column >= 32 ? 32 : (outputs - column >= 8 ? 8 : 1)
    }

    /// The tile holding `column`: its first column and width (see `tileWidth`).
    @inline(__always)
    static func tile(containing column: Int, outputs: Int) -> (start: Int, width: Int) {
        let wide = outputs / 32 * 32
        if column < wide { return (column / 32 * 32, 32) }
        let narrow = wide + (outputs - wide) / 8 * 8
        if column < narrow { return (wide + (column - wide) / 8 * 8, 8) }
        return (column, 1)
    }

    /// The forward's rows in column tiles: for input i, rows n < G+k hold scaleSpline[i, j] · c[i, j, n] and
    /// row G+k holds scaleBase[i, j]. The tile of columns [s, s + width) starts at element
    /// `inputs · (G+k+1) · s` and holds [in][row][width]. In parallel over inputs.
    static func forwardRows(coefficients: UnsafeMutablePointer<Float>, scaleSpline: UnsafeMutablePointer<Float>, scaleBase: UnsafeMutablePointer<Float>, into weights: UnsafeMutablePointer<Float>, shape: SplineShape) {
        let (inputs, outputs, rows) = (shape.inputs, shape.outputs, shape.coefficientCount)
        let rowsPerInput = rows + 1
        // Threads write disjoint inputs' rows.
        nonisolated(unsafe) let c = coefficients, scale = scaleSpline, base = scaleBase, w = weights
        Parallel.forRanges(inputs, grain: max(1, 16_384 / max(outputs * rowsPerInput, 1))) { range in
            for i in range {
                for j in 0..<outputs {
                    let (tileStart, width) = tile(containing: j, outputs: outputs)
                    let block = w + (inputs &* rowsPerInput &* tileStart &+ i &* rowsPerInput &* width &+ (j - tileStart))
                    let edge = i &* outputs &+ j
                    let s = scale[edge], source = c + edge &* rows
                    for n in 0..<rows { block[n &* width] = s * source[n] }
                    block[rows &* width] = base[edge]
                }
            }
        }
    }

    /// The input gradient's rows, [in, G+k+2, out]: rows n ≤ G+k hold the coefficients of the derivative of
    /// edge (i, j)'s scaled spline, an order-(k−1) spline: v[i, n, j] = k · (w_n − w_{n−1}) / (t_{n+k} − t_n)
    /// with w = scaleSpline · c and w_{−1} = w_{G+k} = 0; row G+k+1 holds scaleBase[i, j].
    static func derivativeRows(coefficients: UnsafeMutablePointer<Float>, scaleSpline: UnsafeMutablePointer<Float>, scaleBase: UnsafeMutablePointer<Float>, knots: UnsafeMutablePointer<Float>, into weights: UnsafeMutablePointer<Float>, shape: SplineShape) {
        let (outputs, rows, order, knotCount) = (shape.outputs, shape.coefficientCount, shape.order, shape.knotCount)
        let rowsPerInput = rows + 2
        // Threads write disjoint inputs' rows.
        nonisolated(unsafe) let c = coefficients, scale = scaleSpline, base = scaleBase, t = knots, v = weights
        Parallel.forRanges(shape.inputs, grain: max(1, 16_384 / max(outputs * rowsPerInput, 1))) { range in
            for i in range {
                let block = v + i &* rowsPerInput &* outputs
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
                    block[(rows + 1) &* outputs &+ j] = base[edge]
                }
            }
        }
    }

    /// Copies a [rows, columns] matrix into column tiles: the tile of columns [s, s + width) starts at
    /// element `rows · s` and holds [row][width].
    static func tileColumns(_ source: UnsafeMutablePointer<Float>, rows: Int, columns: Int, into destination: UnsafeMutablePointer<Float>) {
        // Threads write disjoint rows of every tile.
        nonisolated(unsafe) let from = source, to = destination
        Parallel.forRanges(rows, grain: max(1, 65_536 / max(columns, 1))) { range in
            var column = 0
            while column < columns {
                let width = tileWidth(at: column, outputs: columns)
                let tileBase = to + rows &* column
                for row in range {
                    (tileBase + row &* width).update(from: from + (row &* columns &+ column), count: width)
                }
                column += width
            }
        }
    }
}

import Foundation

// Element-wise, broadcasting and copy primitives of the CPU backend, plus the counter-based generator.
// Each op picks its loop once (a switch outside the loop), then runs a tight loop over raw pointers.

/// Elements below which a loop stays on one thread.
private let elementwiseGrain = 16_384

extension CPUBackend {
    public func unary(_ op: UnaryOp, _ x: DeviceBuffer, into y: DeviceBuffer, count: Int) {
        precondition(count >= 0 && x.count >= count && y.count >= count, "unary \(op): count \(count) exceeds x \(x.count) or y \(y.count)")
        guard count > 0, ready(x, y) else { return }
        // Ranges are disjoint, so parallel writes never touch the same element.
        nonisolated(unsafe) let input = floats(x), output = floats(y)
        Parallel.forRanges(count, grain: elementwiseGrain) { range in
            CPUKernels.unary(op, input + range.lowerBound, output + range.lowerBound, range.count)
        }
    }

    public func unaryBackward(_ op: UnaryOp, input x: DeviceBuffer, output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, count: Int) {
        precondition(count >= 0 && [x, y, dy, dx].allSatisfy { $0.count >= count }, "unaryBackward \(op): count \(count) exceeds a buffer")
        guard count > 0, ready(x, y, dy, dx) else { return }
        // Disjoint ranges per thread (see `unary`).
        nonisolated(unsafe) let px = floats(x), py = floats(y), pdy = floats(dy), pdx = floats(dx)
        Parallel.forRanges(count, grain: elementwiseGrain) { range in
            let start = range.lowerBound
            CPUKernels.unaryBackward(op, px + start, py + start, pdy + start, pdx + start, range.count)
        }
    }

    public func binary(_ op: BinaryOp, _ a: DeviceBuffer, _ aLayout: StridedLayout, _ b: DeviceBuffer, _ bLayout: StridedLayout, into out: DeviceBuffer, shape: [Int]) {
        let count = shape.reduce(1, *)
        precondition(aLayout.strides.count == shape.count && bLayout.strides.count == shape.count, "binary \(op): layouts do not match shape \(shape)")
        precondition(aLayout.extent(shape) <= a.count && bLayout.extent(shape) <= b.count && count <= out.count,
                     "binary \(op): shape \(shape) overflows a (\(a.count)), b (\(b.count)) or out (\(out.count))")
        guard count > 0, ready(a, b, out) else { return }
        let merged = CoalescedLayouts(shape: shape, layouts: [aLayout, bLayout, .contiguous(shape)])
        // Output rows are disjoint between threads.
        nonisolated(unsafe) let pa = floats(a), pb = floats(b), pout = floats(out)
        let inner = merged.shape.last ?? 1
        let rows = count / inner
        let outer = Array(merged.shape.dropLast())
        let aStrides = merged.layouts[0].strides, bStrides = merged.layouts[1].strides
        let aInner = aStrides.last ?? 0, bInner = bStrides.last ?? 0
        Parallel.forRanges(rows, grain: max(1, elementwiseGrain / inner)) { range in
            for row in range {
                var aOffset = merged.layouts[0].offset, bOffset = merged.layouts[1].offset
                var remainder = row
                for axis in stride(from: outer.count - 1, through: 0, by: -1) {
                    let index = remainder % outer[axis]
                    remainder /= outer[axis]
                    aOffset += index * aStrides[axis]
                    bOffset += index * bStrides[axis]
                }
                CPUKernels.binary(op, pa + aOffset, aInner, pb + bOffset, bInner, pout + row * inner, inner)
            }
        }
    }

    public func copy(_ source: DeviceBuffer, _ sourceLayout: StridedLayout, to destination: DeviceBuffer, _ destinationLayout: StridedLayout, shape: [Int]) {
        precondition(sourceLayout.strides.count == shape.count && destinationLayout.strides.count == shape.count, "strided copy: layouts do not match shape \(shape)")
        precondition(sourceLayout.extent(shape) <= source.count && destinationLayout.extent(shape) <= destination.count,
                     "strided copy: shape \(shape) overflows source (\(source.count)) or destination (\(destination.count))")
        let count = shape.reduce(1, *)
        guard count > 0, ready(source, destination) else { return }
        let merged = CoalescedLayouts(shape: shape, layouts: [sourceLayout, destinationLayout])
        // Destination rows are disjoint between threads (the regions may not overlap).
        nonisolated(unsafe) let from = floats(source), to = floats(destination)
        let inner = merged.shape.last ?? 1
        let rows = count / inner
        let outer = Array(merged.shape.dropLast())
        let sourceStrides = merged.layouts[0].strides, destinationStrides = merged.layouts[1].strides
        let sourceInner = sourceStrides.last ?? 1, destinationInner = destinationStrides.last ?? 1
        Parallel.forRanges(rows, grain: max(1, elementwiseGrain / inner)) { range in
            for row in range {
                var sourceOffset = merged.layouts[0].offset, destinationOffset = merged.layouts[1].offset
                var remainder = row
                for axis in stride(from: outer.count - 1, through: 0, by: -1) {
                    let index = remainder % outer[axis]
                    remainder /= outer[axis]
                    sourceOffset += index * sourceStrides[axis]
                    destinationOffset += index * destinationStrides[axis]
                }
                let input = from + sourceOffset, output = to + destinationOffset
                if sourceInner == 1 && destinationInner == 1 {
                    output.update(from: input, count: inner)
                } else {
                    for index in 0..<inner { output[index * destinationInner] = input[index * sourceInner] }
                }
            }
        }
    }

    public func randomUniform(into buffer: DeviceBuffer, count: Int, seed: UInt64, offset: UInt64) {
        precondition(count >= 0 && count <= buffer.count, "randomUniform: count \(count) exceeds buffer \(buffer.count)")
        guard count > 0, ready(buffer) else { return }
        // Disjoint ranges per thread.
        nonisolated(unsafe) let out = floats(buffer)
        Parallel.forRanges(count, grain: elementwiseGrain) { range in
            for index in range { out[index] = CounterRandom.uniform(seed: seed, counter: offset &+ UInt64(index)) }
        }
    }

    public func gatherRows(_ table: DeviceBuffer, tableRows: Int, indices: DeviceBuffer, into out: DeviceBuffer, indexCount: Int, columns: Int) {
        precondition(table.count >= tableRows * columns && indices.count >= indexCount && out.count >= indexCount * columns,
                     "gatherRows: table [\(tableRows), \(columns)] / \(indexCount) indices overflow their buffers")
        guard indexCount * columns > 0, ready(table, indices, out) else { return }
        // Each thread writes its own output rows.
        nonisolated(unsafe) let source = floats(table), rows = integers(indices), destination = floats(out)
        Parallel.forRanges(indexCount, grain: max(1, elementwiseGrain / columns)) { range in
            for n in range {
                let row = Int(rows[n])
                let output = destination + n * columns
                if row >= 0 && row < tableRows {
                    output.update(from: source + row * columns, count: columns)
                } else {
                    output.update(repeating: 0, count: columns)
                }
            }
        }
    }

    public func scatterAddRows(_ source: DeviceBuffer, indices: DeviceBuffer, indexCount: Int, into table: DeviceBuffer, tableRows: Int, columns: Int) {
        precondition(table.count >= tableRows * columns && indices.count >= indexCount && source.count >= indexCount * columns,
                     "scatterAddRows: table [\(tableRows), \(columns)] / \(indexCount) indices overflow their buffers")
        guard indexCount * columns > 0, ready(source, indices, table) else { return }
        // Threads own disjoint column ranges and add rows in increasing n, as the OpenCL kernel does.
        nonisolated(unsafe) let input = floats(source), rows = integers(indices), output = floats(table)
        Parallel.forRanges(columns, grain: max(1, elementwiseGrain / max(indexCount, 1))) { range in
            for n in 0..<indexCount {
                let row = Int(rows[n])
                guard row >= 0 && row < tableRows else { continue }
                let from = input + n * columns, to = output + row * columns
                for column in range { to[column] += from[column] }
            }
        }
    }
}

/// The counter-based generator shared by both backends (`random_uniform` in `Kernels/elementwise.cl`).
public enum CounterRandom {
    /// SplitMix64's finalizer (Steele, Lea & Flood, 2014).
    @inline(__always)
    public static func splitMix64(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform float in [0, 1) with 24 random bits for `(seed, counter)`.
    @inline(__always)
    public static func uniform(seed: UInt64, counter: UInt64) -> Float {
        let bits = splitMix64(seed ^ splitMix64(counter))
        return Float(bits >> 40) * (1.0 / 16_777_216.0)
    }
}

/// The scalar loops behind the CPU backend's element-wise ops, written once over raw pointers.
enum CPUKernels {
    @inline(__always)
    static func sigmoid(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
        let e = Foundation.exp(x)
        return e / (1 + e)
    }

    @inline(__always)
    private static func map(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int, _ body: (Float) -> Float) {
        for index in 0..<count { y[index] = body(x[index]) }
    }

    static func unary(_ op: UnaryOp, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
        switch op {
        case .negate: map(x, y, count) { -$0 }
        case .relu: map(x, y, count) { $0 > 0 ? $0 : 0 }
        case .gelu: map(x, y, count) { 0.5 * $0 * erfc(-$0 * 0.707_106_781_186_547_5) }  // erfc keeps precision for x ≪ 0
        case .silu: VectorMath.map(x, y, count, lanes: { $0 * VectorMath.sigmoid($0) }, scalar: { $0 * sigmoid($0) })
        case .sigmoid: VectorMath.map(x, y, count, lanes: VectorMath.sigmoid, scalar: sigmoid)
        case .logSigmoid: map(x, y, count) { Swift.min($0, 0) - log1p(Foundation.exp(-Swift.abs($0))) }
        case .tanh: map(x, y, count) { Foundation.tanh($0) }
        case .exp: VectorMath.map(x, y, count, lanes: VectorMath.exp, scalar: { Foundation.exp($0) })
        case .log: map(x, y, count) { Foundation.log($0) }
        case .sqrt: map(x, y, count) { $0.squareRoot() }
        case .reciprocalSqrt: map(x, y, count) { 1 / $0.squareRoot() }
        case .reciprocal: map(x, y, count) { 1 / $0 }
        case .square: map(x, y, count) { $0 * $0 }
        case .abs: map(x, y, count) { Swift.abs($0) }
        case let .scale(a): map(x, y, count) { a * $0 }
        case let .affine(a, b): map(x, y, count) { a * $0 + b }
        case let .power(p): map(x, y, count) { Foundation.pow($0, p) }
        case let .clamp(low, high): map(x, y, count) { Swift.min(Swift.max($0, low), high) }
        case let .step(threshold): map(x, y, count) { $0 >= threshold ? 1 : 0 }
        }
    }

    @inline(__always)
    private static func scaleByDerivative(
        _ count: Int, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ derivative: (Int) -> Float
    ) {
        for index in 0..<count { dx[index] = dy[index] * derivative(index) }
    }

    static func unaryBackward(
        _ op: UnaryOp, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
        _ dx: UnsafeMutablePointer<Float>, _ count: Int
    ) {
        switch op {
        case .negate: scaleByDerivative(count, dy, dx) { _ in -1 }
        case .relu: scaleByDerivative(count, dy, dx) { x[$0] > 0 ? 1 : 0 }
        case .gelu:
            scaleByDerivative(count, dy, dx) { index in
                let v = x[index]
                let cdf = 0.5 * erfc(-v * 0.707_106_781_186_547_5)
                return cdf + v * 0.398_942_280_401_432_7 * Foundation.exp(-0.5 * v * v)
            }
        case .silu:
            // σ(x)(1 + x σ(−x)), with 1 − σ(x) computed as σ(−x) so it keeps its precision.
            VectorMath.scaleByDerivative(
                x, dy, dx, count,
                lanes: { v in VectorMath.sigmoid(v) * (1 + v * VectorMath.sigmoid(-v)) },
                scalar: { v in sigmoid(v) * (1 + v * sigmoid(-v)) })
        case .sigmoid:
            VectorMath.scaleByDerivative(x, dy, dx, count, lanes: { VectorMath.sigmoid($0) * VectorMath.sigmoid(-$0) }, scalar: { sigmoid($0) * sigmoid(-$0) })
        case .logSigmoid: scaleByDerivative(count, dy, dx) { sigmoid(-x[$0]) }
        case .tanh:
            // sech²(x) from the input: 1 − y² loses precision where |y| is near 1.
            scaleByDerivative(count, dy, dx) { index in
                let c = Foundation.cosh(x[index])
                return 1 / (c * c)
            }
        case .exp: scaleByDerivative(count, dy, dx) { y[$0] }
        case .log: scaleByDerivative(count, dy, dx) { 1 / x[$0] }
        case .sqrt: scaleByDerivative(count, dy, dx) { 0.5 / y[$0] }
        case .reciprocalSqrt: scaleByDerivative(count, dy, dx) { -0.5 * y[$0] * y[$0] * y[$0] }
        case .reciprocal: scaleByDerivative(count, dy, dx) { -y[$0] * y[$0] }
        case .square: scaleByDerivative(count, dy, dx) { 2 * x[$0] }
        case .abs: scaleByDerivative(count, dy, dx) { x[$0] > 0 ? 1 : (x[$0] < 0 ? -1 : 0) }
        case let .scale(a): scaleByDerivative(count, dy, dx) { _ in a }
        case let .affine(a, _): scaleByDerivative(count, dy, dx) { _ in a }
        case let .power(p): scaleByDerivative(count, dy, dx) { p * Foundation.pow(x[$0], p - 1) }
        case let .clamp(low, high): scaleByDerivative(count, dy, dx) { x[$0] >= low && x[$0] <= high ? 1 : 0 }
        case .step: scaleByDerivative(count, dy, dx) { _ in 0 }
        }
    }

    @inline(__always)
    private static func zip(
        _ a: UnsafePointer<Float>, _ aStride: Int, _ b: UnsafePointer<Float>, _ bStride: Int,
        _ out: UnsafeMutablePointer<Float>, _ count: Int, _ body: (Float, Float) -> Float
    ) {
        if aStride == 1 && bStride == 1 {
            for index in 0..<count { out[index] = body(a[index], b[index]) }
        } else if aStride == 1 && bStride == 0 {
            let right = b[0]
            for index in 0..<count { out[index] = body(a[index], right) }
        } else if aStride == 0 && bStride == 1 {
            let left = a[0]
            for index in 0..<count { out[index] = body(left, b[index]) }
        } else {
            for index in 0..<count { out[index] = body(a[index * aStride], b[index * bStride]) }
        }
    }

    static func binary(
        _ op: BinaryOp, _ a: UnsafePointer<Float>, _ aStride: Int, _ b: UnsafePointer<Float>, _ bStride: Int,
        _ out: UnsafeMutablePointer<Float>, _ count: Int
    ) {
        switch op {
        case .add: zip(a, aStride, b, bStride, out, count) { $0 + $1 }
        case .subtract: zip(a, aStride, b, bStride, out, count) { $0 - $1 }
        case .multiply: zip(a, aStride, b, bStride, out, count) { $0 * $1 }
        case .divide: zip(a, aStride, b, bStride, out, count) { $0 / $1 }
        case .maximum: zip(a, aStride, b, bStride, out, count) { Swift.max($0, $1) }
        case .minimum: zip(a, aStride, b, bStride, out, count) { Swift.min($0, $1) }
        case .equal: zip(a, aStride, b, bStride, out, count) { $0 == $1 ? 1 : 0 }
        case .greater: zip(a, aStride, b, bStride, out, count) { $0 > $1 ? 1 : 0 }
        }
    }
}

// Inputs of the checks against the float64 reference, shared by `kiln check`, the tuner and the test
// suite: scan gates and unit-norm keys, spline knots and points.
import Foundation

extension RandomGenerator {
    /// Log-space gates `logsigmoid(x) / normalizer` for x uniform in (−3, 3): normalizer 0.1 gives strong
    /// gates (decays down to e^−30), 16 weak ones (decays near 1).
    public mutating func logGates(_ count: Int, normalizer: Double) -> [Float] {
        floats(count, in: -3...3).map { x in Float(-Foundation.log(1 + Foundation.exp(-Double(x))) / normalizer) }
    }

    /// Keys scaled to unit L2 norm over each row of `keys` (the delta rule's layers normalize k).
    public mutating func unitRows(_ count: Int, rowLength: Int) -> [Float] {
        var values = floats(count)
        for start in stride(from: 0, to: count, by: rowLength) {
            let norm = values[start..<(start + rowLength)].map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
            for i in start..<(start + rowLength) { values[i] = Float(Double(values[i]) / max(norm, 1e-6)) }
        }
        return values
    }
}

extension RandomGenerator {
    /// Knots of `inputs` rows in float32: uniform ones, pykan's grid of G+1 points on [low, high] extended
    /// by k knots of the same spacing on each side (each row on its own range), or non-uniform ones,
    /// ascending with random gaps between 0.3 and 1.7 times the mean spacing.
    public mutating func splineKnots(inputs: Int, intervals: Int, order: Int, uniform: Bool) -> [Float] {
        var result: [Float] = []
        for i in 0..<inputs {
            let low = -1.0 - 0.25 * Double(i % 3), high = 1.0 + 0.5 * Double(i % 2)
            let h = (high - low) / Double(intervals)
            let count = intervals + 2 * order + 1
            if uniform {
                result += (0..<count).map { Float(low + Double($0 - order) * h) }
            } else {
                var value = low - Double(order) * h
                for _ in 0..<count {
                    result.append(Float(value))
                    value += h * Double.random(in: 0.3...1.7, using: &self)
                }
            }
        }
        return result
    }

    /// `count` points over knots `t`: each knot exactly, both ends exactly, points just inside and
    /// outside the ends and well outside (as many of those as fit), then random points across and
    /// slightly beyond the extended grid; shuffled.
    public mutating func splinePoints(count: Int, knots t: [Float]) -> [Float] {
        let first = t[0], last = t[t.count - 1], span = last - first
        var special: [Float] = t + [first.nextUp, last.nextDown, first.nextDown, last.nextUp, first - 0.3 * span, last + 0.2 * span]
        special.shuffle(using: &self)
        var result = Array(special.prefix(count / 2 + 1))
        while result.count < count { result.append(Float.random(in: (first - 0.1 * span)...(last + 0.1 * span), using: &self)) }
        result = Array(result.prefix(count))
        result.shuffle(using: &self)
        return result
    }
}

extension DeviceMemory {
    /// A buffer of `count` elements filled with NaN, so any element an op fails to write shows up.
    public func poisoned(_ count: Int) -> DeviceBuffer {
        let buffer = allocate(count)
        fill(buffer, offset: 0, count: count, value: .nan)
        return buffer
    }
}

extension Array where Element == Float {
    /// The values in float64, for the reference.
    public var doubles: [Double] { map(Double.init) }
}

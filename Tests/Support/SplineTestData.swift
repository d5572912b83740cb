import Foundation
import KilnBackend

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

import Foundation
import KilnBackend

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

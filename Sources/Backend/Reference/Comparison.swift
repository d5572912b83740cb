// How a device's float32 results are compared with the float64 reference. Tests and device checks state
// their bound beside each case (DESIGN.md, "Testing"): 1e-5 for element-wise and scan work, 1e-4 for long
// reductions and gemm.

/// Relative error ‖out − reference‖₂ / ‖reference‖₂ (absolute when the reference is zero). NaN anywhere in
/// `out` where the reference is finite (an unwritten, poisoned element) gives infinity, so it always fails
/// a bound; an infinity of the reference's sign counts as exact.
public func relativeError(_ out: [Float], _ reference: [Double]) -> Double {
    precondition(out.count == reference.count, "relativeError: \(out.count) values against \(reference.count) references")
    var difference = 0.0
    var norm = 0.0
    for (value, expected) in zip(out, reference) {
        if !value.isFinite && expected.isFinite { return .infinity }
        if value.isInfinite && expected.isInfinite && (value > 0) == (expected > 0) { continue }
        difference += (Double(value) - expected) * (Double(value) - expected)
        norm += expected * expected
    }
    return norm == 0 ? difference.squareRoot() : (difference / norm).squareRoot()
}

/// Error ‖out − reference‖₂ relative to ‖magnitude‖₂, the size of the terms the reference sums (for a
/// spline layer, `Σ |term|` per output): the measure for sums whose terms may cancel, where the error of a
/// float32 result is bounded by the size of its terms rather than by the result.
public func relativeError(_ out: [Float], _ reference: [Double], magnitude: [Double]) -> Double {
    precondition(out.count == reference.count && magnitude.count == reference.count, "relativeError: sizes \(out.count), \(reference.count), \(magnitude.count) differ")
    var difference = 0.0, norm = 0.0
    for index in out.indices {
        if !out[index].isFinite && reference[index].isFinite { return .infinity }
        difference += (Double(out[index]) - reference[index]) * (Double(out[index]) - reference[index])
        norm += magnitude[index] * magnitude[index]
    }
    return norm == 0 ? difference.squareRoot() : (difference / norm).squareRoot()
}

/// Largest absolute difference, infinity for a NaN or infinite value where the reference is finite.
public func maximumAbsoluteError(_ out: [Float], _ reference: [Double]) -> Double {
    precondition(out.count == reference.count, "maximumAbsoluteError: \(out.count) values against \(reference.count) references")
    var worst = 0.0
    for (value, expected) in zip(out, reference) {
        if !value.isFinite && expected.isFinite { return .infinity }
        worst = max(worst, abs(Double(value) - expected))
    }
    return worst
}

import Foundation

/// matplotlib's "tab10" colours.
let svgPlotPalette = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]

/// Font sizes and line widths for full-size figures and small panels.
struct SVGPlotStyle {
    var titleFont: Double
    var labelFont: Double
    var tickFont: Double
    var legendFont: Double
    var tickLength: Double
    var lineWidth: Double

    /// The sizes for a full figure, or smaller ones for a grid panel.
    init(compact: Bool) {
        titleFont = compact ? 11 : 14
        labelFont = compact ? 10 : 12
        tickFont = compact ? 9 : 11
        legendFont = compact ? 8.5 : 10.5
        tickLength = compact ? 3 : 4
        lineWidth = compact ? 1.2 : 1.5
    }
}

/// The opening of an SVG document.
func plotDocumentStart(width: Int, height: Int) -> String {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        + "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(width)\" height=\"\(height)\" "
        + "viewBox=\"0 0 \(width) \(height)\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
}

/// The plot area and the mapping from axis positions to pixels.
struct SVGPlotFrame {
    var left: Double
    var right: Double
    var top: Double
    var bottom: Double
    var xAxis: SVGPlotAxis
    var yAxis: SVGPlotAxis

    /// The horizontal pixel of an x-axis position.
    func pixelX(_ position: Double) -> Double {
        left + xAxis.fraction(position) * (right - left)
    }

    /// The vertical pixel of a y-axis position (SVG's y grows downwards).
    func pixelY(_ position: Double) -> Double {
        bottom - yAxis.fraction(position) * (bottom - top)
    }
}

/// One tick on an axis.
struct SVGPlotTick {
    /// Where the tick is, in axis coordinates (log10 of the value on log axes).
    var position: Double
    /// The label as SVG text content (escaped; may contain a superscript `tspan`).
    var markup: String
    /// The label as plain text, for width estimates.
    var plainLabel: String
    /// Minor ticks are short and unlabelled.
    var minor: Bool
}

/// An axis: its range in axis coordinates and its ticks.
///
/// Discussion: Axis coordinates are the values themselves on linear axes and
/// their base-10 logarithms on log axes. The range covers the data with a 5%
/// margin on each side; a single value or constant data gets a range around it,
/// and no data gets 0…1 (1…10 on log axes), so nothing divides by zero.
struct SVGPlotAxis {
    var logarithmic: Bool
    var lower: Double
    var upper: Double
    var ticks: [SVGPlotTick] = []

    /// An axis covering the given drawable values, with its ticks.
    init(values: [Double], logarithmic: Bool) {
        self.logarithmic = logarithmic
        var low = Double.infinity
        var high = -Double.infinity
        for value in values {
            let position = logarithmic ? log10(value) : value
            low = min(low, position)
            high = max(high, position)
        }
        if !low.isFinite || !high.isFinite {
            low = 0
            high = 1
        } else if high - low <= max(abs(low), abs(high)) * 1e-12 {
            let spread = logarithmic ? 0.5 : (low == 0 ? 1 : abs(low) * 0.1)
            low -= spread
            high += spread
        } else {
            let margin = (high / 2 - low / 2) * 0.1
            low -= margin
            high += margin
        }
        lower = low
        upper = high
        ticks = logarithmic ? logarithmicTicks() : linearTicks(from: lower, to: upper, transform: { $0 })
    }

    /// Maps a value to axis coordinates.
    func transform(_ value: Double) -> Double {
        logarithmic ? log10(value) : value
    }

    /// Where an axis position lies between the ends of the axis, 0…1.
    ///
    /// Halves are subtracted so that ranges near ±`Double.greatestFiniteMagnitude` cannot overflow.
    func fraction(_ position: Double) -> Double {
        let halfSpan = upper / 2 - lower / 2
        guard halfSpan > 0, halfSpan.isFinite else { return 0.5 }
        return (position / 2 - lower / 2) / halfSpan
    }

    /// About five ticks at multiples of 1, 2, 2.5 or 5 × 10^k between two values.
    func linearTicks(from low: Double, to high: Double, transform: (Double) -> Double) -> [SVGPlotTick] {
        let step = plotNiceStep(forSpan: (high / 2 - low / 2) * 2)
        guard step > 0, step.isFinite else { return [] }
        let first = (low / step).rounded(.up)
        let last = (high / step).rounded(.down)
        guard last >= first, last - first <= 50 else { return [] }
        var result: [SVGPlotTick] = []
        let largest = max(abs(first * step), abs(last * step))
        for multiple in stride(from: first, through: last, by: 1) {
            var value = multiple * step
            if abs(value) < step * 1e-9 { value = 0 }
            let label = plotLinearLabel(value, step: step, largest: largest)
            result.append(SVGPlotTick(position: transform(value), markup: plotXMLEscaped(label), plainLabel: label, minor: false))
        }
        return result
    }

    /// Ticks for a log axis: powers of ten when the range holds two or more, else powers of two, else linear ticks.
    func logarithmicTicks() -> [SVGPlotTick] {
        var result: [SVGPlotTick] = []
        let firstDecade = Int(lower.rounded(.up))
        let lastDecade = Int(upper.rounded(.down))
        if lastDecade - firstDecade >= 1 {
            let decades = lastDecade - firstDecade + 1
            let every = (decades + 5) / 6
            let plain = firstDecade >= -2 && lastDecade <= 4
            for exponent in firstDecade...lastDecade where exponent % every == 0 {
                let label = plotPowerLabel(base: 10, exponent: exponent, plain: plain)
                result.append(SVGPlotTick(position: Double(exponent), markup: label.markup, plainLabel: label.plain, minor: false))
            }
            if every == 1 && decades <= 8 {
                for exponent in (firstDecade - 1)...lastDecade {
                    for factor in 2...9 {
                        let position = Double(exponent) + log10(Double(factor))
                        if position >= lower && position <= upper {
                            result.append(SVGPlotTick(position: position, markup: "", plainLabel: "", minor: true))
                        }
                    }
                }
            }
            return result
        }
        let lowerPower = Int((lower / log10(2.0)).rounded(.up))
        let upperPower = Int((upper / log10(2.0)).rounded(.down))
        if upperPower - lowerPower >= 1 {
            let count = upperPower - lowerPower + 1
            let every = (count + 5) / 6
            let plain = lowerPower >= -3 && upperPower <= 16
            for exponent in lowerPower...upperPower where exponent % every == 0 {
                let label = plotPowerLabel(base: 2, exponent: exponent, plain: plain)
                result.append(SVGPlotTick(position: Double(exponent) * log10(2.0), markup: label.markup, plainLabel: label.plain, minor: false))
            }
            return result
        }
        return linearTicks(from: pow(10, lower), to: pow(10, upper), transform: { log10($0) }).filter { $0.position.isFinite }
    }
}

/// The step, 1, 2, 2.5 or 5 × 10^k, that puts closest to five ticks on a span.
///
/// - Parameter span: The length of the axis range.
/// - Returns: The step, or 0 when the span is not a positive finite number.
func plotNiceStep(forSpan span: Double) -> Double {
    let raw = span / 5
    guard raw > 0, raw.isFinite else { return 0 }
    let magnitude = pow(10, log10(raw).rounded(.down))
    var best = magnitude
    var bestDistance = Double.infinity
    for multiplier in [1, 2, 2.5, 5, 10] {
        let step = multiplier * magnitude
        let distance = abs((span / step).rounded(.down) - 5)
        if distance < bestDistance {
            best = step
            bestDistance = distance
        }
    }
    return best
}

/// A tick label on a linear axis: fixed decimals, or scientific notation for very large or small values.
func plotLinearLabel(_ value: Double, step: Double, largest: Double) -> String {
    if value == 0 { return "0" }
    let stepExponent = Int(log10(step).rounded(.down))
    let needsExtraDigit = abs(step / pow(10, Double(stepExponent)) - 2.5) < 1e-9
    var text: String
    if largest >= 1e6 || largest < 1e-3 {
        let valueExponent = Int(log10(largest).rounded(.down))
        let digits = max(0, valueExponent - stepExponent + (needsExtraDigit ? 1 : 0))
        text = String(format: "%.\(digits)e", value)
        // "1.50e+06" → "1.5e6", "2.0e-05" → "2e-5".
        if let marker = text.firstIndex(of: "e") {
            var mantissa = text[..<marker]
            if mantissa.contains(".") {
                while mantissa.hasSuffix("0") { mantissa = mantissa.dropLast() }
                if mantissa.hasSuffix(".") { mantissa = mantissa.dropLast() }
            }
            let exponent = Int(text[text.index(after: marker)...]) ?? 0
            text = "\(mantissa)e\(exponent)"
        }
    } else {
        let decimals = max(0, -stepExponent + (needsExtraDigit ? 1 : 0))
        text = String(format: "%.\(decimals)f", value)
    }
    // matplotlib uses a true minus sign.
    if text.hasPrefix("-") { text = "\u{2212}" + text.dropFirst() }
    return text
}

/// A label for base^exponent: plain digits (when every label on the axis is short), else the base with a superscript exponent.
func plotPowerLabel(base: Int, exponent: Int, plain: Bool) -> (markup: String, plain: String) {
    if plain {
        let value = pow(Double(base), Double(exponent))
        var text = String(format: "%.6g", value)
        if text.contains("e") { text = String(value) }
        return (text, text)
    }
    let exponentText = exponent < 0 ? "\u{2212}\(-exponent)" : String(exponent)
    let markup = "\(base)<tspan dy=\"-0.45em\" font-size=\"75%\">\(exponentText)</tspan>"
    return (markup, "\(base)^\(exponentText)")
}

/// An estimate of a text's width: 0.6 em per character, as for DejaVu Sans digits.
func plotTextWidth(_ text: String, fontSize: Double) -> Double {
    Double(text.count) * fontSize * 0.6
}

/// A coordinate with at most two decimals and no trailing zeros.
///
/// Discussion: Written by hand rather than with `String(format:)` because a
/// plot of a long training run formats hundreds of thousands of coordinates.
func plotNumber(_ value: Double) -> String {
    guard value.isFinite else { return "0" }
    let hundredths = (value * 100).rounded()
    guard abs(hundredths) < 1e15 else { return String(Int(value)) }
    let scaled = Int(hundredths)
    let magnitude = abs(scaled)
    var text = scaled < 0 ? "-" : ""
    text += String(magnitude / 100)
    let fraction = magnitude % 100
    if fraction != 0 {
        text += fraction % 10 == 0 ? ".\(fraction / 10)" : (fraction < 10 ? ".0\(fraction)" : ".\(fraction)")
    }
    return text
}

/// Text made safe for XML content and attribute values.
///
/// Discussion: Escapes `&`, `<`, `>`, `"` and `'`; replaces line breaks and tabs by
/// spaces and drops other characters XML 1.0 does not allow.
func plotXMLEscaped(_ text: String) -> String {
    var result = ""
    result.reserveCapacity(text.utf8.count)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "&": result += "&amp;"
        case "<": result += "&lt;"
        case ">": result += "&gt;"
        case "\"": result += "&quot;"
        case "'": result += "&apos;"
        case "\n", "\r", "\t": result += " "
        default:
            let value = scalar.value
            if value < 0x20 || value == 0xFFFE || value == 0xFFFF { continue }
            result.unicodeScalars.append(scalar)
        }
    }
    return result
}

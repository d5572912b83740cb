import Foundation

/// Line charts as standalone SVG documents (no dependencies), for loss curves and diagnostics.
///
/// Discussion: The figure follows matplotlib's default look: a framed plot
/// area with outward ticks, about five "nice" tick values per linear axis, a
/// light grid, the tab10 colour palette, and a legend placed in whichever
/// corner covers the fewest points. Log axes put ticks on powers of ten (with
/// minor ticks in between) or, when the data spans less than a decade, on
/// powers of two.
///
/// Points that are NaN or infinite are skipped and break the line, as are
/// points with a non-positive coordinate on a log axis. Each unbroken run of a
/// series is one `<polyline>`; a run of a single point is drawn as a dot. A
/// plot with no drawable points still produces a valid document with axes.
public struct LinePlot: Sendable {
    /// One line of the chart.
    public struct Series: Sendable {
        /// The legend entry; an empty name leaves the series out of the legend.
        public var name: String
        /// The points in drawing order.
        public var points: [(x: Double, y: Double)]
        /// Whether the line is dashed rather than solid.
        public var dashed: Bool

        /// Creates a series.
        ///
        /// - Parameters:
        ///   - name: The legend entry.
        ///   - points: The points in drawing order.
        ///   - dashed: Whether to draw a dashed line.
        public init(name: String, points: [(x: Double, y: Double)], dashed: Bool = false) {
            self.name = name
            self.points = points
            self.dashed = dashed
        }

        /// Creates a series from y values at x = 0, 1, 2, …
        ///
        /// - Parameters:
        ///   - name: The legend entry.
        ///   - values: The y values, one per step.
        ///   - dashed: Whether to draw a dashed line.
        public init(name: String, values: [Double], dashed: Bool = false) {
            self.init(name: name, points: values.enumerated().map { (x: Double($0.offset), y: $0.element) }, dashed: dashed)
        }
    }

    /// The title above the plot; may be empty.
    public var title: String
    /// The label under the x axis; may be empty.
    public var xLabel: String
    /// The label left of the y axis; may be empty.
    public var yLabel: String
    /// Whether the x axis is logarithmic.
    public var logX: Bool
    /// Whether the y axis is logarithmic.
    public var logY: Bool
    /// The lines, drawn in order with the palette's colours in order.
    public var series: [Series]

    /// Creates a plot.
    ///
    /// - Parameters:
    ///   - title: The title above the plot.
    ///   - xLabel: The x-axis label.
    ///   - yLabel: The y-axis label.
    ///   - logX: Whether the x axis is logarithmic.
    ///   - logY: Whether the y axis is logarithmic.
    ///   - series: The lines to draw.
    public init(
        title: String, xLabel: String, yLabel: String, logX: Bool = false, logY: Bool = false, series: [Series]
    ) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.logX = logX
        self.logY = logY
        self.series = series
    }

    /// The plot as a complete SVG document.
    ///
    /// - Parameters:
    ///   - width: The width in pixels (at least 120).
    ///   - height: The height in pixels (at least 100).
    /// - Returns: An SVG document, starting with an XML declaration.
    public func svg(width: Int = 640, height: Int = 420) -> String {
        let width = max(width, 120)
        let height = max(height, 100)
        var document = plotDocumentStart(width: width, height: height)
        renderPanel(into: &document, width: Double(width), height: Double(height), compact: width < 400 || height < 280)
        document += "</svg>\n"
        return document
    }

    /// Writes the plot as an SVG file, atomically.
    ///
    /// - Parameter url: The destination, usually ending in `.svg`.
    /// - Throws: `FormatError` naming the file when it cannot be written.
    public func write(to url: URL) throws {
        try writeAtomically(Array(svg().utf8), to: url)
    }

    // MARK: Rendering

    /// Appends the plot's elements, filling a `width × height` area at the origin.
    func renderPanel(into document: inout String, width: Double, height: Double, compact: Bool) {
        let style = SVGPlotStyle(compact: compact)

        // Drawable points, split into unbroken runs.
        var runsPerSeries: [[[(x: Double, y: Double)]]] = []
        var xValues: [Double] = []
        var yValues: [Double] = []
        for line in series {
            var runs: [[(x: Double, y: Double)]] = []
            var current: [(x: Double, y: Double)] = []
            for point in line.points {
                let drawable = point.x.isFinite && point.y.isFinite && (!logX || point.x > 0) && (!logY || point.y > 0)
                if drawable {
                    current.append(point)
                    xValues.append(point.x)
                    yValues.append(point.y)
                } else if !current.isEmpty {
                    runs.append(current)
                    current = []
                }
            }
            if !current.isEmpty { runs.append(current) }
            runsPerSeries.append(runs)
        }

        let xAxis = SVGPlotAxis(values: xValues, logarithmic: logX)
        let yAxis = SVGPlotAxis(values: yValues, logarithmic: logY)

        // Layout: margins sized from the labels they hold.
        let widestYLabel = yAxis.ticks.filter { !$0.minor }.map { plotTextWidth($0.plainLabel, fontSize: style.tickFont) }.max() ?? 0
        let left = 10 + (yLabel.isEmpty ? 0 : style.labelFont + 8) + widestYLabel + style.tickLength + 5
        let lastXLabel = xAxis.ticks.last { !$0.minor }.map { plotTextWidth($0.plainLabel, fontSize: style.tickFont) } ?? 0
        let right = max(14, lastXLabel / 2 + 6)
        let top = title.isEmpty ? 12 : style.titleFont * 2.2
        let bottom = style.tickLength + style.tickFont + 10 + (xLabel.isEmpty ? 4 : style.labelFont + 8)
        let plotLeft = min(left, width * 0.45)
        let plotRight = max(plotLeft + 10, width - right)
        let plotTop = min(top, height * 0.4)
        let plotBottom = max(plotTop + 10, height - bottom)
        let frame = SVGPlotFrame(left: plotLeft, right: plotRight, top: plotTop, bottom: plotBottom, xAxis: xAxis, yAxis: yAxis)

        document += "<rect x=\"0\" y=\"0\" width=\"\(plotNumber(width))\" height=\"\(plotNumber(height))\" fill=\"#ffffff\"/>\n"

        // Grid.
        document += "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"0.8\">\n"
        for tick in xAxis.ticks where !tick.minor {
            let x = frame.pixelX(tick.position)
            document += "<line x1=\"\(plotNumber(x))\" y1=\"\(plotNumber(plotTop))\" x2=\"\(plotNumber(x))\" y2=\"\(plotNumber(plotBottom))\"/>\n"
        }
        for tick in yAxis.ticks where !tick.minor {
            let y = frame.pixelY(tick.position)
            document += "<line x1=\"\(plotNumber(plotLeft))\" y1=\"\(plotNumber(y))\" x2=\"\(plotNumber(plotRight))\" y2=\"\(plotNumber(y))\"/>\n"
        }
        document += "</g>\n"

        // Series.
        for (index, runs) in runsPerSeries.enumerated() {
            let line = series[index]
            let color = svgPlotPalette[index % svgPlotPalette.count]
            let dash = line.dashed ? " stroke-dasharray=\"\(plotNumber(style.lineWidth * 4)) \(plotNumber(style.lineWidth * 2.5))\"" : ""
            document += "<g class=\"series\" data-name=\"\(plotXMLEscaped(line.name))\">\n"
            for run in runs {
                if run.count == 1, let point = run.first {
                    document += "<circle cx=\"\(plotNumber(frame.pixelX(xAxis.transform(point.x))))\" cy=\"\(plotNumber(frame.pixelY(yAxis.transform(point.y))))\" r=\"\(plotNumber(style.lineWidth * 1.6))\" fill=\"\(color)\"/>\n"
                    continue
                }
                document += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(plotNumber(style.lineWidth))\" stroke-linejoin=\"round\" stroke-linecap=\"round\"\(dash) points=\""
                for (pointIndex, point) in run.enumerated() {
                    if pointIndex > 0 { document += " " }
                    document += plotNumber(frame.pixelX(xAxis.transform(point.x)))
                    document += ","
                    document += plotNumber(frame.pixelY(yAxis.transform(point.y)))
                }
                document += "\"/>\n"
            }
            document += "</g>\n"
        }

        // Frame, ticks and tick labels.
        document += "<rect x=\"\(plotNumber(plotLeft))\" y=\"\(plotNumber(plotTop))\" width=\"\(plotNumber(plotRight - plotLeft))\" height=\"\(plotNumber(plotBottom - plotTop))\" fill=\"none\" stroke=\"#000000\" stroke-width=\"0.8\"/>\n"
        document += "<g class=\"ticks\" stroke=\"#000000\" stroke-width=\"0.8\">\n"
        for tick in xAxis.ticks {
            let x = frame.pixelX(tick.position)
            let length = tick.minor ? style.tickLength * 0.55 : style.tickLength
            document += "<line x1=\"\(plotNumber(x))\" y1=\"\(plotNumber(plotBottom))\" x2=\"\(plotNumber(x))\" y2=\"\(plotNumber(plotBottom + length))\"/>\n"
        }
        for tick in yAxis.ticks {
            let y = frame.pixelY(tick.position)
            let length = tick.minor ? style.tickLength * 0.55 : style.tickLength
            document += "<line x1=\"\(plotNumber(plotLeft - length))\" y1=\"\(plotNumber(y))\" x2=\"\(plotNumber(plotLeft))\" y2=\"\(plotNumber(y))\"/>\n"
        }
        document += "</g>\n"
        document += "<g class=\"tick-labels\" font-size=\"\(plotNumber(style.tickFont))\" fill=\"#000000\">\n"
        for tick in xAxis.ticks where !tick.minor {
            let x = frame.pixelX(tick.position)
            let y = plotBottom + style.tickLength + style.tickFont + 2
            document += "<text x=\"\(plotNumber(x))\" y=\"\(plotNumber(y))\" text-anchor=\"middle\">\(tick.markup)</text>\n"
        }
        for tick in yAxis.ticks where !tick.minor {
            let x = plotLeft - style.tickLength - 3
            let y = frame.pixelY(tick.position) + style.tickFont * 0.35
            document += "<text x=\"\(plotNumber(x))\" y=\"\(plotNumber(y))\" text-anchor=\"end\">\(tick.markup)</text>\n"
        }
        document += "</g>\n"

        // Title and axis labels.
        if !title.isEmpty {
            let x = (plotLeft + plotRight) / 2
            let y = plotTop - style.titleFont * 0.7
            document += "<text class=\"title\" x=\"\(plotNumber(x))\" y=\"\(plotNumber(y))\" text-anchor=\"middle\" font-size=\"\(plotNumber(style.titleFont))\">\(plotXMLEscaped(title))</text>\n"
        }
        if !xLabel.isEmpty {
            let x = (plotLeft + plotRight) / 2
            let y = plotBottom + style.tickLength + style.tickFont + style.labelFont + 8
            document += "<text class=\"x-label\" x=\"\(plotNumber(x))\" y=\"\(plotNumber(y))\" text-anchor=\"middle\" font-size=\"\(plotNumber(style.labelFont))\">\(plotXMLEscaped(xLabel))</text>\n"
        }
        if !yLabel.isEmpty {
            let x = 10 + style.labelFont * 0.8
            let y = (plotTop + plotBottom) / 2
            document += "<text class=\"y-label\" x=\"\(plotNumber(x))\" y=\"\(plotNumber(y))\" text-anchor=\"middle\" font-size=\"\(plotNumber(style.labelFont))\" transform=\"rotate(-90 \(plotNumber(x)) \(plotNumber(y)))\">\(plotXMLEscaped(yLabel))</text>\n"
        }

        renderLegend(into: &document, frame: frame, style: style, runsPerSeries: runsPerSeries)
    }

    /// Appends the legend in the plot corner that covers the fewest points.
    private func renderLegend(
        into document: inout String, frame: SVGPlotFrame, style: SVGPlotStyle, runsPerSeries: [[[(x: Double, y: Double)]]]
    ) {
        let entries = series.indices.filter { !series[$0].name.isEmpty }
        guard !entries.isEmpty else { return }
        let rowHeight = style.legendFont * 1.45
        let sampleLength = style.legendFont * 2
        let padding = style.legendFont * 0.6
        let textWidth = entries.map { plotTextWidth(series[$0].name, fontSize: style.legendFont) }.max() ?? 0
        let boxWidth = min(padding * 3 + sampleLength + textWidth, frame.right - frame.left - 8)
        let boxHeight = padding * 2 + rowHeight * Double(entries.count) - style.legendFont * 0.45
        let inset = 6.0

        let candidates: [(x: Double, y: Double)] = [
            (frame.right - inset - boxWidth, frame.top + inset),
            (frame.left + inset, frame.top + inset),
            (frame.left + inset, frame.bottom - inset - boxHeight),
            (frame.right - inset - boxWidth, frame.bottom - inset - boxHeight),
        ]
        var best = candidates[0]
        var bestCount = Int.max
        for candidate in candidates {
            var covered = 0
            for runs in runsPerSeries {
                for run in runs {
                    for point in run {
                        let x = frame.pixelX(frame.xAxis.transform(point.x))
                        let y = frame.pixelY(frame.yAxis.transform(point.y))
                        if x >= candidate.x && x <= candidate.x + boxWidth && y >= candidate.y && y <= candidate.y + boxHeight {
                            covered += 1
                        }
                    }
                }
            }
            if covered < bestCount {
                bestCount = covered
                best = candidate
            }
        }

        document += "<g class=\"legend\" font-size=\"\(plotNumber(style.legendFont))\">\n"
        document += "<rect x=\"\(plotNumber(best.x))\" y=\"\(plotNumber(best.y))\" width=\"\(plotNumber(boxWidth))\" height=\"\(plotNumber(boxHeight))\" rx=\"3\" fill=\"#ffffff\" fill-opacity=\"0.85\" stroke=\"#cccccc\" stroke-width=\"0.8\"/>\n"
        for (row, index) in entries.enumerated() {
            let line = series[index]
            let color = svgPlotPalette[index % svgPlotPalette.count]
            let centerY = best.y + padding + rowHeight * Double(row) + style.legendFont * 0.5
            let sampleStart = best.x + padding
            let dash = line.dashed ? " stroke-dasharray=\"\(plotNumber(style.lineWidth * 4)) \(plotNumber(style.lineWidth * 2.5))\"" : ""
            document += "<line x1=\"\(plotNumber(sampleStart))\" y1=\"\(plotNumber(centerY))\" x2=\"\(plotNumber(sampleStart + sampleLength))\" y2=\"\(plotNumber(centerY))\" stroke=\"\(color)\" stroke-width=\"\(plotNumber(style.lineWidth))\"\(dash)/>\n"
            document += "<text x=\"\(plotNumber(sampleStart + sampleLength + padding))\" y=\"\(plotNumber(centerY + style.legendFont * 0.35))\">\(plotXMLEscaped(line.name))</text>\n"
        }
        document += "</g>\n"
    }
}

/// Several plots in a grid of small panels in one SVG (one panel per step, per edge, …).
///
/// Discussion: Panels are laid out left to right, then top to bottom, under
/// an overall title. Each panel is a complete `LinePlot` with its own axes and
/// legend, drawn with smaller fonts.
public struct PlotGrid: Sendable {
    /// The title above all panels; may be empty.
    public var title: String
    /// The panels, in reading order.
    public var panels: [LinePlot]
    /// The number of panels per row (values below 1 are treated as 1).
    public var columns: Int

    /// Creates a grid of plots.
    ///
    /// - Parameters:
    ///   - title: The title above all panels.
    ///   - panels: The plots, in reading order.
    ///   - columns: The number of panels per row.
    public init(title: String, panels: [LinePlot], columns: Int) {
        self.title = title
        self.panels = panels
        self.columns = columns
    }

    /// The grid as a complete SVG document.
    ///
    /// - Parameters:
    ///   - panelWidth: The width of each panel in pixels (at least 120).
    ///   - panelHeight: The height of each panel in pixels (at least 100).
    /// - Returns: An SVG document, starting with an XML declaration.
    public func svg(panelWidth: Int = 300, panelHeight: Int = 220) -> String {
        let panelWidth = max(panelWidth, 120)
        let panelHeight = max(panelHeight, 100)
        let columnCount = max(1, min(columns, panels.count))
        let rowCount = (panels.count + columnCount - 1) / columnCount
        let titleHeight = title.isEmpty ? 0 : 34
        let width = columnCount * panelWidth
        let height = max(titleHeight + rowCount * panelHeight, 40)
        var document = plotDocumentStart(width: width, height: height)
        document += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>\n"
        if !title.isEmpty {
            document += "<text class=\"title\" x=\"\(plotNumber(Double(width) / 2))\" y=\"23\" text-anchor=\"middle\" font-size=\"16\">\(plotXMLEscaped(title))</text>\n"
        }
        for (index, panel) in panels.enumerated() {
            let x = (index % columnCount) * panelWidth
            let y = titleHeight + (index / columnCount) * panelHeight
            document += "<g class=\"panel\" transform=\"translate(\(x) \(y))\">\n"
            panel.renderPanel(
                into: &document, width: Double(panelWidth), height: Double(panelHeight),
                compact: panelWidth < 400 || panelHeight < 280
            )
            document += "</g>\n"
        }
        document += "</svg>\n"
        return document
    }

    /// Writes the grid as an SVG file, atomically.
    ///
    /// - Parameter url: The destination, usually ending in `.svg`.
    /// - Throws: `FormatError` naming the file when it cannot be written.
    public func write(to url: URL) throws {
        try writeAtomically(Array(svg().utf8), to: url)
    }
}

// MARK: - Helpers

/// matplotlib's "tab10" colours.
private let svgPlotPalette = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]

/// Font sizes and line widths for full-size figures and small panels.
private struct SVGPlotStyle {
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
private func plotDocumentStart(width: Int, height: Int) -> String {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        + "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(width)\" height=\"\(height)\" "
        + "viewBox=\"0 0 \(width) \(height)\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
}

/// The plot area and the mapping from axis positions to pixels.
private struct SVGPlotFrame {
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
private struct SVGPlotTick {
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
private struct SVGPlotAxis {
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
private func plotNiceStep(forSpan span: Double) -> Double {
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
private func plotLinearLabel(_ value: Double, step: Double, largest: Double) -> String {
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
private func plotPowerLabel(base: Int, exponent: Int, plain: Bool) -> (markup: String, plain: String) {
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
private func plotTextWidth(_ text: String, fontSize: Double) -> Double {
    Double(text.count) * fontSize * 0.6
}

/// A coordinate with at most two decimals and no trailing zeros.
///
/// Discussion: Written by hand rather than with `String(format:)` because a
/// plot of a long training run formats hundreds of thousands of coordinates.
private func plotNumber(_ value: Double) -> String {
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
private func plotXMLEscaped(_ text: String) -> String {
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

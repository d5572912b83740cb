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

import Foundation

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
}

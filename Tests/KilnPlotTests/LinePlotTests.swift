import Foundation
import KilnPlot
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// A minimal XML well-formedness check: balanced tags, quoted attributes, known entities.
private func isWellFormedXML(_ text: String) -> Bool {
    var stack: [Substring] = []
    var index = text.startIndex
    var sawRoot = false
    while index < text.endIndex {
        let character = text[index]
        if character == "&" {
            guard let end = text[index...].firstIndex(of: ";") else { return false }
            let entity = text[text.index(after: index)..<end]
            guard ["amp", "lt", "gt", "quot", "apos"].contains(String(entity)) || entity.hasPrefix("#") else { return false }
            index = text.index(after: end)
            continue
        }
        if character != "<" {
            if character == ">" { return false }
            index = text.index(after: index)
            continue
        }
        guard let close = text[index...].firstIndex(of: ">") else { return false }
        let tag = text[text.index(after: index)..<close]
        if tag.hasPrefix("?") {
            guard tag.hasSuffix("?") else { return false }
        } else if tag.hasPrefix("/") {
            guard let open = stack.popLast(), open == tag.dropFirst() else { return false }
        } else {
            let selfClosing = tag.hasSuffix("/")
            let body = selfClosing ? tag.dropLast() : tag
            guard let name = body.split(whereSeparator: { $0 == " " || $0 == "\n" }).first else { return false }
            if body.contains("<") { return false }
            if body.filter({ $0 == "\"" }).count % 2 != 0 { return false }
            if stack.isEmpty && sawRoot { return false }
            sawRoot = true
            if !selfClosing { stack.append(name) }
        }
        index = text.index(after: close)
    }
    return stack.isEmpty && sawRoot
}

/// Checks that a document is well-formed XML, with Foundation's parser where available.
private func expectValidXML(_ document: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(isWellFormedXML(document), sourceLocation: sourceLocation)
    #if canImport(FoundationXML) || os(macOS)
    do {
        let parsed = try XMLDocument(xmlString: document, options: [])
        #expect(parsed.rootElement()?.name == "svg", sourceLocation: sourceLocation)
    } catch {
        Issue.record("XMLDocument rejected the SVG: \(error)", sourceLocation: sourceLocation)
    }
    #endif
}

/// How many times a substring occurs.
private func occurrences(of needle: String, in text: String) -> Int {
    text.components(separatedBy: needle).count - 1
}

/// The `points` attributes of the document's polylines, as point counts.
private func polylinePointCounts(_ document: String) -> [Int] {
    document.components(separatedBy: "<polyline").dropFirst().map { element in
        guard let start = element.range(of: "points=\"") else { return 0 }
        let rest = element[start.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return 0 }
        return rest[..<end].split(separator: " ").count
    }
}

@Suite("SVG plots")
struct LinePlotTests {
    @Test func drawsOnePolylinePerSeriesWithLegend() throws {
        let plot = LinePlot(
            title: "Loss <train> & \"eval\"", xLabel: "step", yLabel: "loss",
            series: [
                .init(name: "train", points: (0..<50).map { (x: Double($0), y: 1 / Double($0 + 1)) }),
                .init(name: "eval & test", points: (0..<10).map { (x: Double($0 * 5), y: 0.8 / Double($0 + 1)) }, dashed: true),
                .init(name: "flat", points: [(x: 0, y: 0.5), (x: 49, y: 0.5)]),
            ]
        )
        let document = plot.svg()
        expectValidXML(document)
        #expect(document.hasPrefix("<?xml"))
        #expect(polylinePointCounts(document) == [50, 10, 2])
        #expect(document.contains(">train</text>"))
        #expect(document.contains(">eval &amp; test</text>"))
        #expect(document.contains("Loss &lt;train&gt; &amp; &quot;eval&quot;"))
        #expect(document.contains("stroke-dasharray"))
        #expect(document.contains("#1f77b4") && document.contains("#ff7f0e") && document.contains("#2ca02c"))
        #expect(!document.contains("nan") && !document.contains("inf"))
        // About five labelled ticks per axis.
        let xTicks = occurrences(of: "text-anchor=\"middle\">", in: document)
        #expect(xTicks >= 4 && xTicks <= 12)
    }

    @Test func skipsNonFiniteAndNonPositivePoints() {
        let plot = LinePlot(
            title: "gaps", xLabel: "x", yLabel: "y", logY: true,
            series: [
                .init(name: "a", points: [(x: 0, y: 1), (x: 1, y: 2), (x: 2, y: .nan), (x: 3, y: 4), (x: 4, y: 8), (x: 5, y: -1), (x: 6, y: 3)]),
                .init(name: "b", points: [(x: .infinity, y: 1), (x: 1, y: 0)]),
            ]
        )
        let document = plot.svg()
        expectValidXML(document)
        #expect(polylinePointCounts(document) == [2, 2])
        #expect(occurrences(of: "<circle", in: document) == 1)
        #expect(!document.contains("nan") && !document.contains("inf"))
    }

    @Test func logAxesTickOnDecadesAndPowersOfTwo() {
        let decades = LinePlot(
            title: "", xLabel: "step", yLabel: "loss", logX: true, logY: true,
            series: [.init(name: "", points: (0...60).map { (x: pow(10, Double($0) / 10), y: pow(10, -Double($0) / 10)) })]
        )
        let document = decades.svg()
        expectValidXML(document)
        // Seven decades on each axis: every other one is labelled, all as powers of ten.
        for exponent in ["0", "2", "4", "6", "\u{2212}2", "\u{2212}4", "\u{2212}6"] {
            #expect(document.contains("10<tspan dy=\"-0.45em\" font-size=\"75%\">\(exponent)</tspan>"), "missing 10^\(exponent)")
        }
        #expect(!document.contains(">100</text>"))

        let fewDecades = LinePlot(
            title: "", xLabel: "", yLabel: "", logY: true,
            series: [.init(name: "", values: [0.01, 0.1, 1, 10, 100])]
        )
        let fewDocument = fewDecades.svg()
        expectValidXML(fewDocument)
        for label in ["0.01", "0.1", "1", "10", "100"] {
            #expect(fewDocument.contains(">\(label)</text>"), "missing tick \(label)")
        }
        #expect(!document.contains("class=\"legend\""))

        let powersOfTwo = LinePlot(
            title: "width", xLabel: "width", yLabel: "error", logX: true,
            series: [.init(name: "error", points: [(x: 16, y: 3), (x: 32, y: 2), (x: 64, y: 1.5), (x: 128, y: 1.2)])]
        )
        let twoDocument = powersOfTwo.svg()
        expectValidXML(twoDocument)
        for label in ["16", "32", "64", "128"] {
            #expect(twoDocument.contains(">\(label)</text>"), "missing tick \(label)")
        }
    }

    @Test func degenerateInputsStillProduceDocuments() throws {
        let empty = LinePlot(title: "nothing", xLabel: "", yLabel: "", series: [])
        expectValidXML(empty.svg())
        #expect(polylinePointCounts(empty.svg()).isEmpty)
        let single = LinePlot(title: "one", xLabel: "x", yLabel: "y", series: [.init(name: "p", points: [(x: 3, y: 3)])])
        let singleDocument = single.svg(width: 10, height: 10)
        expectValidXML(singleDocument)
        #expect(occurrences(of: "<circle", in: singleDocument) == 1)
        #expect(!singleDocument.contains("nan"))
        let constant = LinePlot(title: "", xLabel: "", yLabel: "", logY: true, series: [.init(name: "c", values: [2, 2, 2])])
        let constantDocument = constant.svg()
        expectValidXML(constantDocument)
        #expect(polylinePointCounts(constantDocument) == [3])
        #expect(!constantDocument.contains("nan"))
        let allNaN = LinePlot(title: "", xLabel: "", yLabel: "", series: [.init(name: "n", values: [.nan, .nan])])
        expectValidXML(allNaN.svg())
        let huge = LinePlot(title: "", xLabel: "", yLabel: "", series: [.init(name: "h", values: [-1e308, 1e308, 1e-300])])
        expectValidXML(huge.svg())
        #expect(polylinePointCounts(huge.svg()) == [3])
    }

    @Test func gridsLayOutPanels() throws {
        let panels = (0..<5).map { index in
            LinePlot(
                title: "edge \(index)", xLabel: "step", yLabel: "value",
                series: [.init(name: "w", values: (0..<20).map { sin(Double($0 + index)) })]
            )
        }
        let grid = PlotGrid(title: "Edges", panels: panels, columns: 2)
        let document = grid.svg()
        expectValidXML(document)
        #expect(occurrences(of: "class=\"panel\"", in: document) == 5)
        #expect(document.contains("width=\"600\" height=\"694\""))
        #expect(polylinePointCounts(document) == [20, 20, 20, 20, 20])
        expectValidXML(PlotGrid(title: "", panels: [], columns: 0).svg())
    }
}

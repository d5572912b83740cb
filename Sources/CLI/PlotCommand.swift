import ArgumentParser
import Foundation
import Kiln
import KilnPlot

/// `kiln plot`: every edge's learned activation function of a KAN, one small panel per edge.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw every edge's learned activation φ(x) of a KAN checkpoint as an SVG (one panel per edge, layer by layer)."
    )

    @Option(help: "A checkpoint.safetensors of a kan model.") var checkpoint: String
    @Option(help: "Where to write the SVG (default: beside the checkpoint, kan.svg).") var output: String?
    @Option(help: "Points per curve.") var points = 100

    func run() throws {
        let url = URL(fileURLWithPath: checkpoint)
        let (file, _, configuration) = try Checkpoint.read(url)
        guard case let .kan(kan) = configuration else {
            throw CommandError("\(checkpoint) is not a KAN checkpoint; plot draws the activations of --model kan")
        }
        guard points >= 2 else { throw CommandError("--points must be at least 2") }
        let (architecture, order) = (kan.architecture, kan.splineOrder)
        var panels: [LinePlot] = []
        for layer in 0..<(architecture.count - 1) {
            let (inputs, outputs) = (architecture[layer], architecture[layer + 1])
            func tensor(_ name: String) throws -> [Double] {
                guard let found = file.tensor(named: "layers.\(layer).\(name)") else {
                    throw CheckpointError(path: checkpoint, message: "no tensor layers.\(layer).\(name)")
                }
                return found.values.map(Double.init)
            }
            let knots = try tensor("knots"), coefficients = try tensor("coefficients")
            let scaleBase = try tensor("scale_base"), scaleSpline = try tensor("scale_spline")
            let knotCount = knots.count / inputs
            let coefficientCount = knotCount - order - 1
            for i in 0..<inputs {
                let row = Array(knots[(i * knotCount)..<((i + 1) * knotCount)])
                // The grid's own range, from knot k to knot G + k.
                let (low, high) = (row[order], row[knotCount - order - 1])
                for j in 0..<outputs {
                    let edge = (i * outputs + j) * coefficientCount
                    let c = Array(coefficients[edge..<(edge + coefficientCount)])
                    let curve = (0..<points).map { p -> (x: Double, y: Double) in
                        let x = low + (high - low) * Double(p) / Double(points - 1) * (1 - 1e-9)
                        let base = x / (1 + Foundation.exp(-x))
                        return (x, scaleBase[i * outputs + j] * base + scaleSpline[i * outputs + j] * BSpline.evaluate(at: x, knots: row, coefficients: c, order: order))
                    }
                    panels.append(LinePlot(title: "layer \(layer): x\(i + 1) → y\(j + 1)", xLabel: "x", yLabel: "φ(x)", series: [LinePlot.Series(name: "φ", points: curve)]))
                }
            }
        }
        let destination = output.map { URL(fileURLWithPath: $0) } ?? url.deletingLastPathComponent().appendingPathComponent("kan.svg")
        let title = "KAN \(architecture.map(String.init).joined(separator: ",")), grid \(kan.gridIntervals), k = \(order)"
        try PlotGrid(title: title, panels: panels, columns: min(panels.count, 6)).write(to: destination)
        print("wrote \(destination.path): \(panels.count) edge activations")
    }
}

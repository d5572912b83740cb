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

    @Option(parsing: .unconditional, help: "A checkpoint.safetensors of a kan model.") var checkpoint: String
    @Option(parsing: .unconditional, help: "Where to write the SVG (default: beside the checkpoint, kan.svg).") var output: String?
    @Option(parsing: .unconditional, help: "Points per curve.") var points = 100

    /// The most points per curve, and the most panels (edges) one plot draws.
    static let maximumPoints = 10_000
    static let maximumPanels = 10_000

    func run() throws {
        let url = URL(fileURLWithPath: checkpoint)
        let (file, _, configuration) = try Checkpoint.read(url)
        guard case let .kan(kan) = configuration else {
            throw CommandError("\(checkpoint) is not a KAN checkpoint; plot draws the activations of --model kan")
        }
        guard points >= 2 && points <= Self.maximumPoints else { throw CommandError("--points must be 2 to \(Self.maximumPoints), got \(points)") }
        let (architecture, order) = (kan.architecture, kan.splineOrder)
        let edges = zip(architecture, architecture.dropFirst()).reduce(0) { $0 + $1.0 * $1.1 }
        guard edges <= Self.maximumPanels else {
            throw CommandError("\(checkpoint): the KAN has \(edges) edges, more than the \(Self.maximumPanels) panels plot draws (one per edge)")
        }
        let destination = output.map { URL(fileURLWithPath: $0) } ?? url.deletingLastPathComponent().appendingPathComponent("kan.svg")
        try OutputPath.checkFile(destination.path, flag: "--output")
        let (knotCount, coefficientCount) = (kan.gridIntervals + 2 * order + 1, kan.gridIntervals + order)
        var panels: [LinePlot] = []
        for layer in 0..<(architecture.count - 1) {
            let (inputs, outputs) = (architecture[layer], architecture[layer + 1])
            /// A tensor of the layer, checked to have the shape the model's sizes give it.
            func tensor(_ name: String, _ shape: [Int]) throws -> [Double] {
                guard let found = file.tensor(named: "layers.\(layer).\(name)") else {
                    throw CheckpointError(path: checkpoint, message: "no tensor layers.\(layer).\(name)")
                }
                guard found.shape == shape else {
                    throw CheckpointError(path: checkpoint, message: "tensor layers.\(layer).\(name) has shape \(found.shape) but the model's sizes give \(shape); the file is damaged")
                }
                return found.values.map(Double.init)
            }
            let knots = try tensor("knots", [inputs, knotCount]), coefficients = try tensor("coefficients", [inputs, outputs, coefficientCount])
            let scaleBase = try tensor("scale_base", [inputs, outputs]), scaleSpline = try tensor("scale_spline", [inputs, outputs])
            for i in 0..<inputs {
                let row = Array(knots[(i * knotCount)..<((i + 1) * knotCount)])
                guard zip(row, row.dropFirst()).allSatisfy({ $0 < $1 }) else {
                    throw CheckpointError(path: checkpoint, message: "tensor layers.\(layer).knots: row \(i + 1) does not increase; the file is damaged")
                }
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
        let title = "KAN \(architecture.map(String.init).joined(separator: ",")), grid \(kan.gridIntervals), k = \(order)"
        try PlotGrid(title: title, panels: panels, columns: min(panels.count, 6)).write(to: destination)
        print("wrote \(destination.path): \(panels.count) edge activations")
    }
}

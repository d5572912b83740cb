import ArgumentParser
import Foundation
import Kiln

/// `kiln-bench spline`: forward and backward (all four gradients) of one KAN layer on each device.
///
/// The peer is `bench/peers/efficient_kan.py` (efficient-kan's formulation in PyTorch: the dense basis
/// tensor [batch, in, G+k] and two matrix products), run separately with the same thread count.
struct SplineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spline",
        abstract: "One KAN layer (batch × in → out, order k), forward + backward with all four gradients, on each device."
    )

    @OptionGroup var common: CommonBenchOptions

    @Option(help: "Comma-separated grid sizes G.") var grids = "5,20"
    @Option(help: "Samples per batch.") var batch = 1024
    @Option(help: "Layer inputs.") var inputs = 256
    @Option(help: "Layer outputs.") var outputs = 256
    @Option(help: "Spline order k (1...5).") var order = 3
    @Flag(help: "Use non-uniform knots (the general path) instead of pykan's uniform initial grid.") var nonUniform = false
    @Option(help: "Comma-separated device ids (default: cpu and every OpenCL device).") var devices: String?
    @Option(help: "At least this many timed runs per case (with --seconds 0: exactly this many, after two warm-up runs).") var runs = 7
    @Flag(help: "First check that no scratch of batch × in × (G+k) floats is allocated: peak resident memory during one large-G call on each device.") var memoryCheck = false

    func run() throws {
        let gridList = grids.split(separator: ",").compactMap { Int($0) }
        let wanted = devices.map { Set($0.split(separator: ",").map(String.init)) }
        let deviceList = Devices.all().filter { wanted?.contains($0.id) ?? true }
        print("KAN layer \(inputs) → \(outputs), batch \(batch), k = \(order), \(nonUniform ? "non-uniform" : "uniform") knots: forward + backward (dx, dc, dScaleBase, dScaleSpline), each synchronized")
        print("Machine: \(machineDescription()); CPU threads: \(ProcessInfo.processInfo.environment["KILN_CPU_THREADS"] ?? "all cores")")
        if memoryCheck {
            for device in deviceList { try checkMemory(device) }
        }
        var rows: [BenchRow] = []
        var table: [[String]] = []
        for grid in gridList {
            let shape = "b\(batch)-\(inputs)x\(outputs)-G\(grid)-k\(order)\(nonUniform ? "-nonuniform" : "")"
            for device in deviceList {
                let backend = try Devices.makeBackend(for: device)
                let layer = try Layer(backend: backend, batch: batch, inputs: inputs, outputs: outputs, intervals: grid, order: order, uniform: !nonUniform)
                let (both, forward) = try Measure.pairedMedians(budgetSeconds: common.seconds, minimumRuns: runs, {
                    layer.forward()
                    layer.backward()
                    try backend.synchronize()
                }, {
                    layer.forward()
                    try backend.synchronize()
                })
                rows.append(BenchRow(bench: "spline", impl: "kiln", device: device.name, shape: shape, medianSeconds: both, gflops: nil))
                rows.append(BenchRow(bench: "spline", impl: "kiln-forward", device: device.name, shape: shape, medianSeconds: forward, gflops: nil))
                table.append([shape, device.id, formatted(both * 1e3, digits: 2), formatted(forward * 1e3, digits: 2), formatted((both - forward) * 1e3, digits: 2)])
            }
        }
        print(renderTable(["shape", "device", "fwd+bwd ms", "fwd ms", "bwd ms (difference)"], table))
        if let path = common.json { try writeJSON(rows, to: path) }
    }

    /// Peak resident memory before and after one forward + backward at a large grid, against the size a
    /// dense basis tensor would have.
    private func checkMemory(_ device: DeviceDescription) throws {
        let (probeBatch, probeInputs, probeOutputs, probeGrid) = (4096, 64, 8, 250)
        let backend = try Devices.makeBackend(for: device)
        let layer = try Layer(backend: backend, batch: probeBatch, inputs: probeInputs, outputs: probeOutputs, intervals: probeGrid, order: order, uniform: !nonUniform)
        try backend.synchronize()
        let before = peakResidentBytes()
        layer.forward()
        layer.backward()
        try backend.synchronize()
        let growth = peakResidentBytes() - before
        let dense = probeBatch * probeInputs * (probeGrid + order) * 4
        print("memory check on \(device.id): batch \(probeBatch), \(probeInputs) → \(probeOutputs), G \(probeGrid): peak resident memory grew by \(ByteCountText.format(growth)); a basis tensor [batch, in, G+k] would be \(ByteCountText.format(dense))")
    }

    private func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }

    /// One layer's parameters, input and output gradient on a device, with buffers for every result.
    final class Layer {
        let backend: any Backend
        let shape: SplineShape
        let operands: SplineOperands
        let dy, y: DeviceBuffer
        let gradients: SplineGradients

        init(backend: any Backend, batch: Int, inputs: Int, outputs: Int, intervals: Int, order: Int, uniform: Bool) throws {
            self.backend = backend
            shape = SplineShape(batch: batch, inputs: inputs, outputs: outputs, intervals: intervals, order: order, uniform: uniform)
            var generator = RandomGenerator(seed: 7)
            // pykan's initial grid on [−1, 1], or knots with random gaps of the same mean spacing.
            let h = 2 / Double(intervals)
            var knotValues: [Float] = []
            for _ in 0..<inputs {
                var value = -1 - Double(order) * h
                for _ in 0..<shape.knotCount {
                    knotValues.append(Float(value))
                    value += uniform ? h : h * Double(generator.uniform(1, low: 0.5, high: 1.5)[0])
                }
            }
            let x = backend.makeBuffer(generator.uniform(batch * inputs, low: -1.2, high: 1.2))
            let coefficients = backend.makeBuffer(generator.normal(inputs * outputs * shape.coefficientCount, mean: 0, standardDeviation: 0.1))
            let scaleBase = backend.makeBuffer(generator.normal(inputs * outputs, mean: 0, standardDeviation: 0.1))
            let scaleSpline = backend.makeBuffer(generator.normal(inputs * outputs, mean: 1, standardDeviation: 0.1))
            operands = SplineOperands(x: x, knots: backend.makeBuffer(knotValues), coefficients: coefficients, scaleBase: scaleBase, scaleSpline: scaleSpline)
            dy = backend.makeBuffer(generator.normal(batch * outputs, mean: 0, standardDeviation: 1))
            y = backend.allocate(batch * outputs)
            gradients = SplineGradients(
                input: backend.allocate(batch * inputs), coefficients: backend.allocate(inputs * outputs * shape.coefficientCount),
                scaleBase: backend.allocate(inputs * outputs), scaleSpline: backend.allocate(inputs * outputs))
            try backend.synchronize()
        }

        func forward() {
            backend.splineForward(operands, shape: shape, into: y)
        }

        func backward() {
            backend.splineBackward(operands, shape: shape, outputGradient: dy, into: gradients)
        }
    }
}

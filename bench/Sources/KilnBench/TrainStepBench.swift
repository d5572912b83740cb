import ArgumentParser
import CBenchBLAS
import Foundation
import Kiln

/// `kiln-bench train-step`: one training step (forward, backward, Adam) of a ReLU MLP, against the time
/// the same step's matrix products take in raw OpenBLAS.
struct TrainStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-step",
        abstract: "One training step of a ReLU MLP 512 → w → w → w → 10 (batch 256, Adam) on each device, with the OpenBLAS gemm floor."
    )

    @OptionGroup var common: CommonBenchOptions

    @Option(help: "Comma-separated hidden widths.") var widths = "256,1024,2048"
    @Option(help: "Examples per step.") var batchSize = 256
    @Option(help: "Timed steps (after warm-up).") var steps = 20
    @Option(help: "Comma-separated device ids (default: cpu and every OpenCL device).") var devices: String?

    func run() throws {
        let widthList = widths.split(separator: ",").compactMap { Int($0) }
        let wanted = devices.map { Set($0.split(separator: ",").map(String.init)) }
        let deviceList = Devices.all().filter { wanted?.contains($0.id) ?? true }
        print("Training step of a ReLU MLP 512 → w → w → w → 10, batch \(batchSize), Adam; median of \(steps) steps after 3 warm-up steps")
        print("Machine: \(machineDescription())")
        var rows: [BenchRow] = []
        var table: [[String]] = []
        for width in widthList {
            let shape = "512-\(width)-\(width)-\(width)-10/b\(batchSize)"
            let floor = gemmFloor(width: width)
            for device in deviceList {
                let backend = try Devices.makeBackend(for: device)
                let step = try stepRunner(backend: backend, width: width)
                // Each step is timed in alternation with the gemm floor, so both see the same machine.
                let (seconds, floorSeconds) = try Measure.pairedMedians(budgetSeconds: max(common.seconds, 2), minimumRuns: steps, step, floor.run)
                rows.append(BenchRow(bench: "train-step", impl: "openblas-gemm-floor", device: device.name, shape: shape, medianSeconds: floorSeconds, gflops: floor.flops / floorSeconds / 1e9))
                rows.append(BenchRow(bench: "train-step", impl: "kiln", device: device.name, shape: shape, medianSeconds: seconds, gflops: floor.flops / seconds / 1e9))
                table.append([shape, "openblas gemm floor", device.id, formatted(floorSeconds * 1e3, digits: 2), formatted(floor.flops / floorSeconds / 1e9), "1.00"])
                table.append([shape, "kiln", device.id, formatted(seconds * 1e3, digits: 2), formatted(floor.flops / seconds / 1e9), formatted(seconds / floorSeconds, digits: 2)])
            }
        }
        print(renderTable(["model/batch", "impl", "device", "ms/step", "GFLOP/s", "× gemm floor"], table))
        if let path = common.json { try writeJSON(rows, to: path) }
    }

    /// The layer sizes (in, out) of the benchmark model.
    private func layers(width: Int) -> [(Int, Int)] { [(512, width), (width, width), (width, width), (width, 10)] }

    /// One synchronized training step (forward, cross-entropy, backward, Adam) of the benchmark model.
    private func stepRunner(backend: any Backend, width: Int) throws -> () throws -> Void {
        var generator = RandomGenerator(seed: 1)
        let model = MLP(inputCount: 512, width: width, depth: 3, outputCount: 10, activation: .relu, generator: &generator, on: backend)
        let optimizer = Optimizer(settings: OptimizerSettings(kind: .adam), groups: [ParameterGroup(name: "all", parameters: model.parameters)])
        let inputs = Tensor.randomNormal([batchSize, 512], generator: &generator, on: backend)
        let labels = IndexTensor((0..<batchSize).map { Int32($0 % 10) }, shape: [batchSize], on: backend)
        try backend.synchronize()
        return {
            let loss = crossEntropy(model(inputs), labels: labels)
            loss.backward()
            optimizer.step(learningRate: 1e-4)
            model.zeroGradients()
            try backend.synchronize()
        }
    }

    /// The step's matrix products in raw `cblas_sgemm` (forward y = x·Wᵀ, weight gradients dW = dYᵀ·X,
    /// and input gradients dX = dY·W except for the first layer), and their FLOPs.
    private func gemmFloor(width: Int) -> (run: () -> Void, flops: Double) {
        var products: [() -> Void] = []
        var flops = 0.0
        let b = batchSize
        for (index, (inputs, outputs)) in layers(width: width).enumerated() {
            let x = (0..<(b * inputs)).map { _ in Float.random(in: -1...1) }
            let w = (0..<(outputs * inputs)).map { _ in Float.random(in: -1...1) }
            let dy = (0..<(b * outputs)).map { _ in Float.random(in: -1...1) }
            let y = UnsafeMutablePointer<Float>.allocate(capacity: b * outputs)
            let dw = UnsafeMutablePointer<Float>.allocate(capacity: outputs * inputs)
            let dx = UnsafeMutablePointer<Float>.allocate(capacity: b * inputs)
            products.append {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(b), Int32(outputs), Int32(inputs), 1, x, Int32(inputs), w, Int32(inputs), 0, y, Int32(outputs))
            }
            products.append {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outputs), Int32(inputs), Int32(b), 1, dy, Int32(outputs), x, Int32(inputs), 0, dw, Int32(inputs))
            }
            flops += 4 * Double(b * inputs * outputs)
            if index > 0 {
                products.append {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(b), Int32(inputs), Int32(outputs), 1, dy, Int32(outputs), w, Int32(inputs), 0, dx, Int32(inputs))
                }
                flops += 2 * Double(b * inputs * outputs)
            }
        }
        return ({ for product in products { product() } }, flops)
    }
}

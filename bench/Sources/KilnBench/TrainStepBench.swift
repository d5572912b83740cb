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
            rows.append(BenchRow(bench: "train-step", impl: "openblas-gemm-floor", device: Devices.cpuDescription.name, shape: shape, medianSeconds: floor.seconds, gflops: floor.flops / floor.seconds / 1e9))
            table.append([shape, "openblas gemm floor", "cpu", formatted(floor.seconds * 1e3, digits: 2), formatted(floor.flops / floor.seconds / 1e9), "1.00"])
            for device in deviceList {
                let backend = try Devices.makeBackend(for: device)
                let seconds = try timeSteps(backend: backend, width: width)
                rows.append(BenchRow(bench: "train-step", impl: "kiln", device: device.name, shape: shape, medianSeconds: seconds, gflops: floor.flops / seconds / 1e9))
                table.append([shape, "kiln", device.id, formatted(seconds * 1e3, digits: 2), formatted(floor.flops / seconds / 1e9), formatted(seconds / floor.seconds, digits: 2)])
            }
        }
        print(renderTable(["model/batch", "impl", "device", "ms/step", "GFLOP/s", "× gemm floor"], table))
        if let path = common.json { try writeJSON(rows, to: path) }
    }

    /// The layer sizes (in, out) of the benchmark model.
    private func layers(width: Int) -> [(Int, Int)] { [(512, width), (width, width), (width, width), (width, 10)] }

    private func timeSteps(backend: any Backend, width: Int) throws -> Double {
        var generator = RandomGenerator(seed: 1)
        let model = MLP(inputCount: 512, width: width, depth: 3, outputCount: 10, activation: .relu, generator: &generator, on: backend)
        let optimizer = Optimizer(settings: OptimizerSettings(kind: .adam), groups: [ParameterGroup(name: "all", parameters: model.parameters)])
        let inputs = Tensor.randomNormal([batchSize, 512], generator: &generator, on: backend)
        let labels = IndexTensor((0..<batchSize).map { Int32($0 % 10) }, shape: [batchSize], on: backend)
        func step() {
            let loss = crossEntropy(model(inputs), labels: labels)
            loss.backward()
            optimizer.step(learningRate: 1e-4)
            model.zeroGradients()
        }
        for _ in 0..<3 { step() }
        try backend.synchronize()
        var samples: [Double] = []
        for _ in 0..<steps {
            let start = DispatchTime.now().uptimeNanoseconds
            step()
            try backend.synchronize()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    /// The summed median time of the step's matrix products in raw `cblas_sgemm` (forward y = x·Wᵀ, weight
    /// gradients dW = dYᵀ·X, and input gradients dX = dY·W except for the first layer), and their FLOPs.
    private func gemmFloor(width: Int) -> (seconds: Double, flops: Double) {
        var seconds = 0.0, flops = 0.0
        for (index, (inputs, outputs)) in layers(width: width).enumerated() {
            let b = batchSize
            let x = (0..<(b * inputs)).map { _ in Float.random(in: -1...1) }
            let w = (0..<(outputs * inputs)).map { _ in Float.random(in: -1...1) }
            let dy = (0..<(b * outputs)).map { _ in Float.random(in: -1...1) }
            var y = [Float](repeating: 0, count: b * outputs)
            var dw = [Float](repeating: 0, count: outputs * inputs)
            var dx = [Float](repeating: 0, count: b * inputs)
            seconds += Measure.median(budgetSeconds: 0.3) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(b), Int32(outputs), Int32(inputs), 1, x, Int32(inputs), w, Int32(inputs), 0, &y, Int32(outputs))
            }
            seconds += Measure.median(budgetSeconds: 0.3) {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outputs), Int32(inputs), Int32(b), 1, dy, Int32(outputs), x, Int32(inputs), 0, &dw, Int32(inputs))
            }
            flops += 4 * Double(b * inputs * outputs)
            if index > 0 {
                seconds += Measure.median(budgetSeconds: 0.3) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(b), Int32(inputs), Int32(outputs), 1, dy, Int32(outputs), w, Int32(inputs), 0, &dx, Int32(inputs))
                }
                flops += 2 * Double(b * inputs * outputs)
            }
        }
        return (seconds, flops)
    }
}

import ArgumentParser
import Foundation
import KilnBackend

/// `kiln-bench scan`: forward + backward of the linear-attention scans (GLA with per-key gates, DeltaNet,
/// gated DeltaNet) on each device, and GLA's tokens per second against the sequence length.
struct ScanBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Linear-attention scans, forward + backward: GLA (per-key gates) and DeltaNet on each device, and tokens/s against T."
    )

    @OptionGroup var common: CommonBenchOptions

    @Option(help: "Comma-separated device ids (default: cpu and every OpenCL device).") var devices: String?
    @Option(help: "Sequence length of the main table.") var length = 1024
    @Option(help: "Heads.") var heads = 4
    @Option(help: "Key and value dimension.") var dimension = 64
    @Option(help: "Comma-separated sequence lengths of the tokens/s table (empty: skip it).") var lengths = "256,512,1024,2048,4096,8192"
    @Option(help: "Comma-separated scans of the main table: gla-per-key, deltanet, gated-deltanet (empty: skip it).") var kinds = "gla-per-key,deltanet,gated-deltanet"
    @Option(help: "OpenCL: value columns per work-item (1, 2, 4, 8, 16), overriding the device's default.") var columnsPerItem: Int?
    @Option(help: "OpenCL: work-items per work-group, overriding the device's default.") var groupSize: Int?
    @Option(help: "OpenCL: steps per checkpoint in backward passes, overriding the device's default.") var chunkLength: Int?

    /// The scans measured.
    enum Kind: String, CaseIterable {
        case gla = "gla-per-key"
        case delta = "deltanet"
        case gatedDelta = "gated-deltanet"
    }

    func run() throws {
        let wanted = devices.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
        let deviceList = Devices.all().filter { wanted?.contains($0.id) ?? true }
        print("Linear-attention scans, forward + backward (one synchronized call of each primitive), B = 1, H = \(heads), K = V = \(dimension)")
        print("Machine: \(machineDescription()); median of ≥5 runs and about \(common.seconds) s per case")
        var rows: [BenchRow] = []
        var table: [[String]] = []
        let lengthList = lengths.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        var scaling: [[String]] = []
        for device in deviceList {
            let backend = try makeBackend(device)
            for kind in try kindList() {
                let shape = ScanShape(batch: 1, length: length, heads: heads, keyDimension: dimension, valueDimension: dimension)
                let forward = try runner(kind, shape: shape, backend: backend, backward: false)
                let step = try runner(kind, shape: shape, backend: backend)
                let (forwardSeconds, seconds) = try Measure.pairedMedians(budgetSeconds: common.seconds, forward, step)
                rows.append(BenchRow(bench: "scan", impl: "kiln-\(kind.rawValue)-fwd", device: device.name, shape: shapeText(shape), medianSeconds: forwardSeconds, gflops: nil))
                rows.append(BenchRow(bench: "scan", impl: "kiln-\(kind.rawValue)-fwd-bwd", device: device.name, shape: shapeText(shape), medianSeconds: seconds, gflops: nil))
                table.append([kind.rawValue, device.id, shapeText(shape), formatted(forwardSeconds * 1e3, digits: 2), formatted(seconds * 1e3, digits: 2),
                              formatted(Double(length) / seconds / 1e3, digits: 1)])
            }
            var previous: Double?
            for length in lengthList {
                let shape = ScanShape(batch: 1, length: length, heads: heads, keyDimension: dimension, valueDimension: dimension)
                let step = try runner(.gla, shape: shape, backend: backend)
                let (seconds, fastest) = try Measure.medianAndMinimum(budgetSeconds: common.seconds, minimumRuns: 5, step)
                rows.append(BenchRow(bench: "scan", impl: "kiln-gla-per-key-fwd-bwd", device: device.name, shape: shapeText(shape), medianSeconds: seconds, gflops: nil))
                scaling.append([device.id, "\(length)", formatted(seconds * 1e3, digits: 2), formatted(fastest * 1e3, digits: 2),
                                formatted(Double(length) / fastest / 1e3, digits: 1), formatted(fastest / Double(length) * 1e6, digits: 2),
                                previous.map { formatted(fastest / $0, digits: 2) } ?? "-"])
                previous = fastest
            }
        }
        print(renderTable(["scan", "device", "shape", "ms fwd", "ms fwd+bwd", "k tokens/s (fwd+bwd)"], table))
        if !scaling.isEmpty {
            print("\nGLA (per-key gates) forward + backward against the sequence length (B = 1, H = \(heads), K = V = \(dimension)):")
            print("(median and fastest of ≥5 runs; tokens/s, µs/token and the growth from the previous T use the fastest)")
            print(renderTable(["device", "T", "median ms", "fastest ms", "k tokens/s", "µs/token", "× previous T"], scaling))
        }
        if let path = common.json { try writeJSON(rows, to: path) }
    }

    private func kindList() throws -> [Kind] {
        try kinds.split(separator: ",").map { name in
            guard let kind = Kind(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown scan '\(name)'; use \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return kind
        }
    }

    private func shapeText(_ shape: ScanShape) -> String {
        "B\(shape.batch)-T\(shape.length)-H\(shape.heads)-K\(shape.keyDimension)-V\(shape.valueDimension)"
    }

    private func makeBackend(_ device: DeviceDescription) throws -> any Backend {
        guard device.backend == .opencl else { return try Devices.makeBackend(for: device) }
        var tuning = OpenCLTuning.defaults(for: device)
        tuning.scan = ScanTuning(
            columnsPerItem: columnsPerItem ?? tuning.scan.columnsPerItem, groupSize: groupSize ?? tuning.scan.groupSize,
            chunkLength: chunkLength ?? tuning.scan.chunkLength)
        return try OpenCLBackend(deviceID: device.id, tuning: tuning)
    }

    /// One synchronized forward + backward of a scan on fixed random inputs (the forward's output and
    /// final state, then every gradient, with dO and dS_T given), or the forward alone.
    private func runner(_ kind: Kind, shape: ScanShape, backend: any Backend, backward: Bool = true) throws -> () throws -> Void {
        var random = SystemRandomNumberGenerator()
        func buffer(_ count: Int, in range: ClosedRange<Float> = -1...1) -> DeviceBuffer {
            backend.makeBuffer((0..<count).map { _ in Float.random(in: range, using: &random) })
        }
        func logGates(_ count: Int) -> DeviceBuffer {
            backend.makeBuffer((0..<count).map { _ in Float(-log(1 + exp(-Double.random(in: -3...3, using: &random)))) })
        }
        let query = buffer(shape.keyCount), value = buffer(shape.valueCount)
        // The delta rule expects unit-norm keys (its layers normalize them).
        var keys = (0..<shape.keyCount).map { _ in Float.random(in: -1...1, using: &random) }
        if kind != .gla {
            for row in stride(from: 0, to: keys.count, by: shape.keyDimension) {
                let norm = keys[row..<(row + shape.keyDimension)].map { $0 * $0 }.reduce(0, +).squareRoot()
                for i in row..<(row + shape.keyDimension) { keys[i] /= norm }
            }
        }
        let key = backend.makeBuffer(keys)
        let initial = buffer(shape.stateCount), outputGradient = buffer(shape.valueCount), finalGradient = buffer(shape.stateCount)
        let output = backend.allocate(shape.valueCount), finalState = backend.allocate(shape.stateCount)
        let dq = backend.allocate(shape.keyCount), dk = backend.allocate(shape.keyCount), dv = backend.allocate(shape.valueCount)
        let dh0 = backend.allocate(shape.stateCount)
        let scale = 1 / Float(shape.keyDimension).squareRoot()
        let outputs = ScanOutputs(output: output, finalState: finalState)
        let outputGradients = ScanOutputGradients(output: outputGradient, finalState: finalGradient)
        switch kind {
        case .gla:
            let inputs = ScanInputs(query: query, key: key, value: value, gate: .perKey(logGates(shape.keyCount)), initialState: initial)
            let gradients = ScanGradients(query: dq, key: dk, value: dv, gate: backend.allocate(shape.keyCount), initialState: dh0)
            try backend.synchronize()
            return {
                backend.linearAttentionScan(inputs, shape: shape, scale: scale, into: outputs)
                guard backward else { return try backend.synchronize() }
                backend.linearAttentionScanBackward(inputs, shape: shape, scale: scale, outputGradients: outputGradients, into: gradients)
                try backend.synchronize()
            }
        case .delta, .gatedDelta:
            let gated = kind == .gatedDelta
            let inputs = DeltaRuleInputs(
                query: query, key: key, value: value, beta: buffer(shape.headStepCount, in: 0.05...0.95),
                gate: gated ? logGates(shape.headStepCount) : nil, initialState: initial)
            let gradients = DeltaRuleGradients(
                query: dq, key: dk, value: dv, beta: backend.allocate(shape.headStepCount),
                gate: gated ? backend.allocate(shape.headStepCount) : nil, initialState: dh0)
            try backend.synchronize()
            return {
                backend.deltaRuleScan(inputs, shape: shape, scale: scale, into: outputs)
                guard backward else { return try backend.synchronize() }
                backend.deltaRuleScanBackward(inputs, shape: shape, scale: scale, outputGradients: outputGradients, into: gradients)
                try backend.synchronize()
            }
        }
    }
}

import ArgumentParser
import Foundation
import KilnBackend

/// `kiln-bench scan`: forward + backward of the linear-attention scans (GLA with per-key gates, DeltaNet,
/// gated DeltaNet) on each device, the chunked form against the recurrent one, measured in alternation
/// in one run, over a table of sequence lengths and head sizes.
struct ScanBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Linear-attention scans, forward + backward, chunked against recurrent: tokens/s against T and D on each device.",
        discussion: """
        Every case times one synchronized forward + backward (the forward's output and final state, then every gradient, \
        with dO and dS_T given) of each form, the two forms in alternation (Measure.pairedMedians), and prints tokens/s \
        and the chunked form's speed-up, on the CPU backend and on OpenCL devices alike. --memory-check instead prints the peak resident memory of chunked forward + backward \
        passes at growing T.
        """
    )

    @OptionGroup var common: CommonBenchOptions

    @Option(help: "Comma-separated device ids (default: cpu and every OpenCL device).") var devices: String?
    @Option(help: "Comma-separated sequence lengths.") var lengths = "256,512,1024,2048,4096,8192,16384"
    @Option(help: "Comma-separated key = value dimensions.") var dimensions = "64,128"
    @Option(help: "Heads.") var heads = 4
    @Option(help: "Batch size.") var batch = 1
    @Option(help: "Comma-separated scans: gla-per-key, deltanet, gated-deltanet.") var kinds = "gla-per-key,deltanet"
    @Option(help: "Forms to time: both (in alternation), chunked or recurrent.") var forms = FormChoice.both
    @Flag(help: "Time the forward pass alone as well.") var forward = false
    @Flag(help: "Print the peak resident memory of chunked forward + backward at growing T instead (host memory: the CPU backend, or PoCL).") var memoryCheck = false
    @Option(help: "OpenCL: value columns per work-item (1, 2, 4, 8, 16), overriding the device's default.") var columnsPerItem: Int?
    @Option(help: "OpenCL: work-items per work-group, overriding the device's default.") var groupSize: Int?
    @Option(help: "OpenCL: steps per checkpoint in backward passes, overriding the device's default.") var chunkLength: Int?
    @Option(help: "OpenCL: work-items per work-group of the chunked kernels, overriding the device's default.") var chunkedGroupSize: Int?
    @Option(help: "OpenCL: the chunked kernels' layout, gpu or cpu, overriding the device's default.") var chunkedLayout: LayoutChoice?

    /// The scans measured.
    enum Kind: String, CaseIterable {
        case gla = "gla-per-key"
        case delta = "deltanet"
        case gatedDelta = "gated-deltanet"
    }

    enum FormChoice: String, ExpressibleByArgument, CaseIterable {
        case both, chunked, recurrent
    }

    enum LayoutChoice: String, ExpressibleByArgument, CaseIterable {
        case gpu, cpu

        var layout: ScanChunkedLayout { self == .gpu ? .gpu : .cpu }
    }

    func run() throws {
        let wanted = devices.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
        let deviceList = Devices.all().filter { wanted?.contains($0.id) ?? true }
        let lengthList = try integers(lengths, "--lengths"), dimensionList = try integers(dimensions, "--dimensions")
        if memoryCheck {
            for device in deviceList { try checkMemory(device, lengths: lengthList, dimension: dimensionList.first ?? 64) }
            return
        }
        print("Linear-attention scans, forward + backward (one synchronized call of each primitive), B = \(batch), H = \(heads), K = V = D")
        print("Machine: \(machineDescription()); median of ≥5 runs and about \(common.seconds) s per case, the two forms in alternation")
        var rows: [BenchRow] = []
        var table: [[String]] = []
        for device in deviceList {
            let chunked = try makeBackend(device, form: .chunked), recurrent = try makeBackend(device, form: .recurrent)
            for kind in try kindList() {
                for dimension in dimensionList {
                    for length in lengthList {
                        let shape = ScanShape(batch: batch, length: length, heads: heads, keyDimension: dimension, valueDimension: dimension)
                        var seconds: [ScanForm: Double] = [:], forwardSeconds: [ScanForm: Double] = [:]
                        switch forms {
                        case .both:
                            let c = try runner(kind, shape: shape, backend: chunked), r = try runner(kind, shape: shape, backend: recurrent)
                            (seconds[.chunked], seconds[.recurrent]) = try Measure.pairedMedians(budgetSeconds: common.seconds, c, r)
                            if forward {
                                let cf = try runner(kind, shape: shape, backend: chunked, backward: false)
                                let rf = try runner(kind, shape: shape, backend: recurrent, backward: false)
                                (forwardSeconds[.chunked], forwardSeconds[.recurrent]) = try Measure.pairedMedians(budgetSeconds: common.seconds, cf, rf)
                            }
                        case .chunked, .recurrent:
                            let form: ScanForm = forms == .chunked ? .chunked : .recurrent
                            let backend = form == .chunked ? chunked : recurrent
                            seconds[form] = try Measure.median(budgetSeconds: common.seconds, try runner(kind, shape: shape, backend: backend))
                            if forward { forwardSeconds[form] = try Measure.median(budgetSeconds: common.seconds, try runner(kind, shape: shape, backend: backend, backward: false)) }
                        }
                        for (form, value) in seconds {
                            rows.append(BenchRow(bench: "scan", impl: "kiln-\(kind.rawValue)-\(form.rawValue)-fwd-bwd", device: device.name, shape: shapeText(shape), medianSeconds: value, gflops: nil))
                        }
                        for (form, value) in forwardSeconds {
                            rows.append(BenchRow(bench: "scan", impl: "kiln-\(kind.rawValue)-\(form.rawValue)-fwd", device: device.name, shape: shapeText(shape), medianSeconds: value, gflops: nil))
                        }
                        let tokens = Double(batch * length)
                        func cell(_ value: Double?, _ body: (Double) -> String) -> String { value.map(body) ?? "-" }
                        var row = [device.id, kind.rawValue, "\(dimension)", "\(length)",
                                   cell(seconds[.recurrent]) { formatted($0 * 1e3, digits: 2) }, cell(seconds[.chunked]) { formatted($0 * 1e3, digits: 2) },
                                   cell(seconds[.recurrent]) { formatted(tokens / $0 / 1e3, digits: 1) }, cell(seconds[.chunked]) { formatted(tokens / $0 / 1e3, digits: 1) }]
                        if let r = seconds[.recurrent], let c = seconds[.chunked] { row.append(formatted(r / c, digits: 2) + "×") } else { row.append("-") }
                        if forward {
                            row.append(cell(forwardSeconds[.recurrent]) { formatted($0 * 1e3, digits: 2) })
                            row.append(cell(forwardSeconds[.chunked]) { formatted($0 * 1e3, digits: 2) })
                        }
                        table.append(row)
                        FileHandle.standardOutput.write(Data((row.joined(separator: "  ") + "\n").utf8))
                    }
                }
            }
        }
        var header = ["device", "scan", "D", "T", "recurrent ms", "chunked ms", "recurrent k tok/s", "chunked k tok/s", "chunked / recurrent"]
        if forward { header += ["recurrent fwd ms", "chunked fwd ms"] }
        print("\n" + renderTable(header, table))
        if let path = common.json { try writeJSON(rows, to: path) }
    }

    private func integers(_ text: String, _ option: String) throws -> [Int] {
        try text.split(separator: ",").map {
            guard let value = Int($0.trimmingCharacters(in: .whitespaces)), value > 0 else { throw ValidationError("\(option): '\($0)' is not a positive integer") }
            return value
        }
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

    /// A backend for a device whose scans all take `form` (on OpenCL with the device's other scan
    /// parameters or those given on the command line).
    private func makeBackend(_ device: DeviceDescription, form: ScanFormRule) throws -> any Backend {
        guard device.backend == .opencl else {
            let backend = CPUBackend()
            backend.scanFormRule = form
            return backend
        }
        var tuning = OpenCLTuning.defaults(for: device)
        tuning.scan = ScanTuning(
            columnsPerItem: columnsPerItem ?? tuning.scan.columnsPerItem, groupSize: groupSize ?? tuning.scan.groupSize,
            chunkLength: chunkLength ?? tuning.scan.chunkLength, form: form, chunkedGroupSize: chunkedGroupSize ?? tuning.scan.chunkedGroupSize,
            chunkedLayout: chunkedLayout?.layout ?? tuning.scan.chunkedLayout)
        return try OpenCLBackend(deviceID: device.id, tuning: tuning)
    }

    /// Peak resident memory after one chunked forward + backward at each T, in increasing order (the peak
    /// only grows, so each line shows what that T added), beside what the inputs, outputs and gradients
    /// themselves take and what one [T, T] float matrix per head would.
    private func checkMemory(_ device: DeviceDescription, lengths: [Int], dimension: Int) throws {
        let backend = try makeBackend(device, form: .chunked)
        print("memory check on \(device.id): forward + backward, chunked, B = \(batch), H = \(heads), K = V = \(dimension)")
        print("(the peak only grows: run one scan per process to see each from the start)")
        var table: [[String]] = []
        var previous = peakResidentBytes()
        for kind in try kindList() {
            for length in lengths.sorted() {
                let shape = ScanShape(batch: batch, length: length, heads: heads, keyDimension: dimension, valueDimension: dimension)
                let step = try runner(kind, shape: shape, backend: backend)
                try step()
                let peak = peakResidentBytes()
                // q, k, v, o, dO, dq, dk, dv and the gate and its gradient (per key for GLA).
                let operands = 4 * (shape.keyCount * (kind == .gla ? 6 : 4) + shape.valueCount * 4 + shape.headStepCount * 4 + shape.stateCount * 5)
                let square = 4 * batch * heads * length * length
                table.append([kind.rawValue, ScanForm.chunked.rawValue, "\(length)", ByteCountText.format(peak), ByteCountText.format(max(0, peak - previous)),
                              ByteCountText.format(operands), ByteCountText.format(square)])
                previous = max(previous, peak)
            }
        }
        print(renderTable(["scan", "form", "T", "peak resident", "growth", "operands and gradients", "one [T, T] per head"], table))
    }

    private func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }

    /// One synchronized forward + backward of a scan on fixed random inputs (the forward's output and
    /// final state, then every gradient, with dO and dS_T given), or the forward alone.
    private func runner(_ kind: Kind, shape: ScanShape, backend: any Backend, backward: Bool = true) throws -> () throws -> Void {
        var random = RandomGenerator(seed: 11)
        func buffer(_ count: Int, in range: ClosedRange<Float> = -1...1) -> DeviceBuffer {
            backend.makeBuffer(random.uniform(count, low: range.lowerBound, high: range.upperBound))
        }
        func logGates(_ count: Int) -> DeviceBuffer {
            backend.makeBuffer(random.uniform(count, low: -3, high: 3).map { Float(-log(1 + exp(-Double($0)))) })
        }
        let query = buffer(shape.keyCount), value = buffer(shape.valueCount)
        // The delta rule expects unit-norm keys (its layers normalize them).
        var keys = random.uniform(shape.keyCount, low: -1, high: 1)
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

import Foundation

/// What a run will hold in memory, estimated from its sizes before anything is allocated, so that a run
/// too large for its device or host is refused with one line instead of dying in an allocation.
///
/// The estimate is deliberately on the high side (gradients and optimizer state as large as the
/// parameters, every activation of a step kept for the backward pass, host copies made while drawing
/// weights and writing checkpoints); it decides whether to start, it is not a measurement.
///
/// ```swift
/// let estimate = try MemoryEstimate.training(configuration, model: modelConfiguration, task: task, batchSize: 64)
/// try estimate.check(on: backend.device)    // TaskError: "out of memory on … allocating about 14.9 TiB …"
/// ```
public struct MemoryEstimate: Sendable, Equatable {
    /// One named part of the estimate, with the flags that change it.
    public struct Part: Sendable, Equatable {
        public var name: String
        public var bytes: Int
        /// The flags to change to make this part smaller.
        public var flags: String
        /// Held only for a moment (while weights are drawn, a checkpoint is written, a grid is fitted): the
        /// total counts the largest such part, not their sum.
        public var transient = false
    }

    /// Memory on the backend's device (for the CPU backend, the same host memory).
    public var device: [Part] = []
    /// Arrays on the host: data, weights drawn before their upload, checkpoint copies, host-side optimizers.
    public var host: [Part] = []
    /// The largest single tensor on the device, in elements (OpenCL kernels index with 32-bit integers).
    public var largestTensorElements = 0

    public init() {}

    public var deviceBytes: Int { Self.total(device) }
    public var hostBytes: Int { Self.total(host) }

    /// The parts held for the whole run, and the largest of those held for a moment.
    static func total(_ parts: [Part]) -> Int {
        let held = parts.filter { !$0.transient }.reduce(0) { Saturating.add($0, $1.bytes) }
        return Saturating.add(held, parts.filter(\.transient).map(\.bytes).max() ?? 0)
    }

    /// The most elements one tensor may have on an OpenCL device: the kernels index with `int`.
    public static let openCLTensorElementLimit = Int(Int32.max)

    /// Refuses the run when it does not fit: the device part against the device's memory, the host part
    /// against ``HostMemory/budget`` (for a device that computes in host memory, the CPU backend and
    /// PoCL, both parts against the host).
    ///
    /// - Parameters:
    ///   - device: the device the run is on.
    ///   - copies: how many such runs share the device and the host at once (a sweep's parallel jobs).
    ///   - host: the host memory the process may use, and what sets it.
    /// - Throws: ``TaskError`` "out of memory on <device> allocating about N GiB …", naming the largest parts,
    ///   what the device (or host) has and the flags to change.
    public func check(on device: DeviceDescription, copies: Int = 1, host budget: HostMemory.Budget = HostMemory.budget) throws(TaskError) {
        let runs = copies > 1 ? " for \(copies) runs at once" : ""
        if device.backend == .opencl, largestTensorElements > Self.openCLTensorElementLimit {
            throw TaskError("out of memory on \(device.name): one tensor of this run holds \(largestTensorElements) elements, more than the "
                            + "\(Self.openCLTensorElementLimit) the OpenCL kernels can index; use a smaller model (\(largestFlags)) or --device cpu")
        }
        let sharesHost = device.backend == .cpu || device.type == .cpu
        if sharesHost {
            let total = Saturating.multiply(Self.total(self.device + host), copies)
            if total > device.memoryBytes && device.memoryBytes < budget.bytes {
                throw TaskError(message(on: device.name, total: total, parts: self.device + host, runs: runs, available: device.memoryBytes, what: "the device has", reason: nil))
            }
            if total > budget.bytes {
                throw TaskError(message(on: device.name, total: total, parts: self.device + host, runs: runs, available: budget.bytes, what: "the host may use", reason: budget.reason))
            }
            return
        }
        let onDevice = Saturating.multiply(deviceBytes, copies)
        if onDevice > device.memoryBytes {
            throw TaskError(message(on: device.name, total: onDevice, parts: self.device, runs: runs, available: device.memoryBytes, what: "the device has", reason: nil))
        }
        let onHost = Saturating.multiply(hostBytes, copies)
        if onHost > budget.bytes {
            throw TaskError(message(on: "the host", total: onHost, parts: host, runs: runs, available: budget.bytes, what: "the host may use", reason: budget.reason))
        }
    }

    /// The flags that size the largest tensor.
    private var largestFlags: String {
        (device.max { $0.bytes < $1.bytes }?.flags) ?? "--width"
    }

    private func message(on target: String, total: Int, parts: [Part], runs: String, available: Int, what: String, reason: String?) -> String {
        let largest = parts.filter { $0.bytes > 0 }.sorted { $0.bytes > $1.bytes }
        let named = largest.prefix(3).map { "\($0.name) \(ByteCountText.format($0.bytes))" }.joined(separator: ", ")
        let flags = largest.first?.flags ?? "--width, --batch-size"
        return "out of memory on \(target) allocating about \(ByteCountText.format(total))\(runs) (\(named)); "
            + "\(what) \(ByteCountText.format(available))\(reason.map { " (\($0))" } ?? ""): make the run smaller (\(flags)) or use another --device"
    }

    // MARK: Estimates

    /// The memory of training `model` on `task` with batches of `batchSize`, as ``Trainer`` would, writing
    /// checkpoints or not.
    public static func training(_ configuration: TrainingConfiguration, model: ModelConfiguration, task: any TrainingTask, batchSize: Int,
                                checkpoints: Bool = true) -> MemoryEstimate {
        var estimate = MemoryEstimate()
        var model = model
        if case var .kan(kan) = model {
            // A grid schedule ends on its largest grid.
            kan.gridIntervals = max(kan.gridIntervals, configuration.gridSchedule.max() ?? 0)
            model = .kan(kan)
        }
        let sizes = ModelSizes(model)
        let parameterBytes = Saturating.multiply(sizes.parameters, 4)
        estimate.device.append(Part(name: "parameters", bytes: Saturating.add(parameterBytes, Saturating.multiply(sizes.buffers, 4)), flags: model.sizeFlags))
        estimate.device.append(Part(name: "gradients", bytes: parameterBytes, flags: model.sizeFlags))
        let states: Int = switch configuration.optimizer {
        case .sgd: 1
        case .adam, .adamw, .adamAtan2: 2
        case .lbfgs: 0
        }
        if states > 0 {
            estimate.device.append(Part(name: "\(configuration.optimizer.rawValue) state", bytes: Saturating.multiply(parameterBytes, states), flags: model.sizeFlags))
        }
        // The memory pool rounds every buffer up to 256 bytes: a net of many tiny layers costs that per tensor.
        estimate.device.append(Part(name: "buffer rounding", bytes: Saturating.multiply(sizes.tensors, 256 * (3 + states)), flags: model.sizeFlags))
        let evaluationRows = min(task.testSet.rows, 1024)
        let trainingActivations = Saturating.multiply(sizes.activationElementsPerRow(training: true), batchSize)
        let evaluationActivations = Saturating.multiply(sizes.activationElementsPerRow(training: false), evaluationRows)
        estimate.device.append(Part(name: "activations of a batch of \(batchSize)", bytes: Saturating.multiply(max(trainingActivations, evaluationActivations), 4),
                                    flags: "--batch-size, " + model.sizeFlags))
        estimate.largestTensorElements = max(sizes.largestTensor, Saturating.multiply(sizes.largestActivationPerRow, max(batchSize, evaluationRows)))

        estimate.host.append(Part(name: "data", bytes: Saturating.add(task.testSet.hostBytes, task.trainBytes(batchSize: batchSize)), flags: "the data's size"))
        // Weights are drawn on the host, tensor by tensor; a checkpoint downloads and encodes every tensor.
        estimate.host.append(Part(name: "weights drawn on the host", bytes: Saturating.multiply(sizes.largestTensor, 4), flags: model.sizeFlags, transient: true))
        // A checkpoint holds every tensor twice on the host: downloaded as floats, and encoded as bytes.
        if checkpoints {
            estimate.host.append(Part(name: "checkpoint copies", bytes: Saturating.multiply(Saturating.add(parameterBytes, Saturating.multiply(parameterBytes, states)), 2),
                                      flags: model.sizeFlags, transient: true))
        }
        if configuration.optimizer == .lbfgs {
            // L-BFGS keeps its history (10 pairs) and a few more vectors as float64 on the host.
            estimate.host.append(Part(name: "L-BFGS history", bytes: Saturating.multiply(sizes.parameters, 8 * 28), flags: model.sizeFlags))
        }
        if case let .kan(kan) = model {
            estimate.host.append(Part(name: "KAN grid fitting", bytes: kanFittingBytes(kan, grid: kan.gridIntervals, trainRows: task.trainCount ?? 0),
                                      flags: "--grid, --arch", transient: true))
        }
        return estimate
    }

    /// Checks a training run's memory before any of it is built: a generated task's data before the task,
    /// then the model with the task's sizes (for sweeps and coordinate checks, which check their widest
    /// run before the first one trains).
    ///
    /// - Parameter copies: how many such runs share the device and the host at once.
    /// - Throws: ``TaskError`` as ``check(on:copies:host:)``, and the task's own errors.
    public static func check(_ configuration: TrainingConfiguration, on device: DeviceDescription, copies: Int = 1, checkpoints: Bool = true) throws {
        if let data = taskData(configuration) { try data.check(on: device, copies: copies) }
        let task = try TaskCatalog.make(configuration)
        let batchSize = configuration.batchSize == TrainingConfiguration.wholeTrainingSet ? (task.trainCount ?? 0) : configuration.batchSize
        let model = try ModelConfiguration(configuration, task: task, stage: 0)
        try model.validate()
        try training(configuration, model: model, task: task, batchSize: batchSize, checkpoints: checkpoints).check(on: device, copies: copies)
    }

    /// The memory of running `model` on `rows` inputs (`kiln predict`, `generate`, `plot`): the parameters,
    /// the checkpoint's values on the host and the activations of one chunk.
    public static func inference(_ model: ModelConfiguration, rows: Int) -> MemoryEstimate {
        var estimate = MemoryEstimate()
        let sizes = ModelSizes(model)
        let parameterBytes = Saturating.multiply(sizes.parameters, 4)
        estimate.device.append(Part(name: "parameters", bytes: Saturating.add(parameterBytes, Saturating.multiply(sizes.buffers, 4)), flags: "the checkpoint's model"))
        let chunk = min(max(rows, 1), 1024)
        estimate.device.append(Part(name: "activations of \(chunk) rows", bytes: Saturating.multiply(Saturating.multiply(sizes.activationElementsPerRow(training: false), chunk), 4),
                                    flags: "the input's rows"))
        estimate.host.append(Part(name: "checkpoint values", bytes: Saturating.multiply(parameterBytes, 2), flags: "the checkpoint's model"))
        estimate.host.append(Part(name: "outputs", bytes: Saturating.multiply(Saturating.multiply(rows, model.outputCount), 8), flags: "the input's rows"))
        estimate.largestTensorElements = max(sizes.largestTensor, Saturating.multiply(sizes.largestActivationPerRow, chunk))
        return estimate
    }

    /// The host memory a generated task's data takes before the task exists (so `modadd:1000`, 8 GB of
    /// one-hot inputs, is refused before it is built); nil for tasks read from files, whose size is
    /// checked as they are read.
    public static func taskData(_ configuration: TrainingConfiguration) -> MemoryEstimate? {
        let name = configuration.task
        let bytes: Int
        if name.hasPrefix("modadd:"), let modulus = Int(name.dropFirst("modadd:".count)), modulus >= 2 {
            // P² rows of 2P one-hot floats, held twice while they are split into train and test sets.
            bytes = Saturating.multiply(Saturating.multiply(Saturating.multiply(modulus, modulus), Saturating.add(Saturating.multiply(2, modulus), 1)), 8)
        } else if name == "mqar" {
            // 1,000 test sequences and a batch, tokens and labels, plus the generator's permutations.
            let sequences = Saturating.add(1000, configuration.batchSize)
            bytes = Saturating.add(Saturating.multiply(Saturating.multiply(sequences, Saturating.add(configuration.sequenceLength, 1)), 16), Saturating.multiply(configuration.vocabulary, 16))
        } else if name == "teacher" {
            bytes = Saturating.multiply(Saturating.add(4096, configuration.batchSize), 33 * 4 * 2)
        } else {
            return nil
        }
        var estimate = MemoryEstimate()
        estimate.host.append(Part(name: "data of task \(name)", bytes: bytes, flags: name == "mqar" ? "--seq-len, --vocab, --batch-size" : "the task's size"))
        return estimate
    }

    /// The float64 arrays a KAN's least-squares grid fits hold: per layer, the spline values at the samples
    /// (`[samples][in][out]` as nested arrays) and one input's normal equations.
    static func kanFittingBytes(_ kan: KANConfiguration, grid: Int, trainRows: Int) -> Int {
        let coefficients = Saturating.add(grid, kan.splineOrder)
        // Refinement samples 20 points per interval; grid updates use every training row.
        let samples = max(Saturating.add(Saturating.multiply(grid, 20), 1), trainRows)
        var largest = 0
        for (inputs, outputs) in zip(kan.architecture, kan.architecture.dropFirst()) {
            let values = Saturating.multiply(Saturating.multiply(samples, inputs), Saturating.add(32, Saturating.multiply(8, outputs)))
            let normal = Saturating.multiply(Saturating.multiply(coefficients, coefficients), 16)
            let result = Saturating.multiply(Saturating.multiply(Saturating.multiply(inputs, outputs), coefficients), 16)
            largest = max(largest, Saturating.add(Saturating.add(values, normal), result))
        }
        return largest
    }
}

/// The sizes of a model that the estimate needs: parameters, buffers, tensors and activations per row.
struct ModelSizes {
    /// Trainable values.
    var parameters = 0
    /// Values stored beside them (a KAN's knots).
    var buffers = 0
    /// Parameter tensors.
    var tensors = 0
    /// The largest parameter tensor, in elements.
    var largestTensor = 0
    /// Values one row (an example, or a sequence) keeps for the backward pass, and the largest of them.
    private var trainingPerRow = 0
    private var evaluationPerRow = 0
    var largestActivationPerRow = 0

    init(_ model: ModelConfiguration) {
        switch model {
        case let .mlp(mlp):
            var fanIn = mlp.inputCount
            for _ in 0..<min(mlp.depth, 1_000_000) {
                addParameter(Saturating.multiply(fanIn, mlp.width))
                addParameter(mlp.width)
                fanIn = mlp.width
            }
            addParameter(Saturating.multiply(fanIn, mlp.targetKind.outputCount))
            addParameter(mlp.targetKind.outputCount)
            // Per hidden layer: the product, the bias sum, the activation (and a dropout mask and output), each
            // with its gradient; the readout's logits, probabilities and their gradients.
            let perLayer = Saturating.multiply(mlp.width, mlp.dropout > 0 ? 10 : 6)
            let outputs = Saturating.multiply(mlp.targetKind.outputCount, 4)
            trainingPerRow = Saturating.add(Saturating.add(Saturating.multiply(perLayer, mlp.depth), outputs), Saturating.multiply(mlp.inputCount, 2))
            evaluationPerRow = Saturating.add(Saturating.add(Saturating.multiply(mlp.width, 3), outputs), mlp.inputCount)
            largestActivationPerRow = max(max(mlp.width, mlp.targetKind.outputCount), mlp.inputCount)
        case let .kan(kan):
            let coefficients = Saturating.add(kan.gridIntervals, kan.splineOrder)
            for (inputs, outputs) in zip(kan.architecture, kan.architecture.dropFirst()) {
                let edges = Saturating.multiply(inputs, outputs)
                addParameter(Saturating.multiply(edges, coefficients))
                addParameter(edges)
                addParameter(edges)
                buffers = Saturating.add(buffers, Saturating.multiply(inputs, Saturating.add(kan.gridIntervals, 2 * kan.splineOrder + 1)))
                // Inputs and outputs with their gradients, and the spline kernels' per-input work.
                trainingPerRow = Saturating.add(trainingPerRow, Saturating.add(Saturating.multiply(Saturating.add(inputs, outputs), 4), Saturating.multiply(inputs, Saturating.add(kan.splineOrder, 2))))
                evaluationPerRow = Saturating.add(evaluationPerRow, Saturating.multiply(Saturating.add(inputs, outputs), 2))
                largestActivationPerRow = max(largestActivationPerRow, max(inputs, outputs))
            }
        case let .lm(lm):
            let (width, vocabulary, length) = (lm.width, lm.vocabulary, lm.sequenceLength)
            let hidden = Saturating.add(Saturating.multiply(width, 8) / 3, 7) / 8 * 8
            let heads = max(lm.heads, 1)
            let headDimension = width / heads
            let square = Saturating.multiply(width, width)
            addParameter(Saturating.multiply(vocabulary, width))
            for _ in 0..<min(lm.layers, 1_000_000) {
                addParameter(width)
                addParameter(width)
                for _ in 0..<3 { addParameter(Saturating.multiply(width, hidden)) }
                for _ in 0..<4 { addParameter(square) }
                addParameter(headDimension)
                switch lm.mixer {
                case .linear: break
                case .gla:
                    addParameter(Saturating.multiply(width, 16))
                    addParameter(Saturating.multiply(width, 16))
                    addParameter(width)
                    addParameter(square)
                case .delta:
                    addParameter(Saturating.multiply(width, heads))
                    for _ in 0..<3 { addParameter(Saturating.multiply(width, 4)) }
                }
            }
            addParameter(width)
            addParameter(Saturating.multiply(width, vocabulary))
            // Per token and block about 40 width-sized values forward (projections, convolutions, norms, the
            // SwiGLU's hidden layer) and as many gradients; the chunked scans keep a state per 64 tokens.
            let perTokenBlock = Saturating.add(Saturating.multiply(width, 96), Saturating.multiply(hidden, 8))
            let chunks = Saturating.add(length, 63) / 64
            let states = Saturating.multiply(Saturating.multiply(Saturating.multiply(heads, headDimension), headDimension), Saturating.multiply(chunks, 2))
            let perBlock = Saturating.add(Saturating.multiply(perTokenBlock, length), states)
            let logits = Saturating.multiply(Saturating.multiply(length, vocabulary), 4)
            trainingPerRow = Saturating.add(Saturating.multiply(perBlock, lm.layers), logits)
            evaluationPerRow = Saturating.add(Saturating.multiply(Saturating.multiply(width, 12), length), logits / 2)
            largestActivationPerRow = Saturating.multiply(length, max(vocabulary, hidden))
        }
    }

    private mutating func addParameter(_ elements: Int) {
        parameters = Saturating.add(parameters, elements)
        tensors = Saturating.add(tensors, 1)
        largestTensor = max(largestTensor, elements)
    }

    /// Activation values per row of a training step (kept for the backward pass) or of an evaluation.
    func activationElementsPerRow(training: Bool) -> Int { training ? trainingPerRow : evaluationPerRow }
}

extension ModelConfiguration {
    /// The exact number of trainable parameters the model has (``Module/parameterCount`` of the built
    /// model), computed from the sizes without building it; saturates at `Int.max`.
    public var parameterCount: Int { ModelSizes(self).parameters }

    /// The flags that size this model's parameters.
    var sizeFlags: String {
        switch self {
        case .mlp: "--width, --depth"
        case .kan: "--arch, --width, --grid"
        case .lm: "--width, --layers, --vocab"
        }
    }
}

extension HostBatch {
    /// Bytes of the host arrays: inputs, tokens, labels and targets (4 bytes each).
    var hostBytes: Int {
        Saturating.multiply(inputs.count + (tokens?.count ?? 0) + (labels?.count ?? 0) + (targets?.count ?? 0), 4)
    }
}

extension TrainingTask {
    /// Bytes of the training data on the host: the fixed training set (and a gathered batch), or one batch.
    func trainBytes(batchSize: Int) -> Int {
        let perRow = Saturating.multiply(Saturating.add(inputCount, targetKind.outputCount), 8)
        let batch = Saturating.multiply(perRow, batchSize)
        if let arrays = self as? ArrayTask { return Saturating.add(arrays.train.hostBytes, batch) }
        return batch
    }
}

/// Integer arithmetic that stops at `Int.max` instead of trapping, for sizes computed from user input.
enum Saturating {
    static func multiply(_ a: Int, _ b: Int) -> Int {
        guard a >= 0, b >= 0 else { return 0 }
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? Int.max : product
    }

    static func add(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int.max : sum
    }
}

// The scan family's search space for `kiln tune` (Kernels/scan.cl and scan_chunked.cl, ScanTuning in
// OpenCLBackend+Scan.swift): the recurrent kernels' state tile and work-group, the backward checkpoint
// spacing, the chunked kernels' work-group and layout, and the length and state size from which the scans
// run chunked.

extension TuningSpace {
    public static let scan = TuningSpace(
        family: .scan,
        parameters: [
            ("scan.columnsPerItem", [1, 2, 4, 8, 16]), ("scan.groupSize", [1, 2, 4, 8, 16, 32, 64]), ("scan.chunkLength", [16, 32, 64]),
            ("scan.chunkedGroupSize", [16, 32, 64, 128]), ("scan.chunkedLayout", [0, 1]), ("scan.chunkedFromLength", [0, 64, 256, 1024, Int.max]),
            ("scan.chunkedFromStateCount", [0, 4096, 16384, 65536]),
        ],
        checks: [.scan],
        isValid: { tuning, limits in
            tuning.scan.groupSize <= limits.maximumGroupSize && tuning.scan.chunkedGroupSize <= limits.maximumGroupSize
        },
        workloads: {
            // GLA (per-key gates) at a short and a long length, and the delta rule, forward and backward, at
            // D = 64; then both at D = 128, where the form rule's state-size floor is decided as well.
            [(Reference.Scan.Rule.linearAttention, 128, 64), (.linearAttention, 1024, 64), (.deltaRule, 256, 64),
             (.linearAttention, 512, 128), (.deltaRule, 512, 128)].map { rule, length, dimension in
                let shape = ScanShape(batch: 2, length: length, heads: 4, keyDimension: dimension, valueDimension: dimension)
                let name = "\(rule == .deltaRule ? "DeltaNet" : "GLA") B 2, T \(length), H 4, D \(dimension), forward+backward"
                return TuningWorkload(name: name, work: Double(shape.headStepCount), unit: "Gtoken·head/s") { backend in
                    var random = RandomGenerator(seed: 13)
                    let q = backend.makeBuffer(random.floats(shape.keyCount)), k = backend.makeBuffer(random.unitRows(shape.keyCount, rowLength: dimension))
                    let v = backend.makeBuffer(random.floats(shape.valueCount)), dO = backend.makeBuffer(random.floats(shape.valueCount))
                    let outputs = ScanOutputs(output: backend.allocate(shape.valueCount))
                    let dq = backend.allocate(shape.keyCount), dk = backend.allocate(shape.keyCount), dv = backend.allocate(shape.valueCount)
                    let scale = 1 / Float(dimension).squareRoot()
                    if rule == .deltaRule {
                        let beta = backend.makeBuffer(random.floats(shape.headStepCount, in: 0.05...0.95))
                        let inputs = DeltaRuleInputs(query: q, key: k, value: v, beta: beta)
                        let dbeta = backend.allocate(shape.headStepCount)
                        return {
                            backend.deltaRuleScan(inputs, shape: shape, scale: scale, into: outputs)
                            backend.deltaRuleScanBackward(inputs, shape: shape, scale: scale, outputGradients: ScanOutputGradients(output: dO),
                                                          into: DeltaRuleGradients(query: dq, key: dk, value: dv, beta: dbeta))
                        }
                    }
                    let gate = backend.makeBuffer(random.logGates(shape.keyCount, normalizer: 1))
                    let inputs = ScanInputs(query: q, key: k, value: v, gate: .perKey(gate))
                    let dg = backend.allocate(shape.keyCount)
                    return {
                        backend.linearAttentionScan(inputs, shape: shape, scale: scale, into: outputs)
                        backend.linearAttentionScanBackward(inputs, shape: shape, scale: scale, outputGradients: ScanOutputGradients(output: dO),
                                                            into: ScanGradients(query: dq, key: dk, value: dv, gate: dg))
                    }
                }
            }
        })
}

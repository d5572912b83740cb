import Foundation
import KilnBackend

/// One benchmark result, as written to `--json`.
struct BenchRow: Codable {
    var bench: String
    var impl: String
    var device: String
    var shape: String
    var medianSeconds: Double
    var gflops: Double?

    enum CodingKeys: String, CodingKey {
        case bench, impl, device, shape
        case medianSeconds = "median_seconds"
        case gflops
    }

    /// Encodes every key, with `null` for a missing GFLOP/s figure.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(bench, forKey: .bench)
        try container.encode(impl, forKey: .impl)
        try container.encode(device, forKey: .device)
        try container.encode(shape, forKey: .shape)
        try container.encode(medianSeconds, forKey: .medianSeconds)
        try container.encode(gflops, forKey: .gflops)
    }
}

enum Measure {
    /// The median wall time of `body` over at least `minimumRuns` runs and about `budgetSeconds` of
    /// measuring (at most 200 runs), after warming up for at least `warmUp` calls and a fifth of the budget
    /// (cores idle a moment ago start slowly, and caches and thread pools need a first call).
    static func median(budgetSeconds: Double, minimumRuns: Int = 5, warmUp: Int = 2, _ body: () throws -> Void) rethrows -> Double {
        middle(try samples(budgetSeconds: budgetSeconds, minimumRuns: minimumRuns, warmUp: warmUp, body))
    }

    /// The wall times of the timed runs behind ``median(budgetSeconds:minimumRuns:warmUp:_:)``.
    static func samples(budgetSeconds: Double, minimumRuns: Int, warmUp: Int, _ body: () throws -> Void) rethrows -> [Double] {
        let warmUpStart = DispatchTime.now().uptimeNanoseconds
        var warmUpCalls = 0
        while warmUpCalls < warmUp || Double(DispatchTime.now().uptimeNanoseconds - warmUpStart) / 1e9 < budgetSeconds / 5 {
            try body()
            warmUpCalls += 1
        }
        var samples: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        while samples.count < minimumRuns
            || (samples.count < 200 && Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < budgetSeconds)
        {
            let before = DispatchTime.now().uptimeNanoseconds
            try body()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - before) / 1e9)
        }
        return samples
    }
}

extension Measure {
    /// Median wall times of two bodies measured in alternation (a, b, a, b, …) after warming both up, so
    /// that both see the same machine: on shared virtual machines a neighbour's load comes and goes,
    /// and timing one implementation after the other turns that noise into a false ratio.
    static func pairedMedians(budgetSeconds: Double, minimumRuns: Int = 5, _ first: () throws -> Void, _ second: () throws -> Void) rethrows -> (Double, Double) {
        let warmUpStart = DispatchTime.now().uptimeNanoseconds
        var warmUpCalls = 0
        while warmUpCalls < 2 || Double(DispatchTime.now().uptimeNanoseconds - warmUpStart) / 1e9 < budgetSeconds / 5 {
            try first()
            try second()
            warmUpCalls += 1
        }
        var firstSamples: [Double] = [], secondSamples: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        while firstSamples.count < minimumRuns
            || (firstSamples.count < 200 && Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < budgetSeconds)
        {
            var before = DispatchTime.now().uptimeNanoseconds
            try first()
            firstSamples.append(Double(DispatchTime.now().uptimeNanoseconds - before) / 1e9)
            before = DispatchTime.now().uptimeNanoseconds
            try second()
            secondSamples.append(Double(DispatchTime.now().uptimeNanoseconds - before) / 1e9)
        }
        return (middle(firstSamples), middle(secondSamples))
    }

    static func middle(_ samples: [Double]) -> Double {
        let sorted = samples.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

/// Writes rows as JSON to a file (creating its folder), through a temporary file and a rename.
func writeJSON(_ rows: [BenchRow], to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let url = URL(fileURLWithPath: path)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try encoder.encode(rows).write(to: url, options: .atomic)
    print("wrote \(path)")
}

/// Left-aligned plain-text table.
func renderTable(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { row in
        row.indices.map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
    }.joined(separator: "\n")
}

/// Fixed-point text for a number.
func formatted(_ value: Double, digits: Int = 1) -> String {
    String(format: "%.\(digits)f", value)
}

/// A one-line description of the machine, for result tables.
func machineDescription() -> String {
    let cpu = Devices.cpuDescription
    // Reading the kernel set also settles it before the first raw cblas_sgemm of a peer (CPUBackend.openBLASKernels).
    return "\(cpu.name), \(cpu.computeUnits) cores, \(ByteCountText.format(cpu.memoryBytes)), \(CPUBackend.openBLASKernels.summary)"
}

extension Measure {
    /// The median and the fastest wall time of `body`, measured as in ``median(budgetSeconds:minimumRuns:warmUp:_:)``.
    /// On a shared machine the fastest run is the one least disturbed by neighbours, so tables that
    /// compare sizes (time against sequence length) report it beside the median.
    static func medianAndMinimum(budgetSeconds: Double, minimumRuns: Int = 5, _ body: () throws -> Void) rethrows -> (median: Double, minimum: Double) {
        let times = try samples(budgetSeconds: budgetSeconds, minimumRuns: minimumRuns, warmUp: 2, body)
        return (middle(times), times.min()!)
    }
}

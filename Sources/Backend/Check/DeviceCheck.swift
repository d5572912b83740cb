import Foundation

/// The op families a device check (and `kiln check --families`) covers, one name from op to kernel.
public enum OpFamily: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case gemm, elementwise, reduce, rows, embedding, random, optimizer, spline, scan

    /// The family a user-given name means: its own name, or `matmul` for gemm (the spelling).
    public init?(name: String) {
        let lowered = name.trimmingCharacters(in: .whitespaces).lowercased()
        if lowered == "matmul" { self = .gemm; return }
        self.init(rawValue: lowered)
    }

    /// Families from a comma-separated list; the error names the first unknown one and every valid name.
    public static func list(_ text: String) throws(CheckError) -> [OpFamily] {
        var families: [OpFamily] = []
        for name in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let family = OpFamily(name: String(name)) else {
                throw CheckError("unknown family '\(name.prefix(40))'; the families are \(allCases.map(\.rawValue).joined(separator: ", ")) (matmul is gemm)")
            }
            if !families.contains(family) { families.append(family) }
        }
        return families
    }

    public var description: String { rawValue }
}

/// A problem with what a user asked a check or the tuner for (a family name, a budget, a device); its
/// description is one line saying what is wrong and what to do.
public struct CheckError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One row of a device check: a case of one family, its relative error against the float64 reference
/// (the worst of the outputs the case compares), the bound it must stay below, and whether it did.
public struct CheckRow: Sendable, Codable, Equatable {
    public var device: String
    public var family: OpFamily
    /// What was run: the primitive, its sizes and options.
    public var name: String
    /// The output with the largest error (when the case compares several), or why the case failed to run.
    public var worst: String
    public var error: Double
    public var bound: Double
    public var passed: Bool

    private enum CodingKeys: String, CodingKey {
        case device, family, name = "case", worst, error, bound, passed
    }
}

/// Runs every op family of a backend on fresh random inputs against ``Reference`` (odd sizes, both
/// transposes, broadcasting, strong gates, outputs poisoned with NaN), at the bounds of the test suite
/// (``CheckBound``): what `kiln check` prints, and what the tuner runs on every candidate before timing it.
///
/// The case list per family is short (seconds on PoCL). On an OpenCL backend, gemm has cases on both
/// sides of the direct/tiled crossover of the backend's own tuning; the scan cases also run on a copy of
/// the backend with every scan in the chunked form (the CPU backend's and OpenCL's chunked kernels).
public struct DeviceCheck: Sendable {
    public var families: [OpFamily]
    /// The seed of the inputs; fresh by default, and printed so that a failure can be repeated.
    public var seed: UInt64
    /// What each family's cases run over: `kiln check`'s short lists by default, longer ones in the test suite.
    public var lists: CheckLists

    public init(families: [OpFamily] = OpFamily.allCases, seed: UInt64? = nil, lists: CheckLists = .check) {
        self.families = families
        self.seed = seed ?? RandomGenerator.withFreshSeed().seed
        self.lists = lists
    }

    /// Runs the cases of every family in ``families`` on `backend`, calling `progress` with each family's rows.
    /// A case whose primitive fails on the device (a kernel that does not build, a device error) is a
    /// failed row naming the error, so one broken family does not hide the others.
    public func run(on backend: any Backend, progress: (CheckRow) -> Void = { _ in }) -> [CheckRow] {
        var rows: [CheckRow] = []
        for family in families {
            var random = RandomGenerator(seed: seed, stream: family.rawValue)
            var recorder = CheckRecorder(device: backend.device.id, family: family)
            switch family {
            case .gemm: CheckCases.gemm(backend, lists.gemm, &random, &recorder)
            case .elementwise: CheckCases.elementwise(backend, lists, &random, &recorder)
            case .reduce: CheckCases.reduce(backend, lists.reduce, &random, &recorder)
            case .rows: CheckCases.rows(backend, lists.rows, &random, &recorder)
            case .embedding: CheckCases.embedding(backend, lists.embedding, &random, &recorder)
            case .random: CheckCases.random(backend, lists.randomCounts, &random, &recorder)
            case .optimizer: CheckCases.optimizer(backend, lists.optimizer, &random, &recorder)
            case .spline: CheckCases.spline(backend, lists.spline, &random, &recorder)
            case .scan: CheckCases.scan(backend, lists.scan, &random, &recorder)
            }
            rows += recorder.rows
            recorder.rows.forEach(progress)
        }
        return rows
    }
}

/// Collects the rows of one family: each case runs a closure that returns its compared outputs
/// (name, error) and the bound; a thrown error makes a failed row that names it.
struct CheckRecorder {
    let device: String
    let family: OpFamily
    var rows: [CheckRow] = []

    mutating func add(_ name: String, _ compare: () throws -> [(output: String, error: Double, bound: Double)]) {
        let row: CheckRow
        do {
            let comparisons = try compare()
            // The worst output is the one furthest past (or closest to) its own bound.
            let worst = comparisons.max { ratio($0.error, $0.bound) < ratio($1.error, $1.bound) }
            let passed = comparisons.allSatisfy { CheckBound.holds($0.error, $0.bound) }
            row = CheckRow(device: device, family: family, name: name, worst: worst?.output ?? "", error: worst?.error ?? 0, bound: worst?.bound ?? 0, passed: passed)
        } catch {
            row = CheckRow(device: device, family: family, name: name, worst: "error: \(error)".split(whereSeparator: \.isNewline).first.map(String.init) ?? "error",
                           error: .infinity, bound: 0, passed: false)
        }
        rows.append(row)
    }

    private func ratio(_ error: Double, _ bound: Double) -> Double {
        bound == 0 ? (error == 0 ? 0 : .infinity) : error / bound
    }
}

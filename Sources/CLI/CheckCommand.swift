import ArgumentParser
import Foundation
import Kiln

/// `kiln check`: every op family on a device against the float64 reference, at the test suite's bounds.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check every op family on a device against the float64 reference; exit 0 only when all pass.",
        discussion: """
            Runs each family (gemm, elementwise, reduce, rows, embedding, random, optimizer, spline, scan) on fresh \
            random inputs with odd sizes, both transposes, broadcasting, strong gates and NaN-poisoned outputs, and \
            prints family, case, relative error, bound and pass/fail. Run it first on a new GPU or driver.
            """
    )

    @Option(parsing: .unconditional, help: "cpu, opencl:N, opencl, auto, or all (every device kiln devices lists; the default).")
    var device = "all"

    @Option(parsing: .unconditional, help: "Comma-separated families (default: all; matmul is gemm).")
    var families: String?

    @Option(parsing: .unconditional, help: "Also write the rows as a JSON array to this file.")
    var json: String?

    @Option(parsing: .unconditional, help: "Seed of the random inputs (default: a fresh one, printed).")
    var seed: UInt64?

    func run() throws {
        let chosen: [OpFamily]
        do {
            chosen = try families.map(OpFamily.list) ?? OpFamily.allCases
        } catch {
            throw CommandError("--families: \(error.description)")
        }
        let devices = device.lowercased() == "all" ? Devices.all() : [try resolveDevice(device)]
        if let json { try OutputPath.checkFile(json, flag: "--json") }
        let check = DeviceCheck(families: chosen, seed: seed)
        print("kiln check: \(chosen.map(\.rawValue).joined(separator: ", ")) on \(devices.map(\.id).joined(separator: ", ")), seed \(check.seed)")
        var rows: [CheckRow] = []
        for description in devices {
            let backend = try Devices.makeBackend(for: description)
            let tuning = Devices.tuningLookup(for: description).map { ", tuning \($0.source)" } ?? ""
            print("\n\(description.id) (\(description.name)\(tuning))")
            let deviceRows = check.run(on: backend)
            rows += deviceRows
            print(TextTable.render(header: ["family", "case", "error", "bound", "result", "worst output"], rows: deviceRows.map { row in
                [row.family.rawValue, row.name, Self.format(row.error), row.bound == 0 ? "exact" : String(format: "%.0e", row.bound), row.passed ? "pass" : "FAIL", row.worst]
            }))
        }
        let failed = rows.filter { !$0.passed }
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            try writeAtomically(try encoder.encode(rows), to: URL(fileURLWithPath: json))
        }
        print("\n\(rows.count - failed.count) of \(rows.count) cases pass")
        if !failed.isEmpty {
            fflush(nil)
            KilnMain.fail("\(failed.count) of \(rows.count) cases exceed their bound (first: \(failed[0].device) \(failed[0].family) \(failed[0].name): \(failed[0].worst)); rerun with --seed \(check.seed) to repeat")
        }
    }

    static func format(_ error: Double) -> String {
        error.isFinite ? String(format: "%.2e", error) : "inf"
    }
}

import ArgumentParser
import Foundation
import KilnBackend

/// `kiln devices`: every device Kiln can use, with the one `auto` picks marked.
struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the CPU backend and every OpenCL device; * marks the one --device auto picks."
    )

    @Flag(help: "Print a JSON array of objects (id, backend, name, vendor, type, computeUnits, memoryBytes, isDefault, openclCVersion, driverVersion).")
    var json = false

    func run() throws {
        let devices = Devices.all()
        defer { checkEnvironmentDevice() }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(devices), as: UTF8.self))
            return
        }
        let header = ["", "id", "type", "name", "vendor", "units", "memory", "OpenCL C", "tuning"]
        let rows = devices.map { device in
            [
                device.isDefault ? "*" : "", device.id, device.type.rawValue, device.name, device.vendor, String(device.computeUnits),
                ByteCountText.format(device.memoryBytes), device.openclCVersion ?? "-",
                device.backend == .cpu ? cpuTuning : Devices.tuningLookup(for: device).map { "\($0.source)" } ?? "-",
            ]
        }
        print(TextTable.render(header: header, rows: rows))
        if CPUBackend.openBLASKernels.decision == .corrected { print("cpu: \(CPUBackend.openBLASKernels.summary)") }
        if !Devices.hasOpenCL {
            print("No OpenCL platform found: install an OpenCL driver (or pocl-opencl-icd for the CPU) to use OpenCL devices.")
        }
    }
}

/// The CPU backend's "tuning": the OpenBLAS kernel set its matrix products run.
private var cpuTuning: String {
    let kernels = CPUBackend.openBLASKernels
    switch kernels.decision {
    case .unknown: return "OpenBLAS"
    case .kept: return "OpenBLAS \(kernels.name)"
    case .userChoice: return "OpenBLAS \(kernels.name) (OPENBLAS_CORETYPE)"
    case .corrected: return "OpenBLAS \(kernels.name) (not \(kernels.detected))"
    }
}

/// After the list: a `KILN_DEVICE` that names no device is an error (every other command would refuse it).
private func checkEnvironmentDevice() {
    guard let name = ProcessInfo.processInfo.environment["KILN_DEVICE"], !name.isEmpty else { return }
    do {
        _ = try Devices.resolve(name)
    } catch {
        fflush(nil)
        KilnMain.fail("KILN_DEVICE='\(name.prefix(40))' names no device; set it to one of the ids listed (or auto, opencl), or unset it")
    }
}

/// Left-aligned plain-text tables for terminal output.
enum TextTable {
    static func render(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { column in
                row[column].padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }.joined(separator: "\n")
    }
}

import ArgumentParser
import CBenchBLAS
import Foundation
import KilnBackend

/// `kiln-bench matmul`: SGEMM GFLOP/s of Kiln's CPU and OpenCL backends against raw OpenBLAS and CLBlast.
struct MatmulBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matmul",
        abstract: "SGEMM: the CPU backend vs raw cblas_sgemm, and the OpenCL backend vs CLBlast on each OpenCL device."
    )

    @OptionGroup var common: CommonBenchOptions

    @Option(help: "Comma-separated shapes: N for N×N×N or MxNxK.")
    var shapes = "128,256,512,1024,2048,4096x1024x1024,256x4096x1024"

    @Option(help: "Comma-separated device ids to measure (default: cpu and every OpenCL device).")
    var devices: String?

    @Flag(help: "A short run (256, 512 and 1024, a quarter second each), as `make run` shows.")
    var quick = false

    @Option(help: "Extra -D options for gemm.cl on OpenCL devices, e.g. '-D WPT_M=8 -D VW=8' (overrides the device's defaults).")
    var matmulOptions: String?

    func run() throws {
        let shapeList = try parseShapes(quick ? "256,512,1024" : shapes)
        let budget = quick ? 0.25 : common.seconds
        let wanted = devices.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
        let deviceList = Devices.all().filter { wanted?.contains($0.id) ?? true }
        print("SGEMM on \(machineDescription()); median of ≥5 runs per case, C = A·B row-major")
        var rows: [BenchRow] = []
        var table: [[String]] = []
        func record(_ impl: String, _ device: DeviceDescription, _ shape: (Int, Int, Int), _ seconds: Double?) {
            guard let seconds else {
                table.append([shapeText(shape), impl, device.id, "failed", "-"])
                return
            }
            let gflops = 2 * Double(shape.0) * Double(shape.1) * Double(shape.2) / seconds / 1e9
            rows.append(BenchRow(bench: "matmul", impl: impl, device: device.name, shape: shapeText(shape), medianSeconds: seconds, gflops: gflops))
            table.append([shapeText(shape), impl, device.id, formatted(seconds * 1e3, digits: 2), formatted(gflops)])
        }
        // Each implementation is timed in alternation with its peer (see Measure.pairedMedians).
        for device in deviceList {
            if device.backend == .cpu {
                let backend = CPUBackend()
                for shape in shapeList {
                    let kiln = try backendRunner(backend, shape)
                    let peer = openBLASRunner(shape)
                    let (mine, theirs) = try Measure.pairedMedians(budgetSeconds: budget, kiln, peer)
                    record("cpu", device, shape, mine)
                    record("openblas", device, shape, theirs)
                }
            } else {
                let backend = try OpenCLBackend(deviceID: device.id, tuning: tuning(for: device))
                let clblast = CLBlastRunner(deviceIndex: Int(device.id.dropFirst("opencl:".count)) ?? 0)
                for shape in shapeList {
                    let kiln = try backendRunner(backend, shape)
                    guard let clblast, let peer = clblast.sgemmRunner(m: shape.0, n: shape.1, k: shape.2) else {
                        record("opencl", device, shape, try Measure.median(budgetSeconds: budget, kiln))
                        record("clblast", device, shape, nil)
                        continue
                    }
                    let (mine, theirs) = try Measure.pairedMedians(budgetSeconds: budget, kiln, peer.run)
                    record("opencl", device, shape, mine)
                    record("clblast", device, shape, theirs)
                }
            }
        }
        print(renderTable(["shape", "impl", "device", "ms", "GFLOP/s"], table))
        printRatios(rows)
        if let path = common.json { try writeJSON(rows, to: path) }
    }

    private func tuning(for device: DeviceDescription) throws -> OpenCLTuning {
        // The device's tuning as Kiln looks it up at run time (the user's `kiln tune` file, the shipped
        // database, the built-in defaults), so a tuned cache is measured; --matmul-options goes on top.
        var tuning = Devices.tuningLookup(for: device)?.tuning ?? OpenCLTuning.defaults(for: device)
        guard let matmulOptions else { return tuning }
        for token in matmulOptions.split(separator: " ").filter({ $0 != "-D" }) {
            let parts = token.replacingOccurrences(of: "-D", with: "").split(separator: "=")
            guard parts.count == 2, let value = Int(parts[1]) else { throw ValidationError("cannot read '\(token)' in --matmul-options; use -D NAME=integer") }
            switch parts[0] {
            case "WPT_M": tuning.gemm.rowsPerItem = value
            case "VW": tuning.gemm.vectorWidth = value
            case "WG_M": tuning.gemm.groupRows = value
            case "WG_N": tuning.gemm.groupColumns = value
            case "USE_LOCAL": tuning.gemm.useLocalMemory = value != 0
            case "TILE_K": tuning.gemm.tileK = value
            case "A_VW": tuning.gemm.aVectorWidth = value
            case "A_LOCAL_KMAJOR": tuning.gemm.aTileKMajor = value != 0
            case "A_PAD": tuning.gemm.aTilePadding = value
            case "NONUNIFORM_K_LOOP": tuning.gemm.nonuniformKLoop = value != 0
            case "DIRECT_WG": tuning.gemm.directGroupSize = value
            case "DIRECT_WM": tuning.gemm.directRowsPerItem = value
            case "DIRECT_WN": tuning.gemm.directColumnsPerItem = value
            default:
                throw ValidationError("unknown matmul option \(parts[0]); known: WPT_M, VW, WG_M, WG_N, USE_LOCAL, TILE_K, A_VW, A_LOCAL_KMAJOR, A_PAD, NONUNIFORM_K_LOOP, DIRECT_WG, DIRECT_WM, DIRECT_WN")
            }
        }
        return tuning
    }

    /// One synchronized gemm on a backend, ready to time.
    private func backendRunner(_ backend: any Backend, _ shape: (Int, Int, Int)) throws -> () throws -> Void {
        let (m, n, k) = shape
        let a = backend.makeBuffer((0..<(m * k)).map { _ in Float.random(in: -1...1) })
        let b = backend.makeBuffer((0..<(k * n)).map { _ in Float.random(in: -1...1) })
        let c = backend.allocate(m * n)
        let problem = GemmProblem(m: m, n: n, k: k)
        try backend.synchronize()
        return {
            backend.gemm(problem, a: a, b: b, c: c)
            try backend.synchronize()
        }
    }

    /// One raw `cblas_sgemm` of the same shape.
    private func openBLASRunner(_ shape: (Int, Int, Int)) -> () -> Void {
        let (m, n, k) = shape
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1) }
        let b = (0..<(k * n)).map { _ in Float.random(in: -1...1) }
        let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        return {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, c, Int32(n))
        }
    }

    /// Kiln against its peer at each shape: cpu / openblas and opencl / clblast.
    private func printRatios(_ rows: [BenchRow]) {
        var lines: [[String]] = []
        for (mine, peer) in [("cpu", "openblas"), ("opencl", "clblast")] {
            for row in rows where row.impl == mine {
                guard let other = rows.first(where: { $0.impl == peer && $0.device == row.device && $0.shape == row.shape }),
                    let gflops = row.gflops, let peerGflops = other.gflops
                else { continue }
                lines.append([row.shape, "\(mine) / \(peer)", row.device, formatted(gflops / peerGflops, digits: 2) + "×"])
            }
        }
        if !lines.isEmpty { print("\n" + renderTable(["shape", "ratio", "device", "GFLOP/s ratio"], lines)) }
    }

    private func shapeText(_ shape: (Int, Int, Int)) -> String { "\(shape.0)x\(shape.1)x\(shape.2)" }

    private func parseShapes(_ text: String) throws -> [(Int, Int, Int)] {
        try text.split(separator: ",").map { item in
            let parts = item.split(separator: "x").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            switch parts.count {
            case 1 where parts[0] > 0: return (parts[0], parts[0], parts[0])
            case 3 where parts.allSatisfy({ $0 > 0 }): return (parts[0], parts[1], parts[2])
            default: throw ValidationError("cannot read shape '\(item)'; use N or MxNxK with positive integers")
            }
        }
    }
}

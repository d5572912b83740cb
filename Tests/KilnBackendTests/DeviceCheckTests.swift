import Foundation
import KilnBackend
import KilnKernels
import KilnTestSupport
import Testing

/// `DeviceCheck` (what `kiln check` and the tuner run) and the tuner's rejection of a wrong variant.
@Suite("device check and tuner")
struct DeviceCheckTests {
    @Test("every family passes the check on every backend", arguments: BackendCase.all)
    func everyFamilyPasses(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        let check = DeviceCheck()
        let rows = check.run(on: backend)
        #expect(Set(rows.map(\.family)) == Set(OpFamily.allCases))
        for row in rows where !row.passed {
            Issue.record("\(row.family) \(row.name) on \(backendCase): \(row.worst) error \(row.error) ≥ \(row.bound), seed \(check.seed)")
        }
        // Both gemm kernels and both scan forms are reached.
        if backend is OpenCLBackend {
            #expect(rows.contains { $0.name.hasSuffix("direct kernel") } && rows.contains { $0.name.hasSuffix("tiled kernel") })
        }
        #expect(rows.contains { $0.family == .scan && $0.name.hasSuffix("chunked form") } && rows.contains { $0.family == .scan && $0.name.hasSuffix("recurrent form") })
    }

    @Test("the pass rule: below the bound, exactly 0 for an exact bound, never for an unwritten element")
    func passRule() {
        #expect(!CheckBound.holds(2e-4, CheckBound.gemm))
        #expect(CheckBound.holds(5e-5, CheckBound.gemm))
        #expect(!CheckBound.holds(1e-9, CheckBound.exact))
        #expect(CheckBound.holds(0, CheckBound.exact))
        #expect(!CheckBound.holds(relativeError([.nan, 1], [1, 1]), CheckBound.elementwise))
    }

    @Test("family names: matmul is gemm; an unknown name is one line listing the families")
    func familyNames() throws {
        #expect(try OpFamily.list("matmul,scan,gemm") == [.gemm, .scan])
        #expect(throws: CheckError.self) { try OpFamily.list("gemm,bogus") }
        do {
            _ = try OpFamily.list("bogus")
        } catch {
            #expect(error.description.contains("unknown family 'bogus'") && error.description.contains("elementwise"))
        }
    }

    @Test("the tuner rejects a kernel variant that computes wrong results, before timing it", .enabled(if: !BackendCase.openCL.isEmpty))
    func wrongVariantRejected() throws {
        try withFolder("wrong-variant") { folder in
            // A copy of Kernels/ whose gemm.cl is wrong (by 0.1%) only when WPT_M is 3.
            let kernels = try #require(try? ResourceLocator(.kernels).folder())
            let copy = folder.appendingPathComponent("Kernels")
            try FileManager.default.copyItem(at: kernels, to: copy)
            let gemm = copy.appendingPathComponent("gemm.cl")
            let source = try String(contentsOf: gemm, encoding: .utf8)
            #expect(source.contains("alpha * acc[r]"))
            try source.replacingOccurrences(of: "alpha * acc[r]", with: "(WPT_M == 3 ? 1.001f : 1.0f) * alpha * acc[r]").write(to: gemm, atomically: true, encoding: .utf8)

            let deviceID = BackendCase.openCL[0].deviceID
            let device = Devices.all().first { $0.id == deviceID }!
            var wrong = OpenCLTuning.defaults(for: device), right = wrong
            wrong.gemm.rowsPerItem = 3
            right.gemm.rowsPerItem = 2
            let tuner = try Tuner(deviceID: deviceID, options: Tuner.Options(families: [.gemm], budgetSeconds: 20, kernelFolder: copy, candidates: [wrong, right]))
            let report = tuner.run()
            #expect(report.log.contains { $0.contains("discarded gemm.rowsPerItem=3") && $0.contains("gemm ") && $0.contains("> 1e-04") }, "\(report.log)")
            #expect(!report.log.contains { $0.contains("discarded gemm.rowsPerItem=2:") && $0.contains("error") }, "\(report.log)")
            #expect(report.tuning.gemm.rowsPerItem != 3)
        }
    }

    @Test("the final round keeps the defaults unless a finalist beats them by more than the margin in alternation")
    func finalRound() {
        let defaults: [[Double]] = [[1.0, 1.2, 0.9], [2.0, 2.1, 1.9]]  // medians 1.0 and 2.0
        // A finalist the search liked that is slower in alternation, one within the margin, one clearly faster.
        let slower: [[Double]] = [[1.3, 1.2, 1.25], [2.4, 2.2, 2.6]]
        let withinMargin: [[Double]] = [[0.99, 0.99, 0.99], [1.98, 1.98, 1.98]]
        let faster: [[Double]] = [[0.8, 0.85, 0.9], [1.5, 1.6, 1.7]]
        let kept = Tuner.finalRound(defaultTimes: defaults, fallback: [9, 9], finalistTimes: [slower, withinMargin])
        #expect(kept.chosen == nil, "\(kept.ratios)")
        #expect(kept.defaultMedians == [1.0, 2.0])
        #expect(abs(kept.ratios[1] - 0.99) < 1e-12 && kept.ratios[0] > 1)
        let replaced = Tuner.finalRound(defaultTimes: defaults, fallback: [9, 9], finalistTimes: [slower, faster, withinMargin])
        #expect(replaced.chosen == 1, "\(replaced.ratios)")
        #expect(abs(replaced.ratios[1] - (0.85 * 0.8).squareRoot()) < 1e-12)
        // A finalist with no timing on a shape never wins; a shape the defaults lack uses the search's timing.
        let missing = Tuner.finalRound(defaultTimes: [[], [2.0]], fallback: [1.0, 9], finalistTimes: [[[0.5], []], [[0.9], [1.9]]])
        #expect(missing.defaultMedians == [1.0, 2.0] && missing.ratios[0] == .infinity && missing.chosen == 1)
    }

    @Test("bad tuner input: the cpu device, a family without parameters, a budget of 0 or below")
    func badTunerInput() throws {
        #expect(throws: CheckError.self) { try Tuner(deviceID: "cpu", options: Tuner.Options(families: [.gemm], budgetSeconds: 10)) }
        do {
            _ = try Tuner(deviceID: "cpu", options: Tuner.Options(families: [.gemm], budgetSeconds: 10))
        } catch {
            #expect(error.description.contains("nothing") || error.description.contains("no kernel parameters"))
        }
        guard let deviceID = BackendCase.openCL.first?.deviceID else { return }
        for budget in [0.0, -5, .nan] {
            #expect(throws: CheckError.self) { try Tuner(deviceID: deviceID, options: Tuner.Options(families: [.gemm], budgetSeconds: budget)) }
        }
        #expect(throws: CheckError.self) { try Tuner(deviceID: deviceID, options: Tuner.Options(families: [.reduce], budgetSeconds: 10)) }
    }
}

/// Runs the device check's cases of `family` (``CheckCases``, what `kiln check` runs) on `backend` over
/// `kiln check`'s lists changed by `lists`, with one expectation per case: its name, the output with the
/// largest error, the error, the bound and the seed. The test suite's long lists of a family run here.
func expectCheckCasesPass(_ family: OpFamily, on backend: any Backend, _ label: String, sourceLocation: SourceLocation = #_sourceLocation,
                          lists change: (inout CheckLists) -> Void) {
    var lists = CheckLists.check
    change(&lists)
    let check = DeviceCheck(families: [family], lists: lists)
    let rows = check.run(on: backend)
    #expect(!rows.isEmpty, "no \(family) cases ran on \(label)", sourceLocation: sourceLocation)
    for row in rows {
        #expect(row.passed, "\(family) \(row.name) on \(label): \(row.worst) error \(row.error), bound \(row.bound), seed \(check.seed)", sourceLocation: sourceLocation)
    }
}

/// Runs `body` with a new, empty folder under the temporary directory, removed afterwards.
func withFolder<Result>(_ name: String, _ body: (URL) throws -> Result) throws -> Result {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-backend-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

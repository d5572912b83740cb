import Foundation
import Testing

/// The relocatable bundle (`make bundle`, scripts/make-bundle.sh), unpacked into a temporary folder and run
/// from there the way a host without Swift or Kiln's build runs it: through its launchers, in a folder of its
/// own, with PATH=/usr/bin:/bin, a fresh HOME and cache, and none of KILN_KERNELS, KILN_DATA, KILN_DEVICE,
/// LD_LIBRARY_PATH or OCL_ICD_VENDORS. The launchers name the bundle's own Kernels/ and data/, so the
/// source tree the programs were built from is never searched; the library check below resolves every
/// library as the launcher does and accepts only the bundle's lib/ and the C and C++ runtimes, so a library
/// found in the build folder, the Swift toolchain or this machine's packages fails it.
///
/// A test of the suite rather than a script: it runs under `make test` and CI with every other test,
/// with the CLI tests' time limit and temporary folders. The static build takes minutes, so the suite does
/// not build the bundle: `make test` builds it first and names it in KILN_BUNDLE (then a missing archive
/// fails); without KILN_BUNDLE the tests take this tree's dist/kiln-<VERSION>-linux-x86_64.tar.gz when
/// `make bundle` made one, and are skipped when there is none.
@Suite("the relocatable bundle", .enabled(if: BundleArchive.url != nil, "no bundle to test: run make bundle (make test builds it)"))
struct BundleTests {

    /// Libraries every Linux host has: glibc's, the C++ runtime and libgcc_s (the bundle's programs link
    /// libstdc++ even with the static Swift standard library).
    static let baseLibraries = ["linux-vdso.so", "ld-linux-x86-64.so", "libc.so", "libm.so", "libdl.so", "libpthread.so", "librt.so", "libutil.so",
                                "libresolv.so", "libstdc++.so", "libgcc_s.so"]

    /// Unpacks the bundle into a new temporary folder and runs `body` with the bundle's top folder and a
    /// home folder beside it.
    func withUnpackedBundle(_ name: String, _ body: (_ bundle: URL, _ home: URL) throws -> Void) throws {
        let archive = try #require(BundleArchive.url)
        try withTemporaryFolder("bundle-\(name)") { folder in
            let unpacked = try runProgram(URL(fileURLWithPath: "/usr/bin/env"), ["tar", "-xzf", archive.path, "-C", folder.path], environment: ["PATH": "/usr/bin:/bin"])
            try #require(unpacked.status == 0, "cannot unpack \(archive.path): \(unpacked.error)")
            let top = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("kiln-") }
            try #require(top.count == 1, "the archive should hold one kiln-<version> folder, holds \(top)")
            let home = folder.appendingPathComponent("home")
            try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
            try body(folder.appendingPathComponent(top[0]), home)
        }
    }

    /// A host's environment, with nothing of Kiln's build in it (PoCL's kernel cache is kept, so that its
    /// compiled kernels are reused; it holds no file of Kiln's).
    func hostEnvironment(home: URL) -> [String: String] {
        let inherited = ProcessInfo.processInfo.environment
        var environment = ["PATH": "/usr/bin:/bin", "HOME": home.path, "KILN_CACHE_DIR": home.appendingPathComponent("kiln-cache").path]
        environment["POCL_CACHE_DIR"] = inherited["POCL_CACHE_DIR"] ?? inherited["HOME"].map { "\($0)/.cache/pocl/kcache" }
        for name in ["POCL_MAX_PTHREAD_COUNT", "OPENBLAS_NUM_THREADS", "TMPDIR"] { environment[name] = inherited[name] }
        return environment
    }

    /// Runs `bin/<program>` of the bundle in `home` with a host's environment.
    func runBundled(_ bundle: URL, _ program: String, _ arguments: [String], home: URL) throws -> (status: Int32, output: String, error: String) {
        try runProgram(bundle.appendingPathComponent("bin/\(program)"), arguments, environment: hostEnvironment(home: home), directory: home, timeout: 300)
    }

    /// Trains 20 steps of the digits MLP on `device` from the bundle and checks what it wrote.
    func train20Steps(_ bundle: URL, device: String, home: URL) throws {
        let out = home.appendingPathComponent("run-\(device.replacingOccurrences(of: ":", with: "-"))")
        let result = try runBundled(bundle, "kiln", ["train", "--task", "digits", "--steps", "20", "--eval-every", "20", "--device", device, "--plain", "--out", out.path], home: home)
        try #require(result.status == 0, "kiln train on \(device) from the bundle: \(result.error)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json"))) as? [String: Any])
        #expect(summary["steps"] as? Int == 20 && summary["device"] as? String == device, "\(device): summary \(summary)")
        let loss = try #require(summary["final_train_loss"] as? Double)
        #expect(loss.isFinite && loss > 0 && loss < 2.4, "\(device): final train loss \(loss) after 20 steps (ln 10 = 2.30 at the start)")
        let records = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(records.count == 2, "\(device): \(records.count) records logged, expected steps 10 and 20")
    }

    /// Every library `ldd` resolves for the bundle's programs, with the launcher's library path, that is
    /// neither in the bundle's lib/ nor a base library; and every one not found.
    func librariesOutsideBundle(_ bundle: URL) throws -> [String] {
        let lib = bundle.appendingPathComponent("lib").path
        var outside: [String] = []
        for program in ["kiln", "kiln-bench"] {
            let result = try runProgram(URL(fileURLWithPath: "/usr/bin/env"), ["ldd", bundle.appendingPathComponent("libexec/\(program)").path],
                                        environment: ["PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": lib])
            try #require(result.status == 0, "ldd \(program): \(result.error)")
            for line in result.output.split(separator: "\n") {
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                guard let name = fields.first else { continue }
                if line.contains("not found") {
                    outside.append("\(program): \(name) not found")
                } else if Self.baseLibraries.contains(where: { name.hasPrefix($0) || (fields.count == 2 && name.contains("/\($0)")) }) {
                    continue
                } else if fields.count >= 3, fields[1] == "=>", !fields[2].hasPrefix(lib + "/") {
                    outside.append("\(program): \(name) => \(fields[2])")
                }
            }
        }
        return outside
    }

    @Test("unpacked elsewhere, it lists the devices and trains 20 steps on the CPU and on OpenCL")
    func runsFromTemporaryFolder() throws {
        try withUnpackedBundle("run") { bundle, home in
            let devices = try runBundled(bundle, "kiln", ["devices"], home: home)
            try #require(devices.status == 0, "kiln devices from the bundle: \(devices.error)")
            #expect(devices.output.contains("cpu"), "kiln devices: \(devices.output)")
            let json = try runBundled(bundle, "kiln", ["devices", "--json"], home: home)
            let listed = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]], "kiln devices --json: \(json.output)")
            let ids = listed.compactMap { $0["id"] as? String }
            // Every op family against the float64 reference, from the bundle's own kernels and libraries.
            let check = try runBundled(bundle, "kiln", ["check", "--device", "cpu"], home: home)
            #expect(check.status == 0 && check.output.contains("cases pass") && !check.output.contains("FAIL"), "kiln check from the bundle: \(check.output.suffix(400)) \(check.error)")
            try train20Steps(bundle, device: "cpu", home: home)
            if let opencl = ids.first(where: { $0.hasPrefix("opencl:") }) {
                try train20Steps(bundle, device: opencl, home: home)
            } else {
                print("note: no OpenCL platform; the bundle's kernels are not run (install pocl-opencl-icd)")
            }
            let bench = try runBundled(bundle, "kiln-bench", ["matmul", "--devices", "cpu", "--shapes", "33x65x17", "--seconds", "0"], home: home)
            #expect(bench.status == 0 && bench.output.contains("openblas"), "kiln-bench from the bundle: \(bench.error)")
        }
    }

    @Test("its programs load only the bundle's libraries and the C and C++ runtimes, and no vendor driver")
    func librariesComeFromTheBundle() throws {
        try withUnpackedBundle("libraries") { bundle, _ in
            let outside = try librariesOutsideBundle(bundle)
            #expect(outside.isEmpty, "libraries from outside the bundle: \(outside)")
            let bundled = try FileManager.default.contentsOfDirectory(atPath: bundle.appendingPathComponent("lib").path)
            for required in ["libopenblas.so.0", "libOpenCL.so.1", "libz.so.1", "libcrypto.so.3", "libclblast.so.1"] {
                #expect(bundled.contains(required), "lib/ lacks \(required): \(bundled)")
            }
            let drivers = bundled.filter { ["libnvidia", "libcuda", "libpocl", "libamdocl", "libigdrcl"].contains(where: $0.hasPrefix) }
            #expect(drivers.isEmpty, "a vendor driver in the bundle: \(drivers)")
            let icd = try String(contentsOf: bundle.appendingPathComponent("share/kiln/OpenCL/vendors/nvidia.icd"), encoding: .utf8)
            #expect(icd == "libnvidia-opencl.so.1\n")
        }
    }

    @Test("a bundle without its kernels, its data or a library fails these checks")
    func incompleteBundleFails() throws {
        try withUnpackedBundle("incomplete") { bundle, home in
            let files = FileManager.default
            let json = try runBundled(bundle, "kiln", ["devices", "--json"], home: home)
            let listed = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]] ?? []
            try files.removeItem(at: bundle.appendingPathComponent("share/kiln/Kernels"))
            if let opencl = listed.compactMap({ $0["id"] as? String }).first(where: { $0.hasPrefix("opencl:") }) {
                let result = try runBundled(bundle, "kiln", ["train", "--task", "digits", "--steps", "2", "--device", opencl, "--plain", "--out", home.appendingPathComponent("k").path], home: home)
                #expect(result.status != 0 && result.error.contains("no Kernels/ folder found"), "without Kernels/: status \(result.status), \(result.error)")
            } else {
                print("note: no OpenCL platform; a bundle without Kernels/ is not tried")
            }
            try files.removeItem(at: bundle.appendingPathComponent("share/kiln/data"))
            let noData = try runBundled(bundle, "kiln", ["train", "--task", "digits", "--steps", "2", "--device", "cpu", "--plain", "--out", home.appendingPathComponent("d").path], home: home)
            #expect(noData.status != 0 && noData.error.contains("no data/ folder found"), "without data/: status \(noData.status), \(noData.error)")
            try files.removeItem(at: bundle.appendingPathComponent("lib/libopenblas.so.0"))
            let outside = try librariesOutsideBundle(bundle)
            #expect(outside.contains(where: { $0.hasPrefix("kiln: libopenblas.so.0") }), "without lib/libopenblas.so.0 the library check found only \(outside)")
        }
    }
}

/// The archive the bundle tests unpack: KILN_BUNDLE, else this tree's dist/kiln-<VERSION>-linux-x86_64.tar.gz
/// when it exists (outside the suite, so that the suite's trait can read it).
enum BundleArchive {
    static let url: URL? = {
        if let path = ProcessInfo.processInfo.environment["KILN_BUNDLE"], !path.isEmpty { return URL(fileURLWithPath: path) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        guard let version = try? String(contentsOf: root.appendingPathComponent("VERSION"), encoding: .utf8) else { return nil }
        let url = root.appendingPathComponent("dist/kiln-\(version.trimmingCharacters(in: .whitespacesAndNewlines))-linux-x86_64.tar.gz")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }()
}

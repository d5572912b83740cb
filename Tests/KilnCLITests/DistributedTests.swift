import Foundation
import KilnTestSupport
import Testing

/// `mpirun` with the flags that start Open MPI here and in a fresh Debian container, in one place (the
/// README's "Several processes and hosts" gives the same line):
/// - `--oversubscribe`: more ranks than cores is allowed (2 ranks on a 1-core CI machine);
/// - `--allow-run-as-root` when the tests run as root (containers);
/// - `--mca btl self,vader,tcp` and `--mca btl_vader_single_copy_mechanism none`: shared memory without
///   cross-memory attach, which needs ptrace rights that containers often lack;
/// - `--mca plm_rsh_agent false`: a machine without ssh (the Makefile installs no recommended packages, so
///   no openssh-client) otherwise refuses to start even a local job; every rank here is local;
/// - `-x` for every variable the ranks need (Open MPI forwards only those named).
struct MPIRun {
    static let path = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static var isAvailable: Bool { path != nil }

    static func flags(ranks: Int, forwarding names: [String]) -> [String] {
        var flags = ["--oversubscribe", "-np", "\(ranks)", "--mca", "btl", "self,vader,tcp", "--mca", "btl_vader_single_copy_mechanism", "none",
                     "--mca", "plm_rsh_agent", "false"]
        if getuid() == 0 { flags.insert("--allow-run-as-root", at: 0) }
        for name in names { flags += ["-x", name] }
        return flags
    }

    /// Runs `command` (kiln's arguments, or a wrapper script followed by kiln) on `ranks` ranks.
    static func run(ranks: Int, _ arguments: [String], environment: [String: String] = [:], through wrapper: String? = nil, timeout: Double = 120) throws
        -> (status: Int32, output: String, error: String, seconds: Double)
    {
        let command = (wrapper.map { [$0] } ?? []) + [KilnProcess.executable.path] + arguments
        let start = Date()
        let result = try runProgram(URL(fileURLWithPath: path!), flags(ranks: ranks, forwarding: Array(environment.keys).sorted()) + command,
                                    environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, timeout: timeout)
        return (result.status, result.output, result.error, Date().timeIntervalSince(start))
    }
}

/// One thread per process (OpenBLAS's results can change with its thread count), for every process.
private let oneThread = ["KILN_CPU_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"]

private func records(_ folder: URL) throws -> [[String: Any]] {
    try String(contentsOf: folder.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").map {
        try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
}

private func trainLosses(_ folder: URL) throws -> [Double] { try records(folder).map { $0["train_loss"] as! Double } }

/// Lines kiln wrote as errors (mpirun adds its own banner around them).
private func errorLines(_ text: String) -> [Substring] { text.split(separator: "\n").filter { $0.hasPrefix("error:") } }

@Suite("data-parallel training under mpirun", .serialized, .enabled(if: MPIRun.isAvailable, "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev; make test installs them)"))
struct DistributedTests {
    let run = ["train", "--task", "digits", "--device", "cpu", "--batch-size", "64", "--log-every", "1", "--plain"]

    /// The bound on the relative difference between 1 process's and 2 ranks' losses. A step's loss is the
    /// mean of 64 positive per-example losses: one process sums 64 float32 terms (error ≤ 63·u of the sum,
    /// u = 2⁻²⁴), two ranks 32 each (≤ 31·u) and add the two halves in float64; each gradient element is
    /// such a sum too, so each update differs by at most (63 + 31)·u of its size. Adding one such
    /// perturbation per step over 20 steps (SGD at lr 0.05, Adam at 1e-3: far from chaos) bounds the
    /// losses' relative difference by 20 · 94 · u ≈ 1.1e-4. Measured: 5.7e-8 (SGD), 5.6e-8 (Adam). The
    /// loss comparison runs SGD, whose steps scale with the gradient, so a wrong average (a missing
    /// 1/N, a rank's own gradient instead of the mean) moves the losses far beyond the bound; Adam
    /// would hide a wrong scale.
    static let bound = 20.0 * 94.0 * 0x1p-24

    @Test("2 ranks at global batch 64 give 1 process's losses for 20 steps; repeated runs are bit-identical")
    func sameLosses() throws {
        try withTemporaryFolder("mpi-losses") { folder in
            let single = folder.appendingPathComponent("single"), first = folder.appendingPathComponent("first"), second = folder.appendingPathComponent("second")
            let arguments = run + ["--steps", "20", "--eval-every", "20", "--optimizer", "sgd", "--lr", "0.05"]
            let alone = try KilnProcess.run(arguments + ["--out", single.path], environment: oneThread)
            #expect(alone.status == 0, "\(alone.error)")
            for out in [first, second] {
                let job = try MPIRun.run(ranks: 2, arguments + ["--out", out.path], environment: oneThread)
                #expect(job.status == 0, "\(job.error)")
                // Rank 0 alone prints and writes.
                #expect(job.output.components(separatedBy: "done: 20 steps").count == 2, "\(job.output)")
            }
            let reference = try trainLosses(single), losses = try trainLosses(first)
            #expect(reference.count == 20 && losses.count == 20)
            for (step, (a, b)) in zip(reference, losses).enumerated() {
                #expect(abs(a - b) <= Self.bound * a, "step \(step + 1): 1 process \(a), 2 ranks \(b)")
            }
            // Fixed reduction order (Open MPI's allreduce of 2 ranks adds the same two halves on both; the
            // same algorithm is chosen for the same sizes), so every bit repeats.
            let again = try records(second), once = try records(first)
            for (a, b) in zip(once, again) {
                #expect(a["train_loss"] as? Double == b["train_loss"] as? Double && a["test_loss"] as? Double == b["test_loss"] as? Double)
            }
            #expect(once.last?["allreduce_wait_seconds"] is Double, "metrics record the allreduce wait")
        }
    }

    @Test("with dropout, 2 ranks draw the rows of one process's masks: the same losses within the bound")
    func dropoutMasks() throws {
        try withTemporaryFolder("mpi-dropout") { folder in
            let arguments = run + ["--steps", "10", "--eval-every", "10", "--dropout", "0.3"]
            let single = folder.appendingPathComponent("single"), ranks = folder.appendingPathComponent("ranks")
            #expect(try KilnProcess.run(arguments + ["--out", single.path], environment: oneThread).status == 0)
            let job = try MPIRun.run(ranks: 2, arguments + ["--out", ranks.path], environment: oneThread)
            #expect(job.status == 0, "\(job.error)")
            for (step, (a, b)) in zip(try trainLosses(single), try trainLosses(ranks)).enumerated() {
                #expect(abs(a - b) <= Self.bound * a, "step \(step + 1): 1 process \(a), 2 ranks \(b)")
            }
        }
    }

    @Test("a run stopped with 1 process continues with 2 ranks: its losses go on as an uninterrupted run's")
    func resumeWithMoreRanks() throws {
        try withTemporaryFolder("mpi-resume") { folder in
            let whole = folder.appendingPathComponent("whole"), split = folder.appendingPathComponent("split")
            let arguments = run + ["--steps", "20", "--eval-every", "10"]
            #expect(try KilnProcess.run(arguments + ["--out", whole.path], environment: oneThread).status == 0)
            let first = try KilnProcess.run(arguments + ["--out", split.path, "--stop-after", "10"], environment: oneThread)
            #expect(first.status == 0, "\(first.error)")
            let resumed = try MPIRun.run(ranks: 2, ["train", "--resume", split.path, "--plain"], environment: oneThread)
            #expect(resumed.status == 0, "\(resumed.error)")
            #expect(resumed.output.contains("resuming at step 10"), "\(resumed.output)")
            let reference = try trainLosses(whole), losses = try trainLosses(split)
            #expect(losses.count == 20)
            // Steps 1-10 are the first process's own records; 11-20 differ only by summation order.
            #expect(Array(losses.prefix(10)) == Array(reference.prefix(10)))
            for (step, (a, b)) in zip(reference, losses).enumerated().dropFirst(10) {
                #expect(abs(a - b) <= Self.bound * a, "step \(step + 1): uninterrupted \(a), resumed on 2 ranks \(b)")
            }
        }
    }

    @Test("a sweep spread over 2 ranks gives one process's best learning rates and losses, and resumes from --runs")
    func sweep() throws {
        try withTemporaryFolder("mpi-sweep") { folder in
            func arguments(_ name: String) -> [String] {
                ["sweep", "--task", "teacher", "--widths", "16,32", "--lrs", "2^-9:2^-6", "--steps", "20", "--seeds", "1", "--depth", "1", "--batch-size", "32",
                 "--jobs", "1", "--device", "cpu", "--json", folder.appendingPathComponent("\(name).json").path, "--plot", folder.appendingPathComponent("\(name).svg").path,
                 "--runs", folder.appendingPathComponent("\(name).jsonl").path]
            }
            let alone = try KilnProcess.run(arguments("single"), environment: oneThread)
            #expect(alone.status == 0, "\(alone.error)")
            let job = try MPIRun.run(ranks: 2, arguments("ranks"), environment: oneThread)
            #expect(job.status == 0, "\(job.error)")
            let single = try Data(contentsOf: folder.appendingPathComponent("single.json")), ranks = try Data(contentsOf: folder.appendingPathComponent("ranks.json"))
            // Every run is trained whole by one rank on one thread: the same bits as one process.
            #expect(single == ranks, "\(String(decoding: single, as: UTF8.self)) vs \(String(decoding: ranks, as: UTF8.self))")
            let lines = try String(contentsOf: folder.appendingPathComponent("ranks.jsonl"), encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 8, "rank 0 records all 8 runs")
            // Started again: nothing is left to train, and the result is the same.
            try FileManager.default.removeItem(at: folder.appendingPathComponent("ranks.json"))
            let again = try MPIRun.run(ranks: 2, arguments("ranks"), environment: oneThread)
            #expect(again.status == 0 && again.error.contains("reusing 8 finished runs"), "\(again.error)")
            #expect(try Data(contentsOf: folder.appendingPathComponent("ranks.json")) == single)
        }
    }

    // Before: every rank's worker 0 took the first device of --devices, so all ranks trained on it.
    @Test("a sweep over --devices a,b on 2 ranks of one worker each: rank 0 trains on a, rank 1 on b", .enabled(if: !BackendCase.openCL.isEmpty, "no OpenCL device"))
    func sweepSpreadsRanksOverDevices() throws {
        try withTemporaryFolder("mpi-sweep-devices") { folder in
            let openCL = BackendCase.openCL[0].deviceID
            let job = try MPIRun.run(ranks: 2, ["sweep", "--task", "teacher", "--widths", "16", "--lrs", "2^-9:2^-6", "--steps", "5", "--seeds", "1", "--depth", "1",
                                                "--batch-size", "16", "--jobs", "1", "--devices", "cpu,\(openCL)",
                                                "--plot", folder.appendingPathComponent("sweep.svg").path],
                                     environment: oneThread.merging(["POCL_MAX_PTHREAD_COUNT": "1"]) { $1 })
            #expect(job.status == 0, "\(job.error)")
            // Rank 0 reports every run with its device: its own as "(cpu)", rank 1's as "(rank 1, opencl:N)".
            let runs = job.error.split(separator: "\n").filter { $0.contains(" seed 0: ") }
            let own = runs.filter { !$0.contains("(rank 1") }, peer = runs.filter { $0.contains("(rank 1") }
            #expect(runs.count == 4 && own.count == 2 && peer.count == 2, "\(job.error)")
            #expect(own.allSatisfy { $0.hasSuffix("(cpu)") } && peer.allSatisfy { $0.hasSuffix("(rank 1, \(openCL))") }, "\(job.error)")
        }
    }

    @Test("ranks started with different flags stop at once with one line naming the difference")
    func differentFlags() throws {
        try withTemporaryFolder("mpi-flags") { folder in
            let script = folder.appendingPathComponent("rank1-lr.sh")
            try "#!/bin/sh\nif [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then exec \"$@\" --lr 0.01; else exec \"$@\"; fi\n".write(to: script, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
            let out = folder.appendingPathComponent("run")
            let job = try MPIRun.run(ranks: 2, run + ["--steps", "5", "--out", out.path], through: script.path)
            #expect(job.status != 0)
            let lines = errorLines(job.error)
            #expect(lines.count == 1 && lines[0].contains("rank 1 was started with learningRate 0.01 but rank 0 with 0.001"), "\(job.error)")
            #expect(!FileManager.default.fileExists(atPath: out.path), "nothing is written")
        }
    }

    @Test("a rank that dies or hangs ends the job with a non-zero status within 30 s", arguments: ["KILL", "STOP"])
    func deadRank(signal: String) throws {
        try withTemporaryFolder("mpi-fault") { folder in
            let script = folder.appendingPathComponent("rank1-fault.sh")
            try """
                #!/bin/sh
                if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then "$@" & pid=$!; sleep 2; kill -\(signal) $pid; wait $pid; exit 1; else exec "$@"; fi

                """.write(to: script, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
            let job = try MPIRun.run(ranks: 2, run + ["--steps", "1000000", "--out", folder.appendingPathComponent("run").path], environment: ["KILN_MPI_TIMEOUT": "5"],
                                     through: script.path, timeout: 60)
            #expect(job.status != 0 && job.seconds < 30, "status \(job.status) after \(job.seconds) s: \(job.error)")
            #expect(!job.error.contains("Fatal error") && !job.error.contains("Backtrace"), "\(job.error)")
            if signal == "KILL" {
                // mpirun ends the surviving rank with SIGTERM, which it reports on one line.
                let lines = errorLines(job.error)
                #expect(lines.count == 1 && lines[0].contains("rank 0: ended by mpirun (SIGTERM)"), "\(job.error)")
            }
            if signal == "STOP" {
                // A hung peer: rank 0's wait runs out and says so on one line (the stopped rank, continued
                // by mpirun to be ended, reports that, or its own wait).
                let lines = errorLines(job.error)
                #expect(lines.first?.contains("rank 0: no answer from the other ranks for 5 s") == true, "\(job.error)")
                #expect(lines.dropFirst().allSatisfy { $0.contains("rank 1: ended by mpirun") || $0.contains("rank 1: no answer") }, "\(job.error)")
            }
        }
    }
}

@Suite("MPI library checks")
struct MPILibraryTests {
    @Test("under a launcher, a missing or foreign MPI library, MPICH, or a command other than train and sweep is one line")
    func missingLibrary() throws {
        let launched = ["OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"]
        let missing = try KilnProcess.run(["train", "--steps", "1", "--out", "/nonexistent/never"], environment: launched.merging(["KILN_MPI_LIBRARY": "/nonexistent/libmpi.so.40"]) { $1 })
        #expect(missing.status == 1 && missing.error.split(separator: "\n").count == 1 && missing.error.contains("cannot load /nonexistent/libmpi.so.40"), "\(missing.error)")
        // A library that is not Open MPI (zlib): named as such.
        let zlib = ["/usr/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/aarch64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1"].first { FileManager.default.fileExists(atPath: $0) }
        if let zlib {
            let foreign = try KilnProcess.run(["train", "--steps", "1", "--out", "/nonexistent/never"], environment: launched.merging(["KILN_MPI_LIBRARY": zlib]) { $1 })
            #expect(foreign.status == 1 && foreign.error.split(separator: "\n").count == 1 && foreign.error.contains("not Open MPI 3.0 or later"), "\(foreign.error)")
        }
        let other = try KilnProcess.run(["devices"], environment: launched)
        #expect(other.status == 1 && other.error.contains("only kiln train and kiln sweep run under mpirun"), "\(other.error)")
        let mpich = try KilnProcess.run(["train", "--steps", "1", "--out", "/nonexistent/never"], environment: ["PMI_SIZE": "2"])
        #expect(mpich.status == 1 && mpich.error.contains("Open MPI 3.0 or later only"), "\(mpich.error)")
    }
}

import Foundation
import KilnFormats
import Testing

/// The CPU backend's results do not depend on how many threads its own loops use (`KILN_CPU_THREADS`):
/// the same run on 1, 2 and 3 threads logs the same losses and ends with the same parameters, bit for bit.
/// (OpenBLAS keeps 2 threads in every run: its SGEMM can change a product's last bits with its thread
/// count, see `CPUBackend.setThreadCount`.) Each run is its own `kiln` process, because the thread count
/// is process-wide and other suites run in parallel in the test process.
///
/// The loops split work into ranges, one per thread, so anything computed differently at the end of a
/// range would change with the thread count. The vectorized exp behind SiLU and sigmoid handles eight
/// elements at a time and the last few of a range with the C library's `expf`, which differs from it in
/// the last bit (on about 5% of gates in [−2, 0], measured on 10⁶ of them), so an lm's logged loss once
/// differed at one step between `KILN_CPU_THREADS=1` and the default. Ranges split between threads are
/// now multiples of 8 for those loops, the scans' exp pads its last few elements to a vector, and sums
/// run in an order fixed by the shapes.
@Suite("CPU results do not depend on the thread count")
struct ThreadCountTests {
    /// Sizes above the loops' grains, so the work splits across threads, at counts whose ranges do not
    /// end at multiples of 8: the MLP's SiLU over 200 × 201 = 40,200 hidden units (2 ranges of 20,100);
    /// GLA's per-key decays over 68 × 142 × 34 = 328,304 keys (10 ranges of 32,831 on 3 threads, 8 of
    /// 41,038 on 2).
    static let runs: [(name: String, arguments: [String])] = [
        ("MLP (SiLU, dropout)", ["--task", "digits", "--model", "mlp", "--width", "201", "--activation", "silu", "--dropout", "0.1", "--batch-size", "200"]),
        ("lm (GLA)", ["--task", "mqar", "--model", "lm", "--mixer", "gla", "--width", "34", "--heads", "2", "--layers", "1", "--seq-len", "142",
                      "--pairs", "8", "--vocab", "151", "--batch-size", "68", "--lr", "1e-2"]),
        ("lm (DeltaNet)", ["--task", "mqar", "--model", "lm", "--mixer", "delta", "--width", "36", "--heads", "2", "--layers", "1", "--seq-len", "66",
                           "--pairs", "5", "--vocab", "71", "--batch-size", "29", "--lr", "1e-2"]),
        ("KAN", ["--task", "digits", "--model", "kan", "--width", "12", "--batch-size", "300"]),
    ]

    /// The logged records (without times) and the checkpoint's tensors after 3 steps on `threads` threads.
    static func train(_ arguments: [String], threads: Int, in folder: URL) throws -> (records: [String], tensors: [SafeTensorsFile.Tensor]) {
        let out = folder.appendingPathComponent("threads-\(threads)")
        let result = try KilnProcess.run(
            ["train"] + arguments + ["--steps", "3", "--log-every", "1", "--eval-every", "3", "--readout-init", "normal", "--device", "cpu", "--plain", "--out", out.path],
            environment: ["KILN_CPU_THREADS": "\(threads)", "OPENBLAS_NUM_THREADS": "2"])
        try #require(result.status == 0, "\(result.error)")
        let metrics = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let records = try metrics.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return object.filter { $0.key != "seconds" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        let checkpoint = try Data(contentsOf: out.appendingPathComponent("checkpoint.safetensors"))
        return (records, try SafeTensorsFile.decode([UInt8](checkpoint), file: out.path).tensors)
    }

    @Test("3 training steps give the same bits on 1, 2 and 3 threads", arguments: 0..<4)
    func sameBits(_ index: Int) throws {
        let (name, arguments) = Self.runs[index]
        try withTemporaryFolder("threads") { folder in
            let one = try Self.train(arguments, threads: 1, in: folder)
            for threads in [2, 3] {
                let other = try Self.train(arguments, threads: threads, in: folder)
                #expect(other.records == one.records, "\(name): the records on \(threads) threads differ from 1 thread's")
                let differing = zip(other.tensors, one.tensors).filter { $0 != $1 }.map(\.0.name)
                #expect(other.tensors.count == one.tensors.count && differing.isEmpty, "\(name): tensors differ between \(threads) threads and 1: \(differing)")
            }
        }
    }
}

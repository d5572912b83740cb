import Foundation
import Kiln
import KilnTestSupport
import Testing

/// The CPU backend's results do not depend on how many threads its own loops use (`KILN_CPU_THREADS`).
/// (OpenBLAS's thread count is held fixed: its SGEMM can change a product's last bits with it, see
/// `CPUBackend.setThreadCount`.)
///
/// Its loops split work into ranges, one per thread, so anything computed differently at the end of a
/// range would change with the thread count. The vectorized exp behind SiLU and sigmoid handles eight
/// elements at a time and the last few of a range with the C library's `expf`, which differs from it in
/// the last bit, so an lm's logged loss once differed at one step between `KILN_CPU_THREADS=1` and the
/// default. Ranges split between threads are now multiples of 8 for those loops, the scans' exp pads its
/// last few elements to a vector, and sums run in an order fixed by the shapes.
@Suite("CPU results do not depend on the thread count", .serialized)
struct ThreadCountTests {
    /// Losses of a few training steps and the parameters after them, with the CPU backend on `threads` threads.
    static func run(_ configuration: TrainingConfiguration, threads: Int) throws -> (losses: [Float], parameters: [(name: String, values: [Float])]) {
        let saved = CPUBackend.threadCount
        CPUBackend.setLoopThreadCount(threads)
        defer { CPUBackend.setLoopThreadCount(saved) }
        let trainer = try Trainer(configuration: configuration, backend: CPUBackend())
        let losses = try (0..<configuration.steps).map { _ in try trainer.step().item() }
        return (losses, try trainer.model.parameters.map { ($0.name, try $0.tensor.toArray()) })
    }

    /// Sizes big enough that the loops split across threads (above their grains), at counts whose
    /// halves are not multiples of 8: GLA's decays exp(g) over 29 × 66 × 36 = 68,904 keys, the MLP's
    /// SiLU over 200 × 201 = 40,200 hidden units.
    static func configurations() -> [(String, TrainingConfiguration)] {
        var lm = TrainingConfiguration()
        lm.task = "mqar"
        lm.model = .lm
        lm.width = 36
        lm.heads = 2
        lm.layers = 1
        lm.sequenceLength = 66
        lm.vocabulary = 71
        lm.pairs = 5
        lm.batchSize = 29
        lm.steps = 3
        lm.learningRate = 1e-2
        lm.parametrization.readoutZeroInit = false
        var gla = lm
        gla.mixer = .gla
        var mlp = TrainingConfiguration()
        mlp.width = 201
        mlp.activation = .silu
        mlp.dropout = 0.1
        mlp.batchSize = 200
        mlp.steps = 3
        mlp.parametrization.readoutZeroInit = false
        return [("lm (DeltaNet)", lm), ("lm (GLA)", gla), ("MLP (SiLU, dropout)", mlp)]
    }

    @Test("training steps give the same bits on 1, 2 and 3 threads", arguments: [0, 1, 2])
    func sameBitsOnAnyThreadCount(_ index: Int) throws {
        let (name, configuration) = Self.configurations()[index]
        let one = try Self.run(configuration, threads: 1)
        for threads in [2, 3] {
            let other = try Self.run(configuration, threads: threads)
            #expect(other.losses == one.losses, "\(name): losses on \(threads) threads \(other.losses) vs 1 thread \(one.losses)")
            let differing = zip(other.parameters, one.parameters).filter { $0.values != $1.values }.map(\.0.name)
            #expect(differing.isEmpty, "\(name): parameters differ between \(threads) threads and 1: \(differing)")
        }
    }

    /// A GLA scan whose 4,260 × 93 = 396,180 per-key decays exp(g) split into 12 ranges of 33,015 on 3
    /// threads and 8 of 49,523 on 2, so most ranges end 7 or 3 past a multiple of 8. (The C library's
    /// `expf` differs from the vectorized exp on about 5% of gates in [−2, 0], measured on 10⁶ of them.)
    @Test("a gated scan gives the same bits on 1, 2 and 3 threads")
    func gatedScanSameBits() throws {
        let (length, keys, values) = (4260, 93, 3)
        var random = RandomGenerator(seed: 11)
        let shapes = (key: [1, length, 1, keys], value: [1, length, 1, values])
        let inputs = (
            query: random.uniform(length * keys, low: -0.5, high: 0.5),
            key: random.uniform(length * keys, low: -0.5, high: 0.5),
            value: random.uniform(length * values, low: -0.5, high: 0.5),
            gate: random.uniform(length * keys, low: -2, high: 0))
        func run(threads: Int) throws -> [Float] {
            let saved = CPUBackend.threadCount
            CPUBackend.setLoopThreadCount(threads)
            defer { CPUBackend.setLoopThreadCount(saved) }
            let backend = CPUBackend()
            let (output, state) = linearAttentionScan(
                query: Tensor(inputs.query, shape: shapes.key, on: backend), key: Tensor(inputs.key, shape: shapes.key, on: backend),
                value: Tensor(inputs.value, shape: shapes.value, on: backend), gate: Tensor(inputs.gate, shape: shapes.key, on: backend),
                scale: 0.1, initialState: nil)
            return try output.toArray() + state.toArray()
        }
        let one = try run(threads: 1)
        for threads in [2, 3] {
            let other = try run(threads: threads)
            let differing = zip(other, one).filter { $0 != $1 }.count
            #expect(differing == 0, "\(differing) of \(one.count) outputs differ between \(threads) threads and 1")
        }
    }
}

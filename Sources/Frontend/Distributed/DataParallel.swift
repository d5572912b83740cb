import Foundation
import KilnBackend
import KilnKernels

/// The pieces of data-parallel training that are not gradients: which rows of the global batch a rank
/// takes, the check that every rank runs the same run on the same data, and copying state from rank 0.
public enum DataParallel {
    /// The rows of a global batch of `rows` that rank `rank` of `size` takes: contiguous shards of one
    /// global data order, `rows / size` each, the first `rows % size` ranks one more (so every global
    /// batch is seen whole, whatever the number of ranks).
    public static func shard(rows: Int, rank: Int, size: Int) -> Range<Int> {
        let base = rows / size, extra = rows % size
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// The fields that must agree between ranks, as `name value` pairs: every training setting (the
    /// checkpoint's names), a digest of the training and test data, and the step the run starts from.
    static func agreementFields(_ trainer: Trainer) -> [(name: String, value: String)] {
        var fields: [(String, String)] = []
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        if let data = try? encoder.encode(trainer.configuration), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            for key in object.keys.sorted() {
                let value = object[key].flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.fragmentsAllowed, .sortedKeys]) }
                fields.append((key, value.map { String(decoding: $0, as: UTF8.self) } ?? "null"))
            }
        }
        // Fixed data: the whole training set; generated batches: the first global batch.
        let train = trainer.task.trainBatch(step: 0, batchSize: trainer.task.trainCount ?? trainer.batchSize)
        fields.append(("training data", digest(train)))
        fields.append(("test data", digest(trainer.task.testSet)))
        fields.append(("model", "\(trainer.modelConfiguration.kind.rawValue), \(trainer.model.parameterCount) parameters"))
        fields.append(("starting step", "\(trainer.completedSteps)"))
        return fields
    }

    /// SHA-256 of a batch's values, the first 16 hex digits.
    static func digest(_ batch: HostBatch) -> String {
        var bytes: [UInt8] = []
        func add<T>(_ values: [T]) { values.withUnsafeBytes { bytes += $0 } }
        add([Int64(batch.rows), Int64(batch.features)])
        add(batch.inputs)
        if let tokens = batch.tokens { add(tokens) }
        if let labels = batch.labels { add(labels) }
        if let targets = batch.targets { add(targets) }
        return String(ProgramCache.sha256Hex(bytes).prefix(16))
    }

    /// Checks that every rank was started with the same settings and data: each rank's fields are
    /// gathered, and every rank throws the same one-line error naming the first field where a rank
    /// differs from rank 0.
    static func checkAgreement(_ fields: [(name: String, value: String)], communicator: any Communicator) throws(DistributedError) {
        let text = fields.map { "\($0.name)\u{1F}\($0.value)" }.joined(separator: "\u{1E}")
        let all = try communicator.allGather(Array(text.utf8), for: "the check that every rank runs the same job")
        let parse = { (bytes: [UInt8]) in String(decoding: bytes, as: UTF8.self).split(separator: "\u{1E}", omittingEmptySubsequences: false).map { line in
            let parts = line.split(separator: "\u{1F}", maxSplits: 1, omittingEmptySubsequences: false)
            return (name: String(parts[0]), value: parts.count > 1 ? String(parts[1]) : "")
        } }
        let root = parse(all[0])
        for rank in 1..<all.count where all[rank] != all[0] {
            let other = parse(all[rank])
            for index in 0..<max(root.count, other.count) {
                let mine = index < root.count ? root[index] : (name: "(none)", value: "")
                let theirs = index < other.count ? other[index] : (name: "(none)", value: "")
                guard mine.name != theirs.name || mine.value != theirs.value else { continue }
                let name = mine.name == theirs.name ? mine.name : "\(mine.name)/\(theirs.name)"
                throw DistributedError("rank \(rank) was started with \(name) \(theirs.value.prefix(80)) but rank 0 with \(mine.value.prefix(80)); "
                                       + "start every rank with the same flags and data", isCollective: true)
            }
        }
    }

    /// Copies tensors from rank 0 to every other rank (the same tensors, in the same order, on every rank).
    static func broadcast(_ tensors: [Tensor], communicator: any Communicator, purpose: String) throws {
        guard communicator.size > 1, !tensors.isEmpty else { return }
        var bytes: [UInt8] = []
        let total = tensors.reduce(0) { $0 + $1.elementCount }
        if communicator.isRoot {
            bytes.reserveCapacity(total * 4)
            for tensor in tensors { try tensor.toArray().withUnsafeBytes { bytes += $0 } }
        } else {
            bytes = [UInt8](repeating: 0, count: total * 4)
        }
        try communicator.broadcast(&bytes, root: 0, for: purpose)
        guard !communicator.isRoot else { return }
        var offset = 0
        for tensor in tensors {
            let count = tensor.elementCount
            let values = bytes[(offset * 4)..<((offset + count) * 4)].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            tensor.assign(values)
            offset += count
        }
    }
}

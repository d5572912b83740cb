import Foundation
import KilnBackend

/// Sums the gradients of every rank in buckets, as PyTorch's DDP and Horovod do: parameters are packed
/// into buckets of about ``bucketBytes`` in reverse order of creation (backward reaches the last layers
/// first), the same buckets in the same order on every rank. A bucket's non-blocking allreduce starts as
/// soon as backward has made the last of its gradients final (``gradientReady(_:)``, the hook of
/// ``Tensor/backward(_:gradientReady:)``), and always after the bucket before it, so that every rank
/// starts the same collectives in the same order; ``finish()`` starts what is left, waits for every
/// bucket and writes the sums back into the gradients, before the optimizer step.
///
/// The sum is the global mean when each rank's loss was weighted by its share of the global batch (the
/// trainer seeds backward with that share), so no division follows.
final class GradientBuckets {
    private struct Bucket {
        /// The parameters whose gradients the bucket holds, and where each starts in `values`.
        var parameters: [Tensor]
        var offsets: [Int]
        /// Host memory of the packed gradients, reduced in place (it outlives every operation on it).
        var values: UnsafeMutableBufferPointer<Float>
        var readyCount = 0
        var operation: PendingOperation?
    }

    /// `KILN_MPI_BUCKET_MB` (MiB, default 4): smaller buckets start earlier and overlap more of backward,
    /// larger ones pay the per-message latency fewer times.
    static var bucketBytes: Int {
        if let text = ProcessInfo.processInfo.environment["KILN_MPI_BUCKET_MB"], let value = Double(text), value > 0 { return max(4, Int(value * 1_048_576)) }
        return 4 << 20
    }

    let communicator: any Communicator
    private var buckets: [Bucket] = []
    /// Bucket index of each parameter.
    private var bucketOf: [ObjectIdentifier: Int] = [:]
    /// Buckets started so far this step (they start in index order).
    private var started = 0
    /// The first error met while backward ran (the hook cannot throw); reported by ``finish()``.
    private var failure: (any Error)?
    /// Seconds the last ``finish()`` waited for the reductions.
    private(set) var lastWaitSeconds = 0.0

    /// - Parameter parameters: every trainable parameter, in the model's order (the same on every rank).
    init(parameters: [Tensor], communicator: any Communicator, bucketBytes: Int = GradientBuckets.bucketBytes) {
        self.communicator = communicator
        var current: [Tensor] = []
        var bytes = 0
        func close() {
            guard !current.isEmpty else { return }
            var offsets: [Int] = []
            var count = 0
            for parameter in current {
                offsets.append(count)
                count += parameter.elementCount
            }
            let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(count, 1))
            values.initialize(repeating: 0)
            for parameter in current { bucketOf[ObjectIdentifier(parameter)] = buckets.count }
            buckets.append(Bucket(parameters: current, offsets: offsets, values: values))
            current = []
            bytes = 0
        }
        for parameter in parameters.reversed() {
            if bytes > 0 && bytes + parameter.elementCount * 4 > bucketBytes { close() }
            current.append(parameter)
            bytes += parameter.elementCount * 4
        }
        close()
    }

    deinit {
        for bucket in buckets { bucket.values.deallocate() }
    }

    var bucketCount: Int { buckets.count }

    /// The hook for ``Tensor/backward(_:gradientReady:)``: counts a parameter's gradient as final and
    /// starts every bucket that is complete and next in order; lets started buckets progress.
    func gradientReady(_ tensor: Tensor) {
        guard failure == nil, let index = bucketOf[ObjectIdentifier(tensor)] else { return }
        buckets[index].readyCount += 1
        startCompleteBuckets(all: false)
        do {
            for bucket in buckets[..<started] { if let operation = bucket.operation { try communicator.poll(operation) } }
        } catch {
            failure = error
        }
    }

    private func startCompleteBuckets(all: Bool) {
        while started < buckets.count && (all || buckets[started].readyCount == buckets[started].parameters.count) {
            do {
                try start(started)
            } catch {
                failure = failure ?? error
                return
            }
            started += 1
        }
    }

    /// Packs a bucket's gradients (zeros for a parameter no gradient reached) and starts its sum.
    private func start(_ index: Int) throws {
        let bucket = buckets[index]
        for (parameter, offset) in zip(bucket.parameters, bucket.offsets) {
            let slice = UnsafeMutableBufferPointer(rebasing: bucket.values[offset..<(offset + parameter.elementCount)])
            if let gradient = parameter.gradient {
                try gradient.backend.download(gradient.storage, offset: 0, into: UnsafeMutableRawBufferPointer(slice))
            } else {
                slice.update(repeating: 0)
            }
        }
        buckets[index].operation = try communicator.startSum(bucket.values)
    }

    /// Starts the buckets backward left unstarted, waits for every bucket, and writes the sums into the
    /// gradients (a parameter without a gradient keeps none: the same on every rank, as the model is).
    ///
    /// - Throws: ``DistributedError`` when a rank died or hung, ``BackendError`` from the device.
    func finish() throws {
        defer {
            started = 0
            for index in buckets.indices {
                buckets[index].readyCount = 0
                buckets[index].operation = nil
            }
        }
        if let failure { self.failure = nil; throw failure }
        startCompleteBuckets(all: true)
        if let failure { self.failure = nil; throw failure }
        let waitStart = Date()
        for bucket in buckets {
            if let operation = bucket.operation { try communicator.wait(operation, for: "the gradient allreduce") }
        }
        lastWaitSeconds = Date().timeIntervalSince(waitStart)
        for bucket in buckets {
            for (parameter, offset) in zip(bucket.parameters, bucket.offsets) {
                guard let gradient = parameter.gradient else { continue }
                gradient.backend.upload(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: bucket.values[offset..<(offset + parameter.elementCount)])),
                                        to: gradient.storage, offset: 0)
            }
        }
    }
}

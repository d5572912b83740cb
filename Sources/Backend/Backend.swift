/// A compute device: its memory and the primitives Kiln's frontend composes into a training step.
///
/// Two implementations exist: ``CPUBackend`` (OpenBLAS for gemm, Swift loops split across cores for the
/// rest) and ``OpenCLBackend`` (kernels from `Kernels/*.cl` compiled at run time). The protocol is kept
/// small, in the spirit of tinygrad: memory, gemm, element-wise and broadcasting ops, reductions, and the
/// fused operations a training step needs for speed. Gradients are the frontend's business: a backend
/// only provides the forward and backward primitives that an operation asks for.
///
/// Conventions shared by every method:
/// - Buffers hold 32-bit elements (`Float`, or `Int32` for labels and indices); counts and offsets are in
///   elements, never bytes; matrices are row-major.
/// - Work is queued in order. Nothing blocks the host except ``download(_:offset:into:)`` and
///   ``synchronize()``, which also report the first error any earlier call ran into (errors are sticky,
///   as in CUDA: after one, later work is skipped until the error is read).
/// - An output may alias an input only where the method says so.
/// - Methods trap with a message naming the op and the sizes when given inconsistent sizes: that is a
///   programming error in model code, not bad user input.
public protocol Backend: AnyObject, SplineKernels, ScanKernels {
    /// The device this backend computes on.
    var device: DeviceDescription { get }

    // MARK: Memory

    /// Returns a buffer of `count` 32-bit elements with unspecified contents.
    ///
    /// Allocation failure does not trap: it is recorded and reported by the next ``synchronize()`` or
    /// ``download(_:offset:into:)`` as ``BackendError/outOfMemory(device:bytes:)``.
    func allocate(_ count: Int) -> DeviceBuffer

    /// Copies host values into `buffer` starting at element `offset`. The host memory may be reused as
    /// soon as the call returns.
    func upload(_ values: UnsafeRawBufferPointer, to buffer: DeviceBuffer, offset: Int)

    /// Copies `destination.count` elements, starting at element `offset`, back to the host, after every
    /// earlier call has finished.
    ///
    /// - Throws: the first error recorded since the last check (``BackendError``).
    func download(_ buffer: DeviceBuffer, offset: Int, into destination: UnsafeMutableRawBufferPointer) throws(BackendError)

    /// Copies `count` elements between buffers (which may be the same buffer, if the ranges do not overlap).
    func copy(_ source: DeviceBuffer, offset sourceOffset: Int, to destination: DeviceBuffer, offset destinationOffset: Int, count: Int)

    /// Sets `count` elements starting at `offset` to `value`.
    func fill(_ buffer: DeviceBuffer, offset: Int, count: Int, value: Float)

    /// Waits for every queued call to finish.
    ///
    /// - Throws: the first error recorded since the last check (``BackendError``).
    func synchronize() throws(BackendError)

    // MARK: Matrix multiplication

    /// `C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b]` for every batch index `b` (see ``GemmProblem``).
    /// When `beta` is zero, `C` is not read, so stale values (even NaN) never reach the result.
    func gemm(_ problem: GemmProblem, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer)

    // MARK: Element-wise

    /// `y[i] = op(x[i])` for `i < count`. `y` may be `x`.
    func unary(_ op: UnaryOp, _ x: DeviceBuffer, into y: DeviceBuffer, count: Int)

    /// The input gradient of a unary op: `dx[i] = dy[i] · op′(x[i])`, computed from the input `x` or the
    /// output `y` (whichever the op's derivative is cheaper in; both are always passed). `dx` may be `dy`.
    func unaryBackward(_ op: UnaryOp, input x: DeviceBuffer, output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, count: Int)

    /// `out[index] = a[index] ∘ b[index]` over `shape`, reading `a` and `b` through strided layouts (a
    /// stride of 0 broadcasts a dimension) and writing `out` contiguously. `out` may alias an operand whose
    /// layout is contiguous with offset 0.
    func binary(_ op: BinaryOp, _ a: DeviceBuffer, _ aLayout: StridedLayout, _ b: DeviceBuffer, _ bLayout: StridedLayout, into out: DeviceBuffer, shape: [Int])

    /// Copies the elements of `shape` from `source` read through `sourceLayout` to `destination` written
    /// through `destinationLayout`: transposes, slices, concatenation and broadcast expansion. The two
    /// regions must not overlap.
    func copy(_ source: DeviceBuffer, _ sourceLayout: StridedLayout, to destination: DeviceBuffer, _ destinationLayout: StridedLayout, shape: [Int])

    // MARK: Reductions

    /// Reduces the middle axis of `x` viewed as `[outer, length, inner]` into `y` viewed as `[outer, inner]`.
    func reduce(_ op: ReductionOp, _ x: DeviceBuffer, into y: DeviceBuffer, outer: Int, length: Int, inner: Int)

    // MARK: Fused neural-network operations (rows × columns, row-major)

    /// Softmax of each row: `y = exp(x − max) / Σ exp(x − max)`. `y` may be `x`.
    func softmax(_ x: DeviceBuffer, into y: DeviceBuffer, rows: Int, columns: Int)
    /// `dx = y ⊙ (dy − Σ_row dy ⊙ y)` from the softmax output `y`.
    func softmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, rows: Int, columns: Int)
    /// Log-softmax of each row: `y = x − max − log Σ exp(x − max)`. `y` may be `x`.
    func logSoftmax(_ x: DeviceBuffer, into y: DeviceBuffer, rows: Int, columns: Int)
    /// `dx = dy − exp(y) · Σ_row dy` from the log-softmax output `y`.
    func logSoftmaxBackward(output y: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, rows: Int, columns: Int)

    /// Per-row softmax cross-entropy with integer labels: `loss[r] = logsumexp(x[r]) − x[r, label[r]]`.
    /// `labels` holds `Int32` class indices; a negative label marks an ignored row (loss 0, gradient 0).
    func softmaxCrossEntropy(logits: DeviceBuffer, labels: DeviceBuffer, into losses: DeviceBuffer, rows: Int, columns: Int)
    /// `dlogits[r] = (softmax(x[r]) − onehot(label[r])) · dloss[r]`, zero for ignored rows.
    func softmaxCrossEntropyBackward(logits: DeviceBuffer, labels: DeviceBuffer, lossGradient: DeviceBuffer, into logitsGradient: DeviceBuffer, rows: Int, columns: Int)

    /// RMSNorm (Zhang & Sennrich, 2019): `rstd[r] = 1 / sqrt(mean(x[r]²) + epsilon)`,
    /// `y[r, c] = x[r, c] · rstd[r] · weight[c]`. Writes `y` and the saved `inverseRMS` (`[rows]`).
    func rmsNorm(_ x: DeviceBuffer, weight: DeviceBuffer, into y: DeviceBuffer, inverseRMS: DeviceBuffer, rows: Int, columns: Int, epsilon: Float)
    /// RMSNorm's gradients: overwrites `dx` (`[rows, columns]`) and `weightGradient` (`[columns]`,
    /// `Σ_r dy · x · rstd`, summed in a fixed order).
    func rmsNormBackward(_ x: DeviceBuffer, weight: DeviceBuffer, inverseRMS: DeviceBuffer, outputGradient dy: DeviceBuffer, into dx: DeviceBuffer, weightGradient: DeviceBuffer, rows: Int, columns: Int)

    /// Embedding lookup: `out[n, :] = table[indices[n], :]` for `n < indexCount`; `indices` holds `Int32`
    /// row numbers, each checked to lie in `0..<tableRows` (an out-of-range index writes zeros).
    func gatherRows(_ table: DeviceBuffer, tableRows: Int, indices: DeviceBuffer, into out: DeviceBuffer, indexCount: Int, columns: Int)
    /// The embedding gradient: `table[indices[n], :] += source[n, :]`, adding rows in increasing `n` so the
    /// result does not depend on scheduling. Out-of-range indices are skipped.
    func scatterAddRows(_ source: DeviceBuffer, indices: DeviceBuffer, indexCount: Int, into table: DeviceBuffer, tableRows: Int, columns: Int)

    // MARK: Randomness

    /// Fills `count` elements with uniform values in [0, 1) from a counter-based generator: element `i` is
    /// a hash of `(seed, offset + i)`, identical on every backend.
    func randomUniform(into buffer: DeviceBuffer, count: Int, seed: UInt64, offset: UInt64)

    // MARK: Optimizers

    /// One fused optimizer update of `count` parameters in place.
    ///
    /// - Parameters:
    ///   - rule: the update rule and its hyperparameters.
    ///   - parameter: the parameters, updated in place.
    ///   - gradient: their gradient (not modified).
    ///   - state: the rule's per-parameter state buffers, `rule.stateCount` of them (momentum; Adam's first
    ///     and second moments), updated in place.
    ///   - learningRate: this step's learning rate.
    ///   - step: the 1-based step number, for Adam's bias corrections.
    ///   - gradientScale: an optional one-element buffer the gradient is multiplied by first (gradient
    ///     clipping computed on the device, so the host never waits for the norm).
    func optimizerStep(_ rule: UpdateRule, parameter: DeviceBuffer, gradient: DeviceBuffer, state: [DeviceBuffer], count: Int, learningRate: Float, step: Int, gradientScale: DeviceBuffer?)
}

extension Backend {
    /// Uploads an array of `Float` to the start of a buffer (or at `offset`).
    public func upload(_ values: [Float], to buffer: DeviceBuffer, offset: Int = 0) {
        values.withUnsafeBytes { upload($0, to: buffer, offset: offset) }
    }

    /// Uploads an array of `Int32` (labels, indices) to a buffer.
    public func upload(_ values: [Int32], to buffer: DeviceBuffer, offset: Int = 0) {
        values.withUnsafeBytes { upload($0, to: buffer, offset: offset) }
    }

    /// Allocates a buffer holding `values`.
    public func makeBuffer(_ values: [Float]) -> DeviceBuffer {
        let buffer = allocate(values.count)
        upload(values, to: buffer)
        return buffer
    }

    /// Allocates a buffer holding `Int32` values.
    public func makeBuffer(_ values: [Int32]) -> DeviceBuffer {
        let buffer = allocate(values.count)
        upload(values, to: buffer)
        return buffer
    }

    /// Reads `count` floats (all of the buffer by default) back to the host.
    public func download(_ buffer: DeviceBuffer, offset: Int = 0, count: Int? = nil) throws(BackendError) -> [Float] {
        let length = count ?? buffer.count - offset
        var values = [Float](repeating: 0, count: length)
        var failure: BackendError?
        values.withUnsafeMutableBytes { bytes in
            do throws(BackendError) { try download(buffer, offset: offset, into: bytes) } catch { failure = error }
        }
        if let failure { throw failure }
        return values
    }

    /// Reads `count` `Int32` values back to the host.
    public func downloadIntegers(_ buffer: DeviceBuffer, offset: Int = 0, count: Int? = nil) throws(BackendError) -> [Int32] {
        let length = count ?? buffer.count - offset
        var values = [Int32](repeating: 0, count: length)
        var failure: BackendError?
        values.withUnsafeMutableBytes { bytes in
            do throws(BackendError) { try download(buffer, offset: offset, into: bytes) } catch { failure = error }
        }
        if let failure { throw failure }
        return values
    }
}

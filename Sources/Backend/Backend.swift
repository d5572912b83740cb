/// A compute device: its memory and the primitives Kiln's frontend composes into a training step, one
/// family protocol each, in `Families/<Family>.swift` (the math in its doc comments, its shape struct and
/// its checks) with `CPU/CPUBackend+<Family>.swift`, `OpenCL/OpenCLBackend+<Family>.swift`,
/// `Kernels/<family>.cl` and the float64 definition in `Reference/Reference+<Family>.swift`.
///
/// Two implementations exist: ``CPUBackend`` (OpenBLAS for gemm, C loops split across cores for the
/// rest) and ``OpenCLBackend`` (kernels from `Kernels/*.cl` compiled at run time). Gradients are the
/// frontend's business: a backend only provides the forward and backward primitives an operation asks for.
///
/// Conventions shared by every primitive:
/// - Buffers hold 32-bit elements (`Float`, or `Int32` for labels and indices); counts and offsets are in
///   elements, never bytes; matrices are row-major.
/// - Work is queued in order. Nothing blocks the host except ``DeviceMemory/download(_:offset:into:)``
///   and ``DeviceMemory/synchronize()``, which also report the first error any earlier call ran into
///   (errors are sticky, as in CUDA: after one, later work is skipped until the error is read).
/// - An output may alias an input only where the primitive says so.
/// - Inconsistent sizes trap with a message naming the op and the sizes: that is a programming error in
///   model code, not bad user input. Each family checks once, in its shape struct's `validate`, which
///   every backend calls first.
public protocol Backend:
    DeviceMemory, GemmKernels, ElementwiseKernels, ReduceKernels, RowKernels, EmbeddingKernels, RandomKernels,
    OptimizerKernels, SplineKernels, ScanKernels
{}

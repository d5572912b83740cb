// The bounds of every comparison with the float64 reference, one definition for the test suite
// (Tests/KilnBackendTests) and `kiln check` / the tuner's check (DeviceCheck): relative error
// ‖out − reference‖ / ‖reference‖ below these (DESIGN.md, "Testing").

/// Relative-error bounds against ``Reference``, by the kind of work a result comes from.
public enum CheckBound {
    /// Float32 element-wise work, copies and in-order sums of a few terms (element-wise, embedding,
    /// optimizer updates, the outputs of one row, spline forward): 1e-5.
    public static let elementwise = 1e-5
    /// Long reductions and gradients that subtract a row's sum from each element: 1e-4.
    public static let longReduction = 1e-4
    /// Matrix products (`m · n` sums of `k` products): 1e-4.
    public static let gemm = 1e-4
    /// Recurrent scans (float32 state, one step at a time), forward, final state and every gradient: 1e-5.
    public static let scanRecurrent = 1e-5
    /// Chunked scans (sums over whole chunks of 64 steps as small matrix products): 1e-4.
    public static let scanChunked = 1e-4
    /// Spline gradients (sums over the batch and over outputs): 1e-4.
    public static let splineGradient = 1e-4
    /// Counter-based random numbers: 24-bit values, exact in float32, so the same bits on every device.
    public static let exact = 0.0

    /// The bound for a scan gate's gradient: a per-head gate's gradient sums K · V products of each step,
    /// terms that largely cancel under strong gates, so its rounding grows with K; at K = V = 256 with
    /// gates of logsigmoid/0.1 the chunked OpenCL form measured 1.006e-4 against float64 (one seed in
    /// several runs), so from K = 256 on the bound is twice `bound`.
    public static func scanGateGradient(keyDimension: Int, perHead: Bool, bound: Double) -> Double {
        perHead && keyDimension >= 256 ? 2 * bound : bound
    }

    /// Whether an error is within a bound: below it, or exactly 0 for an ``exact`` bound.
    public static func holds(_ error: Double, _ bound: Double) -> Bool {
        bound == 0 ? error == 0 : error < bound
    }
}

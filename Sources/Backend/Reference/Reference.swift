/// The float64 reference of every backend primitive: plain loops over `[Double]`, one function per
/// primitive, each the living definition of what a backend computes (its doc comment is the math).
///
/// The functions take host arrays and the same problem and shape structs the backends take
/// (``GemmProblem``, ``RowShape``, …), so a test or a device check generates inputs, runs any ``Backend``,
/// and compares the result with the reference (``relativeError(_:_:)``) at the bound stated beside the
/// case: 1e-5 for element-wise work, 1e-4 for long reductions and gemm (DESIGN.md, "Testing").
public enum Reference {}

// B-splines in float64 on the host, for what happens outside the training step's kernels: grid updates,
// least-squares refits of coefficients, plots and tests.

/// B-spline bases over ascending knots, with pykan's conventions.
///
/// Over knots `t_0 < t_1 < … < t_{N−1}` the order-0 bases are `B_{n,0}(x) = 1` on the half-open
/// `[t_n, t_{n+1})` and 0 elsewhere; higher orders follow Cox–de Boor (de Boor, 1972):
///
///     B_{n,p}(x) = (x − t_n)/(t_{n+p} − t_n) · B_{n,p−1}(x) + (t_{n+p+1} − x)/(t_{n+p+1} − t_{n+1}) · B_{n+1,p−1}(x)
///
/// A KAN input with `G` grid intervals and order `k` has `N = G + 2k + 1` knots and `G + k` bases. At most
/// `k + 1` of them are non-zero at any `x`: with `t_m ≤ x < t_{m+1}`, the bases `m − k … m`. They sum to 1
/// on `[t_k, t_{G+k})` (the original grid) and are all zero outside `[t_0, t_{N−1})`.
public enum BSpline {
    /// The order-k bases that are non-zero at x over ascending `knots` (count G+2k+1): the index of the first of the k+1 bases (may be negative or exceed G+k−1 near the ends: callers drop those) and their values; nil outside [knots.first, knots.last).
    ///
    /// Values of bases whose index falls outside `0..<G+k` are 0.
    ///
    /// - Complexity: `O(log N + k²)`.
    public static func nonZeroBases(at x: Double, knots: [Double], order: Int) -> (first: Int, values: [Double])? {
        guard let triangle = localTriangle(at: x, knots: knots, order: order) else { return nil }
        return (triangle.interval - order, triangle.top)
    }

    /// Their derivatives with respect to x, same layout.
    ///
    /// `B′_{n,k} = k/(t_{n+k} − t_n) · B_{n,k−1} − k/(t_{n+k+1} − t_{n+1}) · B_{n+1,k−1}`; at a knot, the
    /// derivative of the interval on its right (the half-open convention). Entries for bases whose index
    /// falls outside `0..<G+k` are 0.
    public static func nonZeroDerivatives(at x: Double, knots: [Double], order: Int) -> (first: Int, values: [Double])? {
        guard let triangle = localTriangle(at: x, knots: knots, order: order) else { return nil }
        let m = triangle.interval, k = order
        let count = knots.count - k - 1
        // below[s] = B_{m−k+1+s, k−1}(x) for s in 0..<k; B_{m−k,k−1} and B_{m+1,k−1} vanish at x.
        let below = triangle.below
        var values = [Double](repeating: 0, count: k + 1)
        for r in 0...k {
            let n = m - k + r
            guard n >= 0 && n < count else { continue }
            var value = 0.0
            if r >= 1 { value += Double(k) / (knots[n + k] - knots[n]) * below[r - 1] }
            if r <= k - 1 { value -= Double(k) / (knots[n + k + 1] - knots[n + 1]) * below[r] }
            values[r] = value
        }
        return (m - k, values)
    }

    /// All G+k basis values at x (zeros outside), by the plain Cox–de Boor recursion (the reference).
    ///
    /// - Complexity: `O(N · k)`.
    public static func coxDeBoor(at x: Double, knots: [Double], order: Int) -> [Double] {
        precondition(order >= 0 && knots.count >= order + 2, "BSpline.coxDeBoor: \(knots.count) knots cannot carry order \(order) bases")
        var bases = (0..<(knots.count - 1)).map { n in x >= knots[n] && x < knots[n + 1] ? 1.0 : 0.0 }
        if order == 0 { return bases }
        for p in 1...order {
            bases = (0..<(knots.count - 1 - p)).map { n in
                (x - knots[n]) / (knots[n + p] - knots[n]) * bases[n]
                    + (knots[n + p + 1] - x) / (knots[n + p + 1] - knots[n + 1]) * bases[n + 1]
            }
        }
        return bases
    }

    /// pykan's extend_grid: `points` (G+1 ascending grid points) extended by k knots on each side with the end spacing.
    ///
    /// As pykan's `extend_grid` does, the spacing of the added knots is the grid's mean spacing
    /// `h = (points.last − points.first) / G` on both sides, which is the end spacing of a uniform grid (for
    /// a non-uniform grid after an update from samples, pykan still uses this mean spacing). The result has
    /// G + 2k + 1 knots: `points.first − k·h, …, points.first − h, points…, points.last + h, …, points.last + k·h`.
    public static func extendedKnots(points: [Double], order: Int) -> [Double] {
        precondition(points.count >= 2, "BSpline.extendedKnots: a grid needs at least 2 points, got \(points.count)")
        precondition(order >= 0, "BSpline.extendedKnots: negative order \(order)")
        let h = (points[points.count - 1] - points[0]) / Double(points.count - 1)
        let before = (0..<order).map { points[0] - Double(order - $0) * h }
        let after = (0..<order).map { points[points.count - 1] + Double($0 + 1) * h }
        return before + points + after
    }

    /// The spline Σ_n c[n]·B_n(x) at x.
    ///
    /// `coefficients` holds G + k values (`knots.count − order − 1`); the result is 0 outside the knots.
    public static func evaluate(at x: Double, knots: [Double], coefficients: [Double], order: Int) -> Double {
        precondition(coefficients.count == knots.count - order - 1,
                     "BSpline.evaluate: \(coefficients.count) coefficients for \(knots.count) knots of order \(order) (needs \(knots.count - order - 1))")
        guard let (first, values) = nonZeroBases(at: x, knots: knots, order: order) else { return 0 }
        var total = 0.0
        for (r, value) in values.enumerated() where first + r >= 0 && first + r < coefficients.count {
            total += coefficients[first + r] * value
        }
        return total
    }

    /// The local Cox–de Boor triangle at x: the interval m (t_m ≤ x < t_{m+1}), the k + 1 order-k bases
    /// `top[r] = B_{m−k+r, k}(x)` and the k order-(k−1) bases `below[s] = B_{m−k+1+s, k−1}(x)`, with entries
    /// of bases that do not exist set to 0. Nil outside `[t_0, t_{N−1})`.
    private static func localTriangle(at x: Double, knots: [Double], order k: Int) -> (interval: Int, top: [Double], below: [Double])? {
        precondition(k >= 1 && knots.count >= 2 * k + 2, "BSpline: \(knots.count) knots cannot carry order \(k) bases with at least one interval")
        let last = knots.count - 1
        guard x >= knots[0] && x < knots[last] else { return nil }
        // Binary search for the last knot ≤ x.
        var low = 0, high = last
        while high - low > 1 {
            let middle = (low + high) / 2
            if x >= knots[middle] { low = middle } else { high = middle }
        }
        let m = low
        // Knots past either end are only reached by bases that do not exist; continue the end spacing so
        // the arithmetic stays finite, and zero those bases below.
        func knot(_ q: Int) -> Double {
            if q < 0 { return knots[0] + Double(q) * (knots[1] - knots[0]) }
            if q > last { return knots[last] + Double(q - last) * (knots[last] - knots[last - 1]) }
            return knots[q]
        }
        // bases[r] = B_{m−p+r, p}(x) after level p.
        var bases = [1.0]
        var below: [Double] = []
        for p in 1...k {
            if p == k { below = bases }
            var next = [Double](repeating: 0, count: p + 1)
            for r in 0..<p {
                let n = m - p + 1 + r  // bases[r] is B_{n, p−1}; it feeds B_{n−1, p} and B_{n, p}
                let share = bases[r] / (knot(n + p) - knot(n))
                next[r] += (knot(n + p) - x) * share
                next[r + 1] += (x - knot(n)) * share
            }
            bases = next
        }
        let count = knots.count - k - 1
        for r in 0...k where m - k + r < 0 || m - k + r >= count { bases[r] = 0 }
        let lowerCount = count + 1
        for s in 0..<k where m - k + 1 + s < 0 || m - k + 1 + s >= lowerCount { below[s] = 0 }
        return (m, bases, below)
    }
}

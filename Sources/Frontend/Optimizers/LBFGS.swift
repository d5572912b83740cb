import Foundation

/// L-BFGS (Liu & Nocedal, 1989) with a strong-Wolfe line search, as PyTorch's `torch.optim.LBFGS`
/// implements it and pykan trains KANs with it (history 10).
///
/// Each ``step(_:)`` runs up to `maximumIterations` quasi-Newton iterations on one objective. The
/// objective (a closure) computes the loss and its gradients into the parameters' ``Tensor/gradient``;
/// the search directions and the line search run on the host in float64 over the flattened parameters,
/// since every iteration needs scalar decisions anyway. Usable for any model.
public final class LBFGS {
    public struct Settings: Codable, Equatable, Sendable {
        /// The first trial step of each line search (PyTorch's `lr`).
        public var learningRate: Double = 1
        /// Iterations per step (PyTorch's `max_iter`).
        public var maximumIterations = 20
        /// Objective evaluations per step (default 1.25 × iterations).
        public var maximumEvaluations: Int?
        /// Stop when every gradient entry is at most this in magnitude.
        public var gradientTolerance: Double = 1e-7
        /// Stop when the loss or the step changes by less than this.
        public var changeTolerance: Double = 1e-9
        /// Skip a curvature pair unless yᵀs exceeds this.
        public var curvatureTolerance: Double = 1e-10
        /// Curvature pairs kept.
        public var historySize = 10

        public init() {}

        /// pykan's settings: history 10, tolerances 1e-32 (iterate until the budget is spent).
        public static var pykan: Settings {
            var settings = Settings()
            settings.gradientTolerance = 1e-32
            settings.changeTolerance = 1e-32
            settings.curvatureTolerance = 1e-32
            return settings
        }
    }

    public let parameters: [Tensor]
    public let settings: Settings
    /// Objective evaluations so far.
    public private(set) var evaluations = 0
    /// Iterations so far (across steps).
    public private(set) var iterations = 0

    private var direction: [Double] = []
    private var stepLength = 0.0
    private var oldDirections: [[Double]] = []
    private var oldSteps: [[Double]] = []
    private var inverseCurvatures: [Double] = []
    private var hessianDiagonal = 1.0
    private var previousGradient: [Double]?
    private var previousLoss = 0.0
    /// Set when a line search found no decrease: the next iteration starts over from steepest descent.
    private var restartPending = false

    public init(parameters: [Tensor], settings: Settings = .pykan) {
        self.parameters = parameters
        self.settings = settings
    }

    /// The objective: compute the loss (on the device) and call `backward()` on it; return the loss value.
    public typealias Objective = () throws -> Double

    /// Runs up to `maximumIterations` iterations and returns the loss at the starting point.
    public func step(_ objective: Objective) throws -> Double {
        let maximumEvaluations = settings.maximumEvaluations ?? settings.maximumIterations * 5 / 4
        var (loss, gradient) = try evaluate(objective)
        let originalLoss = loss
        var currentEvaluations = 1
        if gradient.map(Swift.abs).max() ?? 0 <= settings.gradientTolerance { return originalLoss }

        var iteration = 0
        while iteration < settings.maximumIterations {
            iteration += 1
            iterations += 1
            let restarted = restartPending
            if iterations == 1 || restarted {
                direction = gradient.map { -$0 }
                oldDirections.removeAll()
                oldSteps.removeAll()
                inverseCurvatures.removeAll()
                hessianDiagonal = 1
            } else {
                updateDirection(gradient: gradient)
            }
            previousGradient = gradient
            previousLoss = loss

            let firstStep = iterations == 1 || restarted ? min(1, 1 / gradient.map(Swift.abs).reduce(0, +)) * settings.learningRate : settings.learningRate
            restartPending = false
            let directional = dot(gradient, direction)
            if directional > -settings.changeTolerance { break }

            let start = try flatParameters()
            let search = try strongWolfe(objective, start: start, step: firstStep, loss: loss, gradient: gradient, directional: directional)
            if search.step == 0 || !(search.loss < loss) {
                // No decrease along this direction. In float32 the loss is noisy near a minimum, and a
                // quasi-Newton direction built from noisy gradients can stop being a descent direction in
                // practice; PyTorch's L-BFGS would then retry the same direction forever. Restart from
                // steepest descent (in this step if the budget allows, else in the next); if steepest descent
                // fails too, the step is done.
                try setParameters(start)
                currentEvaluations += search.evaluations
                restartPending = true
                if restarted || currentEvaluations >= maximumEvaluations { break }
                continue
            }
            stepLength = search.step
            loss = search.loss
            gradient = search.gradient
            try setParameters(zip(start, direction).map { $0 + search.step * $1 })
            currentEvaluations += search.evaluations

            if iteration == settings.maximumIterations || currentEvaluations >= maximumEvaluations { break }
            if gradient.map(Swift.abs).max() ?? 0 <= settings.gradientTolerance { break }
            if (direction.map { Swift.abs($0 * stepLength) }.max() ?? 0) <= settings.changeTolerance { break }
            if Swift.abs(loss - previousLoss) < settings.changeTolerance { break }
        }
        return originalLoss
    }

    /// The two-loop recursion: a quasi-Newton direction from the kept curvature pairs.
    private func updateDirection(gradient: [Double]) {
        guard let previousGradient else { return }
        let y = zip(gradient, previousGradient).map { $0 - $1 }
        let s = direction.map { $0 * stepLength }
        let ys = dot(y, s)
        if ys > settings.curvatureTolerance {
            if oldDirections.count == settings.historySize {
                oldDirections.removeFirst()
                oldSteps.removeFirst()
                inverseCurvatures.removeFirst()
            }
            oldDirections.append(y)
            oldSteps.append(s)
            inverseCurvatures.append(1 / ys)
            hessianDiagonal = ys / dot(y, y)
        }
        var q = gradient.map { -$0 }
        var alphas = [Double](repeating: 0, count: oldDirections.count)
        for index in stride(from: oldDirections.count - 1, through: 0, by: -1) {
            alphas[index] = dot(oldSteps[index], q) * inverseCurvatures[index]
            for element in q.indices { q[element] -= alphas[index] * oldDirections[index][element] }
        }
        var r = q.map { $0 * hessianDiagonal }
        for index in oldDirections.indices {
            let beta = dot(oldDirections[index], r) * inverseCurvatures[index]
            for element in r.indices { r[element] += (alphas[index] - beta) * oldSteps[index][element] }
        }
        direction = r
    }

    /// Loss and gradient at the current parameters.
    private func evaluate(_ objective: Objective) throws -> (Double, [Double]) {
        for parameter in parameters { parameter.zeroGradient() }
        let loss = try objective()
        evaluations += 1
        var gradient: [Double] = []
        for parameter in parameters {
            if let value = parameter.gradient {
                gradient += try value.toArray().map(Double.init)
            } else {
                gradient += [Double](repeating: 0, count: parameter.elementCount)
            }
        }
        return (loss, gradient)
    }

    /// Loss and gradient at `start + step·direction` (the parameters are moved there and left there).
    private func evaluate(_ objective: Objective, start: [Double], step: Double) throws -> (Double, [Double]) {
        try setParameters(zip(start, direction).map { $0 + step * $1 })
        return try evaluate(objective)
    }

    private func flatParameters() throws -> [Double] {
        try parameters.flatMap { try $0.toArray().map(Double.init) }
    }

    private func setParameters(_ flat: [Double]) throws {
        var offset = 0
        for parameter in parameters {
            parameter.assign(flat[offset..<(offset + parameter.elementCount)].map(Float.init))
            offset += parameter.elementCount
        }
    }

    /// Minimizer of the cubic interpolating (x1, f1, g1) and (x2, f2, g2), clamped to `bounds`.
    package static func cubicInterpolate(_ x1: Double, _ f1: Double, _ g1: Double, _ x2: Double, _ f2: Double, _ g2: Double, bounds: (Double, Double)? = nil) -> Double {
        let (low, high) = bounds ?? (x1 <= x2 ? (x1, x2) : (x2, x1))
        let d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
        let d2Square = d1 * d1 - g1 * g2
        guard d2Square >= 0 else { return (low + high) / 2 }
        let d2 = d2Square.squareRoot()
        let minimum = x1 <= x2
            ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
            : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(minimum, low), high)
    }

    /// A step satisfying the strong Wolfe conditions (c₁ = 1e-4, c₂ = 0.9): bracketing, then zoom with
    /// cubic interpolation (Nocedal & Wright, algorithms 3.5 and 3.6), at most 25 evaluations.
    private func strongWolfe(
        _ objective: Objective, start: [Double], step initialStep: Double, loss: Double, gradient: [Double], directional: Double
    ) throws -> (loss: Double, gradient: [Double], step: Double, evaluations: Int) {
        let c1 = 1e-4, c2 = 0.9, maximumSearches = 25
        let directionNorm = direction.map(Swift.abs).max() ?? 0
        var step = initialStep
        var (newLoss, newGradient) = try evaluate(objective, start: start, step: step)
        var evaluationCount = 1
        var newDirectional = dot(newGradient, direction)
        var (previousStep, previousLoss, previousGradient, previousDirectional) = (0.0, loss, gradient, directional)
        var done = false
        var searches = 0
        var bracket: [Double] = [], bracketLoss: [Double] = [], bracketGradient: [[Double]] = [], bracketDirectional: [Double] = []
        while searches < maximumSearches {
            if newLoss > loss + c1 * step * directional || (searches > 1 && newLoss >= previousLoss) {
                (bracket, bracketLoss, bracketGradient, bracketDirectional) = ([previousStep, step], [previousLoss, newLoss], [previousGradient, newGradient], [previousDirectional, newDirectional])
                break
            }
            if Swift.abs(newDirectional) <= -c2 * directional {
                (bracket, bracketLoss, bracketGradient, bracketDirectional) = ([step], [newLoss], [newGradient], [newDirectional])
                done = true
                break
            }
            if newDirectional >= 0 {
                (bracket, bracketLoss, bracketGradient, bracketDirectional) = ([previousStep, step], [previousLoss, newLoss], [previousGradient, newGradient], [previousDirectional, newDirectional])
                break
            }
            let minimumStep = step + 0.01 * (step - previousStep)
            let maximumStep = step * 10
            let current = step
            step = LBFGS.cubicInterpolate(previousStep, previousLoss, previousDirectional, step, newLoss, newDirectional, bounds: (minimumStep, maximumStep))
            (previousStep, previousLoss, previousGradient, previousDirectional) = (current, newLoss, newGradient, newDirectional)
            (newLoss, newGradient) = try evaluate(objective, start: start, step: step)
            evaluationCount += 1
            newDirectional = dot(newGradient, direction)
            searches += 1
        }
        if searches == maximumSearches {
            (bracket, bracketLoss, bracketGradient, bracketDirectional) = ([0, step], [loss, newLoss], [gradient, newGradient], [directional, newDirectional])
        }

        var insufficientProgress = false
        var (low, high) = bracketLoss.count == 2 && bracketLoss[0] > bracketLoss[1] ? (1, 0) : (0, 1)
        while !done && searches < maximumSearches && bracket.count == 2 {
            if Swift.abs(bracket[1] - bracket[0]) * directionNorm < settings.changeTolerance { break }
            step = LBFGS.cubicInterpolate(bracket[0], bracketLoss[0], bracketDirectional[0], bracket[1], bracketLoss[1], bracketDirectional[1])
            let upper = bracket.max()!, lower = bracket.min()!
            let margin = 0.1 * (upper - lower)
            if min(upper - step, step - lower) < margin {
                if insufficientProgress || step >= upper || step <= lower {
                    step = Swift.abs(step - upper) < Swift.abs(step - lower) ? upper - margin : lower + margin
                    insufficientProgress = false
                } else {
                    insufficientProgress = true
                }
            } else {
                insufficientProgress = false
            }
            (newLoss, newGradient) = try evaluate(objective, start: start, step: step)
            evaluationCount += 1
            newDirectional = dot(newGradient, direction)
            searches += 1
            if newLoss > loss + c1 * step * directional || newLoss >= bracketLoss[low] {
                (bracket[high], bracketLoss[high], bracketGradient[high], bracketDirectional[high]) = (step, newLoss, newGradient, newDirectional)
                (low, high) = bracketLoss[0] <= bracketLoss[1] ? (0, 1) : (1, 0)
            } else {
                if Swift.abs(newDirectional) <= -c2 * directional {
                    done = true
                } else if newDirectional * (bracket[high] - bracket[low]) >= 0 {
                    (bracket[high], bracketLoss[high], bracketGradient[high], bracketDirectional[high]) = (bracket[low], bracketLoss[low], bracketGradient[low], bracketDirectional[low])
                }
                (bracket[low], bracketLoss[low], bracketGradient[low], bracketDirectional[low]) = (step, newLoss, newGradient, newDirectional)
            }
        }
        if bracket.count == 1 { low = 0 }
        return (bracketLoss[low], bracketGradient[low], bracket[low], evaluationCount)
    }

    private func dot(_ a: [Double], _ b: [Double]) -> Double {
        var sum = 0.0
        for index in a.indices { sum += a[index] * b[index] }
        return sum
    }
}

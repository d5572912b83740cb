import Foundation

/// How the learning rate changes over a run (`--schedule`), as a multiplier of the base rate.
public enum LearningRateSchedule: String, Codable, CaseIterable, Sendable {
    /// The base rate throughout.
    case constant
    /// Linear warm-up from 0 over `warmupSteps`, then cosine decay to 0 at the last step (as in most
    /// transformer recipes).
    case cosine
    /// One-cycle (Smith & Topin, 2019; PyTorch's `OneCycleLR` defaults): cosine rise from base/25 to base
    /// over the first 30% of steps, then cosine fall to base/(25·10⁴).
    case oneCycle = "one-cycle"

    /// The multiplier at a 1-based `step` of `totalSteps`.
    public func multiplier(step: Int, totalSteps: Int, warmupSteps: Int) -> Float {
        let total = max(totalSteps, 1)
        switch self {
        case .constant:
            return 1
        case .cosine:
            if warmupSteps > 0 && step <= warmupSteps { return Float(step) / Float(warmupSteps) }
            let progress = Double(step - warmupSteps) / Double(max(total - warmupSteps, 1))
            return Float(0.5 * (1 + cos(Double.pi * min(max(progress, 0), 1))))
        case .oneCycle:
            let initial = 1.0 / 25, final = initial / 1e4
            let peak = max(1, Int((0.3 * Double(total)).rounded(.down)))
            func anneal(_ start: Double, _ end: Double, _ fraction: Double) -> Double {
                end + (start - end) / 2 * (1 + cos(Double.pi * min(max(fraction, 0), 1)))
            }
            if step <= peak { return Float(anneal(initial, 1, Double(step - 1) / Double(max(peak - 1, 1)))) }
            return Float(anneal(1, final, Double(step - peak) / Double(max(total - peak, 1))))
        }
    }
}

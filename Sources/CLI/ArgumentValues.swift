import ArgumentParser
import Kiln

// Flags with a closed set of values parse straight into these enums; a value outside the set is a one-line
// error naming the choices (see `KilnMain`). The library's enums get their conformance here, so the
// library does not depend on ArgumentParser.

extension ModelKind: ExpressibleByArgument {}
extension MixerKind: ExpressibleByArgument {}
extension ActivationKind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension LearningRateSchedule: ExpressibleByArgument {}
extension Parametrization.Kind: ExpressibleByArgument {}
extension TargetSetting: ExpressibleByArgument {}

/// `--readout-init`: how readout weights start.
enum ReadoutInitialization: String, CaseIterable, ExpressibleByArgument {
    /// Zeros (μP's recommendation).
    case zero
    /// N(0, 1/fan_in).
    case normal
}

/// `kiln coord-check --model`: the models the coordinate check trains.
enum CoordinateCheckModel: String, CaseIterable, ExpressibleByArgument {
    case mlp, lm

    var kind: ModelKind {
        switch self {
        case .mlp: .mlp
        case .lm: .lm
        }
    }
}

/// `kiln coord-check --optimizer`: the optimizers the coordinate check is recorded with.
enum CoordinateCheckOptimizer: String, CaseIterable, ExpressibleByArgument {
    case adam, sgd

    var kind: OptimizerKind {
        switch self {
        case .adam: .adam
        case .sgd: .sgd
        }
    }
}

/// `kiln sweep --optimizer`: the first-order optimizers (a sweep's runs take mini-batch steps, not L-BFGS's
/// full-batch line searches).
enum SweepOptimizer: String, CaseIterable, ExpressibleByArgument {
    case sgd, adam, adamw
    case adamAtan2 = "adam-atan2"

    var kind: OptimizerKind {
        switch self {
        case .sgd: .sgd
        case .adam: .adam
        case .adamw: .adamw
        case .adamAtan2: .adamAtan2
        }
    }
}

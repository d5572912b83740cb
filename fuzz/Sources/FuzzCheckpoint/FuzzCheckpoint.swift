import Foundation
import FuzzSupport
import Kiln

/// A checkpoint's configuration metadata, as `Checkpoint.read` decodes it for `train --resume`, `predict`,
/// `plot` and `generate`, then validated as `kiln train` validates its flags.
///
/// The input is the two JSON texts a checkpoint's `__metadata__` stores: the training configuration
/// (`kiln.training`), a line break, and the model configuration (`kiln.model`). The seeds are the metadata of
/// the checkpoints in Tests/Fixtures. (The safetensors layer around them has its own target.)
///
/// Properties, for every input that decodes:
/// - where the training JSON has every key (so that `JSONDecoder` alone reads it), the configuration read over
///   the defaults is the one `JSONDecoder` reads: filling in missing keys changes no value that is there;
/// - `TrainingConfiguration.validate()` and `inputRange()` return or throw (a `TaskError`), and the values
///   the commands read first (a model's input and output counts, the optimizer settings) never trap;
/// - decode → encode (as a checkpoint is written) → decode gives equal configurations.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzInput(data, size)
    let split = bytes.firstIndex(of: 0x0A) ?? bytes.count
    let trainingText = String(decoding: bytes[..<split], as: UTF8.self)
    let metadata = [
        Checkpoint.formatKey: Checkpoint.formatVersion,
        Checkpoint.trainingKey: trainingText,
        Checkpoint.modelKey: String(decoding: bytes[min(split + 1, bytes.count)...], as: UTF8.self),
    ]
    guard let decoded = try? Checkpoint.configurations(from: metadata, path: "input") else { return 0 }
    let (training, model) = decoded
    if let direct = try? JSONDecoder().decode(TrainingConfiguration.self, from: Data(trainingText.utf8)) {
        require(direct == training, "the training configuration read over the defaults differs from JSONDecoder's:\n\(direct)\n→\n\(training)")
    }
    // What the commands read from the configurations before building anything.
    _ = try? training.validate()
    _ = try? training.inputRange()
    _ = (training.optimizerSettings, training.resolvedHeads, training.stageCount)
    _ = (model.kind, model.inputCount, model.outputCount, model.targetKind, model.seed)
    let written = Checkpoint.configurationMetadata(training: training, model: model)
    let again = mustSucceed("reading the configurations back") { try Checkpoint.configurations(from: written, path: "written") }
    require(again.training == training, "the training configuration changed in the round trip:\n\(training)\n→\n\(again.training)")
    require(again.model == model, "the model configuration changed in the round trip:\n\(model)\n→\n\(again.model)")
    return 0
}

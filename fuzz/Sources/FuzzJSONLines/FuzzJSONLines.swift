import Foundation
import FuzzSupport
import Kiln

/// The JSON lines Kiln reads back: `metrics.jsonl` on `train --resume` (`TrainingRun.metricsRecords`) and the
/// `--runs` file of `kiln sweep` (`LearningRateSweep.Run(jsonLine:settings:)`), each line of the input read
/// both ways.
///
/// Properties:
/// - every metrics record read, written as Kiln writes it (`JSONFile.encoded`) and read again, is the same
///   record, and none is past the step asked for;
/// - every sweep line that reads with the settings it names, written again with `jsonLine(settings:)` and
///   read with those settings, is the same run.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONLines(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzInput(data, size)
    let contents = Data(bytes)
    // The resume step: the first line's leading digits if it has any (so records past it are met), else all.
    let step = Int(String(decoding: bytes.prefix { $0 >= 0x30 && $0 <= 0x39 }.prefix(6), as: UTF8.self)) ?? Int.max
    let records = TrainingRun.metricsRecords(in: contents, upToStep: step)
    for record in records {
        require(record.step <= step, "read a record of step \(record.step) when resuming at step \(step)")
        let line = mustSucceed("encoding a metrics record") { try JSONFile.encoded(record) + [0x0A] }
        let again = TrainingRun.metricsRecords(in: line, upToStep: Int.max)
        require(again == [record], "metrics record \(record) came back as \(again) from \(String(decoding: line, as: UTF8.self))")
    }
    for line in contents.split(separator: 0x0A, omittingEmptySubsequences: true) {
        guard let settings = try? JSONDecoder().decode(SweepLineSettings.self, from: Data(line)).settings,
            let run = LearningRateSweep.Run(jsonLine: line, settings: settings)
        else { continue }
        let written = mustSucceed("encoding a sweep run") { try run.jsonLine(settings: settings) }
        let again = LearningRateSweep.Run(jsonLine: written, settings: settings)
        require(again == run, "sweep run \(run) came back as \(String(describing: again)) from \(String(decoding: written, as: UTF8.self))")
    }
    return 0
}

/// The `settings` of a `--runs` line, so that a line can be read with the settings it was written with.
struct SweepLineSettings: Decodable {
    var settings: LearningRateSweep.RunSettings
}

import Foundation
import FuzzSupport
import Kiln

/// Building a `text:FILE` task from a file's bytes (`TextTask(contents:path:length:seed:)`), with
/// `--seq-len 8`.
///
/// Properties, for every input that makes a task:
/// - the vocabulary is the text's distinct characters, each once, and the task's classes are as many;
/// - the test set and a training batch hold `rows × 8` tokens and labels, every one a vocabulary index;
/// - the whole text encodes (`encode`) to tokens that spell the text again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTextTask(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzInput(data, size)
    let length = 8
    guard let task = try? TextTask(contents: Data(bytes), path: "input.txt", length: length, seed: 1) else { return 0 }
    let vocabulary = task.characters.count
    require(Set(task.characters).count == vocabulary, "the vocabulary repeats a character")
    require(task.targetKind == .classes(vocabulary), "target kind \(task.targetKind) for \(vocabulary) characters")
    for (name, batch) in [("test set", task.testSet), ("training batch", task.trainBatch(step: 3, batchSize: 4))] {
        let tokens = batch.tokens ?? [], labels = batch.labels ?? []
        require(tokens.count == batch.rows * length && labels.count == tokens.count, "\(name): \(tokens.count) tokens, \(labels.count) labels, \(batch.rows) rows")
        require(tokens.allSatisfy { $0 >= 0 && Int($0) < vocabulary } && labels.allSatisfy { $0 >= 0 && Int($0) < vocabulary },
                "\(name): a token outside the vocabulary of \(vocabulary)")
    }
    // The text as the task read it (Foundation's UTF-8 decoding, which the task succeeded with).
    let text = String(data: Data(bytes), encoding: .utf8) ?? ""
    let tokens = mustSucceed("encoding the task's own text") { try task.encode(text) }
    require(String(tokens.map { task.characters[Int($0)] }) == text, "the text's tokens spell a different text")
    return 0
}

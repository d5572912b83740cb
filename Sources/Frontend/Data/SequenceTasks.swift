import Foundation

/// Multi-query associative recall (Arora, Eyuboglu et al., "Zoology", 2023), generated as Zoology's
/// `multiquery_ar` does: a sequence starts with `pairs` key–value pairs (keys from the lower half of the
/// vocabulary, values from the upper half, all distinct), then the keys reappear as queries at even
/// offsets drawn from a power law (a = 0.01, so most queries come soon after the context), and the model
/// must predict each query's value as the next token. Other positions hold random tokens and are not
/// scored (label −1). Training batches are fresh every step; the test set is 1,000 sequences.
public final class AssociativeRecallTask: TrainingTask {
    public let name = "mqar"
    public let pairs: Int
    public let length: Int
    public let vocabulary: Int
    public let trainCount: Int? = nil
    public private(set) var testSet: HostBatch
    private let seed: UInt64
    private let gapWeights: [Double]

    public var inputCount: Int { length }
    public var targetKind: TargetKind { .classes(vocabulary) }

    /// - Throws: ``TaskError`` when the sizes cannot make a sequence.
    public init(pairs: Int, length: Int, vocabulary: Int, seed: UInt64, testCount: Int = 1000) throws(TaskError) {
        guard pairs >= 1, length % 2 == 0, vocabulary > length, 4 * pairs <= length, pairs < vocabulary / 2 else {
            throw TaskError("mqar needs an even --seq-len at least 4 × --pairs and a --vocab larger than --seq-len (got pairs \(pairs), seq-len \(length), vocab \(vocabulary))")
        }
        self.pairs = pairs
        self.length = length
        self.vocabulary = vocabulary
        self.seed = seed
        let space = (length - 2 * pairs) / 2
        let power = 0.01
        let weights = (1...space).map { power * Foundation.pow(Double($0), power - 1) }
        let total = weights.reduce(0, +)
        gapWeights = weights.map { $0 / total }
        testSet = HostBatch(tokens: [], rows: 0, length: length, labels: [])
        testSet = sample(rows: testCount, stream: "mqar/test")
    }

    public func trainBatch(step: Int, batchSize: Int) -> HostBatch {
        sample(rows: batchSize, stream: "mqar/train/\(step)")
    }

    private func sample(rows: Int, stream: String) -> HostBatch {
        var generator = RandomGenerator(seed: seed, stream: stream)
        let half = vocabulary / 2
        var tokens = [Int32](), labels = [Int32]()
        tokens.reserveCapacity(rows * length)
        labels.reserveCapacity(rows * length)
        for _ in 0..<rows {
            let keys = Array(generator.permutation(half - 1).prefix(pairs)).map { Int32($0 + 1) }
            let values = Array(generator.permutation(vocabulary - half).prefix(pairs)).map { Int32($0 + half) }
            var sequence = [Int32](repeating: 0, count: length + 1)
            var targets = [Int32](repeating: -1, count: length + 1)
            for index in 0..<pairs {
                sequence[2 * index] = keys[index]
                sequence[2 * index + 1] = values[index]
            }
            // Query offsets: distinct gaps from the power law, placed at even positions after the context.
            let gaps = sampleWithoutReplacement(count: pairs, generator: &generator)
            for (index, gap) in gaps.enumerated() {
                let position = 2 * pairs + 2 * gap
                sequence[position] = keys[index]
                targets[position + 1] = values[index]
            }
            for position in 0..<length where sequence[position] == 0 {
                sequence[position] = Int32(generator.next() % UInt64(vocabulary))
            }
            tokens += sequence[0..<length]
            // Label at position p is the token that follows p: the value after a query key.
            labels += targets[1...length]
        }
        return HostBatch(tokens: tokens, rows: rows, length: length, labels: labels)
    }

    /// `count` distinct gap indices drawn with the power-law weights, without replacement.
    private func sampleWithoutReplacement(count: Int, generator: inout RandomGenerator) -> [Int] {
        var weights = gapWeights
        var chosen: [Int] = []
        for _ in 0..<count {
            let total = weights.reduce(0, +)
            var target = generator.nextUniform() * total
            var pick = weights.count - 1
            for (index, weight) in weights.enumerated() where weight > 0 {
                if target < weight {
                    pick = index
                    break
                }
                target -= weight
            }
            chosen.append(pick)
            weights[pick] = 0
        }
        return chosen
    }
}

/// A character-level language model on a UTF-8 text file (`--task text:FILE`): the vocabulary is the
/// file's distinct characters; the last 10% of the text is held out; training batches are random windows
/// of `length + 1` characters (fresh each step, from the seed); the test set is up to 256 consecutive
/// windows of the held-out text. Scored in bits per character.
public final class TextTask: TrainingTask {
    public let name: String
    public let length: Int
    /// The characters, in token order.
    public let characters: [Character]
    public let trainCount: Int? = nil
    public private(set) var testSet: HostBatch
    private let trainTokens: [Int32]
    private let seed: UInt64

    public var inputCount: Int { length }
    public var targetKind: TargetKind { .classes(characters.count) }

    /// The largest text file a text task reads: 256 MiB. Each character becomes a 4-byte token, kept twice
    /// (the whole text and the training part), beside the text itself and its characters.
    public static let maximumBytes = 256 << 20

    /// - Throws: ``TaskError`` for a missing, unreadable, non-regular, too large, non-UTF-8 or too short file.
    public convenience init(path: String, length: Int, seed: UInt64) throws(TaskError) {
        let data: Data
        do {
            data = try readRegularFile(path, maximumBytes: Self.maximumBytes, reason: "each character becomes 4-byte tokens, held twice")
        } catch {
            throw TaskError("text file \(error.description)")
        }
        try self.init(contents: data, path: path, length: length, seed: seed)
    }

    /// The task on a text file's contents.
    ///
    /// - Parameters:
    ///   - contents: The file's bytes, UTF-8.
    ///   - path: The file's path, for the task's name and errors.
    /// - Throws: ``TaskError`` for contents that are not UTF-8 or too short.
    public init(contents data: Data, path: String, length: Int, seed: UInt64) throws(TaskError) {
        guard let text = String(data: data, encoding: .utf8) else {
            throw TaskError("text file \(path) is not valid UTF-8")
        }
        let alphabet = Array(Set(text)).sorted { String($0) < String($1) }
        let index = Dictionary(uniqueKeysWithValues: alphabet.enumerated().map { ($1, Int32($0)) })
        let tokens = text.map { index[$0]! }
        let split = tokens.count * 9 / 10
        guard split > length + 1, tokens.count - split > length + 1 else {
            throw TaskError("text file \(path) has \(tokens.count) characters; it needs more than \(10 * (length + 2)) for --seq-len \(length)")
        }
        self.name = "text:\(path)"
        self.length = length
        self.characters = alphabet
        self.trainTokens = Array(tokens[..<split])
        self.seed = seed
        let held = Array(tokens[split...])
        let windows = min(256, (held.count - 1) / length)
        var testTokens = [Int32](), testLabels = [Int32]()
        for window in 0..<windows {
            let start = window * length
            testTokens += held[start..<(start + length)]
            testLabels += held[(start + 1)..<(start + length + 1)]
        }
        testSet = HostBatch(tokens: testTokens, rows: windows, length: length, labels: testLabels)
    }

    public func trainBatch(step: Int, batchSize: Int) -> HostBatch {
        var generator = RandomGenerator(seed: seed, stream: "text/train/\(step)")
        var tokens = [Int32](), labels = [Int32]()
        for _ in 0..<batchSize {
            let start = Int(generator.next() % UInt64(trainTokens.count - length - 1))
            tokens += trainTokens[start..<(start + length)]
            labels += trainTokens[(start + 1)..<(start + length + 1)]
        }
        return HostBatch(tokens: tokens, rows: batchSize, length: length, labels: labels)
    }

    /// Token ids of a text; characters not in the vocabulary are an error naming them.
    public func encode(_ text: String) throws(TaskError) -> [Int32] {
        let index = Dictionary(uniqueKeysWithValues: characters.enumerated().map { ($1, Int32($0)) })
        var result: [Int32] = []
        for character in text {
            guard let token = index[character] else { throw TaskError("the prompt's character '\(character)' never occurs in the training text") }
            result.append(token)
        }
        return result
    }
}

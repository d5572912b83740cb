import Foundation
import Kiln
import Testing

@Suite("Formats: JSON and JSON Lines")
struct FormatsJSONTests {
    @Test func writesSortedKeysAndNonFiniteNumbersAsNull() throws {
        let text = String(decoding: try JSONFile.encoded(["b": "x\"y\\z\n\u{01}/é", "a": "1"]), as: UTF8.self)
        #expect(text == #"{"a":"1","b":"x\"y\\z\n\u0001/é"}"#)

        var record = try JSONFile.decode(MetricsRecord.self, from: Data(#"{"step":3,"train_loss":0.1,"lr":0.001,"seconds":2}"#.utf8), file: "m")
        record.testLoss = .nan
        record.testAccuracy = 1.0 / 3.0
        record.trainAccuracy = .infinity
        let line = String(decoding: try JSONFile.encoded(record), as: UTF8.self)
        #expect(line == #"{"lr":0.001,"seconds":2,"step":3,"test_accuracy":0.3333333333333333,"test_loss":null,"train_accuracy":null,"train_loss":0.1}"#)
        // A null reads back as absent.
        let back = try JSONFile.decode(MetricsRecord.self, from: Data(line.utf8), file: "m")
        #expect(back.testLoss == nil && back.trainAccuracy == nil && back.testAccuracy == 1.0 / 3.0 && back.trainLoss == 0.1)
    }

    @Test func doublesAndFloatsRoundTripToTheSameBits() throws {
        var state: UInt64 = 42
        var doubles: [Double] = [.leastNonzeroMagnitude, 1e-300, -0.0, .greatestFiniteMagnitude, 0.1, 123_456_789_012_345_680]
        var floats: [Float] = [.leastNonzeroMagnitude, 1e-3, 3e-3, .greatestFiniteMagnitude]
        for _ in 0..<20_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1
            let double = Double(bitPattern: state)
            if double.isFinite { doubles.append(double) }
            let float = Float(bitPattern: UInt32(truncatingIfNeeded: state >> 17))
            if float.isFinite { floats.append(float) }
        }
        let backDoubles = try JSONFile.decode([Double].self, from: JSONFile.encoded(doubles), file: "d.json")
        #expect(backDoubles.map(\.bitPattern) == doubles.map(\.bitPattern))
        let backFloats = try JSONFile.decode([Float].self, from: JSONFile.encoded(floats), file: "f.json")
        #expect(backFloats.map(\.bitPattern) == floats.map(\.bitPattern))
    }

    @Test func decodingErrorsAreOneLineAndNameTheProblem() {
        struct Record: Decodable { var step: Int }
        for (text, fragment) in [("{\"step\":", "invalid JSON"), ("{}", "missing \"step\""), ("{\"step\":\"x\"}", "step")] {
            FormatsFixture.expectError(file: "m.json", [fragment]) { () throws(FormatError) in
                try JSONFile.decode(Record.self, from: Data(text.utf8), file: "m.json")
            }
        }
    }

    @Test func writesFilesEndingInALineBreak() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("summary.json")
        try JSONFile.write(["steps": 3], to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == "{\"steps\":3}\n")
    }

    @Test func jsonLinesWriterAppendsAndRepairsTornLines() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("log.jsonl")
        let writer = try JSONLinesWriter(url: url, append: false)
        try writer.write(["step": 1, "loss": 0.5])
        // Each line reaches the file before the writer is closed.
        #expect(try String(contentsOf: url, encoding: .utf8) == "{\"loss\":0.5,\"step\":1}\n")
        writer.close()
        #expect(throws: FormatError.self) { try writer.write(["step": 2]) }

        // Simulate a crash in the middle of a line, then append.
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"step\":".utf8))
        try handle.close()
        let appender = try JSONLinesWriter(url: url, append: true)
        try appender.write(["step": "3", "phase": "eval"])
        appender.close()
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.last == "{\"phase\":\"eval\",\"step\":\"3\"}")

        let fresh = try JSONLinesWriter(url: url, append: false)
        fresh.close()
        #expect(try String(contentsOf: url, encoding: .utf8) == "")
    }
}

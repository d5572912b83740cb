import Foundation
import Kiln
import Testing

@Suite("Formats: gzip")
struct FormatsGzipTests {
    /// Inputs the Python fixture compresses: name and contents.
    static func inputs() -> [(String, [UInt8])] {
        var text: [UInt8] = []
        let words = ["loss", "gradient", "tensor", "kiln", "epoch", "the", "of", "a", "batch", "norm"]
        var state: UInt64 = 7
        while text.count < 1_500_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            text += Array(words[Int(state >> 60) % words.count].utf8) + [state >> 59 & 1 == 0 ? 0x20 : 0x0A]
        }
        return [
            ("empty", []),
            ("random", FormatsFixture.randomBytes(count: 100_000, seed: 3)),
            ("repetitive", Array(String(repeating: "abcabcabd", count: 20_000).utf8) + Array(repeating: 0x7A, count: 70_000)),
            ("large", text),
            ("mixed", FormatsFixture.randomBytes(count: 40_000, seed: 5) + Array(repeating: 1, count: 100_000) + Array(text.prefix(300_000))),
        ]
    }

    @Test(.enabled(if: FormatsFixture.hasPython))
    func inflatesWhatPythonCompressesAtEveryLevel() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let inputs = Self.inputs()
        for (name, bytes) in inputs {
            try Data(bytes).write(to: folder.appendingPathComponent(name))
        }
        try FormatsFixture.python(
            """
            import sys, gzip
            folder, names = sys.argv[1], sys.argv[2:]
            for name in names:
                data = open(f'{folder}/{name}', 'rb').read()
                for level in [0, 1, 6, 9]:
                    open(f'{folder}/{name}.{level}.gz', 'wb').write(gzip.compress(data, compresslevel=level))
                # Two members concatenated, the second with a file name in its header.
                with gzip.GzipFile(f'{folder}/{name}.named', 'wb', compresslevel=6) as f:
                    f.write(data[:1000])
                open(f'{folder}/{name}.multi.gz', 'wb').write(gzip.compress(data, 9) + open(f'{folder}/{name}.named', 'rb').read())
            """, [folder.path] + inputs.map(\.0))
        for (name, bytes) in inputs {
            for level in [0, 1, 6, 9] {
                let url = folder.appendingPathComponent("\(name).\(level).gz")
                let compressed = try FormatsFixture.readBytes(url)
                let start = Date()
                let inflated = try Gzip.decompress(compressed, file: url.lastPathComponent)
                let seconds = Date().timeIntervalSince(start)
                #expect(inflated == bytes, "\(name) level \(level)")
                // Generous even for debug builds; release builds take milliseconds.
                #expect(seconds < 10, "\(name) level \(level) took \(seconds) s")
            }
            let multi = try FormatsFixture.readBytes(folder.appendingPathComponent("\(name).multi.gz"))
            #expect(try Gzip.decompress(multi, file: "multi") == bytes + bytes.prefix(1000))
        }
    }

    /// `gzip.compress(b"3,4\n", 9, mtime=0)`: a 10-byte header, 6 bytes of DEFLATE data, CRC-32 and length.
    static let small: [UInt8] = [
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x33, 0xd6, 0x31, 0xe1, 0x02, 0x00,
        0x3e, 0x2d, 0x72, 0xa9, 0x04, 0x00, 0x00, 0x00,
    ]

    @Test func membersPaddingAndDamageWithClearErrors() throws {
        let text = Array("3,4\n".utf8)
        #expect(Gzip.isCompressed(Self.small) && !Gzip.isCompressed(text))
        #expect(try Gzip.decompress(Self.small, file: "s") == text)
        // Members are joined; zero padding after the last is ignored, other trailing bytes are not.
        #expect(try Gzip.decompress(Self.small + Self.small, file: "s") == text + text)
        #expect(try Gzip.decompress(Self.small + [0, 0, 0, 0], file: "padded") == text)
        FormatsFixture.expectError(file: "junk", ["after the gzip member"]) { () throws(FormatError) in
            try Gzip.decompress(Self.small + [1, 2, 3], file: "junk")
        }
        FormatsFixture.expectError(file: "m", ["not a gzip file"]) { () throws(FormatError) in
            try Gzip.decompress(Array("plain text".utf8), file: "m")
        }
        FormatsFixture.expectError(file: "z", ["empty"]) { () throws(FormatError) in
            try Gzip.decompress([], file: "z")
        }
        for (position, fragment) in [(16, "CRC-32 mismatch"), (20, "length mismatch"), (3, "corrupted")] {
            var damaged = Self.small
            damaged[position] ^= 0x40
            FormatsFixture.expectError(file: "d", [fragment]) { () throws(FormatError) in try Gzip.decompress(damaged, file: "d") }
        }
        for length in 2..<Self.small.count {
            FormatsFixture.expectError(file: "t", ["truncated"]) { () throws(FormatError) in
                try Gzip.decompress(Array(Self.small.prefix(length)), file: "t")
            }
        }
    }

    @Test(.enabled(if: FormatsFixture.hasPython))
    func corruptedAndTruncatedStreamsThrow() throws {
        let text = Array(String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 400).utf8)
            + FormatsFixture.randomBytes(count: 3000, seed: 9)
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(text).write(to: folder.appendingPathComponent("input"))
        try FormatsFixture.python(
            "import sys, gzip\nd = open(sys.argv[1] + '/input', 'rb').read()\nopen(sys.argv[1] + '/x.gz', 'wb').write(gzip.compress(d, 6))",
            [folder.path]
        )
        let compressed = try FormatsFixture.readBytes(folder.appendingPathComponent("x.gz"))
        #expect(try Gzip.decompress(compressed, file: "x.gz") == text)
        // Flip one byte anywhere after the header's MTIME/XFL/OS fields: always an error, never a crash.
        for position in 10..<compressed.count {
            var damaged = compressed
            damaged[position] ^= 0xff
            #expect(FormatsFixture.formatError { () throws(FormatError) in try Gzip.decompress(damaged, file: "x.gz") } != nil, "byte \(position)")
        }
        for length in stride(from: 0, to: compressed.count, by: 7) {
            FormatsFixture.expectError(file: "x.gz", []) { () throws(FormatError) in
                try Gzip.decompress(Array(compressed.prefix(length)), file: "x.gz")
            }
        }
        // Random damage: any outcome but a crash.
        var state: UInt64 = 1
        for _ in 0..<300 {
            var damaged = compressed
            for _ in 0..<3 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                damaged[10 + Int(state >> 33) % (compressed.count - 10)] = UInt8(truncatingIfNeeded: state >> 20)
            }
            _ = FormatsFixture.formatError { () throws(FormatError) in try Gzip.decompress(damaged, file: "x.gz") }
        }
    }

    @Test(.enabled(if: FormatsFixture.digitsURL != nil))
    func readsTheDigitsDataSet() throws {
        guard let url = FormatsFixture.digitsURL else { return }
        let table = try CSVTable.read(from: url)
        #expect(table.rows == 1_797)
        #expect(table.columns == 65)
        #expect(Array(table.row(0)) == [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0,
                                         0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0, 0])
        for row in 0..<table.rows {
            let values = table.row(row)
            #expect(values.dropLast().allSatisfy { $0 >= 0 && $0 <= 16 && $0 == $0.rounded() })
            #expect(values.last.map { $0 >= 0 && $0 <= 9 } == true)
        }
        // Damage the compressed file: an error, not a crash.
        var bytes = try FormatsFixture.readBytes(url)
        bytes[bytes.count / 2] ^= 0x55
        #expect(FormatsFixture.formatError { () throws(FormatError) in try Gzip.decompress(bytes, file: "digits.csv.gz") } != nil)
    }
}

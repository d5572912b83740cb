import Foundation
import Kiln
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

// MARK: - Test support

/// Temporary folders, Python fixtures and error capture shared by the format tests.
private enum FormatsFixture {
    /// A new, empty folder under the system's temporary directory.
    static func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("kiln-formats-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Runs a Python 3 script and returns what it printed.
    ///
    /// - Throws: An error holding Python's standard error when the script fails.
    @discardableResult
    static func python(_ script: String, _ arguments: [String] = []) throws -> String {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let scriptURL = folder.appendingPathComponent("script.py")
        try Data(script.utf8).write(to: scriptURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", scriptURL.path] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PythonFailure(message: String(decoding: errorData, as: UTF8.self))
        }
        return String(decoding: outputData, as: UTF8.self)
    }

    struct PythonFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { "python3 failed: \(message)" }
    }

    /// Whether `python3` with numpy can be run.
    static let hasNumpy: Bool = (try? python("import numpy\nprint('ok')"))?.contains("ok") ?? false

    /// Whether `python3` can be run at all.
    static let hasPython: Bool = (try? python("print('ok')"))?.contains("ok") ?? false

    /// Whether the `safetensors` Python package is installed.
    static let hasSafetensors: Bool = (try? python("import numpy, safetensors.numpy\nprint('ok')"))?.contains("ok") ?? false

    /// The digits data set, from the project's data folder or the shared one.
    static let digitsURL: URL? = {
        let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [
            projectRoot.appendingPathComponent("data/digits.csv.gz"),
            URL(fileURLWithPath: "/work/shared/data/digits.csv.gz"),
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }
    }()

    /// The error a throwing call produced, or nil when it returned.
    static func formatError<T>(_ body: () throws(FormatError) -> T) -> FormatError? {
        do {
            _ = try body()
            return nil
        } catch {
            return error
        }
    }

    /// Expects a call to throw a one-line `FormatError` naming `file` whose message contains every fragment.
    static func expectError<T>(
        file: String, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () throws(FormatError) -> T
    ) {
        guard let error = formatError(body) else {
            Issue.record("expected a FormatError containing \(fragments)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.file == file, sourceLocation: sourceLocation)
        #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
        #expect(error.description.hasPrefix("\(file): "), sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(error.message.contains(fragment), "\(error.message) should contain \(fragment)", sourceLocation: sourceLocation)
        }
    }

    /// Deterministic pseudo-random bytes.
    static func randomBytes(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    static func readBytes(_ url: URL) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url))
    }
}

/// A minimal XML well-formedness check: balanced tags, quoted attributes, known entities.
private func formatsIsWellFormedXML(_ text: String) -> Bool {
    var stack: [Substring] = []
    var index = text.startIndex
    var sawRoot = false
    while index < text.endIndex {
        let character = text[index]
        if character == "&" {
            guard let end = text[index...].firstIndex(of: ";") else { return false }
            let entity = text[text.index(after: index)..<end]
            guard ["amp", "lt", "gt", "quot", "apos"].contains(String(entity)) || entity.hasPrefix("#") else { return false }
            index = text.index(after: end)
            continue
        }
        if character != "<" {
            if character == ">" { return false }
            index = text.index(after: index)
            continue
        }
        guard let close = text[index...].firstIndex(of: ">") else { return false }
        let tag = text[text.index(after: index)..<close]
        if tag.hasPrefix("?") {
            guard tag.hasSuffix("?") else { return false }
        } else if tag.hasPrefix("/") {
            guard let open = stack.popLast(), open == tag.dropFirst() else { return false }
        } else {
            let selfClosing = tag.hasSuffix("/")
            let body = selfClosing ? tag.dropLast() : tag
            guard let name = body.split(whereSeparator: { $0 == " " || $0 == "\n" }).first else { return false }
            if body.contains("<") { return false }
            if body.filter({ $0 == "\"" }).count % 2 != 0 { return false }
            if stack.isEmpty && sawRoot { return false }
            sawRoot = true
            if !selfClosing { stack.append(name) }
        }
        index = text.index(after: close)
    }
    return stack.isEmpty && sawRoot
}

/// Checks that a document is well-formed XML, with Foundation's parser where available.
private func formatsExpectValidXML(_ document: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(formatsIsWellFormedXML(document), sourceLocation: sourceLocation)
    #if canImport(FoundationXML) || os(macOS)
    do {
        let parsed = try XMLDocument(xmlString: document, options: [])
        #expect(parsed.rootElement()?.name == "svg", sourceLocation: sourceLocation)
    } catch {
        Issue.record("XMLDocument rejected the SVG: \(error)", sourceLocation: sourceLocation)
    }
    #endif
}

/// How many times a substring occurs.
private func formatsOccurrences(of needle: String, in text: String) -> Int {
    text.components(separatedBy: needle).count - 1
}

/// The `points` attributes of the document's polylines, as point counts.
private func formatsPolylinePointCounts(_ document: String) -> [Int] {
    document.components(separatedBy: "<polyline").dropFirst().map { element in
        guard let start = element.range(of: "points=\"") else { return 0 }
        let rest = element[start.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return 0 }
        return rest[..<end].split(separator: " ").count
    }
}

// MARK: - FormatError and atomic writes

@Suite("Formats: errors and atomic writes")
struct FormatsBasicsTests {
    @Test func errorDescriptionIsOneLine() {
        let error = FormatError(file: "a.npy", message: "bad\nthing")
        #expect(error.description == "a.npy: bad thing")
        #expect(error == FormatError(file: "a.npy", message: "bad\nthing"))
    }

    @Test func writeAtomicallyReplacesAndLeavesNoTemporaryFiles() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("data.bin")
        try writeAtomically([1, 2, 3], to: url)
        try writeAtomically([4, 5], to: url)
        #expect(try FormatsFixture.readBytes(url) == [4, 5])
        try writeAtomically([], to: url)
        #expect(try FormatsFixture.readBytes(url) == [])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["data.bin"])
    }

    @Test func writeAtomicallyIntoMissingFolderThrows() {
        let url = URL(fileURLWithPath: "/nonexistent-kiln-folder/x.bin")
        #expect(throws: FormatError.self) { try writeAtomically([1], to: url) }
    }

    @Test func readingMissingFileThrows() {
        FormatsFixture.expectError(file: "/nonexistent-kiln-folder/x.npy", ["no such file"]) { () throws(FormatError) in
            try NpyArray.read(from: URL(fileURLWithPath: "/nonexistent-kiln-folder/x.npy"))
        }
    }
}

// MARK: - JSON

@Suite("Formats: JSON and JSON Lines")
struct FormatsJSONTests {
    @Test func serializesWithSortedKeysAndLosslessNumbers() throws {
        let value: JSONValue = [
            "b": 1, "a": .number(0.1), "c": [true, nil, "x\"y\\z\n\u{01}"],
            "d": .number(.nan), "e": .number(-.infinity), "f": .number(1.0 / 3.0), "g": .number(1e-300),
        ]
        let text = value.serialized()
        #expect(text == #"{"a":0.1,"b":1,"c":[true,null,"x\"y\\z\n\u0001"],"d":null,"e":null,"f":0.3333333333333333,"g":1e-300}"#)
        let parsed = try JSONValue.parse(text, file: "test.json")
        guard case .object(let members) = parsed else {
            Issue.record("not an object")
            return
        }
        #expect(members["f"] == .number(1.0 / 3.0))
        #expect(members["g"] == .number(1e-300))
        #expect(members["c"] == [true, nil, "x\"y\\z\n\u{01}"])
        #expect(members["b"] == .integer(1))
    }

    @Test func roundTripsRandomDoubles() throws {
        var state: UInt64 = 42
        for _ in 0..<500 {
            state = state &* 6_364_136_223_846_793_005 &+ 1
            let value = Double(bitPattern: state)
            guard value.isFinite else { continue }
            let parsed = try JSONValue.parse(JSONValue.number(value).serialized(), file: "x")
            switch parsed {
            case .number(let back): #expect(back == value)
            case .integer(let back): #expect(Double(back) == value)
            default: Issue.record("unexpected \(parsed)")
            }
        }
    }

    @Test func parsesUnicodeEscapes() throws {
        #expect(try JSONValue.parse(#" ["\u00e9\ud83d\ude00", -0.5e2, 12] "#, file: "x") == ["é😀", .number(-50), 12])
    }

    @Test func rejectsInvalidJSON() {
        for text in ["", "{", "{\"a\":1,}", "[1 2]", "01", "\"abc", "{\"a\":1,\"a\":2}", "nul", "[1]x", String(repeating: "[", count: 600)] {
            FormatsFixture.expectError(file: "bad.json", ["invalid JSON at byte"]) { () throws(FormatError) in
                try JSONValue.parse(text, file: "bad.json")
            }
        }
    }

    @Test func jsonLinesWriterAppendsAndRepairsTornLines() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("log.jsonl")
        let writer = try JSONLinesWriter(url: url, append: false)
        try writer.write(["step": 1, "loss": .number(0.5)])
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
        try appender.write(["step": 3, "phase": "eval"])
        appender.close()
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.last == "{\"phase\":\"eval\",\"step\":3}")

        let fresh = try JSONLinesWriter(url: url, append: false)
        fresh.close()
        #expect(try String(contentsOf: url, encoding: .utf8) == "")
    }
}

// MARK: - NumPy .npy

@Suite("Formats: NumPy .npy")
struct FormatsNpyTests {
    /// The dtypes with their numpy names and the value formula the fixture script uses.
    static let dtypeNames: [(NpyArray.DType, String)] = [
        (.float32, "float32"), (.float64, "float64"), (.int8, "int8"), (.int16, "int16"), (.int32, "int32"),
        (.int64, "int64"), (.uint8, "uint8"), (.uint16, "uint16"), (.uint32, "uint32"), (.uint64, "uint64"), (.bool, "bool"),
    ]

    /// The value the fixture stores at C-order index `index` for a dtype.
    static func expectedValue(_ index: Int, _ dtype: NpyArray.DType) -> Double {
        switch dtype {
        case .float32, .float64: return Double(index - 10) * 0.5
        case .int8, .int16, .int32, .int64: return Double(index - 10)
        case .uint8, .uint16, .uint32, .uint64: return Double(index * 3)
        case .bool: return index % 3 == 0 ? 1 : 0
        }
    }

    @Test(.enabled(if: FormatsFixture.hasNumpy))
    func readsEveryDtypeOrderAndByteOrderWrittenByNumpy() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FormatsFixture.python(
            """
            import sys, numpy as np
            folder = sys.argv[1]
            i = np.arange(24).reshape(2, 3, 4)
            for name in ['float32','float64','int8','int16','int32','int64','uint8','uint16','uint32','uint64','bool']:
                if name.startswith('float'): a = ((i - 10) * 0.5).astype(name)
                elif name.startswith('int'): a = (i - 10).astype(name)
                elif name.startswith('uint'): a = (i * 3).astype(name)
                else: a = (i % 3 == 0)
                for order in ['C', 'F']:
                    for endian in ['<', '>']:
                        b = a.astype(a.dtype.newbyteorder(endian)) if a.dtype.itemsize > 1 else a
                        b = np.asfortranarray(b) if order == 'F' else np.ascontiguousarray(b)
                        np.save(f'{folder}/{name}_{order}_{endian}.npy', b)
            """, [folder.path])
        for (dtype, name) in Self.dtypeNames {
            for order in ["C", "F"] {
                for endian in ["<", ">"] {
                    let url = folder.appendingPathComponent("\(name)_\(order)_\(endian).npy")
                    let array = try NpyArray.read(from: url)
                    #expect(array.shape == [2, 3, 4], "\(url.lastPathComponent)")
                    #expect(array.dtype == dtype, "\(url.lastPathComponent)")
                    #expect(array.values == (0..<24).map { Self.expectedValue($0, dtype) }, "\(url.lastPathComponent)")
                }
            }
        }
    }

    @Test(.enabled(if: FormatsFixture.hasNumpy))
    func readsScalarsEmptyArraysVersionsAndFortranMatrices() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FormatsFixture.python(
            """
            import sys, numpy as np
            from numpy.lib import format as fmt
            folder = sys.argv[1]
            np.save(f'{folder}/scalar.npy', np.float64(3.5))
            np.save(f'{folder}/empty.npy', np.zeros((0, 3), np.float32))
            np.save(f'{folder}/empty_f.npy', np.asfortranarray(np.zeros((3, 0, 2), np.int16)))
            np.save(f'{folder}/vector.npy', np.array([1.5, -2.25, 1e30], np.float32))
            np.save(f'{folder}/matrix_f.npy', np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)))
            for version in [(1, 0), (2, 0), (3, 0)]:
                with open(f'{folder}/v{version[0]}.npy', 'wb') as f:
                    fmt.write_array(f, np.arange(5, dtype='>i8'), version=version)
            """, [folder.path])
        let scalar = try NpyArray.read(from: folder.appendingPathComponent("scalar.npy"))
        #expect(scalar.shape == [] && scalar.values == [3.5] && scalar.dtype == .float64)
        let empty = try NpyArray.read(from: folder.appendingPathComponent("empty.npy"))
        #expect(empty.shape == [0, 3] && empty.values.isEmpty)
        let emptyFortran = try NpyArray.read(from: folder.appendingPathComponent("empty_f.npy"))
        #expect(emptyFortran.shape == [3, 0, 2] && emptyFortran.values.isEmpty && emptyFortran.dtype == .int16)
        let vector = try NpyArray.read(from: folder.appendingPathComponent("vector.npy"))
        #expect(vector.floats == [1.5, -2.25, 1e30])
        let matrix = try NpyArray.read(from: folder.appendingPathComponent("matrix_f.npy"))
        #expect(matrix.shape == [2, 3] && matrix.values == [0, 1, 2, 3, 4, 5])
        for version in 1...3 {
            let array = try NpyArray.read(from: folder.appendingPathComponent("v\(version).npy"))
            #expect(array.values == [0, 1, 2, 3, 4] && array.dtype == .int64)
        }
    }

    @Test(.enabled(if: FormatsFixture.hasNumpy))
    func numpyReadsWhatKilnWrites() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for (dtype, name) in Self.dtypeNames {
            let values = (0..<24).map { Self.expectedValue($0, dtype) }
            try NpyArray(shape: [2, 3, 4], values: values, dtype: dtype).write(to: folder.appendingPathComponent("\(name).npy"))
        }
        try NpyArray(shape: [], values: [7], dtype: .float64).write(to: folder.appendingPathComponent("scalar.npy"))
        try NpyArray(shape: [3, 0], floats: []).write(to: folder.appendingPathComponent("empty.npy"))
        try NpyArray(shape: [3], floats: [0.1, -1, 3e-8]).write(to: folder.appendingPathComponent("floats.npy"))
        let report = try FormatsFixture.python(
            """
            import sys, json, numpy as np
            folder = sys.argv[1]
            out = {}
            for name in ['float32','float64','int8','int16','int32','int64','uint8','uint16','uint32','uint64','bool','scalar','empty','floats']:
                a = np.load(f'{folder}/{name}.npy')
                out[name] = {'dtype': a.dtype.name, 'shape': list(a.shape), 'values': [float(v) for v in a.ravel()]}
            print(json.dumps(out))
            """, [folder.path])
        guard case .object(let arrays) = try JSONValue.parse(report, file: "python output") else {
            Issue.record("python output is not an object")
            return
        }
        func numbers(_ value: JSONValue?) -> [Double] {
            guard case .array(let elements) = value else { return [] }
            return elements.map {
                switch $0 {
                case .number(let number): return number
                case .integer(let integer): return Double(integer)
                default: return .nan
                }
            }
        }
        for (dtype, name) in Self.dtypeNames {
            guard case .object(let fields) = arrays[name] else {
                Issue.record("missing \(name)")
                continue
            }
            #expect(fields["dtype"] == .string(name))
            #expect(fields["shape"] == [2, 3, 4])
            #expect(numbers(fields["values"]) == (0..<24).map { Self.expectedValue($0, dtype) })
        }
        guard case .object(let scalar) = arrays["scalar"], case .object(let empty) = arrays["empty"],
              case .object(let floats) = arrays["floats"]
        else {
            Issue.record("missing arrays")
            return
        }
        #expect(scalar["shape"] == [] && numbers(scalar["values"]) == [7])
        #expect(empty["shape"] == [3, 0] && empty["dtype"] == "float32")
        #expect(numbers(floats["values"]) == [0.1, -1, 3e-8].map { Double(Float($0)) })
    }

    @Test func encodedLayoutIsAlignedAndRoundTrips() throws {
        let array = NpyArray(shape: [2, 2], floats: [1, 2, 3, 4])
        let bytes = array.encoded()
        #expect(Array(bytes[0..<8]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        #expect(bytes[10 + headerLength - 1] == 0x0A)
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"))
        #expect(Array(bytes[(10 + headerLength)...]) == [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40])
        #expect(try NpyArray.decode(bytes, file: "x.npy") == array)

        // Out-of-range values are rounded and clamped for integer dtypes.
        let clamped = try NpyArray.decode(
            NpyArray(shape: [4], values: [300, -300, 1.6, .nan], dtype: .int8).encoded(), file: "x.npy"
        )
        #expect(clamped.values == [127, -128, 2, 0])

        // A header longer than 65,535 bytes needs version 2.0.
        let wide = NpyArray(shape: Array(repeating: 1, count: 30_000), values: [5], dtype: .uint16)
        let wideBytes = wide.encoded()
        #expect(wideBytes[6] == 2)
        #expect(try NpyArray.decode(wideBytes, file: "wide.npy") == wide)
    }

    @Test func labelsConvertToInt32OrNameTheBadIndex() throws {
        let labels = NpyArray(shape: [3], values: [0, 9, -2], dtype: .int64)
        #expect(try labels.integers(file: "y.npy") == [0, 9, -2])
        FormatsFixture.expectError(file: "y.npy", ["index 2", "2.5"]) { () throws(FormatError) in
            try NpyArray(shape: [3], values: [1, 2, 2.5], dtype: .float64).integers(file: "y.npy")
        }
        FormatsFixture.expectError(file: "y.npy", ["index 0"]) { () throws(FormatError) in
            try NpyArray(shape: [1], values: [3e9], dtype: .float64).integers(file: "y.npy")
        }
        FormatsFixture.expectError(file: "y.npy", ["index 1"]) { () throws(FormatError) in
            try NpyArray(shape: [2], values: [1, .nan], dtype: .float64).integers(file: "y.npy")
        }
    }

    /// A version 1.0 file with a hand-written header.
    static func handMade(header: String, data: [UInt8]) -> [UInt8] {
        var dictionary = Array(header.utf8)
        while (10 + dictionary.count + 1) % 64 != 0 { dictionary.append(0x20) }
        dictionary.append(0x0A)
        return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(dictionary.count & 0xff), UInt8(dictionary.count >> 8)]
            + dictionary + data
    }

    @Test func rejectsBadFilesWithClearErrors() {
        let file = "bad.npy"
        FormatsFixture.expectError(file: file, ["not a .npy file"]) { () throws(FormatError) in
            try NpyArray.decode(Array("PK\u{03}\u{04} this is a zip".utf8), file: file)
        }
        FormatsFixture.expectError(file: file, ["not a .npy file"]) { () throws(FormatError) in
            try NpyArray.decode([], file: file)
        }
        var wrongVersion = NpyArray(shape: [1], floats: [1]).encoded()
        wrongVersion[6] = 4
        FormatsFixture.expectError(file: file, ["unsupported .npy format version 4.0", "1.0, 2.0 and 3.0"]) { () throws(FormatError) in
            try NpyArray.decode(wrongVersion, file: file)
        }
        for header in ["{'descr': '<f4', 'fortran_order': False, 'shape': (2,", "not a dict", "{'descr': '<f4' 'shape': (1,)}"] {
            FormatsFixture.expectError(file: file, ["header"]) { () throws(FormatError) in
                try NpyArray.decode(Self.handMade(header: header, data: [0, 0, 0, 0]), file: file)
            }
        }
        FormatsFixture.expectError(file: file, ["'shape'"]) { () throws(FormatError) in
            try NpyArray.decode(Self.handMade(header: "{'descr': '<f4', 'fortran_order': False}", data: []), file: file)
        }
        FormatsFixture.expectError(file: file, ["shape", "non-negative"]) { () throws(FormatError) in
            try NpyArray.decode(Self.handMade(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", data: []), file: file)
        }
        for descriptor in ["<U5", "|O", "<c8", "<f2", "|S3", "<M8[ns]"] {
            FormatsFixture.expectError(file: file, ["unsupported dtype '\(descriptor)'", "float32, float64, int8"]) { () throws(FormatError) in
                try NpyArray.decode(
                    Self.handMade(header: "{'descr': '\(descriptor)', 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0, 0, 0, 0, 0]),
                    file: file
                )
            }
        }
        FormatsFixture.expectError(file: file, ["structured"]) { () throws(FormatError) in
            try NpyArray.decode(
                Self.handMade(header: "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0]), file: file
            )
        }
        let full = NpyArray(shape: [10], values: Array(repeating: 1, count: 10), dtype: .float64).encoded()
        FormatsFixture.expectError(file: file, ["truncated: expected 80 bytes of data, found 50"]) { () throws(FormatError) in
            try NpyArray.decode(Array(full.dropLast(30)), file: file)
        }
        // Every truncation fails cleanly.
        for length in 0..<full.count {
            #expect(FormatsFixture.formatError { () throws(FormatError) in try NpyArray.decode(Array(full.prefix(length)), file: file) } != nil)
        }
        // Python 2 style headers with long integers still parse.
        let python2 = Self.handMade(header: "{'descr': '|u1', 'fortran_order': False, 'shape': (2L, 1L), }", data: [7, 9])
        #expect((try? NpyArray.decode(python2, file: file))?.values == [7, 9])
    }

    @Test(.enabled(if: FormatsFixture.hasNumpy))
    func rejectsUnsupportedDtypesWrittenByNumpy() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FormatsFixture.python(
            """
            import sys, numpy as np
            folder = sys.argv[1]
            np.save(f'{folder}/unicode.npy', np.array(['abcde']))
            np.save(f'{folder}/object.npy', np.array([1, 'a'], dtype=object), allow_pickle=True)
            np.save(f'{folder}/complex.npy', np.zeros(3, np.complex64))
            """, [folder.path])
        for (name, descriptor) in [("unicode", "<U5"), ("object", "|O"), ("complex", "<c8")] {
            let url = folder.appendingPathComponent("\(name).npy")
            FormatsFixture.expectError(file: url.path, ["unsupported dtype '\(descriptor)'"]) { () throws(FormatError) in
                try NpyArray.read(from: url)
            }
        }
    }
}

// MARK: - gzip

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

    @Test(.enabled(if: FormatsFixture.hasPython))
    func handlesOptionalHeaderFields() throws {
        let payload = Array("header fields test, header fields test, header fields test".utf8)
        let output = try FormatsFixture.python(
            "import sys, gzip\nsys.stdout.write(gzip.compress(sys.argv[1].encode(), 9, mtime=0).hex())",
            [String(decoding: payload, as: UTF8.self)]
        )
        var plain: [UInt8] = []
        var characters = Array(output.utf8)
        while characters.count >= 2 {
            plain.append(UInt8(String(decoding: characters.prefix(2), as: UTF8.self), radix: 16) ?? 0)
            characters.removeFirst(2)
        }
        #expect(try Gzip.decompress(plain, file: "plain") == payload)
        // Rebuild the header with FEXTRA, FNAME, FCOMMENT and FHCRC.
        var header: [UInt8] = [0x1f, 0x8b, 8, 0x04 | 0x08 | 0x10 | 0x02, 0, 0, 0, 0, 0, 3]
        header += [5, 0, 0x41, 0x42, 3, 0, 0x7a]
        header += Array("name.txt".utf8) + [0]
        header += Array("a comment".utf8) + [0]
        let crc = Gzip.crc32(header)
        header += [UInt8(crc & 0xff), UInt8(crc >> 8 & 0xff)]
        let flagged = header + plain[10...]
        #expect(try Gzip.decompress(flagged, file: "flagged") == payload)
        var badHeaderCRC = flagged
        badHeaderCRC[header.count - 1] ^= 0xff
        FormatsFixture.expectError(file: "flagged", ["header CRC"]) { () throws(FormatError) in
            try Gzip.decompress(badHeaderCRC, file: "flagged")
        }
        // Zero padding after the last member is ignored; other trailing bytes are not.
        #expect(try Gzip.decompress(plain + [0, 0, 0, 0], file: "padded") == payload)
        FormatsFixture.expectError(file: "junk", ["after the gzip member"]) { () throws(FormatError) in
            try Gzip.decompress(plain + [1, 2, 3], file: "junk")
        }
    }

    @Test func decodesHandMadeStreams() throws {
        // A stored block holding "hi", and a fixed block holding nothing.
        let storedBody: [UInt8] = [0x01, 0x02, 0x00, 0xfd, 0xff, 0x68, 0x69]
        let crc = Gzip.crc32(Array("hi".utf8))
        let trailer: [UInt8] = [UInt8(crc & 0xff), UInt8(crc >> 8 & 0xff), UInt8(crc >> 16 & 0xff), UInt8(crc >> 24), 2, 0, 0, 0]
        let header: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]
        #expect(try Gzip.decompress(header + storedBody + trailer, file: "s") == Array("hi".utf8))
        #expect(try Gzip.decompress(header + [0x03, 0x00] + [0, 0, 0, 0, 0, 0, 0, 0], file: "e") == [])
        #expect(Gzip.crc32(Array("123456789".utf8)) == 0xCBF4_3926)

        FormatsFixture.expectError(file: "s", ["stored block length"]) { () throws(FormatError) in
            try Gzip.decompress(header + [0x01, 0x02, 0x00, 0xfd, 0xfe, 0x68, 0x69] + trailer, file: "s")
        }
        FormatsFixture.expectError(file: "t", ["invalid block type"]) { () throws(FormatError) in
            try Gzip.decompress(header + [0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0], file: "t")
        }
        FormatsFixture.expectError(file: "m", ["not a gzip file"]) { () throws(FormatError) in
            try Gzip.decompress(Array("plain text".utf8), file: "m")
        }
        FormatsFixture.expectError(file: "z", ["empty"]) { () throws(FormatError) in
            try Gzip.decompress([], file: "z")
        }
        FormatsFixture.expectError(file: "c", ["CRC-32 mismatch"]) { () throws(FormatError) in
            var wrong = trailer
            wrong[0] ^= 1
            return try Gzip.decompress(header + storedBody + wrong, file: "c")
        }
        FormatsFixture.expectError(file: "l", ["length mismatch"]) { () throws(FormatError) in
            var wrong = trailer
            wrong[4] = 3
            return try Gzip.decompress(header + storedBody + wrong, file: "l")
        }
        // A fixed block whose first symbol is a match 1 byte back, before any output.
        FormatsFixture.expectError(file: "d", ["before the start"]) { () throws(FormatError) in
            try Gzip.decompress(header + [0x03, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], file: "d")
        }
        // A dynamic block header with over-subscribed code-length codes.
        FormatsFixture.expectError(file: "h", ["Huffman"]) { () throws(FormatError) in
            try Gzip.decompress(header + [0x05, 0xe0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0], file: "h")
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

// MARK: - CSV

@Suite("Formats: CSV")
struct FormatsCSVTests {
    @Test func parsesHeadersSeparatorsAndSpecialValues() throws {
        let table = try CSVTable.parse("a, b ,c\r\n1,2,3\r\n\r\n 4 , -5.5 ,1e3\n\"7\",nan,-inf\n", file: "t.csv")
        #expect(table.rows == 3 && table.columns == 3)
        #expect(Array(table.values.prefix(7)) == [1, 2, 3, 4, -5.5, 1000, 7])
        #expect(table.values[7].isNaN && table.values[8] == -.infinity)

        let noHeader = try CSVTable.parse("1 2\t3\n  4   5 6  \n", file: "w.txt")
        #expect(noHeader == CSVTable(rows: 2, columns: 3, values: [1, 2, 3, 4, 5, 6]))
        let semicolons = try CSVTable.parse("x;y\n1;2\n3;4", file: "s.csv")
        #expect(semicolons == CSVTable(rows: 2, columns: 2, values: [1, 2, 3, 4]))
        let bom = try CSVTable.parse("\u{FEFF}1,2\n", file: "b.csv")
        #expect(bom.values == [1, 2])
        let inf = try CSVTable.parse("Inf,INFINITY,+inf,NaN,123456789012345678", file: "i.csv")
        #expect(inf.values[0] == .infinity && inf.values[1] == .infinity && inf.values[2] == .infinity && inf.values[3].isNaN)
        #expect(inf.values[4] == 123_456_789_012_345_680)
    }

    @Test func reportsRowsAndColumnsInErrors() {
        FormatsFixture.expectError(file: "t.csv", ["row 3 has 2 columns, expected 3"]) { () throws(FormatError) in
            try CSVTable.parse("a,b,c\n1,2,3\n4,5\n", file: "t.csv")
        }
        FormatsFixture.expectError(file: "t.csv", ["row 7 column 2: 'abc' is not a number"]) { () throws(FormatError) in
            try CSVTable.parse("1,2\n3,4\n\n5,6\n7,8\n9,10\n11,abc\n", file: "t.csv")
        }
        FormatsFixture.expectError(file: "t.csv", ["row 2 column 2: '' is not a number"]) { () throws(FormatError) in
            try CSVTable.parse("1,2\n3,\n", file: "t.csv")
        }
        FormatsFixture.expectError(file: "e.csv", ["empty file"]) { () throws(FormatError) in
            try CSVTable.parse("", file: "e.csv")
        }
        FormatsFixture.expectError(file: "e.csv", ["empty file"]) { () throws(FormatError) in
            try CSVTable.parse("\n \n\t\n", file: "e.csv")
        }
        FormatsFixture.expectError(file: "h.csv", ["only a header"]) { () throws(FormatError) in
            try CSVTable.parse("x,y\n", file: "h.csv")
        }
        FormatsFixture.expectError(file: "n.csv", ["row 2 column 1"]) { () throws(FormatError) in
            try CSVTable.parse("x\n\u{01}\u{02}garbage\n", file: "n.csv")
        }
    }

    @Test func readsPlainAndCompressedFiles() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("table.csv")
        try writeAtomically(Array("x,y\n1,2\n".utf8), to: url)
        #expect(try CSVTable.read(from: url) == CSVTable(rows: 1, columns: 2, values: [1, 2]))
        // A stored-block gzip file written by hand.
        let body = Array("3,4\n".utf8)
        let crc = Gzip.crc32(body)
        let gzip: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0x01, 4, 0, 0xfb, 0xff] + body
            + [UInt8(crc & 0xff), UInt8(crc >> 8 & 0xff), UInt8(crc >> 16 & 0xff), UInt8(crc >> 24), 4, 0, 0, 0]
        let gzURL = folder.appendingPathComponent("table.csv.gz")
        try writeAtomically(gzip, to: gzURL)
        #expect(try CSVTable.read(from: gzURL) == CSVTable(rows: 1, columns: 2, values: [3, 4]))
        var damaged = gzip
        damaged[16] ^= 1
        try writeAtomically(damaged, to: gzURL)
        FormatsFixture.expectError(file: gzURL.path, ["CRC-32"]) { () throws(FormatError) in try CSVTable.read(from: gzURL) }
    }
}

// MARK: - safetensors

@Suite("Formats: safetensors")
struct FormatsSafeTensorsTests {
    static let sample = SafeTensorsFile(
        tensors: [
            .init(name: "weight", shape: [2, 3], values: [1, -2, 3.5, 0, 1e-20, -0.0]),
            .init(name: "bias", shape: [3], values: [0.25, 0.5, 0.75]),
            .init(name: "scale", shape: [], values: [2]),
            .init(name: "empty", shape: [0, 4], values: []),
            .init(name: "ünïcode \"quoted\"", shape: [1], values: [.infinity]),
        ],
        metadata: ["format": "pt", "note": "kiln \"test\""]
    )

    /// A file with a hand-written header and data.
    static func handMade(_ header: String, data: [UInt8]) -> [UInt8] {
        let headerBytes = Array(header.utf8)
        var bytes: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(headerBytes.count) >> UInt64(8 * $0)) }
        bytes += headerBytes
        bytes += data
        return bytes
    }

    @Test func roundTrips() throws {
        let bytes = Self.sample.encoded()
        let decoded = try SafeTensorsFile.decode(bytes, file: "m.safetensors")
        #expect(decoded == Self.sample)
        #expect(decoded.tensor(named: "bias")?.values == [0.25, 0.5, 0.75])
        #expect(decoded.tensor(named: "missing") == nil)

        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("m.safetensors")
        try Self.sample.write(to: url)
        #expect(try SafeTensorsFile.read(from: url) == Self.sample)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["m.safetensors"])

        let duplicate = SafeTensorsFile(tensors: [.init(name: "a", shape: [1], values: [1]), .init(name: "a", shape: [1], values: [2])], metadata: [:])
        #expect(throws: FormatError.self) { try duplicate.write(to: url) }
        let mismatched = SafeTensorsFile(tensors: [.init(name: "a", shape: [2], values: [1])], metadata: [:])
        #expect(mismatched.validationError(file: "x") != nil)
        #expect(throws: FormatError.self) { try mismatched.write(to: url) }
    }

    @Test func byteLayoutFollowsTheSpecification() throws {
        let file = SafeTensorsFile(
            tensors: [.init(name: "a", shape: [2], values: [1, -2]), .init(name: "b", shape: [], values: [0.5])], metadata: [:]
        )
        let bytes = file.encoded()
        let headerLength = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        #expect((8 + headerLength) % 8 == 0)
        #expect(bytes.count == 8 + headerLength + 12)
        let headerText = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        #expect(headerText.hasPrefix(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[],"data_offsets":[8,12]}}"#))
        #expect(headerText.trimmingCharacters(in: .whitespaces).hasSuffix("}"))
        #expect(!headerText.contains("__metadata__"))
        let header = try JSONValue.parse(headerText, file: "header")
        #expect(header == [
            "a": ["dtype": "F32", "shape": [2], "data_offsets": [0, 8]],
            "b": ["dtype": "F32", "shape": [], "data_offsets": [8, 12]],
        ])
        #expect(Array(bytes[(8 + headerLength)...]) == [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0, 0x3f])

        let withMetadata = SafeTensorsFile(tensors: file.tensors, metadata: ["k": "v"]).encoded()
        let metadataHeader = String(decoding: withMetadata[8...], as: UTF8.self)
        #expect(metadataHeader.hasPrefix(#"{"__metadata__":{"k":"v"},"a":"#))
    }

    @Test(.enabled(if: FormatsFixture.hasPython))
    func readsFilesWrittenByPlainPython() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try FormatsFixture.python(
            """
            import sys, json, struct
            folder = sys.argv[1]
            f32 = struct.pack('<3f', 1.5, -2.0, 3.25)
            f64 = struct.pack('<2d', 0.1, -1e10)
            f16 = struct.pack('<4e', 1.0, -0.5, 65504.0, 2.0 ** -24)
            bf16 = b''.join(struct.pack('<I', struct.unpack('<I', struct.pack('<f', v))[0])[2:] for v in [1.0, -3.0, 0.15625])
            data = f64 + f32 + f16 + bf16
            o = 0
            header = {'__metadata__': {'source': 'python'}}
            for name, dtype, shape, blob in [('d', 'F64', [2], f64), ('f', 'F32', [3, 1], f32), ('h', 'F16', [2, 2], f16), ('bf', 'BF16', [3], bf16)]:
                header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [o, o + len(blob)]}
                o += len(blob)
            text = json.dumps(header).encode()
            text += b' ' * ((8 - len(text) % 8) % 8)
            open(folder + '/py.safetensors', 'wb').write(struct.pack('<Q', len(text)) + text + data)
            """, [folder.path])
        let file = try SafeTensorsFile.read(from: folder.appendingPathComponent("py.safetensors"))
        #expect(file.metadata == ["source": "python"])
        #expect(file.tensors.map(\.name) == ["d", "f", "h", "bf"])
        #expect(file.tensor(named: "d")?.values == [Float(0.1), -1e10])
        #expect(file.tensor(named: "f")?.shape == [3, 1])
        #expect(file.tensor(named: "f")?.values == [1.5, -2, 3.25])
        #expect(file.tensor(named: "h")?.values == [1, -0.5, 65504, Float(sign: .plus, exponent: -24, significand: 1)])
        #expect(file.tensor(named: "bf")?.values == [1, -3, 0.15625])
    }

    @Test(.enabled(if: FormatsFixture.hasSafetensors))
    func interoperatesWithTheSafetensorsPackage() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.sample.write(to: folder.appendingPathComponent("kiln.safetensors"))
        let report = try FormatsFixture.python(
            """
            import sys, json, numpy as np
            from safetensors.numpy import save_file, load_file
            from safetensors import safe_open
            folder = sys.argv[1]
            save_file({'w': np.arange(6, dtype=np.float32).reshape(2, 3), 'h': np.array([0.5, -1], np.float16),
                       'd': np.array([[1e-3]], np.float64)}, folder + '/py.safetensors', metadata={'epoch': '3'})
            loaded = load_file(folder + '/kiln.safetensors')
            with safe_open(folder + '/kiln.safetensors', 'np') as f:
                meta = f.metadata()
            print(json.dumps({'meta': meta, 'tensors': {k: {'shape': list(v.shape), 'dtype': str(v.dtype),
                              'values': [float(x) for x in v.ravel()]} for k, v in loaded.items()}}))
            """, [folder.path])
        let python = try SafeTensorsFile.read(from: folder.appendingPathComponent("py.safetensors"))
        #expect(python.metadata == ["epoch": "3"])
        #expect(python.tensor(named: "w")?.values == [0, 1, 2, 3, 4, 5])
        #expect(python.tensor(named: "w")?.shape == [2, 3])
        #expect(python.tensor(named: "h")?.values == [0.5, -1])
        #expect(python.tensor(named: "d")?.values == [Float(1e-3)])

        // Python read Kiln's file: check names, shapes, dtypes and values (JSON has no infinity, so compare that one by name).
        let cleaned = report.replacingOccurrences(of: "Infinity", with: "1e999")
        guard case .object(let root) = try JSONValue.parse(cleaned, file: "python output"),
              case .object(let tensors) = root["tensors"]
        else {
            Issue.record("unexpected python output \(report)")
            return
        }
        #expect(root["meta"] == ["format": "pt", "note": "kiln \"test\""])
        #expect(Set(tensors.keys) == Set(Self.sample.tensors.map(\.name)))
        for tensor in Self.sample.tensors {
            guard case .object(let fields) = tensors[tensor.name] else {
                Issue.record("missing \(tensor.name)")
                continue
            }
            #expect(fields["dtype"] == "float32")
            #expect(fields["shape"] == .array(tensor.shape.map { .integer($0) }))
            guard case .array(let values) = fields["values"] else { continue }
            let numbers: [Float] = values.map {
                if case .number(let value) = $0 { return Float(value) }
                if case .integer(let value) = $0 { return Float(value) }
                return .nan
            }
            #expect(numbers == tensor.values, "\(tensor.name)")
        }
    }

    @Test func rejectsInvalidFiles() {
        let file = "bad.safetensors"
        let four: [UInt8] = [0, 0, 0x80, 0x3f]
        let cases: [(String, [UInt8], [String])] = [
            ("short", [1, 2, 3], ["shorter than the 8-byte header length"]),
            ("length past end", [200, 0, 0, 0, 0, 0, 0, 0] + Array("{}".utf8), ["runs past the end of the file"]),
            ("array header", Self.handMade("[1]", data: []), ["not a JSON object"]),
            ("broken json", Self.handMade("{\"a\":", data: []), ["not valid JSON"]),
            ("missing dtype", Self.handMade(#"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, data: four), ["missing dtype"]),
            ("missing offsets", Self.handMade(#"{"a":{"dtype":"F32","shape":[1]}}"#, data: four), ["missing data_offsets"]),
            ("unsupported dtype", Self.handMade(#"{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: four + four), ["unsupported dtype \"I64\"", "F32, F64, F16 and BF16"]),
            ("negative shape", Self.handMade(#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: four), ["negative"]),
            ("fractional shape", Self.handMade(#"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, data: four), ["shape"]),
            ("offsets mismatch", Self.handMade(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: four), ["span 4 bytes", "needs 8"]),
            ("reversed offsets", Self.handMade(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, data: four), ["not a valid range"]),
            ("overlap", Self.handMade(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: four + four), ["overlaps"]),
            ("gap", Self.handMade(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: four + four), ["gap"]),
            ("metadata not string", Self.handMade(#"{"__metadata__":{"epoch":3}}"#, data: []), ["not a string"]),
            ("truncated data", Self.handMade(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: four), ["truncated"]),
            ("trailing data", Self.handMade(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: four + four), ["after the last tensor"]),
            ("duplicate key", Self.handMade(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: four), ["twice"]),
        ]
        for (name, bytes, fragments) in cases {
            let error = FormatsFixture.formatError { () throws(FormatError) in try SafeTensorsFile.decode(bytes, file: file) }
            #expect(error != nil, "\(name)")
            FormatsFixture.expectError(file: file, fragments) { () throws(FormatError) in try SafeTensorsFile.decode(bytes, file: file) }
        }
    }

    @Test func truncationsAndFlippedHeaderBytesThrow() {
        let bytes = Self.sample.encoded()
        let headerLength = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        for length in [0, 4, 7, 8, 9, 20, 8 + headerLength / 2, 8 + headerLength - 1, 8 + headerLength, bytes.count - 1] {
            FormatsFixture.expectError(file: "t", []) { () throws(FormatError) in
                try SafeTensorsFile.decode(Array(bytes.prefix(length)), file: "t")
            }
        }
        // Flipping any byte of the length field or of the header's structure must throw.
        let header = Array(bytes[8..<(8 + headerLength)])
        for position in 0..<(8 + headerLength) {
            let isStructural = position < 8 || [UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "["), UInt8(ascii: "]"),
                                                UInt8(ascii: ":"), UInt8(ascii: ","), UInt8(ascii: "\"")].contains(header[position - 8])
            var damaged = bytes
            damaged[position] ^= 0x01
            let error = FormatsFixture.formatError { () throws(FormatError) in try SafeTensorsFile.decode(damaged, file: "f") }
            if isStructural {
                #expect(error != nil, "flipping byte \(position) was accepted")
            }
        }
    }
}

// MARK: - Plots

@Suite("Formats: SVG plots")
struct FormatsPlotTests {
    @Test func drawsOnePolylinePerSeriesWithLegend() throws {
        let plot = LinePlot(
            title: "Loss <train> & \"eval\"", xLabel: "step", yLabel: "loss",
            series: [
                .init(name: "train", points: (0..<50).map { (x: Double($0), y: 1 / Double($0 + 1)) }),
                .init(name: "eval & test", points: (0..<10).map { (x: Double($0 * 5), y: 0.8 / Double($0 + 1)) }, dashed: true),
                .init(name: "flat", points: [(x: 0, y: 0.5), (x: 49, y: 0.5)]),
            ]
        )
        let document = plot.svg()
        formatsExpectValidXML(document)
        #expect(document.hasPrefix("<?xml"))
        #expect(formatsPolylinePointCounts(document) == [50, 10, 2])
        #expect(document.contains(">train</text>"))
        #expect(document.contains(">eval &amp; test</text>"))
        #expect(document.contains("Loss &lt;train&gt; &amp; &quot;eval&quot;"))
        #expect(document.contains("stroke-dasharray"))
        #expect(document.contains("#1f77b4") && document.contains("#ff7f0e") && document.contains("#2ca02c"))
        #expect(!document.contains("nan") && !document.contains("inf"))
        // About five labelled ticks per axis.
        let xTicks = formatsOccurrences(of: "text-anchor=\"middle\">", in: document)
        #expect(xTicks >= 4 && xTicks <= 12)
    }

    @Test func skipsNonFiniteAndNonPositivePoints() {
        let plot = LinePlot(
            title: "gaps", xLabel: "x", yLabel: "y", logY: true,
            series: [
                .init(name: "a", points: [(x: 0, y: 1), (x: 1, y: 2), (x: 2, y: .nan), (x: 3, y: 4), (x: 4, y: 8), (x: 5, y: -1), (x: 6, y: 3)]),
                .init(name: "b", points: [(x: .infinity, y: 1), (x: 1, y: 0)]),
            ]
        )
        let document = plot.svg()
        formatsExpectValidXML(document)
        #expect(formatsPolylinePointCounts(document) == [2, 2])
        #expect(formatsOccurrences(of: "<circle", in: document) == 1)
        #expect(!document.contains("nan") && !document.contains("inf"))
    }

    @Test func logAxesTickOnDecadesAndPowersOfTwo() {
        let decades = LinePlot(
            title: "", xLabel: "step", yLabel: "loss", logX: true, logY: true,
            series: [.init(name: "", points: (0...60).map { (x: pow(10, Double($0) / 10), y: pow(10, -Double($0) / 10)) })]
        )
        let document = decades.svg()
        formatsExpectValidXML(document)
        // Seven decades on each axis: every other one is labelled, all as powers of ten.
        for exponent in ["0", "2", "4", "6", "\u{2212}2", "\u{2212}4", "\u{2212}6"] {
            #expect(document.contains("10<tspan dy=\"-0.45em\" font-size=\"75%\">\(exponent)</tspan>"), "missing 10^\(exponent)")
        }
        #expect(!document.contains(">100</text>"))

        let fewDecades = LinePlot(
            title: "", xLabel: "", yLabel: "", logY: true,
            series: [.init(name: "", values: [0.01, 0.1, 1, 10, 100])]
        )
        let fewDocument = fewDecades.svg()
        formatsExpectValidXML(fewDocument)
        for label in ["0.01", "0.1", "1", "10", "100"] {
            #expect(fewDocument.contains(">\(label)</text>"), "missing tick \(label)")
        }
        #expect(!document.contains("class=\"legend\""))

        let powersOfTwo = LinePlot(
            title: "width", xLabel: "width", yLabel: "error", logX: true,
            series: [.init(name: "error", points: [(x: 16, y: 3), (x: 32, y: 2), (x: 64, y: 1.5), (x: 128, y: 1.2)])]
        )
        let twoDocument = powersOfTwo.svg()
        formatsExpectValidXML(twoDocument)
        for label in ["16", "32", "64", "128"] {
            #expect(twoDocument.contains(">\(label)</text>"), "missing tick \(label)")
        }
    }

    @Test func degenerateInputsStillProduceDocuments() throws {
        let empty = LinePlot(title: "nothing", xLabel: "", yLabel: "", series: [])
        formatsExpectValidXML(empty.svg())
        #expect(formatsPolylinePointCounts(empty.svg()).isEmpty)
        let single = LinePlot(title: "one", xLabel: "x", yLabel: "y", series: [.init(name: "p", points: [(x: 3, y: 3)])])
        let singleDocument = single.svg(width: 10, height: 10)
        formatsExpectValidXML(singleDocument)
        #expect(formatsOccurrences(of: "<circle", in: singleDocument) == 1)
        #expect(!singleDocument.contains("nan"))
        let constant = LinePlot(title: "", xLabel: "", yLabel: "", logY: true, series: [.init(name: "c", values: [2, 2, 2])])
        let constantDocument = constant.svg()
        formatsExpectValidXML(constantDocument)
        #expect(formatsPolylinePointCounts(constantDocument) == [3])
        #expect(!constantDocument.contains("nan"))
        let allNaN = LinePlot(title: "", xLabel: "", yLabel: "", series: [.init(name: "n", values: [.nan, .nan])])
        formatsExpectValidXML(allNaN.svg())
        let huge = LinePlot(title: "", xLabel: "", yLabel: "", series: [.init(name: "h", values: [-1e308, 1e308, 1e-300])])
        formatsExpectValidXML(huge.svg())
        #expect(formatsPolylinePointCounts(huge.svg()) == [3])
    }

    @Test func gridsLayOutPanels() throws {
        let panels = (0..<5).map { index in
            LinePlot(
                title: "edge \(index)", xLabel: "step", yLabel: "value",
                series: [.init(name: "w", values: (0..<20).map { sin(Double($0 + index)) })]
            )
        }
        let grid = PlotGrid(title: "Edges", panels: panels, columns: 2)
        let document = grid.svg()
        formatsExpectValidXML(document)
        #expect(formatsOccurrences(of: "class=\"panel\"", in: document) == 5)
        #expect(document.contains("width=\"600\" height=\"694\""))
        #expect(formatsPolylinePointCounts(document) == [20, 20, 20, 20, 20])
        formatsExpectValidXML(PlotGrid(title: "", panels: [], columns: 0).svg())

        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("grid.svg")
        try grid.write(to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == document)
        try panels[0].write(to: folder.appendingPathComponent("plot.svg"))
        #expect(try String(contentsOf: folder.appendingPathComponent("plot.svg"), encoding: .utf8) == panels[0].svg())
    }
}

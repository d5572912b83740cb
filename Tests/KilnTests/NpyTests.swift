import Foundation
import Kiln
import Testing

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
        struct Loaded: Decodable {
            var dtype: String
            var shape: [Int]
            var values: [Double]
        }
        let arrays = try JSONFile.decode([String: Loaded].self, from: Data(report.utf8), file: "python output")
        for (dtype, name) in Self.dtypeNames {
            guard let loaded = arrays[name] else {
                Issue.record("missing \(name)")
                continue
            }
            #expect(loaded.dtype == name)
            #expect(loaded.shape == [2, 3, 4])
            #expect(loaded.values == (0..<24).map { Self.expectedValue($0, dtype) })
        }
        #expect(arrays["scalar"]?.shape == [] && arrays["scalar"]?.values == [7])
        #expect(arrays["empty"]?.shape == [3, 0] && arrays["empty"]?.dtype == "float32")
        #expect(arrays["floats"]?.values == [0.1, -1, 3e-8].map { Double(Float($0)) })
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

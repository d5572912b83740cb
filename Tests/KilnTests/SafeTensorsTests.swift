import Foundation
import Kiln
import Testing

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

    @Test func checkpointsOfThePreviousVersionReencodeToTheSameBytes() throws {
        // Written by Kiln's earlier, hand-written JSON serializer: the header composed now is the same text.
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/checkpoints")
        for name in ["mlp", "kan", "lm-delta"] {
            let url = folder.appendingPathComponent("\(name).safetensors")
            #expect(try SafeTensorsFile.read(from: url).encoded() == FormatsFixture.readBytes(url), "\(name)")
        }
        // Names and metadata that need escaping come out as the earlier serializer wrote them.
        let escaped = SafeTensorsFile(tensors: [.init(name: "a/b\u{08}\u{0C}\u{1F}\t\"é", shape: [1], values: [1])], metadata: ["k\\": "v\n/"])
        let header = String(decoding: escaped.encoded()[8...], as: UTF8.self)
        #expect(header.hasPrefix(#"{"__metadata__":{"k\\":"v\n/"},"a/b\b\f\u001f\t\"é":{"dtype":"F32""#), "\(header)")
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
        struct Entry: Decodable, Equatable {
            var dtype: String
            var shape: [Int]
            var data_offsets: [Int]
        }
        let header = try JSONFile.decode([String: Entry].self, from: Data(headerText.utf8), file: "header")
        #expect(header == [
            "a": Entry(dtype: "F32", shape: [2], data_offsets: [0, 8]),
            "b": Entry(dtype: "F32", shape: [], data_offsets: [8, 12]),
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
                              'bits': [int(b) for b in v.view(np.uint32).ravel()]} for k, v in loaded.items()}}))
            """, [folder.path])
        let python = try SafeTensorsFile.read(from: folder.appendingPathComponent("py.safetensors"))
        #expect(python.metadata == ["epoch": "3"])
        #expect(python.tensor(named: "w")?.values == [0, 1, 2, 3, 4, 5])
        #expect(python.tensor(named: "w")?.shape == [2, 3])
        #expect(python.tensor(named: "h")?.values == [0.5, -1])
        #expect(python.tensor(named: "d")?.values == [Float(1e-3)])

        // Python read Kiln's file: names, shapes, dtypes and every value's bits.
        struct Loaded: Decodable {
            var shape: [Int]
            var dtype: String
            var bits: [UInt32]
        }
        struct Report: Decodable {
            var meta: [String: String]
            var tensors: [String: Loaded]
        }
        let loaded = try JSONFile.decode(Report.self, from: Data(report.utf8), file: "python output")
        #expect(loaded.meta == ["format": "pt", "note": "kiln \"test\""])
        #expect(Set(loaded.tensors.keys) == Set(Self.sample.tensors.map(\.name)))
        for tensor in Self.sample.tensors {
            #expect(loaded.tensors[tensor.name]?.dtype == "float32")
            #expect(loaded.tensors[tensor.name]?.shape == tensor.shape)
            #expect(loaded.tensors[tensor.name]?.bits == tensor.values.map(\.bitPattern), "\(tensor.name)")
        }
    }

    @Test func readsHalfFloatsExactly() throws {
        // F16: 1, -0, the smallest subnormal, the largest finite, infinity, NaN; BF16: -2 and 2^-126.
        let halves: [UInt16] = [0x3c00, 0x8000, 0x0001, 0x7bff, 0x7c00, 0x7e00]
        let brains: [UInt16] = [0xc000, 0x0080]
        let data = (halves + brains).flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        let header = #"{"h":{"dtype":"F16","shape":[6],"data_offsets":[0,12]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]}}"#
        let file = try SafeTensorsFile.decode(Self.handMade(header, data: data), file: "half.safetensors")
        let h = try #require(file.tensor(named: "h")?.values)
        #expect(Array(h.prefix(5)) == [1, -0.0, Float(sign: .plus, exponent: -24, significand: 1), 65504, .infinity])
        #expect(h[1].sign == .minus && h[5].isNaN)
        #expect(file.tensor(named: "b")?.values == [-2, Float(sign: .plus, exponent: -126, significand: 1)])
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
            ("entry not an object", Self.handMade(#"{"a":[1]}"#, data: []), ["tensor \"a\"", "not a JSON object"]),
            ("dtype not a string", Self.handMade(#"{"a":{"dtype":3,"shape":[1],"data_offsets":[0,4]}}"#, data: four), ["\"dtype\" is not a string"]),
            ("offsets not a pair", Self.handMade(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, data: four), ["not a pair"]),
            ("metadata not an object", Self.handMade(#"{"__metadata__":[]}"#, data: []), ["\"__metadata__\" is not a JSON object"]),
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
